"""Speech reused: each distinct sentence is synthesised once per voice and process, within a memory bound."""
import threading
from collections import OrderedDict

SPOKEN_BYTES = 64 << 20  # audio kept for reuse, at most (about 300 Piper sentences)


_SHARED: dict = {}
_SHARED_LOCK = threading.Lock()


def shared_speaker(synthesizer) -> "Reusing":
    """One Reusing per voice in this process, shared by every DoFn instance and thread that speaks with it."""
    with _SHARED_LOCK:
        if synthesizer.voice_id not in _SHARED:
            _SHARED[synthesizer.voice_id] = Reusing(synthesizer)
        return _SHARED[synthesizer.voice_id]


class Reusing:
    """Wraps a synthesizer: a sentence spoken recently is not synthesised again (its audio is kept, the
    least recently used dropped past `max_bytes`). Threads may share one; two that say the same new
    sentence at once both synthesise it."""

    def __init__(self, synthesizer, max_bytes: int = SPOKEN_BYTES):
        self.synthesizer, self.max_bytes = synthesizer, max_bytes
        self._audio, self._size, self._lock = OrderedDict(), 0, threading.Lock()

    def speak(self, text: str) -> tuple[bytes, bool]:
        """(the audio of `text`, whether it was reused); TTSError as the synthesizer's synthesize."""
        with self._lock:
            audio = self._audio.get(text)
            if audio is not None:
                self._audio.move_to_end(text)
                return audio, True
        audio = self.synthesizer.synthesize(text)
        with self._lock:
            if len(audio) > self.max_bytes or text in self._audio:
                return audio, False
            self._audio[text] = audio
            self._size += len(audio)
            while self._size > self.max_bytes:
                self._size -= len(self._audio.popitem(last=False)[1])
        return audio, False
