"""WAV repair and conversion, including a machine without any converter."""
import os
import shutil
import struct

import pytest

from altvoice.tts import TTSError, audio
from tests.altvoice.tts.wav_header import wav_info


@pytest.fixture
def fresh_converter_lookup():
    audio.converter_command.cache_clear()
    audio.sox_formats.cache_clear()
    yield
    audio.converter_command.cache_clear()
    audio.sox_formats.cache_clear()


def streamed_wav(pcm: bytes, rate: int = 16000) -> bytes:
    """A WAV as a streaming writer leaves it: placeholder sizes, as espeak-ng --stdout does."""
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return b"RIFF" + struct.pack("<I", 0x7FFFF024) + b"WAVEfmt " + struct.pack("<I", 16) + fmt \
        + b"data" + struct.pack("<I", 0x7FFFF000) + pcm


def test_repair_wav_sets_true_sizes():
    repaired = audio.repair_wav(streamed_wav(bytes(32000)))
    info = wav_info(repaired)
    assert (info.sample_rate, info.channels, info.bits, info.seconds) == (16000, 1, 16, 1.0)


def test_repair_wav_drops_a_torn_last_sample():
    assert wav_info(audio.repair_wav(streamed_wav(bytes(32001)))).seconds == 1.0


@pytest.mark.parametrize("data", [b"", b"not audio at all", b"RIFF\0\0\0\0WAVE"])
def test_repair_wav_rejects_what_is_not_pcm_wav(data):
    with pytest.raises(TTSError) as raised:
        audio.repair_wav(data)
    assert not raised.value.transient


@pytest.mark.skipif(not shutil.which("sox"), reason="sox not on PATH")
def test_sox_is_the_converter_when_it_has_the_format(fresh_converter_lookup):
    assert audio.converter_command("mp3")[0] == "sox"
    assert audio.encode(audio.pcm_to_wav(bytes(8000), 8000), "ogg").startswith(b"OggS")


@pytest.mark.parametrize("audio_format", ["mp3", "ogg"])
def test_no_converter_is_a_clear_permanent_error(audio_format, fresh_converter_lookup, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(TTSError, match=f"no converter to {audio_format}.*apt-get install") as raised:
        audio.encode(audio.pcm_to_wav(bytes(800), 8000), audio_format)
    assert not raised.value.transient


def test_wav_needs_no_converter(fresh_converter_lookup, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    wav = audio.pcm_to_wav(bytes(800), 8000)
    assert audio.encode(wav, "wav") == wav


@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg not on PATH")
@pytest.mark.parametrize("audio_format, magic", [("mp3", (b"\xff", b"ID3")), ("ogg", (b"OggS",))])
def test_ffmpeg_converts_when_sox_is_missing(audio_format, magic, fresh_converter_lookup, monkeypatch, tmp_path):
    os.symlink(shutil.which("ffmpeg"), tmp_path / "ffmpeg")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert audio.converter_command(audio_format)[0] == "ffmpeg"
    assert audio.encode(audio.pcm_to_wav(bytes(16000), 8000), audio_format).startswith(magic)
