"""WAV assembly and conversion of WAV to mp3/ogg with sox or ffmpeg, whichever can encode the format."""
import functools
import io
import shutil
import struct
import subprocess
import wave

from altvoice.tts.base import TTSError

FFMPEG_ARGS = {"mp3": ["-f", "mp3", "-codec:a", "libmp3lame"], "ogg": ["-f", "ogg", "-codec:a", "libvorbis"]}
INSTALL_HINT = "install sox with its mp3 handler (apt-get install sox libsox-fmt-mp3) or ffmpeg"


def pcm_to_wav(pcm: bytes, sample_rate: int, channels: int = 1, sample_width: int = 2) -> bytes:
    """Raw little-endian PCM samples as a WAV file."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(sample_width)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return buffer.getvalue()


def repair_wav(data: bytes) -> bytes:
    """A streamed WAV (as `espeak-ng --stdout` writes, with placeholder sizes) with true chunk sizes."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise TTSError("the synthesizer produced no WAV audio", transient=False)
    offset, fmt = 12, None
    while offset + 8 <= len(data):
        chunk, size = struct.unpack_from("<4sI", data, offset)
        body = offset + 8
        if chunk == b"fmt ":
            fmt = struct.unpack_from("<HHIIHH", data, body)  # encoding, channels, rate, -, -, bits
        elif chunk == b"data" and fmt and fmt[0] == 1:  # integer PCM
            channels, rate, width = fmt[1], fmt[2], fmt[5] // 8
            pcm = data[body : body + size]  # a placeholder size runs to the end of the stream
            return pcm_to_wav(pcm[: len(pcm) - len(pcm) % (width * channels)], rate, channels, width)
        offset = body + size + size % 2
    raise TTSError("the synthesizer's WAV has no PCM fmt/data chunks", transient=False)


def encode(wav: bytes, audio_format: str) -> bytes:
    """The WAV file as `audio_format` ('wav', 'mp3' or 'ogg')."""
    if audio_format == "wav":
        return wav
    command = converter_command(audio_format)
    result = subprocess.run(command, input=wav, capture_output=True, check=False)
    if result.returncode != 0 or not result.stdout:
        raise TTSError(f"{command[0]} could not encode {audio_format}: "
                       f"{result.stderr.decode(errors='replace').strip()}", transient=False)
    return result.stdout


@functools.cache
def converter_command(audio_format: str) -> tuple[str, ...]:
    """sox when it has a handler for the format, else ffmpeg; both read WAV on stdin, write stdout."""
    if sox_formats() and audio_format in sox_formats():
        return ("sox", "-q", "-t", "wav", "-", "-t", audio_format, "-")
    if shutil.which("ffmpeg"):
        return ("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "wav", "-i", "pipe:0",
                *FFMPEG_ARGS[audio_format], "pipe:1")
    raise TTSError(f"no converter to {audio_format} on this machine: {INSTALL_HINT}", transient=False)


@functools.cache
def sox_formats() -> frozenset:
    """The file formats the installed sox reads and writes (empty without sox)."""
    if not shutil.which("sox"):
        return frozenset()
    help_text = subprocess.run(["sox", "--help"], capture_output=True, text=True, check=False).stdout
    for line in help_text.splitlines():
        if line.startswith("AUDIO FILE FORMATS:"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()
