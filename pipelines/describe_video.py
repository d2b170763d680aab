"""`altvoice describe-video`: a timed audio description for every video of a folder, glob, bucket or archive.

    input URL --ListVideos--> (relpath, url, stamp), up-to-date videos skipped
      --SplitVideo--> time ranges --ScanRange (PyAV, in parallel)--> segments + keyframe candidates (JPEG)
      --PlanScenes (by video)--> scenes; their keyframes --DecodeImage--> RunInference(the captioner)
      --by video--> WriteTrack: beside <output>/<relpath>: .descriptions.vtt (WebVTT, kind
      "descriptions"), .narration.wav, .described.mp4 (an audio-description track added), .scenes.json
    one line per video --> <output>/manifest.jsonl; every failure --> <output>/errors.jsonl

Consecutive scenes whose descriptions say the same are one cue. A video is done when its
.scenes.json is complete and names the same source stamp, model and voice (skipped unless --force).
"""
import contextlib
import json
import posixpath
import tempfile

import apache_beam as beam
import fsspec
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from altvoice import progress
from altvoice.console import log
from altvoice.errors import ERRORS, WriteErrors, tagged_error
from altvoice.flags import UsageError, require
from altvoice.model.classifier import IMAGE_SIZE as OBJECT_SIZE
from altvoice.names import described, to_os, to_wire
from altvoice.narration import with_description_track, write_narration
from altvoice.outputs import alt_text, atomic_put, atomic_write, exists, read_record, same_source
from altvoice.pipelines.caption import Settings
from altvoice.pipelines.features import DecodeImage
from altvoice.pipelines.options import DescribeVideoOptions, job_pipeline_options, run_pipeline
from altvoice.pipelines.read_images import SKIPPED, UP_TO_DATE
from altvoice.progress import ShowProgress
from altvoice.sources import UnsafePath, archive_kind, file_stamp, hidden, is_glob, is_local, safe_relpath, source_root
from altvoice.video import VideoError, plan, probe, scan_range, time_ranges

CAPTION_ONLY = {  # flags describe-video shares a parser with but has no use for: refused, not ignored
    "--audio-format": lambda o: o.audio_format != "wav", "--embed-metadata": lambda o: o.embed_metadata,
    "--prune": lambda o: o.prune, "--review": lambda o: o.review, "--corrections": lambda o: o.corrections}
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi")
TRACK_SUFFIX, SCENES_SUFFIX = ".descriptions.vtt", ".scenes.json"
NARRATION_SUFFIX, DESCRIBED_SUFFIX = ".narration.wav", ".described.mp4"


class ListVideos(beam.DoFn):
    """A folder, glob, bucket or archive URL -> (relative path in wire form, file URL, source stamp)
    of every video in it; never the job's own described copies, nor anything in the output folder when it
    lies inside. Videos whose outputs are up to date (`done`) are tagged SKIPPED instead."""

    def __init__(self, settings: Settings):
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


@contextlib.contextmanager
def open_source(source):
    """A video to read: a local path, a URL, or (archive kind, member, archive URL); names are never
    parsed as fsspec URL chains (a name may hold "::")."""
    if isinstance(source, tuple):
        kind, member, archive = source
        fs = fsspec.filesystem(kind, fo=archive)  # held while the member is read: it owns the archive's file
    else:
        protocol, _ = fsspec.core.split_protocol(source)
        fs = fsspec.filesystem(protocol or "file")
        member = fs._strip_protocol(source) if protocol else source
    with fs.open(member, "rb") as f:
        yield f


def done(settings: Settings, relpath: str, stamp: dict) -> bool:
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


def timestamp(seconds: float) -> str:
    """WebVTT's hh:mm:ss.ttt."""
    millis = round(seconds * 1000)
    return f"{millis // 3600000:02d}:{millis // 60000 % 60:02d}:{millis // 1000 % 60:02d}.{millis % 1000:03d}"


