"""Video for audio description (PyAV): the shots of a video and a keyframe for each.

Shots are found on frames sampled every SAMPLE_S seconds: the distance between consecutive
samples' colour histograms (16 bins per RGB channel, each normalised; half the L1 distance, so
0 = same colours, 1 = none shared) above CUT_THRESHOLD is a cut. Scenes shorter than MIN_SCENE_S
are merged into the scene before them (too short to say anything in). Each scene's keyframe is
the sample nearest its middle, kept from at most KEPT_SAMPLES of it (memory stays flat however
long a scene is).
"""
import io
from typing import NamedTuple

import numpy as np
from PIL import Image

SAMPLE_S = 0.25
CUT_THRESHOLD = 0.35
MIN_SCENE_S = 1.5
KEPT_SAMPLES = 64
KEYFRAME_SIZE = 320  # pixels, longer side: enough for the captioner's 160 and the classifier's 224
MAX_PIXELS = 8192 * 8192  # a frame larger than this is refused before decoding
MAX_SECONDS = 6 * 3600  # a longer video is refused (a 10-hour silent header, say) before decoding


class VideoError(ValueError):
    """A video that can't be described; `kind` to count by."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind


class Scene(NamedTuple):
    start: float
    end: float
    keyframe_time: float
    keyframe: bytes  # PNG


class VideoInfo(NamedTuple):
    duration: float
    width: int
    height: int
    fps: float
    has_audio: bool


def histogram(rgb: np.ndarray) -> np.ndarray:
    """48 numbers: a 16-bin histogram per channel, each summing to 1."""
    small = rgb[:: max(1, rgb.shape[0] // 64), :: max(1, rgb.shape[1] // 64)]
    bins = (small.reshape(-1, 3) // 16).astype(np.int64)
    return np.concatenate([np.bincount(bins[:, c], minlength=16) / len(bins) for c in range(3)])


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).sum() / 6)  # three channels, each at most 2 apart


def open_video(file):
    """A PyAV container with a video stream, and its VideoInfo; VideoError otherwise."""
    import av

    try:
        container = av.open(file, metadata_errors="ignore")
    except (av.error.FFmpegError, ValueError, OSError) as err:
        reason = getattr(err, "strerror", None) or str(err)  # FFmpeg's words, without the file's path
        raise VideoError("unreadable_video", f"not a video PyAV can open: {reason}") from None
    if not container.streams.video:
        container.close()
        raise VideoError("no_video_stream", "no video stream (audio only?)")
    stream = container.streams.video[0]
    duration = float(container.duration / 1e6) if container.duration else (
        float(stream.duration * stream.time_base) if stream.duration else 0.0)
    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > MAX_PIXELS:
        container.close()
        raise VideoError("too_large", f"frames of {width}x{height} pixels: more than {MAX_PIXELS:,}")
    if duration > MAX_SECONDS:
        container.close()
        raise VideoError("too_long", f"{duration:.0f} s long: more than {MAX_SECONDS} s")
    info = VideoInfo(duration, width, height, float(stream.average_rate or 0), bool(container.streams.audio))
    return container, info


def _rgb(frame) -> np.ndarray:
    rgb = frame.to_ndarray(format="rgb24")
    turns = round((getattr(frame, "rotation", 0) or 0) / 90) % 4
    return np.rot90(rgb, turns).copy() if turns else rgb


def _small(rgb: np.ndarray) -> Image.Image:
    """A sample as kept: at most KEYFRAME_SIZE a side (64 of them stay small however big the video)."""
    image = Image.fromarray(rgb)
    image.thumbnail((KEYFRAME_SIZE, KEYFRAME_SIZE))
    return image


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def scenes(file) -> tuple[VideoInfo, list[Scene]]:
    """The video's info and its scenes, from one decoding pass; VideoError if it can't be read."""
    import av

    container, info = open_video(file)
    cuts, kept, found, last, previous, end = [], [], [], None, None, 0.0
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * frame.time_base)
                end = max(end, t)
                if last is not None and t - last < SAMPLE_S:
                    continue
                last, rgb = t, _rgb(frame)
                current = histogram(rgb)
                if previous is not None and distance(previous, current) > CUT_THRESHOLD:
                    found.append(_close(cuts[-1] if cuts else 0.0, t, kept))
                    cuts.append(t)
                    kept = []
                previous = current
                kept.append((t, _small(rgb)))
                if len(kept) > KEPT_SAMPLES:
                    kept = kept[::2]
        except av.error.FFmpegError as err:
            if not found and not kept:
                raise VideoError("undecodable_video", f"no frame could be decoded: {err}") from None
    if not kept and not found:
        raise VideoError("no_frames", "the video stream holds no frame")
    duration = max(info.duration, end)
    found.append(_close(cuts[-1] if cuts else 0.0, duration, kept))
    return info._replace(duration=duration), merge_short(found)


def _close(start: float, end: float, kept: list) -> Scene:
    middle = (start + end) / 2
    t, image = min(kept, key=lambda sample: abs(sample[0] - middle))
    return Scene(round(start, 3), round(end, 3), round(t, 3), _png(image))


def merge_short(found: list[Scene], minimum: float = MIN_SCENE_S) -> list[Scene]:
    """Scenes shorter than `minimum` joined to the one before (the first to the one after)."""
    merged = []
    for scene in found:
        if merged and scene.end - scene.start < minimum:
            merged[-1] = merged[-1]._replace(end=scene.end)
        elif merged and merged[-1].end - merged[-1].start < minimum:
            merged[-1] = scene._replace(start=merged[-1].start)
        else:
            merged.append(scene)
    return merged
