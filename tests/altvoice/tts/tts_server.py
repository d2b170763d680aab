"""A local, plain-text gRPC server for google.cloud.texttospeech.v1.TextToSpeech/SynthesizeSpeech.

It records every request and answers from a script: each queued gRPC status code fails one call and
each queued bytes object is answered in place of the audio, then calls succeed with a small audio file
in the requested encoding. For tests and offline demos:

    python tests/altvoice/tts/tts_server.py --port 50051
    # then: get_synthesizer("google", endpoint="localhost:50051", insecure=True)
"""
import argparse
import io
import math
import struct
import threading
import time
import wave
from concurrent import futures

import grpc
from google.cloud import texttospeech

SERVICE = "google.cloud.texttospeech.v1.TextToSpeech"
MP3_FRAME = b"\xff\xf3\x40\xc4" + bytes(140)  # one MPEG-2 layer III frame header plus padding
# One Ogg page: version 0, first and last page, granule 12000, serial 1, sequence 0, CRC 0 (unchecked),
# one 19-byte segment (an OpusHead-sized packet).
OGG_PAGE = b"OggS" + struct.pack("<BBqIIIB", 0, 6, 12000, 1, 0, 0, 1) + bytes([19]) + b"OpusHead" + bytes(11)


def tone_wav(seconds: float = 0.5, rate: int = 24000) -> bytes:
    """A 440 Hz tone as a 16-bit mono WAV, as LINEAR16 answers come (with a WAV header)."""
    samples = [int(8000 * math.sin(2 * math.pi * 440 * n / rate)) for n in range(int(seconds * rate))]
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    return buffer.getvalue()


AUDIO = {"LINEAR16": tone_wav(), "MP3": MP3_FRAME, "OGG_OPUS": OGG_PAGE}


class LocalTextToSpeechServer:
    """The server: `requests` holds (monotonic time, SynthesizeSpeechRequest) for every call."""

    def __init__(self, port: int = 0):
        self.requests = []
        self.failures = []  # per call, in order: a grpc.StatusCode to fail it, or bytes to answer it with
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handler = grpc.unary_unary_rpc_method_handler(
            self._synthesize,
            request_deserializer=texttospeech.SynthesizeSpeechRequest.deserialize,
            response_serializer=texttospeech.SynthesizeSpeechResponse.serialize,
        )
        self._server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(SERVICE, {"SynthesizeSpeech": handler})])
        self.port = self._server.add_insecure_port(f"127.0.0.1:{port}")
        self.endpoint = f"127.0.0.1:{self.port}"

    def fail_next(self, *codes: grpc.StatusCode):
        """Fail the next calls with these status codes, one each."""
        with self._lock:
            self.failures.extend(codes)

    def answer_next(self, *contents: bytes):
        """Answer the next calls, after those already scripted, with these bytes as audio_content, one each."""
        with self._lock:
            self.failures.extend(contents)

    def _synthesize(self, request, context):
        with self._lock:
            self.requests.append((time.monotonic(), request))
            failure = self.failures.pop(0) if self.failures else None
        if isinstance(failure, bytes):
            return texttospeech.SynthesizeSpeechResponse(audio_content=failure)
        if failure is not None:
            context.abort(failure, f"scripted {failure.name}")
        encoding = texttospeech.AudioEncoding(request.audio_config.audio_encoding).name
        if encoding not in AUDIO:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unsupported encoding {encoding}")
        return texttospeech.SynthesizeSpeechResponse(audio_content=AUDIO[encoding])

    def start(self) -> "LocalTextToSpeechServer":
        self._server.start()
        return self

    def stop(self):
        self._server.stop(grace=None)

    def wait(self):
        self._server.wait_for_termination()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=50051)
    server = LocalTextToSpeechServer(parser.parse_args().port).start()
    print(f"serving {SERVICE} on {server.endpoint}", flush=True)
    server.wait()