def cues(spans: list, captions: dict) -> list[dict]:
    """Scenes (start, end, keyframe time) with their captions -> cues: consecutive scenes with the
    same alt text are one cue; a scene without a caption (its keyframe failed) joins none."""
    merged = []
    for index, (start, end, keyframe) in enumerate(spans):
        found = captions.get(index)
        if found is None:
            continue
        text = alt_text(found.caption)
        if merged and merged[-1]["alt_text"] == text and merged[-1]["end"] == start:
            merged[-1]["end"] = end
            continue
        merged.append({"start": start, "end": end, "keyframe_time": keyframe, "caption": found.caption,
                       "alt_text": text, "score": round(float(found.score), 4),
                       **({"confidence": found.confidence, "needs_review": found.needs_review}
                          if found.grounding != "off" else {})})
    return merged


def webvtt(track: list[dict]) -> str:
    """A WebVTT file of description cues (for <track kind="descriptions">)."""
    lines = ["WEBVTT", "Kind: descriptions", "Language: en", ""]
    for number, cue in enumerate(track, 1):
        lines += [str(number), f"{timestamp(cue['start'])} --> {timestamp(cue['end'])}", cue["alt_text"], ""]
    return "\n".join(lines)


class WriteTrack(beam.DoFn):
    """(relpath, {"video": [info], "captions": [(index, Grounded)]}) -> beside the video's mirrored
    path: the track, with a voice the narration and an MP4 copy with an audio-description track,
    then the scenes record (listing the files it made); a manifest line. A file there that an
    earlier run did not make is never replaced (an error line; the others are written). A
    description that can't be spoken is an error line; the narration has the others."""

    def __init__(self, settings: Settings):
        self.settings, self.root = settings, settings.output_root
        self.speaker = None

    def setup(self):
        from altvoice.tts import get_synthesizer
        from altvoice.tts.reuse import shared_speaker

        s = self.settings
        synthesizer = get_synthesizer(s.backend, s.voice, "wav", **s.tts_options)
        self.speaker = shared_speaker(synthesizer) if synthesizer else None

    def _spoken(self, relpath: str, track: list, work: str, errors: list) -> tuple[list, list]:
        """(clips, cues): WAV files in `work` of the cues the voice could say, and those cues; an
        error record in `errors` for each it could not."""
        clips, spoken = [], []
        for cue in track:
            try:
                clip = f"{work}/{len(clips)}.wav"
                with open(clip, "wb") as f:
                    f.write(self.speaker.speak(cue["alt_text"])[0])
                clips.append(clip)
                spoken.append(cue)
            except Exception as err:  # TTSError or a backend's own: this description is left out
                errors.append(tagged_error(relpath, "speech", "tts_failed", f"{cue['alt_text'][:60]!r}: {err}"))
        return clips, spoken

    def process(self, element):
        relpath, joined = element
        if not joined["video"]:
            return
        info = joined["video"][0]
        errors = []
        with tempfile.TemporaryDirectory(prefix="altvoice-video-") as work:
            yield from self._describe(relpath, info, dict(joined["captions"]), work, errors)
        yield from errors

    def _describe(self, relpath: str, info: dict, captions: dict, work: str, errors: list):
        """Writes the video's files and record; yields its manifest line, keeps errors in `errors`."""
        base = f"{self.root}/{to_os(relpath)}"
        name = posixpath.basename(base)
        old = read_scenes(base + SCENES_SUFFIX)
        if old is None and exists(base + SCENES_SUFFIX):
            errors.append(tagged_error(relpath, "write", "output_exists", f"{base}{SCENES_SUFFIX} exists and is "
                                       "not one altvoice wrote: not overwritten, video not described"))
            yield {**described(relpath), "status": "failed"}
            return
        ours = {n for n in (old or {}).get("files", []) if isinstance(n, str) and "/" not in n}
        track = cues(info["spans"], captions)
        record = {**described(relpath), "source": info["stamp"], "duration": round(info["duration"], 3),
                  "has_audio": info["has_audio"],
                  "scenes": [{"start": s, "end": e, "keyframe_time": k} for s, e, k in info["spans"]],
                  "cues": track, "model_id": self.settings.model_id, "voice": self.settings.voice_id, "files": []}
        with open(f"{work}/track.vtt", "w", encoding="utf-8") as f:
            f.write(webvtt(track))
        outputs = {TRACK_SUFFIX: lambda: f"{work}/track.vtt"}
        if self.speaker and track:
            clips, spoken = self._spoken(relpath, track, work, errors)
            try:
                fits = write_narration(clips, [cue["start"] for cue in spoken], info["duration"], f"{work}/voice.wav")
            except Exception as err:  # sox missing or failing, a full disk: the track is still written
                errors.append(tagged_error(relpath, "speech", "narration_failed", f"{type(err).__name__}: {err}"))
                clips = []
            if clips:
                for cue, fit in zip(spoken, fits):
                    cue["narration"] = fit
                spans = [(fit["start"], fit["end"]) for fit in fits]
                outputs[NARRATION_SUFFIX] = lambda: f"{work}/voice.wav"
                outputs[DESCRIBED_SUFFIX] = lambda: described_copy(info["url"], f"{work}/voice.wav", spans, work)
        claims = sorted(ours | {name + suffix for suffix in outputs if not exists(base + suffix)})  # never a user's
        try:  # the files about to be written, claimed first: a run killed mid-way still owns them
            atomic_write(base + SCENES_SUFFIX, json.dumps({**record, "files": claims, "complete": False}).encode())
        except Exception as err:  # a local or object-store write that failed: this video only
            errors.append(tagged_error(relpath, "write", "write_failed", str(err)))
            yield {**described(relpath), "status": "failed"}
            return
        for suffix, make in outputs.items():
            if exists(base + suffix) and name + suffix not in ours:
                errors.append(tagged_error(relpath, "write", "output_exists", f"{base}{suffix} exists and was not "
                                           "written by altvoice: not overwritten"))
                continue
            try:
                atomic_put(base + suffix, make())
                record["files"].append(name + suffix)
            except Exception as err:  # a copy FFmpeg can't make, a write that failed: this file only
                errors.append(tagged_error(relpath, "write", "write_failed",
                                           f"{name}{suffix}: {type(err).__name__}: {err}"))
        record["files"] += sorted(n for n in ours - set(record["files"]) if exists(f"{posixpath.dirname(base)}/{n}"))
        record["complete"] = not errors and not info.get("partial") and len(captions) == len(info["spans"])
        try:
            atomic_write(base + SCENES_SUFFIX, json.dumps(record, indent=2, ensure_ascii=False).encode("utf-8"))
        except Exception as err:  # as above
            errors.append(tagged_error(relpath, "write", "write_failed", str(err)))
            yield {**described(relpath), "status": "failed"}
            return
        beam.metrics.Metrics.counter("altvoice", "videos_described").inc()
        yield {**described(relpath), "status": "written" if record["complete"] else "partial",
               "scenes": len(info["spans"]), "cues": len(track), "files": record["files"]}


