"""What every speech backend offers: text in, a complete audio file out, failures as TTSError."""
import abc

AUDIO_FORMATS = ("wav", "mp3", "ogg")


class TTSError(RuntimeError):
    """Speech synthesis failed; `transient` says whether trying again later may succeed."""

    def __init__(self, message: str, transient: bool):
        super().__init__(message)
        self.transient = transient


class Synthesizer(abc.ABC):
    """Speaks text as one audio file. Instances hold settings only, so they pickle to Beam workers;
    heavy resources (voice models, API clients) are created on first use in each process."""

    def __init__(self, audio_format: str):
        if audio_format not in AUDIO_FORMATS:
            raise ValueError(f"audio format {audio_format!r} is not one of {', '.join(AUDIO_FORMATS)}")
        self.extension = audio_format

    @property
    @abc.abstractmethod
    def voice_id(self) -> str:
        """Backend, voice and every setting that changes the sound: equal ids mean equal audio."""

    def synthesize(self, text: str) -> bytes:
        """The text spoken, as a complete file in `self.extension` format; TTSError rather than other bytes."""
        from altvoice.tts.audio import check_audio  # audio.py imports this module

        if not text or not text.strip():
            raise TTSError("nothing to say: the text is empty", transient=False)
        data = self._synthesize(text.strip())
        check_audio(data, self.extension)
        return data

    def use_threads(self, count: int | None) -> None:
        """A hint: synthesise on `count` threads (None: the backend's default). Backends that can't ignore it."""

    def probe(self) -> None:
        """Checks once, at launch, that this backend can speak here; raises TTSError if not."""
        self.synthesize("Ready.")

    @abc.abstractmethod
    def _synthesize(self, text: str) -> bytes:
        """Backend-specific synthesis of non-empty text."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.voice_id}>"
