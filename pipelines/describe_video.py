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
import json

import apache_beam as beam
import fsspec
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from altvoice import progress
from altvoice.console import log
from altvoice.errors import ERRORS, WriteErrors
from altvoice.flags import UsageError, require
from altvoice.model.classifier import IMAGE_SIZE as OBJECT_SIZE
from altvoice.names import described
from altvoice.pipelines.caption import Settings
from altvoice.pipelines.features import DecodeImage
from altvoice.pipelines.options import DescribeVideoOptions, job_pipeline_options, run_pipeline
from altvoice.pipelines.read_images import SKIPPED, UP_TO_DATE
from altvoice.pipelines.video_outputs import WriteTrack
from altvoice.pipelines.video_sources import (ListVideos, PlanScenes, ScanRange, SplitVideo, failed_line,
                                              pick_keyframes, scanned_seconds)
from altvoice.progress import ShowProgress
from altvoice.sources import source_root

CAPTION_ONLY = {  # flags describe-video shares a parser with but has no use for: refused, not ignored
    "--audio-format": lambda o: o.audio_format != "wav", "--embed-metadata": lambda o: o.embed_metadata,
    "--prune": lambda o: o.prune, "--review": lambda o: o.review, "--corrections": lambda o: o.corrections,
    "--max-file-mb": lambda o: o.max_file_mb != 128, "--max-megapixels": lambda o: o.max_megapixels != 64}


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
                                  settings.min_confidence, specificity=settings.specificity)
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
