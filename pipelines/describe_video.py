"""`altvoice describe-video`: a timed description track for every video of a folder, glob or bucket.

    input URL --ListVideos--> (relpath, url) --FindScenes (PyAV: shots, keyframes)--> ((relpath, scene), PNG)
      --DecodeImage--> RunInference(the captioner) --> ((relpath, scene), Grounded)
      --by video--> <output>/<relpath>.descriptions.vtt (WebVTT, kind="descriptions") + <relpath>.scenes.json
    one line per video --> <output>/manifest.jsonl; every failure --> <output>/errors.jsonl

Consecutive scenes whose descriptions say the same are one cue. Not yet: narration audio and the
MP4 copy with an audio-description track (issue 15's next step).
"""
import json
import posixpath
import tempfile

import apache_beam as beam
import fsspec
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from altvoice.console import log
from altvoice.errors import ERRORS, WriteErrors, tagged_error
from altvoice.flags import UsageError, parse_tts_options, require
from altvoice.model.classifier import IMAGE_SIZE as OBJECT_SIZE
from altvoice.names import described, to_os, to_wire
from altvoice.narration import with_description_track, write_narration
from altvoice.outputs import alt_text, atomic_put, atomic_write, exists
from altvoice.pipelines.caption_checks import relative_inside
from altvoice.pipelines.features import DecodeImage
from altvoice.pipelines.options import DescribeVideoOptions, job_pipeline_options, run_pipeline
from altvoice.sources import is_glob, is_local, source_root
from altvoice.video import VideoError, scenes

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi")
TRACK_SUFFIX, SCENES_SUFFIX = ".descriptions.vtt", ".scenes.json"
NARRATION_SUFFIX, DESCRIBED_SUFFIX = ".narration.wav", ".described.mp4"


class ListVideos(beam.DoFn):
    """A folder, glob or bucket URL -> (relative path in wire form, file URL) of every video in it;
    never the job's own described copies, nor anything in the output folder when it lies inside."""

    def __init__(self, exclude: str | None = None):
        self.exclude = exclude

    def process(self, url):
        try:
            fs, path = fsspec.core.url_to_fs(url)
            root = fs._strip_protocol(source_root(url)).rstrip("/")
            found = fs.glob(path) if is_glob(fs, path) else (fs.find(path) if fs.isdir(path) else [path])
        except Exception as err:  # a source that can't be listed is the whole source's error
            yield tagged_error(url, "read", "unreadable_source", f"cannot list {url}: {err}")
            return
        for name in sorted(found):
            relpath = posixpath.relpath(name, root) if name != root else posixpath.basename(name)
            own = name.endswith(DESCRIBED_SUFFIX) or (self.exclude and (relpath + "/").startswith(self.exclude + "/"))
            if name.lower().endswith(VIDEO_EXTENSIONS) and not own:
                full = name if is_local(fs) else fs.unstrip_protocol(name)
                yield to_wire(relpath), full


