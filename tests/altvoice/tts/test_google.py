"""The real google-cloud-texttospeech client against a local gRPC server that records requests."""
import pickle

import grpc
import pytest
from google.cloud import texttospeech

from altvoice.tts import TTSError, get_synthesizer
from altvoice.tts.google import to_ssml
from tests.altvoice.tts.tts_server import AUDIO
from tests.altvoice.tts.wav_header import wav_info

FAST_RETRY = {"retry_initial": 0.01, "retry_maximum": 0.05, "retry_multiplier": 2.0}


def local(server, **options):
    return get_synthesizer("google", endpoint=server.endpoint, insecure=True, **{**FAST_RETRY, **options})


def test_caption_goes_as_escaped_ssml(tts_server):
    local(tts_server).synthesize("Tom & Jerry <3 \"quoted\" it's")
    (_, request), = tts_server.requests
    assert request.input.ssml == "<speak>Tom &amp; Jerry &lt;3 &quot;quoted&quot; it&apos;s</speak>"
    assert request.input.text == ""


@pytest.mark.parametrize("audio_format, encoding", [("mp3", "MP3"), ("ogg", "OGG_OPUS"), ("wav", "LINEAR16")])
def test_voice_rate_pitch_and_encoding_are_sent(tts_server, audio_format, encoding):
    synthesizer = local(tts_server, voice="en-GB-Neural2-B", audio_format=audio_format,
                        speaking_rate=0.9, pitch=-2.5)
    audio = synthesizer.synthesize("A cat sleeps.")
    (_, request), = tts_server.requests
    assert (request.voice.name, request.voice.language_code) == ("en-GB-Neural2-B", "en-GB")
    assert request.audio_config.audio_encoding == texttospeech.AudioEncoding[encoding]
    assert request.audio_config.speaking_rate == pytest.approx(0.9)
    assert request.audio_config.pitch == pytest.approx(-2.5)
    assert synthesizer.extension == audio_format
    assert synthesizer.voice_id == (f"google:en-GB-Neural2-B:lang=en-GB:rate=0.9:pitch=-2.5:{encoding}"
                                    f":endpoint={tts_server.endpoint}")
    if audio_format == "wav":
        assert wav_info(audio).seconds == pytest.approx(0.5)
    else:
        assert audio[:4] == {"mp3": b"\xff\xf3\x40\xc4", "ogg": b"OggS"}[audio_format]


def test_default_voice_leaves_the_choice_to_the_service(tts_server):
    local(tts_server, language_code="de-DE").synthesize("Ein Hund.")
    (_, request), = tts_server.requests
    assert (request.voice.name, request.voice.language_code) == ("", "de-DE")


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED,
                                  grpc.StatusCode.DEADLINE_EXCEEDED])
def test_transient_failures_are_retried(tts_server, code):
    tts_server.fail_next(code, code)
    assert local(tts_server).synthesize("A bird sings.") == AUDIO["LINEAR16"]
    assert len(tts_server.requests) == 3


def test_permanent_failure_raises_at_once(tts_server):
    tts_server.fail_next(grpc.StatusCode.INVALID_ARGUMENT)
    with pytest.raises(TTSError, match="INVALID_ARGUMENT|scripted") as raised:
        local(tts_server).synthesize("A bird sings.")
    assert not raised.value.transient
    assert len(tts_server.requests) == 1


def test_outage_longer_than_the_deadline_is_a_transient_error(tts_server):
    tts_server.fail_next(*[grpc.StatusCode.UNAVAILABLE] * 1000)
    with pytest.raises(TTSError, match="still failing after 0.3 s.*scripted UNAVAILABLE") as raised:
        local(tts_server, retry_deadline=0.3).synthesize("A bird sings.")
    assert raised.value.transient
    assert 3 <= len(tts_server.requests) < 100


NOT_AUDIO = {"wav": [b"", b"<html>503 Service Unavailable</html>", AUDIO["LINEAR16"][:44]],
             "mp3": [b"", b'{"error": "quota"}', AUDIO["MP3"][:60]],
             "ogg": [b"", b"OggS", AUDIO["OGG_OPUS"][:30]]}


