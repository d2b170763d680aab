"""Speech for captions: one Synthesizer interface over Piper, espeak-ng and Cloud Text-to-Speech.

    synthesizer = get_synthesizer(default_backend(), voice=None, audio_format="wav")
    audio = synthesizer.synthesize("A dog runs on the grass.")  # a complete .wav file
"""
import importlib
import inspect
import shutil

from altvoice.tts.base import AUDIO_FORMATS, Synthesizer, TTSError

BACKENDS = {
    "piper": ("altvoice.tts.piper", "PiperSynthesizer"),
    "espeak": ("altvoice.tts.espeak", "EspeakSynthesizer"),
    "google": ("altvoice.tts.google", "GoogleSynthesizer"),
    "none": None,
}

__all__ = ["AUDIO_FORMATS", "BACKENDS", "Synthesizer", "TTSError", "default_backend", "get_synthesizer"]


def get_synthesizer(backend: str, voice: str | None = None, audio_format: str = "wav",
                    **options) -> Synthesizer | None:
    """The synthesizer for `backend` ('piper', 'espeak', 'google'), or None for 'none' (no audio).

    `voice` is backend-specific (None: the backend's default); `options` are the backend class's
    keyword arguments. ValueError for an unknown backend, format, option or (piper, espeak) voice;
    TTSError when the backend isn't installed.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown speech backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if BACKENDS[backend] is None:
        return None
    module, name = BACKENDS[backend]
    cls = getattr(importlib.import_module(module), name)
    known = set(inspect.signature(cls).parameters) - {"voice", "audio_format"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"backend {backend!r} has no option {', '.join(unknown)}; "
                         f"its options: {', '.join(sorted(known))}")
    return cls(voice=voice, audio_format=audio_format, **options)


def default_backend() -> str:
    """The best offline backend installed: 'piper' (with its default voice), 'espeak', or 'none'."""
    from altvoice.tts.piper import DEFAULT_VOICE

    try:
        import piper  # noqa: F401

        importlib.import_module(DEFAULT_VOICE)
        return "piper"
    except ImportError:
        return "espeak" if shutil.which("espeak-ng") else "none"
