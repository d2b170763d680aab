"""WAV assembly, conversion of WAV to mp3/ogg with sox or ffmpeg (whichever can encode the format), and
a check that bytes are a whole audio file before anyone saves them."""
import functools
import io
import shutil
import struct
import subprocess
import wave

from altvoice.tts.base import TTSError

FFMPEG_ARGS = {"mp3": ["-f", "mp3", "-codec:a", "libmp3lame"], "ogg": ["-f", "ogg", "-codec:a", "libvorbis"]}
INSTALL_HINT = "install sox with its mp3 handler (apt-get install sox libsox-fmt-mp3) or ffmpeg"
MP3_KBPS = {True: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG-1 layer III
            False: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)}  # MPEG-2 and 2.5
MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}  # by version bits


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


def check_audio(data: bytes, audio_format: str, transient: bool = False) -> None:
    """TTSError unless `data` is an `audio_format` file with sound in it: a WAV with a PCM fmt chunk and
    at least one whole sample frame of data; an mp3 whose first layer III frame (after any ID3 tag) is
    whole; an Ogg stream of whole pages with a payload and a granule position past 0."""
    problem = {"wav": wav_problem, "mp3": mp3_problem, "ogg": ogg_problem}[audio_format](data)
    if problem:
        raise TTSError(f"the synthesizer gave {len(data)} bytes that are not {audio_format} audio: {problem}",
                       transient=transient)


def wav_problem(data: bytes) -> str | None:
    """What makes `data` no PCM WAV with a non-zero duration, or None."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return "no RIFF/WAVE header"
    offset, frame = 12, 0
    while offset + 8 <= len(data):
        chunk, size = struct.unpack_from("<4sI", data, offset)
        if chunk == b"fmt " and offset + 24 <= len(data):
            encoding, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, offset + 8)
            if encoding != 1 or not channels or not rate or bits < 8:
                return f"fmt chunk is not PCM (encoding {encoding}, {channels} channels, {rate} Hz, {bits} bits)"
            frame = channels * bits // 8
        elif chunk == b"data":  # a streamed WAV's placeholder size may run past the end: count what is there
            if not frame:
                return "no PCM fmt chunk before the data chunk"
            return None if min(size, len(data) - offset - 8) >= frame else "no whole sample frame of data"
        offset += 8 + size + size % 2
    return "no data chunk"


def mp3_problem(data: bytes) -> str | None:
    """What makes `data` no mp3 starting with a whole MPEG layer III frame, or None."""
    offset = 0
    if data[:3] == b"ID3" and len(data) >= 10:  # ID3v2: a 10-byte header, a syncsafe size, maybe a footer
        size = sum((b & 0x7F) << 7 * (3 - i) for i, b in enumerate(data[6:10]))
        offset = 10 + size + (10 if data[5] & 0x10 else 0)
    header = data[offset : offset + 4]
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return f"no MPEG frame sync at byte {offset}"
    version, layer = header[1] >> 3 & 3, header[1] >> 1 & 3  # version 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
    kbps, rate, padding = header[2] >> 4, header[2] >> 2 & 3, header[2] >> 1 & 1
    if version == 1 or layer != 1 or kbps in (0, 15) or rate == 3:
        return f"frame header {header.hex()} is not MPEG layer III"
    bits_per_second = MP3_KBPS[version == 3][kbps] * 1000
    length = (144 if version == 3 else 72) * bits_per_second // MP3_RATES[version][rate] + padding
    return None if offset + length <= len(data) else f"the first frame ({length} bytes at byte {offset}) is cut short"


def ogg_problem(data: bytes) -> str | None:
    """What makes `data` no Ogg stream of whole pages with some audio, or None."""
    if not data.startswith(b"OggS"):
        return "no OggS page"
    offset, payload, granule = 0, 0, 0
    while offset < len(data):
        if data[offset : offset + 4] != b"OggS" or offset + 27 > len(data):
            return f"no whole Ogg page at byte {offset}"
        body = offset + 27 + data[offset + 26]
        size = sum(data[offset + 27 : body])
        if body + size > len(data):
            return f"the Ogg page at byte {offset} is cut short"
        granule = max(granule, struct.unpack_from("<q", data, offset + 6)[0])  # -1: no packet ends here
        payload, offset = payload + size, body + size
    return None if payload and granule > 0 else "Ogg pages without audio (no payload, or granule position 0)"