def read_scenes(url: str) -> dict | None:
    """A scenes record altvoice wrote (outputs.read_record: a regular file, capped), or None."""
    record = read_record(url)
    return record if record and "cues" in record else None


def described_copy(url: str, narration_path: str, spans: list, work: str) -> str:
    """A local MP4 copy (in `work`) of the video at `url` with the audio-description track."""
    target = f"{work}/described.mp4"
    with open_source(url) as source:
        with_description_track(source, narration_path, spans, target)
    return target


def build_pipeline(p: beam.Pipeline, opts: DescribeVideoOptions, settings: Settings) -> None:
    """Adds the describe-video job to `p`."""
    from altvoice.model.handler import CaptionModelHandler

    root = settings.output_root
    progress.reset()
    found = (
        p
        | "Source" >> beam.Create([opts.input])
        | "ListVideos" >> beam.ParDo(ListVideos(settings)).with_outputs(ERRORS, SKIPPED, main="ok")
    )
    split = (found.ok | "SpreadVideos" >> beam.Reshuffle()
             | "SplitVideo" >> beam.ParDo(SplitVideo(opts.range_seconds)).with_outputs(ERRORS, "info", main="ranges"))
    scanned = (split.ranges | "SpreadRanges" >> beam.Reshuffle()
               | "ScanRange" >> beam.ParDo(ScanRange()).with_outputs(ERRORS, "segments", main="candidates"))
    shown = scanned.segments | "Progress" >> beam.ParDo(ShowProgress("video scanned", " s", scanned_seconds))
    planned = ({"info": split.info, "segments": shown} | "ByVideo" >> beam.CoGroupByKey()
               | "PlanScenes" >> beam.ParDo(PlanScenes()).with_outputs("videos", "failed", main="chosen"))
    keyframes = ({"image": scanned.candidates, "scene": planned.chosen} | "ByTime" >> beam.CoGroupByKey()
                 | "PickKeyframes" >> beam.FlatMap(pick_keyframes))
    decoded = keyframes | "Decode" >> beam.ParDo(
        DecodeImage(settings.image_size, object_size=OBJECT_SIZE if settings.grounding else None)
    ).with_outputs("failed", ERRORS, main="ok")
    handler = CaptionModelHandler(settings.model_dir, opts.beam_width, opts.batch_size or 64, settings.grounding,
                                  settings.min_confidence)
    captions = (
        decoded.ok
        | "Caption" >> RunInference(KeyedModelHandler(handler))
        | "ToVideo" >> beam.MapTuple(lambda key, result: (key[0], (key[1], result.inference)))
    )
    written = (
        {"video": planned.videos, "captions": captions}
        | "Join" >> beam.CoGroupByKey()
        | "WriteTrack" >> beam.ParDo(WriteTrack(settings)).with_outputs(ERRORS, main="manifest")
    )
    skipped = found[SKIPPED] | "SkippedLines" >> beam.Map(lambda name: {**described(name), "status": UP_TO_DATE})
    failed = ((found[ERRORS], split[ERRORS]) | "VideoErrors" >> beam.Flatten()
              | "FailedLines" >> beam.FlatMap(failed_line))
    _ = (
        (written.manifest, skipped, failed, planned.failed) | "Manifest" >> beam.Flatten()
        | "ManifestJson" >> beam.Map(json.dumps, sort_keys=True, ensure_ascii=False)
        | "WriteManifest" >> beam.io.WriteToText(f"{root}/manifest", file_name_suffix=".jsonl",
                                                 shard_name_template="")
    )
    errors = ((found[ERRORS], split[ERRORS], scanned[ERRORS], decoded[ERRORS], written[ERRORS])
              | "AllErrors" >> beam.Flatten())
    _ = errors | "WriteErrors" >> WriteErrors(f"{root}/errors")