class FindScenes(beam.DoFn):
    """(relpath, url) -> ((relpath, index), keyframe PNG); tagged "videos": (relpath, info and scenes)."""

    def process(self, element):
        relpath, url = element
        try:
            with fsspec.open(url, "rb") as f:
                info, found = scenes(f)
        except VideoError as err:
            yield tagged_error(relpath, "video", err.kind, str(err))
            return
        except Exception as err:  # one unreadable video must never stop the run
            yield tagged_error(relpath, "video", "unreadable_video", f"{type(err).__name__}: {err}")
            return
        beam.metrics.Metrics.counter("altvoice", "videos_split").inc()
        for index, scene in enumerate(found):
            yield (relpath, index), scene.keyframe
        spans = [(s.start, s.end, s.keyframe_time) for s in found]
        yield beam.pvalue.TaggedOutput("videos", (relpath, {"duration": info.duration, "has_audio": info.has_audio,
                                                             "spans": spans, "url": url}))


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

    def __init__(self, root: str, model_id: str, voice: tuple | None):
        self.root, self.model_id, self.voice = root, model_id, voice
        self.speaker = None

    def setup(self):
        if self.voice:
            from altvoice.tts import get_synthesizer
            from altvoice.tts.reuse import shared_speaker

            backend, name, options = self.voice
            self.speaker = shared_speaker(get_synthesizer(backend, name, "wav", **options))

    def _spoken(self, relpath: str, track: list, work: str):
        """Yields error records; returns (clips, cues): WAV files in `work` of the cues the voice
        could say, and those cues."""
        clips, spoken = [], []
        for cue in track:
            try:
                clip = f"{work}/{len(clips)}.wav"
                with open(clip, "wb") as f:
                    f.write(self.speaker.speak(cue["alt_text"])[0])
                clips.append(clip)
                spoken.append(cue)
            except Exception as err:  # TTSError or a backend's own: this description is left out
                yield tagged_error(relpath, "speech", "tts_failed", f"{cue['alt_text'][:60]!r}: {err}")
        return clips, spoken

    def process(self, element):
        relpath, joined = element
        if not joined["video"]:
            return
        info = joined["video"][0]
        with tempfile.TemporaryDirectory(prefix="altvoice-video-") as work:
            yield from self._describe(relpath, info, cues(info["spans"], dict(joined["captions"])), work)

    def _describe(self, relpath: str, info: dict, track: list, work: str):
        base = f"{self.root}/{to_os(relpath)}"
        name = posixpath.basename(base)
        old = _read_json(base + SCENES_SUFFIX)
        if old is None and exists(base + SCENES_SUFFIX):
            yield tagged_error(relpath, "write", "output_exists", f"{base}{SCENES_SUFFIX} exists and is not one "
                               "altvoice wrote: not overwritten, video not described")
            yield {**described(relpath), "status": "failed"}
            return
        ours = set((old or {}).get("files", []))
        record = {**described(relpath), "duration": round(info["duration"], 3), "has_audio": info["has_audio"],
                  "scenes": [{"start": s, "end": e, "keyframe_time": k} for s, e, k in info["spans"]],
                  "cues": track, "model_id": self.model_id, "files": []}
        with open(f"{work}/track.vtt", "w", encoding="utf-8") as f:
            f.write(webvtt(track))
        outputs = {TRACK_SUFFIX: lambda: f"{work}/track.vtt"}
        if self.speaker and track:
            clips, spoken = yield from self._spoken(relpath, track, work)
            if clips:
                fits = write_narration(clips, [cue["start"] for cue in spoken], info["duration"], f"{work}/voice.wav")
                for cue, fit in zip(spoken, fits):
                    cue["narration"] = fit
                spans = [(fit["start"], fit["end"]) for fit in fits]
                outputs[NARRATION_SUFFIX] = lambda: f"{work}/voice.wav"
                outputs[DESCRIBED_SUFFIX] = lambda: described_copy(info["url"], f"{work}/voice.wav", spans, work)
        for suffix, make in outputs.items():
            if exists(base + suffix) and name + suffix not in ours:
                yield tagged_error(relpath, "write", "output_exists", f"{base}{suffix} exists and was not written by "
                                   "altvoice: not overwritten")
                continue
            try:
                atomic_put(base + suffix, make())
                record["files"].append(name + suffix)
            except Exception as err:  # a copy FFmpeg can't make, a write that failed: this file only
                yield tagged_error(relpath, "write", "write_failed", f"{name}{suffix}: {type(err).__name__}: {err}")
        try:
            atomic_write(base + SCENES_SUFFIX, json.dumps(record, indent=2, ensure_ascii=False).encode("utf-8"))
        except OSError as err:
            yield tagged_error(relpath, "write", "write_failed", str(err))
            yield {**described(relpath), "status": "failed"}
            return
        beam.metrics.Metrics.counter("altvoice", "videos_described").inc()
        yield {**described(relpath), "status": "written", "scenes": len(info["spans"]), "cues": len(track),
               "files": record["files"]}


def _read_json(url: str) -> dict | None:
    """A scenes record altvoice wrote, or None."""
    try:
        with fsspec.open(url, "rb") as f:
            record = json.loads(f.read(1 << 22))
    except Exception:  # missing, unreadable, not JSON
        return None
    return record if isinstance(record, dict) and "cues" in record and "model_id" in record else None


def described_copy(url: str, narration_path: str, spans: list, work: str) -> str:
    """A local MP4 copy (in `work`) of the video at `url` with the audio-description track."""
    target = f"{work}/described.mp4"
    with fsspec.open(url, "rb") as source:
        with_description_track(source, narration_path, spans, target)
    return target


