"""Speech reuse: a sentence is synthesised once, its audio kept within a memory bound."""
from altvoice.tts import get_synthesizer
from altvoice.tts.reuse import Reusing
from tests.altvoice.tts.test_offline import needs_espeak


class Counting:
    """A real espeak-ng synthesizer that counts its calls."""

    def __init__(self):
        self.synthesizer, self.calls = get_synthesizer("espeak"), 0

    def synthesize(self, text):
        self.calls += 1
        return self.synthesizer.synthesize(text)


@needs_espeak
def test_a_sentence_is_spoken_once_and_its_audio_reused():
    counting = Counting()
    speaker = Reusing(counting)
    first, reused = speaker.speak("A dog runs.")
    assert not reused and first[:4] == b"RIFF"
    assert speaker.speak("A dog runs.") == (first, True)
    assert speaker.speak("A cat sits.")[1] is False and counting.calls == 2


@needs_espeak
def test_the_least_recently_used_audio_goes_past_the_bound():
    counting = Counting()
    size = len(counting.synthesize("A dog runs."))
    speaker = Reusing(counting, max_bytes=int(size * 2.5))  # room for two sentences of about this length
    for text in ("A dog runs.", "A cat runs.", "A dog runs.", "A cow runs."):  # the cat is the oldest now
        speaker.speak(text)
    assert speaker.speak("A dog runs.")[1] and not speaker.speak("A cat runs.")[1]
    tiny = Reusing(counting, max_bytes=10)  # audio larger than the bound is never kept
    tiny.speak("A dog runs.")
    assert tiny.speak("A dog runs.")[1] is False
