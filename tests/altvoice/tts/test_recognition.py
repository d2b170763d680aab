"""The audio says what it should: pocketsphinx (with its bundled English model) hears Piper's words."""
import io
import wave

import pytest

from altvoice.tts import get_synthesizer

pocketsphinx = pytest.importorskip("pocketsphinx")
pytest.importorskip("piper")


@pytest.fixture(scope="module")
def hear():
    decoder = pocketsphinx.Decoder(samprate=22050, nfft=1024)  # Piper's joe voice is 22,050 Hz

    def words(wav: bytes) -> list[str]:
        with wave.open(io.BytesIO(wav)) as audio:
            pcm = audio.readframes(audio.getnframes())
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        return decoder.hyp().hypstr.split() if decoder.hyp() else []

    return words


@pytest.mark.parametrize("caption, word, absent", [("a dog runs on the grass", "dog", "bike"),
                                                   ("a man rides a bike", "bike", "dog")])
def test_piper_says_the_caption(hear, caption, word, absent):
    heard = hear(get_synthesizer("piper").synthesize(caption))
    assert word in heard and absent not in heard, heard
