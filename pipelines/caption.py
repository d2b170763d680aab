"""`altvoice caption`: caption whole image archives and write spoken descriptions beside every image.

    input URL --ReadImages (skipping images already up to date)--> (relpath, bytes)
      --DecodeImage--> RunInference(exported captioner, batched beam search) --> (relpath, caption, score)
      --WriteOutputs--> <output>/<relpath>.json + <output>/<relpath>.<wav|mp3|ogg> (+ an XMP-tagged copy)
    one line per image --> <output>/manifest.jsonl; every failure --> <output>/errors.jsonl
"""
import hashlib
import json
import posixpath
import re

import apache_beam as beam
import fsspec
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions
from fsspec.utils import glob_translate

from altvoice import progress
from altvoice.console import log
from altvoice.errors import ERRORS, WriteErrors
from altvoice.flags import UsageError, check_specificity, parse_tts_options
from altvoice.model.classifier import IMAGE_SIZE as OBJECT_SIZE
from altvoice.names import described, to_wire
from altvoice.outputs import remove_leftovers
from altvoice.pipelines.caption_checks import (check_grounding, check_inputs, check_job_files,
                                               check_review_folder, check_writable, read_text, relative_inside,
                                               source_id)
from altvoice.pipelines.caption_corrections import apply_corrections
from altvoice.pipelines.caption_outputs import WRITERS, IgnoreOwn, SkipDone, WriteOutputs
from altvoice.pipelines.features import FAILED, DecodeImage
from altvoice.pipelines.options import CaptionOptions, beam_flags, job_pipeline_options, run_pipeline
from altvoice.pipelines.read_images import LISTED, SKIPPED, UP_TO_DATE, ReadImages
from altvoice.pipelines.source_changes import FindRemoved
from altvoice.progress import ShowProgress
from altvoice.sources import Limits, archive_kind, is_glob, source_root

NOT_AN_IMAGE = "not_an_image"  # a file that is no image format at all: listed, not a failed image
STATUSES = ("written", "up_to_date", "partial", "failed", NOT_AN_IMAGE, "removed_from_source", "pruned")


