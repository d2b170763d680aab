"""A video's narration: each description spoken at its scene's start, fitted into the time it has.

Fitting, in order: a description that fits before the next one starts plays as it is; a longer
one is sped up, pitch kept (sox `tempo`), by at most MAX_SPEEDUP; what is still too long moves
the next description later (its `fit` says where it went), never cut. The last description is
sped up further to end with the video when it can (with half a second left at least); else the
narration runs on past the video's end.
"""
import io
import subprocess
import wave

import numpy as np

MAX_SPEEDUP = 1.3
GAP_S = 0.25  # silence kept between two descriptions


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """(float32 mono samples in [-1, 1], sample rate) of a 16-bit PCM WAV."""
    with wave.open(io.BytesIO(data)) as audio:
        rate, channels = audio.getframerate(), audio.getnchannels()
        pcm = np.frombuffer(audio.readframes(audio.getnframes()), np.int16).astype(np.float32) / 32768
    return (pcm.reshape(-1, channels).mean(axis=1) if channels > 1 else pcm), rate


def write_wav(samples: np.ndarray, rate: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(rate)
        audio.writeframes((np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes())
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
        room = max(total - offset, 0.5)
        placed[-1] = (offset, max(speed, lengths[-1] / room))
    return placed


def narration(clips: list[tuple[np.ndarray, int]], starts: list[float], total: float) -> tuple[bytes, list[dict]]:
    """The narration WAV (the video's length, the voice's rate) and each clip's fit:
    {"start", "end", "speed"} as placed."""
    rate = clips[0][1] if clips else 22050
    placed = place(starts, [len(s) / r for s, r in clips], total)
    fast = [speed_up(samples, rate, speed) for (samples, _), (_, speed) in zip(clips, placed)]
    ends = [offset + len(f) / rate for f, (offset, _) in zip(fast, placed)]
    track = np.zeros(int(round(max([total, *ends]) * rate)) + 1, np.float32)  # never cut
    fits = []
    for samples, (offset, speed), end in zip(fast, placed, ends):
        first = int(round(offset * rate))
        track[first:first + len(samples)] += samples
        fits.append({"start": round(offset, 3), "end": round(end, 3), "speed": round(speed, 3)})
    return write_wav(track, rate), fits


DUCK = 0.25  # the original audio's gain (-12 dB) while a description plays
RAMP_S = 0.15  # how fast it ducks and comes back


def ducked_mix(original: np.ndarray, spoken: np.ndarray, rate: int) -> np.ndarray:
    """The original audio lowered to DUCK while the narration speaks (with RAMP_S ramps), plus the
    narration; both mono float at `rate`, the result as long as the longer."""
    length = max(len(original), len(spoken))
    base, voice = np.zeros(length, np.float32), np.zeros(length, np.float32)
    base[: len(original)], voice[: len(spoken)] = original, spoken
    window = max(1, int(RAMP_S * rate))
    speaking = np.convolve((np.abs(voice) > 1e-3).astype(np.float32), np.ones(2 * window), "same") > 0
    gain = np.where(speaking, DUCK, 1.0).astype(np.float32)
    gain = np.convolve(gain, np.ones(window) / window, "same").astype(np.float32)  # ramps, not clicks
    return np.clip(base * gain + voice, -1, 1)


def with_description_track(video, narration_wav: bytes, out) -> None:
    """Writes to `out` an MP4 copy of `video` (its video and audio streams copied, not re-encoded)
    with one more audio stream, "Audio description": its first audio ducked under the narration
    (the narration alone when the video has no sound), AAC."""
    import av

    spoken, rate = read_wav(narration_wav)
    original = np.zeros(0, np.float32)
    with av.open(video) as source:
        if source.streams.audio:
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            parts = [frame.to_ndarray().reshape(-1) for decoded in source.decode(source.streams.audio[0])
                     for frame in resampler.resample(decoded)]
            parts += [frame.to_ndarray().reshape(-1) for frame in resampler.resample(None)]
            original = np.concatenate(parts) if parts else original
    mixed = ducked_mix(original, spoken, rate)
    if hasattr(video, "seek"):
        video.seek(0)
    with av.open(video) as source, av.open(out, "w", format="mp4") as target:
        copied = {s.index: target.add_stream_from_template(s) for s in source.streams if s.type in ("video", "audio")}
        described = target.add_stream("aac", rate=rate, layout="mono")
        described.metadata["title"] = "Audio description"
        described.metadata["language"] = "eng"
        for packet in source.demux(*[s for s in source.streams if s.index in copied]):
            if packet.dts is None:
                continue
            packet.stream = copied[packet.stream.index]
            target.mux(packet)
        for start in range(0, len(mixed), 1024):
            frame = av.AudioFrame.from_ndarray(mixed[None, start:start + 1024].copy(), format="flt", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            for packet in described.encode(frame):
                target.mux(packet)
        for packet in described.encode():
            target.mux(packet)
