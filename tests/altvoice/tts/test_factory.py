"""get_synthesizer: one entry point, clear refusals."""
import pytest

from altvoice.tts import get_synthesizer


def test_none_backend_means_no_audio():
    assert get_synthesizer("none") is None


@pytest.mark.parametrize("backend, options, message", [
    ("festival", {}, "unknown speech backend 'festival': choose one of piper, espeak, google, none"),
    ("google", {"speed": 2}, "backend 'google' has no option speed; its options: .*speaking_rate"),
    ("google", {"audio_format": "flac"}, "audio format 'flac' is not one of wav, mp3, ogg"),
])
def test_unknown_backend_option_or_format_is_refused(backend, options, message):
    with pytest.raises(ValueError, match=message):
        get_synthesizer(backend, **options)
