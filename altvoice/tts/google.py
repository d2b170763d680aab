"""Cloud Text-to-Speech: SSML requests with retries on transient errors and a per-process rate limit.

Credentials are Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, `gcloud auth
application-default login`, or the worker's service account). `endpoint` picks another API host
(e.g. a regional one); with `insecure=True` it is a plain-text gRPC server such as a local fake.
An answer that is not a whole audio file of the asked format is retried like a transient error.
"""
import threading
from xml.sax.saxutils import escape

import google.auth.exceptions
import grpc
from google.api_core import exceptions, retry
from google.cloud import texttospeech
from google.cloud.texttospeech_v1.services.text_to_speech.transports import TextToSpeechGrpcTransport

from altvoice.tts.audio import check_audio
from altvoice.tts.base import Synthesizer, TTSError
from altvoice.tts.ratelimit import process_bucket

MAX_INPUT_BYTES = 5000  # the API's limit per request, SSML markup included
ENCODINGS = {"mp3": "MP3", "ogg": "OGG_OPUS", "wav": "LINEAR16"}  # LINEAR16 comes with a WAV header
TRANSIENT = (exceptions.ServiceUnavailable, exceptions.ResourceExhausted, exceptions.DeadlineExceeded)


def to_ssml(text: str) -> str:
    """Plain text as an SSML document, with the five XML special characters escaped."""
    return "<speak>" + escape(text, {'"': "&quot;", "'": "&apos;"}) + "</speak>"


_CLIENT_LOCK = threading.Lock()  # writer threads share a synthesizer: one client each copy