@pytest.mark.parametrize("audio_format, encoding", [("wav", "LINEAR16"), ("mp3", "MP3"), ("ogg", "OGG_OPUS")])
def test_an_answer_that_is_not_audio_is_retried(tts_server, audio_format, encoding):
    tts_server.answer_next(*NOT_AUDIO[audio_format])
    assert local(tts_server, audio_format=audio_format).synthesize("A bird sings.") == AUDIO[encoding]
    assert len(tts_server.requests) == 4


def test_answers_that_are_never_audio_end_in_a_transient_error(tts_server):
    tts_server.answer_next(*[b"not audio"] * 1000)
    with pytest.raises(TTSError, match="still failing after 0.3 s.*9 bytes that are not mp3 audio") as raised:
        local(tts_server, audio_format="mp3", retry_deadline=0.3).synthesize("A bird sings.")
    assert raised.value.transient
    assert 3 <= len(tts_server.requests) < 100


def test_endpoint_is_part_of_the_voice_id(tts_server):
    default = get_synthesizer("google", voice="en-US-Neural2-C")
    assert default.voice_id == "google:en-US-Neural2-C:lang=en-US:rate=1:pitch=0:LINEAR16"  # as before
    regional = get_synthesizer("google", voice="en-US-Neural2-C", endpoint="eu-texttospeech.googleapis.com")
    test = local(tts_server, voice="en-US-Neural2-C")
    assert len({default.voice_id, regional.voice_id, test.voice_id}) == 3
    assert regional.voice_id.endswith(":endpoint=eu-texttospeech.googleapis.com")


def test_requests_per_minute_spaces_requests_and_retries(tts_server):
    tts_server.fail_next(grpc.StatusCode.UNAVAILABLE)
    synthesizer = local(tts_server, requests_per_minute=1201)  # 0.05 s apart; a rate no other test uses
    synthesizer.synthesize("One.")
    synthesizer.synthesize("Two.")
    times = [at for at, _ in tts_server.requests]
    assert len(times) == 3  # the bucket spaces them 0.05 s apart (test_ratelimit.py checks it on a fake clock);
    assert times[-1] - times[0] >= 0.07  # here, that the client uses it, with slack for the scheduler


def test_text_over_5000_bytes_of_ssml_is_refused_before_sending(tts_server):
    synthesizer = local(tts_server)
    with pytest.raises(TTSError, match="5000") as raised:
        synthesizer.synthesize("&" * 998)  # 998 bytes of text; 4990 escaped + 15 of <speak> tags
    assert not raised.value.transient and tts_server.requests == []
    assert len(to_ssml("a" * 4985).encode()) == 5000
    synthesizer.synthesize("a" * 4985)
    assert len(tts_server.requests) == 1


def test_pickled_synthesizer_makes_its_own_client(tts_server):
    synthesizer = local(tts_server, voice="en-US-Neural2-C")
    synthesizer.synthesize("First.")
    copy = pickle.loads(pickle.dumps(synthesizer))
    assert copy.voice_id == synthesizer.voice_id
    assert copy.synthesize("Second.")
    assert [r.input.ssml for _, r in tts_server.requests] == ["<speak>First.</speak>", "<speak>Second.</speak>"]


def test_missing_credentials_is_a_clear_permanent_error(monkeypatch, tmp_path):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-key.json"))
    with pytest.raises(TTSError, match="no Google credentials") as raised:
        get_synthesizer("google").synthesize("A dog.")
    assert not raised.value.transient


@pytest.mark.parametrize("options", [{"speaking_rate": 5.0}, {"pitch": -30}, {"insecure": True},
                                     {"voice": "Neural2"}])
def test_impossible_settings_fail_when_configured(options):
    with pytest.raises(ValueError):
        get_synthesizer("google", **options)


def test_probe_needs_credentials_unless_the_server_is_local(tmp_path, monkeypatch, tts_server):
    from altvoice.tts.base import TTSError
    from altvoice.tts.google import GoogleSynthesizer

    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "none.json"))
    with pytest.raises(TTSError, match="no Google credentials"):
        GoogleSynthesizer(voice="en-US-Neural2-C").probe()
    GoogleSynthesizer(voice="en-US-Neural2-C", endpoint=tts_server.endpoint, insecure=True).probe()
    assert not tts_server.requests  # probing makes no request
