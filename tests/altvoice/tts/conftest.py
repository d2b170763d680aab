import pytest

from tests.altvoice.tts.tts_server import FakeTextToSpeech


@pytest.fixture
def tts_server():
    """A fresh local Cloud TTS server for one test."""
    server = FakeTextToSpeech().start()
    yield server
    server.stop()