class Settings:
    """What the workers need, resolved once at launch: picklable values only."""

    def __init__(self, opts: CaptionOptions):
        from altvoice.model.export import BUNDLED_MODEL, check_export, read_card
        from altvoice.tts import TTSError, default_backend, get_synthesizer

        self.model_dir = opts.model or BUNDLED_MODEL
        card_text = read_text(f"{self.model_dir.rstrip('/')}/model_card.json", self.model_dir)
        self.card = read_card(self.model_dir)
        self.grounding = opts.grounding == "on" and "grounding" in self.card
        if opts.min_confidence is not None and not self.grounding:
            raise UsageError(f"--min-confidence needs grounded captions; {self.model_dir} has no object classifier")
        self.min_confidence = opts.min_confidence
        decoding = self.card["decoding"]
        check_specificity(opts.specificity, opts.beam_width or decoding["beam_width"],
                          bool(decoding.get("image_prior")), self.model_dir)
        self.specificity = opts.specificity  # None: the model's; in the model id (as the beam width) where it
        # changes the captions, so that a rerun with another value redoes them
        changes = opts.specificity is not None and opts.specificity != decoding.get("specificity", 0.0)
        self.model_id = f"{self.card.get('name', 'altvoice')}@{hashlib.sha256(card_text.encode()).hexdigest()[:12]}"
        self.model_id += "" if self.grounding or "grounding" not in self.card else ":grounding=off"
        self.model_id += f":min_confidence={self.min_confidence}" if self.min_confidence is not None else ""
        self.model_id += f":specificity={self.specificity}" if changes else ""
        beam = opts.beam_width is not None and opts.beam_width != decoding["beam_width"]
        self.model_id += f":beam_width={opts.beam_width}" if beam else ""
        self.image_size = self.card["backbone"]["image_size"]
        check_export(self.model_dir, self.card)
        if self.grounding:
            check_grounding(self.model_dir, self.card)
        self.backend = opts.tts or default_backend()
        self.voice, self.audio_format = opts.voice, opts.audio_format
        self.tts_options = parse_tts_options(opts.tts_option)
        try:
            synthesizer = get_synthesizer(self.backend, self.voice, self.audio_format, **self.tts_options)
            if synthesizer:
                synthesizer.use_threads(1)  # as the writers speak (caption_outputs): one voice loaded, not two
                synthesizer.probe()
        except (ValueError, TTSError) as err:
            raise UsageError(f"--tts {self.backend}: {err}") from None
        self.voice_id = synthesizer.voice_id if synthesizer else None
        self.local_voice = self.backend in ("piper", "espeak")  # speaks on the worker's cores (see WriteOutputs)
        self.extension = synthesizer.extension if synthesizer else None
        self.output_root = (source_root(opts.input) if opts.in_place else opts.output).rstrip("/")
        self.force, self.embed, self.in_place, self.prune = opts.force, opts.embed_metadata, opts.in_place, opts.prune
        self.limits = Limits(max_file_bytes=int(opts.max_file_mb * (1 << 20)))
        self.source = source_id(opts.input)
        self.exclude, self.pattern = None, None
        self.correction_errors = []  # lines of --corrections that could not be used (set at launch)
        if any(c in self.output_root for c in "*?["):
            raise UsageError(f"the output folder {self.output_root} has * ? or [ in its name, which Beam's file "
                             "writes read as a pattern: choose an --output without them")
        if not archive_kind(opts.input):
            inside = relative_inside(self.output_root, source_root(opts.input))
            if inside == "" and not opts.in_place:
                raise UsageError(f"--output {opts.output} is the input folder: use --in-place to write beside the "
                                 "originals, or another --output")
            self.exclude = inside or None  # the output folder inside the input is never read as input
            fs, path = fsspec.core.url_to_fs(opts.input)
            root = fs._strip_protocol(source_root(opts.input))
            if is_glob(fs, path):
                self.pattern = glob_translate(posixpath.relpath(path, root))
            elif not fs.isdir(path):  # one file: only its own record is this source's
                self.pattern = re.escape(to_wire(posixpath.relpath(path, root))) + r"\Z"


def build_pipeline(p: beam.Pipeline, opts: CaptionOptions, settings: Settings | None = None) -> Settings:
    """Adds the caption job to `p` (nothing runs until `p.run()`); returns the resolved settings."""
    from altvoice.model.handler import CaptionModelHandler

    settings = settings or Settings(opts)
    root = settings.output_root
    progress.reset()
    images = p | "ReadImages" >> ReadImages(opts.input, skip=SkipDone(settings), limits=settings.limits,
                                             stamped=True, ignore=IgnoreOwn(settings))
    object_size = OBJECT_SIZE if settings.grounding else None
    decoded = images["ok"] | "Decode" >> beam.ParDo(
        DecodeImage(settings.image_size, keep_bytes=settings.embed, object_size=object_size,
                    max_pixels=int(opts.max_megapixels * 1e6))
    ).with_outputs(FAILED, ERRORS, main="ok")
    keyed = decoded.ok if settings.embed else decoded.ok | "NoBytes" >> beam.MapTuple(lambda k, px: ((k, None), px))
    handler = CaptionModelHandler(settings.model_dir, opts.beam_width, opts.batch_size or 64, settings.grounding,
                                  settings.min_confidence, leave_cores=WRITERS if settings.local_voice else 0,
                                  specificity=settings.specificity)
    captions = keyed | "Caption" >> RunInference(KeyedModelHandler(handler))
    written = captions | "Write" >> beam.ParDo(WriteOutputs(settings)).with_outputs(ERRORS, main="manifest")
    skipped = images[SKIPPED] | "SkippedLines" >> beam.Map(lambda name: {**described(name), "status": UP_TO_DATE})
    failed = decoded[FAILED] | "FailedLines" >> beam.MapTuple(
        lambda key, kind: {**described(key[0]), "status": NOT_AN_IMAGE if kind == NOT_AN_IMAGE else "failed"})
    removed = (images[LISTED], images["errors"]) | "Removed" >> FindRemoved(
        root, settings.source, settings.pattern, settings.prune, settings.in_place)
    images_done = (written.manifest, skipped, failed) | "Images" >> beam.Flatten()
    _ = (
        (images_done | "Progress" >> beam.ParDo(ShowProgress("images")), removed)
        | "Manifest" >> beam.Flatten()
        | "ManifestJson" >> beam.Map(json.dumps, sort_keys=True, ensure_ascii=False)
        | "WriteManifest" >> beam.io.WriteToText(f"{root}/manifest", file_name_suffix=".jsonl",
                                                 shard_name_template="")
    )
    corrections = p | "CorrectionErrors" >> beam.Create(settings.correction_errors)
    errors = (images["errors"], decoded[ERRORS], written[ERRORS], corrections) | "AllErrors" >> beam.Flatten()
    _ = errors | "WriteErrors" >> WriteErrors(f"{root}/errors")
    return settings


