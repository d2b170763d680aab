"""Video for audio description (PyAV): the shots of a video and a keyframe for each.

Shots are found on samples: the first frame of every SAMPLE_S seconds (a fixed grid, so a video
cut into time ranges gives the same samples). The distance between consecutive samples' colour
histograms (16 bins per RGB channel, each normalised; half the L1 distance, so 0 = same colours,
1 = none shared) above CUT_THRESHOLD is a cut. Scenes shorter than MIN_SCENE_S are merged into the
scene before them (too short to say anything in). Each scene's keyframe is the kept sample nearest
its middle (samples are thinned on the grid, every 2nd, 4th, ... slot, to at most KEPT_SAMPLES).

Long videos are scanned in time ranges, each on its own (`scan_range`, seeking to PREROLL_S before
its start for the sample to compare its first one with); `plan` joins the ranges' segments into
scenes (a range with no sample in its pre-roll hands over its first sample's histogram, and the
range before its last one's, so a cut on the edge is still found). A range offers one keyframe
candidate for a segment it holds whole, and up to EDGE_CANDIDATES for one that may go on into the
next range: a scene that spans ranges gets the candidate nearest its middle, which may differ from
one scan's choice by a few samples. At most KEPT_SAMPLES small images are held while scanning, so
memory stays flat however long a video or a scene is.
"""
import io
import math
from typing import NamedTuple

import numpy as np
from PIL import Image

SAMPLE_S = 0.25
CUT_THRESHOLD = 0.35
MIN_SCENE_S = 1.5
KEPT_SAMPLES = 64
EDGE_CANDIDATES = 16
RANGE_S = 120.0  # seconds of video a range scan covers (a multiple of SAMPLE_S)
PREROLL_S = 1.0
KEYFRAME_SIZE = 320  # pixels, longer side: enough for the captioner's 160 and the classifier's 224
MAX_PIXELS = 8192 * 8192  # a frame larger than this is refused before decoding
MAX_SECONDS = 6 * 3600  # a longer video is refused (a 10-hour silent header, say) before decoding


class VideoError(ValueError):
    """A video that can't be described; `kind` to count by."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind


class Segment(NamedTuple):
    start: float
    end: float
    cut: bool  # it starts at a cut or the video's start; else it goes on from the range before
    candidates: tuple  # keyframe times offered for it
    first_histogram: tuple | None = None  # its first sample's, when its range had none before it to compare
    last_histogram: tuple | None = None  # its last sample's, on a range's last segment


class Scene(NamedTuple):
    start: float
    end: float
    keyframe_time: float


class VideoInfo(NamedTuple):
    duration: float  # seconds from the first frame to the end
    width: int
    height: int
    fps: float
    has_audio: bool
    origin: float = 0.0  # the video stream's start time: every time here counts from it
    last_frame: float | None = None  # the last frame's time, when probe could find it


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

    if hasattr(file, "seek"):
        file.seek(0)
    try:
        container = av.open(file, metadata_errors="ignore")
    except (av.error.FFmpegError, ValueError, OSError) as err:
        reason = getattr(err, "strerror", None) or str(err)  # FFmpeg's words, without the file's path
        raise VideoError("unreadable_video", f"not a video PyAV can open: {reason}") from None
    if not container.streams.video:
        container.close()
        raise VideoError("no_video_stream", "no video stream (audio only?)")
    stream = container.streams.video[0]
    if stream.codec_context is None:  # a codec FFmpeg does not know
        container.close()
        raise VideoError("unsupported_codec", "its video codec is one FFmpeg cannot decode")
    origin = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    duration = float(container.duration / 1e6) if container.duration else (
        float(stream.duration * stream.time_base) if stream.duration else 0.0)
    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > MAX_PIXELS:
        container.close()
        raise VideoError("too_large", f"frames of {width}x{height} pixels: more than {MAX_PIXELS:,}")
    _check_length(duration, container)
    info = VideoInfo(duration, width, height, float(stream.average_rate or 0), bool(container.streams.audio), origin)
    return container, info


def _check_length(seconds: float, container=None) -> None:
    if seconds > MAX_SECONDS:
        if container is not None:
            container.close()
        raise VideoError("too_long", f"{seconds:.0f} s long: more than {MAX_SECONDS} s")


def probe(file) -> VideoInfo:
    """The video's VideoInfo, without decoding it (but its last GOP: the header's duration may be
    missing, or count from another origin); VideoError if it can't be described."""
    import av

    container, info = open_video(file)
    with container:
        stream = container.streams.video[0]
        try:
            container.seek(2 ** 62, stream=stream, backward=True)  # to the last keyframe
            times = [_time(frame, info.origin) for frame in container.decode(stream) if frame.pts is not None]
        except av.error.FFmpegError:
            times = []
    if not times:  # a file that can't seek to its end: the header's word
        return info
    step = 1 / info.fps if info.fps else 0.0
    duration = round(max(times) + step, 3)  # the video's own end (sound may run longer; headers may count
    _check_length(duration)                 # from another origin)
    return info._replace(duration=duration, last_frame=round(max(times), 3))


def _time(frame, origin: float) -> float:
    return float(frame.pts * frame.time_base) - origin


def time_ranges(duration: float, length: float = RANGE_S) -> list[tuple[float, float]]:
    """[start, end) spans covering a video of `duration` seconds; the last runs to the end."""
    step = max(SAMPLE_S, round(length / SAMPLE_S) * SAMPLE_S)
    count = max(1, math.ceil(duration / step))
    return [(i * step, (i + 1) * step if i + 1 < count else math.inf) for i in range(count)]


