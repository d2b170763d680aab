"""describe-video's inputs: listing videos (folders, globs, buckets, archives; up-to-date ones
skipped), cutting each into time ranges, scanning the ranges for shots and planning each video's
scenes and keyframes (altvoice.video does the decoding)."""
import posixpath

import apache_beam as beam
import fsspec

from altvoice import progress
from altvoice.errors import tagged_error
from altvoice.names import described, to_os, to_wire
from altvoice.outputs import exists, same_source
from altvoice.pipelines.read_images import SKIPPED
from altvoice.pipelines.video_outputs import DESCRIBED_SUFFIX, SCENES_SUFFIX, read_scenes
from altvoice.sources import (UnsafePath, archive_kind, file_stamp, hidden, is_glob, is_local, open_source,
                              safe_relpath, source_root)
from altvoice.video import VideoError, plan, probe, scan_range, time_ranges

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi")


class ListVideos(beam.DoFn):
    """A folder, glob, bucket or archive URL -> (relative path in wire form, what open_source opens,
    source stamp) of every video in it; never the job's own described copies, nor anything in the
    output folder when it lies inside. Videos whose outputs are up to date (`done`) are tagged
    SKIPPED instead; an archive member with an unsafe name is an `unsafe_path` error line."""

    def __init__(self, settings):
        self.settings = settings

    def process(self, url):
        try:
            found = list(self._list(url))
        except Exception as err:  # a source that can't be listed is the whole source's error
            yield tagged_error(url, "read", "unreadable_source", f"cannot list {url}: {err}")
            return
        exclude = self.settings.exclude
        for relpath, full, stamp in found:
            own = relpath.endswith(DESCRIBED_SUFFIX) or (exclude and (relpath + "/").startswith(exclude + "/"))
            if not relpath.lower().endswith(VIDEO_EXTENSIONS) or own:
                continue
            if full is None:  # an archive member whose name would write outside --output
                yield tagged_error(relpath, "read", "unsafe_path", stamp)
            elif hidden(relpath):  # dot files, macOS's __MACOSX copies
                continue
            elif not self.settings.force and done(self.settings, to_wire(relpath), stamp):
                yield beam.pvalue.TaggedOutput(SKIPPED, to_wire(relpath))
            else:
                yield to_wire(relpath), full, stamp

    @staticmethod
    def _list(url: str):
        """(relative path, what open_source opens, stamp) of every file of the source; (name, None,
        reason) of an archive member with an unsafe name. A .zip or .tar(.gz) archive's members are
        read in place; a tar member's stamp includes the archive's (its header checksum
        does not cover the content), a zip member's CRC does."""
        kind = archive_kind(url)
        if kind:
            fs, path = fsspec.core.url_to_fs(url)
            archive = dict(file_stamp(fs, path, fs.info(path)))
            for name, info in sorted(fsspec.filesystem(kind, fo=url).find("", detail=True).items()):
                if info.get("type") != "file":
                    continue
                try:
                    relpath = safe_relpath(name)
                except UnsafePath as err:
                    yield name, None, str(err)
                    continue
                stamp = {key: info[key] for key in ("size", "CRC", "mtime", "chksum") if key in info}
                yield relpath, (kind, name, url), stamp if "CRC" in stamp else {**stamp, "archive": archive}
            return
        fs, path = fsspec.core.url_to_fs(url)
        root = fs._strip_protocol(source_root(url)).rstrip("/")
        found = (fs.glob(path, detail=True) if is_glob(fs, path) else
                 fs.find(path, detail=True) if fs.isdir(path) else {path: fs.info(path)})
        for name, info in sorted(found.items()):
            if info.get("type") == "file":
                relpath = posixpath.relpath(name, root) if name != root else posixpath.basename(name)
                yield relpath, name if is_local(fs) else fs.unstrip_protocol(name), dict(file_stamp(fs, name, info))


def done(settings, relpath: str, stamp: dict) -> bool:
    """True when the video's scenes record is complete, for this video as it is now, this model and
    voice, and every file it lists is there."""
    base = f"{settings.output_root}/{to_os(relpath)}"
    record = read_scenes(base + SCENES_SUFFIX)
    if not record or not record.get("complete") or not same_source(record.get("source"), tuple(stamp.items())):
        return False
    if record.get("model_id") != settings.model_id or record.get("voice") != settings.voice_id:
        return False
    folder = posixpath.dirname(base)
    return all(isinstance(n, str) and "/" not in n and exists(f"{folder}/{n}") for n in record.get("files", []))


