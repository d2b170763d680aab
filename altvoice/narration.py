"""A video's narration: each description spoken at its scene's start, fitted into the time it has.

Fitting, in order: a description that fits before the next one starts plays as it is; a longer
one is sped up, pitch kept (sox `tempo`), by at most MAX_SPEEDUP; what is still too long moves
the next description later (its `fit` says where it went), never cut. The last description is
sped up further, by at most MAX_END_SPEEDUP, to end with the video when it can (with half a second
left at least); else the narration runs on past the video's end.
"""
import bisect
import io
import subprocess
import wave

import numpy as np

MAX_SPEEDUP = 1.3
MAX_END_SPEEDUP = 2.0  # the last description, to end with the video
GAP_S = 0.25  # silence kept between two descriptions


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """(float32 mono samples in [-1, 1], sample rate) of a 16-bit PCM WAV."""
    with wave.open(io.BytesIO(data)) as audio:
        rate, channels = audio.getframerate(), audio.getnchannels()
        pcm = read_pcm(audio.readframes(audio.getnframes()))
    return (pcm.reshape(-1, channels).mean(axis=1) if channels > 1 else pcm), rate


def write_wav(samples: np.ndarray, rate: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(rate)
        audio.writeframes(_pcm(samples))
    return out.getvalue()


def speed_up(samples: np.ndarray, rate: int, factor: float) -> np.ndarray:
    """The samples `factor` times faster, pitch kept (sox's tempo effect)."""
    if factor <= 1.0001:
        return samples
    done = subprocess.run(["sox", "-t", "wav", "-", "-t", "wav", "-", "tempo", "-s", f"{factor:.4f}"],
                          input=write_wav(samples, rate), capture_output=True, check=True)
    return read_wav(done.stdout)[0]


def place(starts: list[float], lengths: list[float], total: float) -> list[tuple[float, float]]:
    """(offset, speed-up) of each description: spoken at its start, sped up to fit before the next
    start (at most MAX_SPEEDUP), else pushing the next later; the last ones fit the video's end."""
    placed, free = [], 0.0
    for index, (start, length) in enumerate(zip(starts, lengths)):
        offset = max(start, free)
        room = (starts[index + 1] if index + 1 < len(starts) else total) - offset - GAP_S
        speed = min(MAX_SPEEDUP, length / room) if room > 0 and length > room else 1.0
        placed.append((offset, max(1.0, speed)))
        free = offset + length / placed[-1][1] + GAP_S
    overrun = free - GAP_S - total
    if overrun > 0 and placed:  # the end: speed the last description up to end with the video
        offset, speed = placed[-1]
        if total - offset >= 0.5:
            placed[-1] = (offset, max(speed, min(MAX_END_SPEEDUP, lengths[-1] / (total - offset))))
    return placed


def write_narration(clips: list[str], starts: list[float], total: float, path: str) -> list[dict]:
    """Writes the narration WAV to `path` (the video's length at least, the voice's rate): each clip
    (a mono WAV file) placed and fitted; returns each clip's fit {"start", "end", "speed"}.
    Streamed: one clip in memory at a time, however long the video."""
    rate, lengths = 22050, []
    for clip in clips:
        with wave.open(clip) as audio:
            rate = audio.getframerate()
            lengths.append(audio.getnframes() / rate)
    fits, written = [], 0
    with wave.open(path, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        for clip, (offset, speed) in zip(clips, place(starts, lengths, total)):
            with open(clip, "rb") as f:
                samples = speed_up(read_wav(f.read())[0], rate, speed)
            first = max(written, int(round(offset * rate)))  # never over the one before
            _silence(out, first - written)
            out.writeframes(_pcm(samples))
            written = first + len(samples)
            fits.append({"start": round(first / rate, 3), "end": round(written / rate, 3), "speed": round(speed, 3)})
        _silence(out, int(round(total * rate)) + 1 - written)
    return fits


def _silence(out, count: int) -> None:
    for first in range(0, max(0, count), 1 << 20):
        out.writeframes(bytes(2 * min(1 << 20, count - first)))


def _pcm(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes()


DUCK = 0.25  # the original audio's gain (-12 dB) while a description plays
RAMP_S = 0.15  # how fast it ducks and comes back
CHUNK = 1024  # samples per audio frame of the description track


def ducking(times: np.ndarray, spans: list[tuple[float, float]]) -> np.ndarray:
    """The original audio's gain at `times` (sorted seconds): DUCK within a spoken span, 1 away from
    all, linear ramps of RAMP_S on either side."""
    depth = np.zeros(len(times), np.float32)  # float32 throughout: one chunk at a time, little memory
    if len(times):
        low = bisect.bisect_left([end for _, end in spans], times[0] - RAMP_S)
        for start, end in spans[low:]:
            if start - RAMP_S > times[-1]:
                break
            outside = np.maximum(start - times, times - end).clip(0)
            depth = np.maximum(depth, 1 - outside / RAMP_S)
    return 1 - (1 - DUCK) * depth.clip(0, 1)


class _Mixer:
    """The description track, made in order: the original audio (mono, the narration's rate) ducked
    under the narration WAV, which is read as it is needed; each piece handed to `say` in chunks."""

    def __init__(self, narration_path: str, spans: list[tuple[float, float]], say):
        self.narration = wave.open(narration_path)
        self.rate, self.spans, self.say, self.done = self.narration.getframerate(), spans, say, 0

    def mix(self, original: np.ndarray) -> None:
        for first in range(0, len(original), CHUNK):
            part = original[first:first + CHUNK]
            voice = read_pcm(self.narration.readframes(len(part)))
            spoken = np.zeros(len(part), np.float32)
            spoken[: len(voice)] = voice
            times = ((self.done + np.arange(len(part))) / self.rate).astype(np.float32)
            self.done += len(part)
            self.say(np.clip(part * ducking(times, self.spans) + spoken, -1, 1).astype(np.float32), self.done - len(part))

    def silence_until(self, seconds: float) -> None:
        """Silence (the narration alone) up to `seconds`, a chunk at a time."""
        while self.done < round(seconds * self.rate):
            self.mix(np.zeros(min(CHUNK, round(seconds * self.rate) - self.done), np.float32))

    def at(self, seconds: float, samples: np.ndarray) -> None:
        """Original audio that starts at `seconds`: after a gap, silence first; what overlaps what was
        already mixed (by more than 10 ms) is dropped."""
        position = round(seconds * self.rate)
        if position > self.done + self.rate // 100:
            self.silence_until(seconds)
        elif position < self.done - self.rate // 100:
            samples = samples[self.done - position:]
        self.mix(samples)

    def rest(self) -> None:
        """The narration left after the original audio ended."""
        self.silence_until(self.narration.getnframes() / self.rate)


def read_pcm(data: bytes) -> np.ndarray:
    """16-bit PCM bytes as float32 samples in [-1, 1]."""
    return np.frombuffer(data, np.int16).astype(np.float32) / 32768


def with_description_track(video, narration_path: str, spans: list[tuple[float, float]], out) -> None:
    """Writes to `out` an MP4 copy of `video` with one more audio stream, "Audio description" (AAC):
    its first audio ducked under the narration WAV while a span of `spans` is spoken, or the
    narration alone when the video has no sound; times count from the video's first frame. Video
    and audio streams are copied as they are; one MP4 can't carry (VP8, Theora, ...) is re-encoded
    (H.264, AAC). Other streams (subtitles, data) are not copied. Streamed, in one pass."""
    import av

    with av.open(video) as source, av.open(out, "w", format="mp4") as target:
        picture = source.streams.video[0]
        origin = float(picture.start_time * picture.time_base) if picture.start_time is not None else 0.0
        streams = [s for s in source.streams if s.type in ("video", "audio")]
        copied = {s.index: _output_stream(target, s) for s in streams}
        ducked = source.streams.audio[0].index if source.streams.audio else None
        with wave.open(narration_path) as narration:
            rate = narration.getframerate()
        described = target.add_stream("aac", layout="mono", rate=rate)
        described.metadata["title"] = "Audio description"
        described.metadata["language"] = "eng"
        described.disposition = av.stream.Disposition.visual_impaired | av.stream.Disposition.descriptions

        def say(samples, first):
            frame = av.AudioFrame.from_ndarray(samples[None].copy(), format="flt", layout="mono")
            frame.sample_rate, frame.pts = rate, round(origin * rate) + first
            for packet in described.encode(frame):
                target.mux(packet)

        mixer = _Mixer(narration_path, spans, say)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        timing = _Timing(target)
        for packet in source.demux(*streams):
            if not packet.size:
                continue
            output, reencoder = copied[packet.stream.index]
            frames = packet.decode() if reencoder or packet.stream.index == ducked else []
            if packet.stream.index == ducked:
                for frame in frames:
                    if frame.time is not None:
                        mixer.at(frame.time - origin, _mono(resampler, [frame]))
            elif ducked is None and packet.stream.type == "video" and packet.pts is not None:
                mixer.silence_until(float(packet.pts * packet.time_base) - origin)  # no sound: the narration, in time
            if reencoder:
                for frame in frames:
                    target.mux(output.encode(frame))
            else:
                timing.mux(packet, output)
        timing.flush()
        if ducked is not None:
            mixer.mix(_mono(resampler, [None]))
        mixer.rest()
        mixer.narration.close()
        for output, reencoder in copied.values():
            if reencoder:
                target.mux(output.encode())
        target.mux(described.encode())


class _Timing:
    """Muxes copied packets, giving those a demuxer left without a decode time (Matroska's first
    ones, with B-frames) one between the times around them, as MP4 needs. A stream with more than
    MAX_UNTIMED of them in a row can't be copied (ValueError): never a silently damaged copy."""

    MAX_UNTIMED = 32

    def __init__(self, target):
        self.target, self.pending, self.last = target, {}, {}

    def mux(self, packet, output) -> None:
        packet.stream = output
        waiting = self.pending.setdefault(output.index, [])
        if packet.dts is None:
            if len(waiting) >= self.MAX_UNTIMED:
                raise ValueError(f"stream {output.index}: packets without decode times; it can't be copied to MP4")
            waiting.append(packet)
            return
        if waiting:
            step = packet.duration or 1
            before = self.last.get(output.index, packet.dts - (len(waiting) + 1) * step)
            for number, held in enumerate(waiting, 1):
                held.dts = before + (packet.dts - before) * number // (len(waiting) + 1)
                self.target.mux(held)
            waiting.clear()
        self.last[output.index] = packet.dts
        self.target.mux(packet)

    def flush(self) -> None:
        """Packets still without a time at the end: after the last one, a tick apart, in order."""
        for index, waiting in self.pending.items():
            for held in waiting:
                held.dts = self.last[index] = self.last.get(index, (held.pts or 0) - len(waiting)) + 1
                if held.pts is not None and held.pts < held.dts:
                    raise ValueError(f"stream {index}: packets without decode times at its end; it can't be "
                                     "copied to MP4")
                self.target.mux(held)


def _mono(resampler, frames) -> np.ndarray:
    parts = [f.to_ndarray().reshape(-1) for frame in frames for f in resampler.resample(frame)]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def _output_stream(target, stream):
    """(output stream, whether it is re-encoded): a copy of `stream` when the MP4 can carry its codec,
    else an H.264 or AAC encoder in its place."""
    if stream.codec_context.name in target.supported_codecs:
        return target.add_stream_from_template(stream), False
    if stream.type == "video":
        output = target.add_stream("libx264", rate=stream.average_rate or 25)
        output.width, output.height, output.pix_fmt = stream.codec_context.width, stream.codec_context.height, "yuv420p"
        output.time_base = stream.time_base
    else:
        output = target.add_stream("aac", rate=stream.codec_context.sample_rate or 48000)
    return output, True