class GoogleSynthesizer(Synthesizer):
    """A Cloud TTS voice such as 'en-US-Neural2-C' (its language code is read from the name unless
    given); `speaking_rate` 0.25-4, `pitch` -20 to 20 semitones.

    Transient errors, answers that are not audio included, are retried with exponential backoff and
    full jitter: the n-th wait is uniform in [0, min(retry_initial * retry_multiplier**n, retry_maximum)]
    seconds, until `retry_deadline` seconds have passed. `requests_per_minute` caps this process's requests
    (retries included); with N worker processes, give each quota / N.
    """

    def __init__(self, voice: str | None = None, audio_format: str = "mp3", language_code: str | None = None,
                 speaking_rate: float = 1.0, pitch: float = 0.0, requests_per_minute: float | None = None,
                 retry_initial: float = 1.0, retry_maximum: float = 30.0, retry_multiplier: float = 2.0,
                 retry_deadline: float = 120.0, request_timeout: float = 30.0,
                 endpoint: str | None = None, insecure: bool = False):
        super().__init__(audio_format)
        self.voice = voice
        self.language_code = language_code or language_of(voice)
        self.speaking_rate = float(speaking_rate)
        self.pitch = float(pitch)
        if not 0.25 <= self.speaking_rate <= 4.0 or not -20.0 <= self.pitch <= 20.0:
            raise ValueError("Cloud TTS needs speaking_rate in 0.25-4.0 and pitch in -20.0-20.0")
        self.requests_per_minute = float(requests_per_minute) if requests_per_minute else None
        self.retry_initial, self.retry_maximum = float(retry_initial), float(retry_maximum)
        self.retry_multiplier, self.retry_deadline = float(retry_multiplier), float(retry_deadline)
        self.request_timeout = float(request_timeout)
        if insecure and not endpoint:
            raise ValueError("insecure=True needs an endpoint (host:port of a plain-text gRPC server)")
        self.endpoint, self.insecure = endpoint, bool(insecure)
        self._client = None

    @property
    def voice_id(self) -> str:
        endpoint = f":endpoint={self.endpoint}" if self.endpoint else ""  # another host may sound different
        return (f"google:{self.voice or 'default'}:lang={self.language_code}:rate={self.speaking_rate:g}:"
                f"pitch={self.pitch:g}:{ENCODINGS[self.extension]}{endpoint}")

    def __getstate__(self):
        return {**self.__dict__, "_client": None}

    def probe(self) -> None:
        """Credentials are found (no request is made: it would cost quota); a plain-text local server
        is not probed."""
        if not self.insecure:
            try:
                google.auth.default()
            except google.auth.exceptions.DefaultCredentialsError as err:
                raise TTSError(f"no Google credentials for Cloud TTS (set GOOGLE_APPLICATION_CREDENTIALS or run "
                               f"`gcloud auth application-default login`): {err}", transient=False) from err

    def client(self) -> texttospeech.TextToSpeechClient:
        """The API client, made on first use in each copy of this synthesizer (once, whichever thread asks first)."""
        with _CLIENT_LOCK:
            return self._client or self._connect()

    def _connect(self) -> texttospeech.TextToSpeechClient:
        if self.insecure:
            transport = TextToSpeechGrpcTransport(channel=grpc.insecure_channel(self.endpoint))
            self._client = texttospeech.TextToSpeechClient(transport=transport)
        else:
            options = {"api_endpoint": self.endpoint} if self.endpoint else None
            try:
                self._client = texttospeech.TextToSpeechClient(client_options=options)
            except google.auth.exceptions.DefaultCredentialsError as err:
                raise TTSError(f"no Google credentials for Cloud TTS (set GOOGLE_APPLICATION_CREDENTIALS "
                               f"or run `gcloud auth application-default login`): {err}", transient=False) from err
        return self._client

    def request(self, text: str) -> texttospeech.SynthesizeSpeechRequest:
        """The SynthesizeSpeech request for `text`; TTSError if it is over the API's input limit."""
        ssml = to_ssml(text)
        size = len(ssml.encode("utf-8"))
        if size > MAX_INPUT_BYTES:
            raise TTSError(f"text is {size} bytes as SSML; Cloud TTS takes at most {MAX_INPUT_BYTES}",
                           transient=False)
        return texttospeech.SynthesizeSpeechRequest(
            input=texttospeech.SynthesisInput(ssml=ssml),
            voice=texttospeech.VoiceSelectionParams(language_code=self.language_code, name=self.voice or ""),
            audio_config=texttospeech.AudioConfig(
                audio_encoding=texttospeech.AudioEncoding[ENCODINGS[self.extension]],
                speaking_rate=self.speaking_rate, pitch=self.pitch),
        )

    def _synthesize(self, text: str) -> bytes:
        request = self.request(text)
        bucket = (process_bucket("google-tts", self.requests_per_minute)
                  if self.requests_per_minute else None)

        def attempt():
            if bucket:
                bucket.acquire()
            content = self.client().synthesize_speech(request=request, timeout=self.request_timeout).audio_content
            check_audio(content, self.extension, transient=True)
            return content

        def transient(err: Exception) -> bool:
            return isinstance(err, TRANSIENT) or isinstance(err, TTSError) and err.transient

        policy = retry.Retry(predicate=transient, initial=self.retry_initial,
                             maximum=self.retry_maximum, multiplier=self.retry_multiplier,
                             timeout=self.retry_deadline)
        try:
            return policy(attempt)()
        except exceptions.RetryError as err:
            raise TTSError(f"Cloud TTS still failing after {self.retry_deadline:g} s of retries: {err.cause}",
                           transient=True) from err
        except exceptions.GoogleAPICallError as err:
            raise TTSError(f"Cloud TTS refused the request: {err}", transient=isinstance(err, TRANSIENT)) from err


def language_of(voice: str | None) -> str:
    """The language code a Cloud TTS voice name starts with ('en-US-Neural2-C' -> 'en-US')."""
    if not voice:
        return "en-US"
    parts = voice.split("-")
    if len(parts) < 3:
        raise ValueError(f"can't read a language code from voice {voice!r}: pass language_code")
    return "-".join(parts[:2])