def run(argv=None, wait: bool = True) -> dict | None:
    """Parses flags, runs the job and returns counts from the manifest (None with `wait=False`:
    Flex Templates hand the pipeline to the runner and must not wait)."""
    options = job_pipeline_options(argv, CaptionOptions)
    opts = PipelineOptions(argv).view_as(CaptionOptions)  # a view of its own: unset job flags stay out of the job
    check_inputs(opts)
    settings = Settings(opts)
    check_writable(settings.output_root)
    check_job_files(settings.output_root)
    if opts.review:
        check_review_folder(settings.output_root)
    removed = remove_leftovers(settings.output_root)
    if removed:
        log.info("removed %d temp files and folders left by an interrupted run", removed)
    for path in [path.strip() for path in (opts.corrections or "").split(",") if path.strip()]:
        applied, errors = apply_corrections(settings.output_root, path)
        settings.correction_errors += errors
        log.info("%s: %d images corrected%s", path, applied,
                 f", {len(errors)} lines not used (errors.jsonl says why)" if errors else "")
    seconds = run_pipeline(options, lambda p: build_pipeline(p, opts, settings), wait)
    if seconds is None:
        return None
    counts = manifest_counts(settings.output_root)
    log.info("%s", summary(counts, seconds, settings.output_root))
    if opts.review:  # the same runner and Beam options as this job
        from altvoice.pipelines import review

        review.run(["--output", settings.output_root, *beam_flags(argv, CaptionOptions)])
    return counts


def summary(counts: dict, seconds: float, root: str) -> str:
    """The end-of-run line: images per status, time, and where the outputs are."""
    images = sum(n for status, n in counts.items() if status in STATUSES)
    parts = [f"{counts[status]} {status.replace('_', ' ')}" for status in STATUSES if counts.get(status)]
    parts += [f"{counts['needs_review']} need review"] if counts.get("needs_review") else []
    return (f"caption: {images} files in {seconds:.0f} s: {', '.join(parts) or 'nothing to do'}; outputs, "
            f"manifest.jsonl and errors.jsonl in {root}")


def exit_status(counts: dict | None) -> int:
    """0: every image written or up to date (files that are no image at all don't count);
    3: some failed or partial (errors.jsonl says why); 4: the source held no image."""
    if counts is None:
        return 0
    if counts.get("failed") or counts.get("partial"):
        return 3
    return 0 if any(counts.get(status) for status in STATUSES if status != NOT_AN_IMAGE) else 4


def manifest_counts(root: str) -> dict:
    """Images per status, and `needs_review`: how many captions are flagged for review."""
    counts = {}
    with fsspec.open(f"{root}/manifest.jsonl", "r", encoding="utf-8") as f:
        for line in f:
            entry = json.loads(line)
            counts[entry["status"]] = counts.get(entry["status"], 0) + 1
            if entry.get("needs_review"):
                counts["needs_review"] = counts.get("needs_review", 0) + 1
    return counts