def voice(opts) -> tuple | None:
    """(backend, voice, options) of the narration, or None for --tts none; UsageError if unusable."""
    from altvoice.tts import TTSError, default_backend, get_synthesizer

    backend, options = opts.tts or default_backend(), parse_tts_options(opts.tts_option)
    try:
        synthesizer = get_synthesizer(backend, opts.voice, "wav", **options)
        if synthesizer:
            synthesizer.probe()
    except (ValueError, TTSError) as err:
        raise UsageError(f"--tts {backend}: {err}") from None
    return (backend, opts.voice, options) if synthesizer else None


def build_pipeline(p: beam.Pipeline, opts: DescribeVideoOptions) -> None:
    """Adds the describe-video job to `p`."""
    from altvoice.model.export import BUNDLED_MODEL, read_card
    from altvoice.model.handler import CaptionModelHandler

    root = opts.output.rstrip("/")
    model_dir = opts.model or BUNDLED_MODEL
    card = read_card(model_dir)
    grounding = opts.grounding == "on" and "grounding" in card
    found = (
        p
        | "Source" >> beam.Create([opts.input])
        | "ListVideos" >> beam.ParDo(ListVideos(relative_inside(root, source_root(opts.input)) or None)).with_outputs(
            ERRORS, main="ok")
    )
    split = found.ok | "Spread" >> beam.Reshuffle() | "FindScenes" >> beam.ParDo(FindScenes()).with_outputs(
        ERRORS, "videos", main="keyframes")
    decoded = split.keyframes | "Decode" >> beam.ParDo(
        DecodeImage(card["backbone"]["image_size"], object_size=OBJECT_SIZE if grounding else None)
    ).with_outputs("failed", ERRORS, main="ok")
    handler = CaptionModelHandler(model_dir, opts.beam_width, opts.batch_size or 64, grounding)
    captions = (
        decoded.ok
        | "Caption" >> RunInference(KeyedModelHandler(handler))
        | "ByVideo" >> beam.MapTuple(lambda key, result: (key[0], (key[1], result.inference)))
    )
    manifest = (
        {"video": split.videos, "captions": captions}
        | "Join" >> beam.CoGroupByKey()
        | "WriteTrack" >> beam.ParDo(WriteTrack(root, card.get("name", "altvoice"), voice(opts))).with_outputs(
            ERRORS, main="manifest")
    )
    _ = (
        manifest.manifest
        | "ManifestJson" >> beam.Map(json.dumps, sort_keys=True, ensure_ascii=False)
        | "WriteManifest" >> beam.io.WriteToText(f"{root}/manifest", file_name_suffix=".jsonl",
                                                 shard_name_template="")
    )
    errors = (found[ERRORS], split[ERRORS], decoded[ERRORS], manifest[ERRORS]) | "AllErrors" >> beam.Flatten()
    _ = errors | "WriteErrors" >> WriteErrors(f"{root}/errors")


def run(argv=None, wait: bool = True) -> dict | None:
    """Parses flags, runs the job and returns the videos per status."""
    options = job_pipeline_options(argv, DescribeVideoOptions)
    opts = PipelineOptions(argv).view_as(DescribeVideoOptions)
    require(opts, "input", "output")
    fs, path = fsspec.core.url_to_fs(source_root(opts.input) if "*" in opts.input else opts.input)
    if not fs.exists(path):
        raise UsageError(f"--input {opts.input}: no such file or folder")
    if run_pipeline(options, lambda p: build_pipeline(p, opts), wait) is None:
        return None
    counts = {}
    with fsspec.open(f"{opts.output.rstrip('/')}/manifest.jsonl", "r", encoding="utf-8") as f:
        for line in f:
            status = json.loads(line)["status"]
            counts[status] = counts.get(status, 0) + 1
    with fsspec.open(f"{opts.output.rstrip('/')}/errors.jsonl", "r", encoding="utf-8") as f:
        counts["errors"] = sum(1 for _ in f)
    log.info("describe-video: %d videos described, %d errors; tracks, manifest.jsonl and errors.jsonl in %s",
             counts.get("written", 0), counts["errors"], opts.output)
    return counts


def exit_status(counts: dict | None) -> int:
    """0: every video described; 3: some failed (errors.jsonl says why)."""
    return 3 if counts and (counts.get("errors") or counts.get("failed")) else 0