def _sample(frame) -> Image.Image:
    """A frame as kept: RGB, rotation applied, at most KEYFRAME_SIZE a side (scaled by FFmpeg)."""
    scale = min(1.0, KEYFRAME_SIZE / max(frame.width, frame.height))
    rgb = frame.to_ndarray(format="rgb24", width=max(1, round(frame.width * scale)),
                           height=max(1, round(frame.height * scale)))
    turns = round((getattr(frame, "rotation", 0) or 0) / 90) % 4
    return Image.fromarray(np.rot90(rgb, turns).copy() if turns else rgb)


def _jpeg(image: Image.Image) -> bytes:
    """A keyframe candidate as it travels: JPEG at quality 92 (on the benchmark video, 17 KiB at 320 px, a fifth
    of PNG's bytes, and 50 times faster to encode)."""
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92)
    return out.getvalue()


def scan_range(file, start: float = 0.0, end: float = math.inf,
               last_frame: float | None = None) -> tuple[list[Segment], dict, bool]:
    """The segments of [start, end) of a video (seconds from its first frame), {keyframe time: JPEG}
    of their candidates, and whether decoding broke off: an FFmpeg error, or decoding ending more
    than a second before `last_frame` (where probe found the last frame)."""
    import av

    container, info = open_video(file)
    segments, images, kept, stride = [], {}, [], 1
    previous, slot, last, opening, cut, first, broken = None, None, None, start, start == 0, None, False
    reached = False

    def close(until: float, complete: bool, last_histogram=None):
        begin, until = round(opening, 3), round(until, 3)
        offered = [min(kept, key=lambda s: (abs(s[1] - (begin + until) / 2), s[1]))] if complete else \
            kept[:: math.ceil(len(kept) / EDGE_CANDIDATES)]
        images.update((round(t, 3), _jpeg(image)) for _, t, image in offered)
        segments.append(Segment(begin, until, cut, tuple(round(t, 3) for _, t, _ in offered),
                                first if not segments else None, last_histogram))

    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if start > 0:
            container.seek(int((info.origin + max(0.0, start - PREROLL_S)) / stream.time_base), stream=stream)
        try:
            for frame in container.decode(stream):
                t = _time(frame, info.origin) if frame.pts is not None else None
                if t is not None and t >= end:
                    reached = True
                    break
                if t is None or int(t // SAMPLE_S) == slot or t < start - PREROLL_S:  # not a sample we need
                    continue
                _check_length(t)
                slot, image = int(t // SAMPLE_S), _sample(frame)
                current = histogram(np.asarray(image))
                if t >= start:
                    if previous is None and start > 0 and first is None:
                        first, opening = tuple(current), t  # no sample before it here: PlanScenes compares
                    elif previous is not None and distance(previous, current) > CUT_THRESHOLD:
                        if kept:
                            close(t, complete=cut)
                        opening, cut, kept, stride = t, True, [], 1
                    last = t
                    if slot % stride == 0:  # thinned on the fixed grid: every range length keeps the same ones
                        kept.append((slot, t, image))
                    if len(kept) > KEPT_SAMPLES:
                        stride *= 2
                        kept = [sample for sample in kept if sample[0] % stride == 0]
                previous = current
        except av.error.FFmpegError as err:
            if start == 0 and not kept and not segments:
                raise VideoError("undecodable_video", f"no frame could be decoded: {err.strerror or err}") from None
            broken = True
    if not reached and last_frame is not None and (last if last is not None else start) < min(end, last_frame) - 1.0:
        broken = True  # the file ended (or FFmpeg stopped reading it) before its last frame
    if kept:
        step = 1 / info.fps if info.fps else 0.0
        until = end if math.isfinite(end) and not broken else max(last + step, opening)
        close(until, complete=False, last_histogram=tuple(previous))
    elif start == 0 and not segments:
        raise VideoError("no_frames", "the video stream holds no frame")
    return segments, images, broken


def plan(segments: list[Segment], duration: float) -> list[Scene]:
    """The scenes of a video from its ranges' segments: a segment that goes on from the range before
    joins the scene before (unless its first sample differs from that range's last as a cut does);
    each scene's keyframe is its candidate nearest its middle; short scenes merged (merge_short).
    The last scene ends with the video."""
    found, before = [], None  # [start, end, candidates]; the last sample's histogram of the range before
    for segment in sorted(segments, key=lambda s: s.start):
        goes_on = not segment.cut and not (segment.first_histogram and before and distance(
            np.asarray(segment.first_histogram), np.asarray(before)) > CUT_THRESHOLD)
        if found and goes_on:
            found[-1][1] = segment.end
            found[-1][2] += segment.candidates
        else:
            if found:
                found[-1][1] = segment.start
            found.append([segment.start, segment.end, list(segment.candidates)])
        before = segment.last_histogram or before
    if found:
        found[-1][1] = max(found[-1][1], round(duration, 3))
    return merge_short([Scene(start, end, min(offered, key=lambda t: (abs(t - (start + end) / 2), t)))
                        for start, end, offered in found])


def scenes(file, range_seconds: float = RANGE_S) -> tuple[VideoInfo, list[Scene], dict]:
    """A video's info, its scenes and {keyframe time: JPEG} of their keyframes, range by range in
    this process (the describe-video job scans the ranges in parallel)."""
    info = probe(file)
    segments, images = [], {}
    for start, end in time_ranges(info.duration, range_seconds):
        found, offered, _ = scan_range(file, start, end, info.last_frame)
        segments += found
        images.update(offered)
    found = plan(segments, info.duration)
    return info._replace(duration=found[-1].end), found, {s.keyframe_time: images[s.keyframe_time] for s in found}


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
