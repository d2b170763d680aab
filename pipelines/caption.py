"""`altvoice caption`: caption whole image archives and write spoken descriptions beside every image.

    input URL --ReadImages (skipping images already up to date)--> (relpath, bytes)
      --DecodeImage--> RunInference(exported captioner, batched beam search) --> (relpath, caption, score)
      --WriteOutputs--> <output>/<relpath>.json + <output>/<relpath>.<wav|mp3|ogg> (+ an XMP-tagged copy)
    one line per image --> <output>/manifest.jsonl; every failure --> <output>/errors.jsonl
"""
import datetime
import hashlib
import json
import logging
import os
import posixpath

import apache_beam as beam
import fsspec
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from altvoice.errors import ERRORS, WriteErrors, error_record
from altvoice.outputs import alt_text, atomic_write, is_up_to_date, output_paths
from altvoice.progress import ShowProgress
from altvoice.sources import archive_kind, source_root
from altvoice.xmp import UnsupportedFormat, embed_alt_text
from model.classifier import IMAGE_SIZE as OBJECT_SIZE
from pipelines.features import FAILED, DecodeImage
from pipelines.options import CaptionOptions, UsageError, job_pipeline_options, parse_tts_options, require
from pipelines.read_images import SKIPPED, ReadImages

OPTIONS = CaptionOptions  # the flags `altvoice caption --help` lists
BUNDLED_MODEL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "model", "pretrained")
OWN_SUFFIXES = (".json", ".jsonl", ".wav", ".mp3", ".ogg", ".partial")
ALT_COPY = ".alt"  # in-place tagged copies: photo.jpg -> photo.alt.jpg


class Settings:
    """What the workers need, resolved once at launch: picklable values only."""

    def __init__(self, opts: CaptionOptions):
        from model.export import read_card
        from altvoice.tts import default_backend, get_synthesizer

        self.model_dir = opts.model or BUNDLED_MODEL
        card_text = _read_text(f"{self.model_dir.rstrip('/')}/model_card.json", self.model_dir)
        self.card = read_card(self.model_dir)
        self.grounding = opts.grounding == "on" and "grounding" in self.card
        if opts.min_confidence is not None and not self.grounding:
            raise UsageError(f"--min-confidence needs grounded captions; {self.model_dir} has no object classifier")
        self.min_confidence = opts.min_confidence
        self.model_id = f"{self.card.get('name', 'altvoice')}@{hashlib.sha256(card_text.encode()).hexdigest()[:12]}"
        self.model_id += "" if self.grounding or "grounding" not in self.card else ":grounding=off"
        self.model_id += f":min_confidence={self.min_confidence}" if self.min_confidence is not None else ""
        self.image_size = self.card["backbone"]["image_size"]
        if self.grounding:
            check_grounding(self.model_dir, self.card)
        self.backend = opts.tts or default_backend()
        self.voice, self.audio_format = opts.voice, opts.audio_format
        self.tts_options = parse_tts_options(opts.tts_option)
        try:
            synthesizer = get_synthesizer(self.backend, self.voice, self.audio_format, **self.tts_options)
        except ValueError as err:
            raise UsageError(str(err)) from None
        self.voice_id = synthesizer.voice_id if synthesizer else None
        self.extension = synthesizer.extension if synthesizer else None
        self.output_root = (source_root(opts.input) if opts.in_place else opts.output).rstrip("/")
        self.force, self.embed, self.in_place = opts.force, opts.embed_metadata, opts.in_place


def check_grounding(model_dir: str, card: dict) -> None:
    """Loads the export's grounding files once at launch: a missing or damaged one is a UsageError."""
    from model.export import load_grounding

    try:
        load_grounding(model_dir, card)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        reason = " ".join(str(err).split())
        raise UsageError(f"{model_dir}: the grounding files (object classifier, word tables, detectors) can't be "
                         f"loaded ({type(err).__name__}: {reason}); restore the export, or run with --grounding off"
                         ) from None


def _read_text(url: str, model_dir: str) -> str:
    try:
        with fsspec.open(url, "r") as f:
            return f.read()
    except OSError:
        raise UsageError(f"no exported captioner at {model_dir} (no model_card.json); pass --model DIR, "
                         "the export/ folder `altvoice train` writes") from None


