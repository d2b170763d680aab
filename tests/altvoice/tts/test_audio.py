"""WAV repair, conversion (including a machine without any converter) and the check that audio is whole."""
import os
import shutil
import struct
import subprocess

import pytest

from altvoice.tts import Synthesizer, TTSError, audio
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


@pytest.fixture(scope="module")
def real_audio(tmp_path_factory):
    """A sentence by espeak-ng as WAV, and by sox as mp3 (plain and with an ID3 tag) and Ogg Vorbis."""
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.skip("needs espeak-ng and sox")
    folder = tmp_path_factory.mktemp("real_audio")
    wav = folder / "a.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "A dog runs on the grass."], check=True)
    for name, extra in [("a.mp3", []), ("tagged.mp3", ["--comment", "Title=A dog"]), ("a.ogg", [])]:
        subprocess.run(["sox", "-q", str(wav), *extra, str(folder / name)], check=True)
    files = {name: (folder / name).read_bytes() for name in ("a.wav", "a.mp3", "tagged.mp3", "a.ogg")}
    assert files["tagged.mp3"].startswith(b"ID3") and files["a.mp3"].startswith(b"\xff")
    return files


@pytest.mark.parametrize("name", ["a.wav", "a.mp3", "tagged.mp3", "a.ogg"])
def test_check_audio_passes_real_files(real_audio, name):
    audio.check_audio(real_audio[name], name.rsplit(".", 1)[1])


def ogg_pages(data: bytes) -> list[int]:
    """The offsets at which the Ogg pages of `data` start."""
    offsets, offset = [], 0
    while offset < len(data):
        offsets.append(offset)
        segments = data[offset + 26]
        offset += 27 + segments + sum(data[offset + 27 : offset + 27 + segments])
    return offsets


BAD = {  # name: (bytes made from the real files, format asked for, what the error says)
    "empty wav": (lambda f: b"", "wav", "no RIFF/WAVE header"),
    "empty mp3": (lambda f: b"", "mp3", "no MPEG frame sync"),
    "empty ogg": (lambda f: b"", "ogg", "no OggS page"),
    "html as wav": (lambda f: b"<html>503 Service Unavailable</html>", "wav", "no RIFF/WAVE header"),
    "mp3 as wav": (lambda f: f["a.mp3"], "wav", "no RIFF/WAVE header"),
    "ogg as mp3": (lambda f: f["a.ogg"], "mp3", "no MPEG frame sync"),
    "wav as ogg": (lambda f: f["a.wav"], "ogg", "no OggS page"),
    "wav header only": (lambda f: f["a.wav"][:44], "wav", "no whole sample frame"),
    "wav of one byte of 16-bit audio": (lambda f: f["a.wav"][:45], "wav", "no whole sample frame"),
    "wav with no samples": (lambda f: audio.pcm_to_wav(b"", 22050), "wav", "no whole sample frame"),
    "wav cut in the fmt chunk": (lambda f: f["a.wav"][:30], "wav", "no data chunk"),
    "float wav": (lambda f: f["a.wav"][:20] + b"\3\0" + f["a.wav"][22:], "wav", "not PCM"),
    "mp3 cut in its first frame": (lambda f: f["a.mp3"][:50], "mp3", "cut short"),
    "ID3 tag only": (lambda f: f["tagged.mp3"][:f["tagged.mp3"].index(b"\xff\xf3")], "mp3", "no MPEG frame sync"),
    "layer II frame": (lambda f: b"\xff\xfd" + f["a.mp3"][2:], "mp3", "not MPEG layer III"),
    "ogg cut after a page header": (lambda f: f["a.ogg"][:27], "ogg", "page at byte 0 is cut short"),
    "ogg cut in a page": (lambda f: f["a.ogg"][:-100], "ogg", "cut short"),
    "ogg headers, no audio pages": (lambda f: f["a.ogg"][:ogg_pages(f["a.ogg"])[2]], "ogg", "without audio"),
    "ogg with junk after": (lambda f: f["a.ogg"] + b"junk", "ogg", "no whole Ogg page"),
}


@pytest.mark.parametrize("name", BAD)
def test_check_audio_refuses_what_is_not_whole_audio(real_audio, name):
    make, audio_format, message = BAD[name]
    with pytest.raises(TTSError, match=f"not {audio_format} audio: .*{message}") as raised:
        audio.check_audio(make(real_audio), audio_format)
    assert not raised.value.transient
    with pytest.raises(TTSError) as raised:
        audio.check_audio(make(real_audio), audio_format, transient=True)
    assert raised.value.transient


class Broken(Synthesizer):
    """A backend whose output is a WAV header without samples."""

    voice_id = "broken"

    def _synthesize(self, text: str) -> bytes:
        return audio.pcm_to_wav(b"", 22050)


def test_every_backend_output_is_checked():
    with pytest.raises(TTSError, match="not wav audio: no whole sample frame") as raised:
        Broken("wav").synthesize("A dog.")
    assert not raised.value.transient