class SplitVideo(beam.DoFn):
    """(relpath, url, stamp) -> (relpath, url, start, end, last frame time): the video's time ranges;
    tagged "info": (relpath, {duration, has_audio, url, stamp})."""

    def __init__(self, range_seconds: float):
        self.range_seconds = range_seconds

    def process(self, element):
        relpath, url, stamp = element
        try:
            with open_source(url) as f:
                info = probe(f)
        except VideoError as err:
            yield tagged_error(relpath, "video", err.kind, str(err))
            return
        except Exception as err:  # one unreadable video must never stop the run
            yield tagged_error(relpath, "video", "unreadable_video", f"{type(err).__name__}: {err}")
            return
        progress.expect(info.duration)
        for start, end in time_ranges(info.duration, self.range_seconds):
            yield relpath, url, start, end, info.last_frame
        yield beam.pvalue.TaggedOutput("info", (relpath, {"duration": info.duration, "has_audio": info.has_audio,
                                                          "url": url, "stamp": stamp}))


class ScanRange(beam.DoFn):
    """(relpath, url, start, end, last frame time) -> ((relpath, keyframe time), JPEG) of each candidate;
    tagged "segments": (relpath, ([Segment], whether the range was read whole)). A range that
    can't be read (past the video's first frames) is a `partly_decoded` error line, and the video
    is described without what is missing and recorded as not complete."""

    def process(self, element):
        relpath, url, start, end, last_frame = element
        segments, images, whole = [], {}, False
        try:
            with open_source(url) as f:
                segments, images, broken = scan_range(f, start, end, last_frame)
            whole = not broken
            if broken:
                yield tagged_error(relpath, "video", "partly_decoded", f"decoding broke off in {start:.0f}-{end:.0f} "
                                   "s: the video is described up to there")
        except Exception as err:  # VideoError (kind and words of its own) or FFmpeg's, PyAV's
            kind = err.kind if isinstance(err, VideoError) else "unreadable_video"
            where = "" if start == 0 else f"from {start:.0f} s: "
            yield tagged_error(relpath, "video", kind if start == 0 else "partly_decoded", f"{where}{err}")
        beam.metrics.Metrics.counter("altvoice", "video_ranges_scanned").inc()
        for t, jpeg in images.items():
            yield (relpath, t), jpeg
        yield beam.pvalue.TaggedOutput("segments", (relpath, (segments, whole)))


class PlanScenes(beam.DoFn):
    """(relpath, {"info": [...], "segments": [([Segment], whole), ...]}) -> ((relpath, keyframe
    time), scene index) for each scene; tagged "videos": (relpath, info with the scenes' spans), or
    "failed": its manifest line when no range could be read (ScanRange said why)."""

    def process(self, element):
        relpath, joined = element
        segments = [segment for found, _ in joined["segments"] for segment in found]
        if not joined["info"]:
            return
        if not segments:
            yield beam.pvalue.TaggedOutput("failed", {**described(relpath), "status": "failed"})
            return
        info = {**joined["info"][0], "partial": not all(whole for _, whole in joined["segments"])}
        found = plan(segments, info["duration"])
        for index, scene in enumerate(found):
            yield (relpath, scene.keyframe_time), index
        yield beam.pvalue.TaggedOutput("videos", (relpath, {**info, "duration": found[-1].end,
                                                            "spans": [tuple(scene) for scene in found]}))


def failed_line(error: dict):
    """The manifest line of a video refused when listed or probed (not of a source that could not be
    listed at all)."""
    if error.get("kind") != "unreadable_source":
        yield {**{key: error[key] for key in ("image", "image_raw") if key in error}, "status": "failed"}


def scanned_seconds(element) -> float:
    """Seconds of video a ScanRange output covers (what the progress bar counts)."""
    return sum(segment.end - segment.start for segment in element[1][0])


def pick_keyframes(element):
    """((relpath, time), {"image": [JPEG], "scene": [index]}) -> ((relpath, index), JPEG) of chosen ones."""
    (relpath, _), joined = element
    for index in joined["scene"]:
        for jpeg in joined["image"][:1]:
            yield (relpath, index), jpeg