def is_own_output(relpath: str) -> bool:
    """Files this job writes (records, audio, manifests, tagged copies): never inputs."""
    stem, ext = posixpath.splitext(relpath.lower())
    return relpath.lower().endswith(OWN_SUFFIXES) or stem.endswith(ALT_COPY)


class SkipDone:
    """Picklable read-time filter: the job's own outputs, and (unless --force) images already up to date."""

    def __init__(self, settings: Settings):
        self.root, self.model_id, self.voice_id = settings.output_root, settings.model_id, settings.voice_id
        self.extension, self.force = settings.extension, settings.force

    def __call__(self, relpath: str) -> bool:
        if is_own_output(relpath):
            return True
        return not self.force and is_up_to_date(self.root, relpath, self.model_id, self.voice_id, self.extension)


class WriteOutputs(beam.DoFn):
    """((relpath, bytes or None), Grounded) -> audio, tagged copy, then the JSON record; a manifest line.

    Speech that fails is an error record: the JSON is still written, without audio, and the
    next run retries the audio.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.synthesizer = None

    def setup(self):
        from altvoice.tts import get_synthesizer

        s = self.settings
        self.synthesizer = get_synthesizer(s.backend, s.voice, s.audio_format, **s.tts_options)

    def process(self, element):
        (relpath, data), prediction = element
        found = prediction.inference
        s = self.settings
        paths = output_paths(s.output_root, relpath, s.extension)
        text = alt_text(found.caption)
        record = {"image": relpath, "caption": found.caption, "score": round(float(found.score), 4), "alt_text": text,
                  "audio": None, "model_id": s.model_id, "voice": s.voice_id,
                  "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        if found.grounding != "off":
            record.update(grounding=found.grounding, objects=found.objects, confidence=found.confidence,
                          needs_review=found.needs_review)
        failures = []
        if self.synthesizer is not None:
            try:
                atomic_write(paths["audio"], self.synthesizer.synthesize(text))
                record["audio"] = posixpath.basename(paths["audio"])
            except Exception as err:  # TTSError, or a write that failed: caption kept, audio retried next run
                transient = getattr(err, "transient", False)
                failures.append(error_record(relpath, "speech", "tts_failed", f"{err} (transient: {transient})"))
        if s.embed and data is not None:
            try:
                atomic_write(self._copy_path(relpath), embed_alt_text(data, text))
                record["tagged_copy"] = posixpath.basename(self._copy_path(relpath))
            except (UnsupportedFormat, ValueError, OSError) as err:
                failures.append(error_record(relpath, "embed", "embed_failed", str(err)))
        try:
            atomic_write(paths["json"], json.dumps(record, indent=2, ensure_ascii=False).encode("utf-8"))
        except OSError as err:
            failures.append(error_record(relpath, "write", "write_failed", str(err)))
        for failure in failures:
            beam.metrics.Metrics.counter("altvoice", f"failed_{failure['stage']}").inc()
            yield beam.pvalue.TaggedOutput(ERRORS, failure)
        written = not any(f["stage"] == "write" for f in failures)
        beam.metrics.Metrics.counter("altvoice", "images_captioned" if written else "images_failed").inc()
        status = "written" if written and not failures else ("partial" if written else "failed")
        if found.needs_review:
            beam.metrics.Metrics.counter("altvoice", "images_needing_review").inc()
        yield {"image": relpath, "status": status, "caption": found.caption, "alt_text": text,
               "audio": record["audio"], "needs_review": found.needs_review}

    def _copy_path(self, relpath: str) -> str:
        if not self.settings.in_place:
            return f"{self.settings.output_root}/{relpath}"
        stem, ext = posixpath.splitext(relpath)
        return f"{self.settings.output_root}/{stem}{ALT_COPY}{ext}"


def build_pipeline(p: beam.Pipeline, opts: CaptionOptions, settings: Settings | None = None) -> Settings:
    """Adds the caption job to `p` (nothing runs until `p.run()`); returns the resolved settings."""
    from model.handler import CaptionModelHandler

    settings = settings or Settings(opts)
    root = settings.output_root
    images = p | "ReadImages" >> ReadImages(opts.input, skip=SkipDone(settings))
    object_size = OBJECT_SIZE if settings.grounding else None
    decoded = images["ok"] | "Decode" >> beam.ParDo(
        DecodeImage(settings.image_size, keep_bytes=settings.embed, object_size=object_size)
    ).with_outputs(FAILED, ERRORS, main="ok")
    keyed = decoded.ok if settings.embed else decoded.ok | "NoBytes" >> beam.MapTuple(lambda n, px: ((n, None), px))
    handler = CaptionModelHandler(settings.model_dir, opts.beam_width, opts.batch_size or 32, settings.grounding,
                                  settings.min_confidence)
    captions = keyed | "Caption" >> RunInference(KeyedModelHandler(handler))
    written = captions | "Write" >> beam.ParDo(WriteOutputs(settings)).with_outputs(ERRORS, main="manifest")
    _ = written.manifest | "Progress" >> beam.ParDo(ShowProgress("captioned"))
    skipped = images[SKIPPED] | "SkippedLines" >> beam.Map(lambda relpath: {"image": relpath, "status": "up_to_date"})
    skipped = skipped | "NotOwnOutputs" >> beam.Filter(lambda line: not is_own_output(line["image"]))
    failed = decoded[FAILED] | "FailedLines" >> beam.Map(lambda relpath: {"image": relpath, "status": "failed"})
    _ = (
        (written.manifest, skipped, failed)
        | "Manifest" >> beam.Flatten()
        | "ManifestJson" >> beam.Map(json.dumps, sort_keys=True, ensure_ascii=False)
        | "WriteManifest" >> beam.io.WriteToText(f"{root}/manifest", file_name_suffix=".jsonl",
                                                 shard_name_template="")
    )
    errors = (images["errors"], decoded[ERRORS], written[ERRORS]) | "AllErrors" >> beam.Flatten()
    _ = errors | "WriteErrors" >> WriteErrors(f"{root}/errors")
    return settings


def check_inputs(opts: CaptionOptions) -> None:
    """Fails fast, before any work, on flags that can't run."""
    require(opts, "input")
    if not opts.output and not opts.in_place:
        raise UsageError("give --output DIR, or --in-place to write beside the originals")
    if opts.in_place and archive_kind(opts.input):
        raise UsageError(f"--in-place needs a folder or glob input; {opts.input} is an archive: use --output")
    if opts.beam_width is not None and opts.beam_width < 1:
        raise UsageError("--beam-width must be at least 1")
    if opts.min_confidence is not None and not 0 <= opts.min_confidence <= 1:
        raise UsageError(f"--min-confidence must be between 0 and 1, got {opts.min_confidence}")
    if opts.min_confidence is not None and opts.grounding == "off":
        raise UsageError("--min-confidence needs grounded captions: drop --grounding off")


def remove_partials(root: str) -> int:
    """Deletes temp files a killed local run left behind (object stores never have any)."""
    fs, path = fsspec.core.url_to_fs(root)
    if "file" not in fs.protocol and "local" not in fs.protocol or not fs.isdir(path):
        return 0
    partials = [f for f in fs.find(path) if f.endswith(".partial")]
    for leftover in partials:
        fs.rm_file(leftover)
    return len(partials)


def run(argv=None, wait: bool = True) -> dict | None:
    """Parses flags, runs the job and returns counts from the manifest (None with `wait=False`:
    Flex Templates hand the pipeline to the runner and must not wait)."""
    options = job_pipeline_options(argv)
    opts = PipelineOptions(argv).view_as(CaptionOptions)  # a view of its own: unset job flags stay out of the job
    check_inputs(opts)
    settings = Settings(opts)
    removed = remove_partials(settings.output_root)
    if removed:
        logging.info("removed %d partial files left by an interrupted run", removed)
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, opts, settings)
    if not wait:
        pipeline.run()
        return None
    pipeline.run().wait_until_finish()
    counts = manifest_counts(settings.output_root)
    logging.info("caption done: %s (model %s, voice %s)", json.dumps(counts), settings.model_id, settings.voice_id)
    return counts


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