def run(argv=None, wait: bool = True) -> dict | None:
    """Parses flags, runs the job and returns the videos per status."""
    options = job_pipeline_options(argv, DescribeVideoOptions)
    opts = PipelineOptions(argv).view_as(DescribeVideoOptions)
    require(opts, "input", "output")
    unused = [flag for flag, given in CAPTION_ONLY.items() if given(opts)]
    if unused:
        raise UsageError(f"{', '.join(unused)}: caption's, not describe-video's (its narration is a WAV and "
                         "an AAC track in the described copy)")
    fs, path = fsspec.core.url_to_fs(source_root(opts.input) if "*" in opts.input else opts.input)
    if not fs.exists(path):
        raise UsageError(f"--input {opts.input}: no such file or folder")
    settings = Settings(opts)
    if run_pipeline(options, lambda p: build_pipeline(p, opts, settings), wait) is None:
        return None
    counts = {}
    with fsspec.open(f"{opts.output.rstrip('/')}/manifest.jsonl", "r", encoding="utf-8") as f:
        for line in f:
            status = json.loads(line)["status"]
            counts[status] = counts.get(status, 0) + 1
    with fsspec.open(f"{opts.output.rstrip('/')}/errors.jsonl", "r", encoding="utf-8") as f:
        counts["errors"] = sum(1 for _ in f)
    log.info("describe-video: %d videos described, %d up to date, %d errors; tracks, manifest.jsonl and "
             "errors.jsonl in %s", counts.get("written", 0) + counts.get("partial", 0), counts.get(UP_TO_DATE, 0),
             counts["errors"], settings.output_root)
    return counts


def exit_status(counts: dict | None) -> int:
    """0: every video described or up to date; 3: some failed (errors.jsonl says why)."""
    return 3 if counts and (counts.get("errors") or counts.get("failed") or counts.get("partial")) else 0
