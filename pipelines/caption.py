"""`altvoice caption`: caption whole image archives and write spoken descriptions beside every image.

    input URL --ReadImages (skipping images already up to date)--> (relpath, bytes)
      --DecodeImage--> RunInference(exported captioner, batched beam search) --> (relpath, caption, score)
      --WriteOutputs--> <output>/<relpath>.json + <output>/<relpath>.<wav|mp3|ogg> (+ an XMP-tagged copy)
    one line per image --> <output>/manifest.jsonl; every failure --> <output>/errors.jsonl
"""
import datetime
import hashlib
import json
import os
import posixpath
import re
import time

import apache_beam as beam
import fsspec
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from fsspec.utils import glob_translate

from altvoice.console import log
from altvoice.errors import ERRORS, WriteErrors, error_record
from altvoice.names import described, to_os, to_wire
from altvoice.outputs import (TEMP_PREFIX, alt_text, atomic_write, claimed, exists, output_paths, read_record,
                              remove_leftovers, same_source)
from altvoice import progress
from altvoice.progress import ShowProgress
from altvoice.sources import Limits, archive_kind, is_glob, is_local, source_root, walk_local
from altvoice.xmp import UnsupportedFormat, embed_alt_text
from altvoice.model.classifier import IMAGE_SIZE as OBJECT_SIZE
from altvoice.pipelines.features import FAILED, DecodeImage
from altvoice.flags import UsageError, parse_tts_options, require
from altvoice.pipelines.options import CaptionOptions, job_pipeline_options
from altvoice.pipelines.read_images import IGNORED, LISTED, SKIPPED, UP_TO_DATE, ReadImages
from altvoice.pipelines.source_changes import FindRemoved

OWN_SUFFIXES = (".json", ".jsonl", ".wav", ".mp3", ".ogg")
ALT_COPY = ".alt"  # in-place tagged copies: photo.jpg -> photo.alt.jpg
NOT_AN_IMAGE = "not_an_image"  # a file that is no image format at all: listed, not a failed image
STATUSES = ("written", "up_to_date", "partial", "failed", NOT_AN_IMAGE, "removed_from_source", "pruned")
UNSUPPORTED = "unsupported"  # a record's `embed` when the image's format can't carry XMP


class Settings:
    """What the workers need, resolved once at launch: picklable values only."""

    def __init__(self, opts: CaptionOptions):
        from altvoice.model.export import BUNDLED_MODEL, check_export, read_card
        from altvoice.tts import TTSError, default_backend, get_synthesizer

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
        check_export(self.model_dir, self.card)
        if self.grounding:
            check_grounding(self.model_dir, self.card)
        self.backend = opts.tts or default_backend()
        self.voice, self.audio_format = opts.voice, opts.audio_format
        self.tts_options = parse_tts_options(opts.tts_option)
        try:
            synthesizer = get_synthesizer(self.backend, self.voice, self.audio_format, **self.tts_options)
            if synthesizer:
                synthesizer.probe()
        except (ValueError, TTSError) as err:
            raise UsageError(f"--tts {self.backend}: {err}") from None
        self.voice_id = synthesizer.voice_id if synthesizer else None
        self.extension = synthesizer.extension if synthesizer else None
        self.output_root = (source_root(opts.input) if opts.in_place else opts.output).rstrip("/")
        self.force, self.embed, self.in_place, self.prune = opts.force, opts.embed_metadata, opts.in_place, opts.prune
        self.limits = Limits(max_file_bytes=int(opts.max_file_mb * (1 << 20)))
        self.source = source_id(opts.input)
        self.exclude, self.pattern = None, None
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


def source_id(url: str) -> str:
    """The input as records name it: a local path made absolute and resolved, a URL as given."""
    fs, path = fsspec.core.url_to_fs(url)
    return os.path.realpath(path) if is_local(fs) else url.rstrip("/")


def relative_inside(path: str, folder: str) -> str | None:
    """`path` relative to `folder` (wire form; "" when equal), or None when it is not inside it."""
    fs_a, a = fsspec.core.url_to_fs(path)
    fs_b, b = fsspec.core.url_to_fs(folder)
    if fs_a.protocol != fs_b.protocol:
        return None
    if is_local(fs_a):
        a, b = os.path.realpath(a), os.path.realpath(b)
    a, b = a.rstrip("/"), b.rstrip("/")
    if a == b:
        return ""
    return to_wire(a[len(b) + 1:]) if a.startswith(b + "/") else None


def check_source(url: str) -> None:
    """A source that does not exist (or a glob whose folder does not) is a usage error."""
    fs, path = fsspec.core.url_to_fs(url)
    where = source_root(url) if is_glob(fs, path) else url
    try:
        found = fs.exists(fs._strip_protocol(where))
    except Exception as err:  # fsspec backends raise their own kinds for a bucket they can't reach
        raise UsageError(f"--input {url}: can't be read ({type(err).__name__}: {err})") from None
    if not found:
        raise UsageError(f"--input {url}: no such file or folder")
    if not archive_kind(url) and not _holds_files(fs, fs._strip_protocol(url)):
        raise UsageError(f"--input {url}: no files there")


def _holds_files(fs, path: str) -> bool:
    if is_glob(fs, path):
        return bool(fs.glob(path))
    if not fs.isdir(path):
        return True
    if is_local(fs):
        return next(walk_local(path), None) is not None
    return bool(fs.ls(path))


def check_writable(root: str) -> None:
    """A local output folder that can't be created or written is a usage error, before any work."""
    fs, path = fsspec.core.url_to_fs(root)
    if not is_local(fs):
        return
    try:
        atomic_write(f"{path}/{TEMP_PREFIX}probe", b"")
        os.remove(f"{path}/{TEMP_PREFIX}probe")
    except OSError as err:
        raise UsageError(f"--output {root}: can't write there ({err.strerror or err})") from None


JOB_FILES = {"manifest.jsonl": {"image", "status"}, "errors.jsonl": {"image", "stage", "kind"}}


def check_job_files(root: str) -> None:
    """The run's manifest and error files replace the last run's, never a user's file of that name."""
    for name, keys in JOB_FILES.items():
        fs, path = fsspec.core.url_to_fs(f"{root}/{name}")
        if not fs.exists(path):
            continue
        try:
            with fs.open(path, "rb") as f:
                first = f.read(1 << 16).split(b"\n", 1)[0]
            line = json.loads(first) if first.strip() else {"image": "", "status": "", "stage": "", "kind": ""}
            ours = isinstance(line, dict) and keys <= set(line)
        except (OSError, ValueError):
            ours = False
        if not ours:
            raise UsageError(f"{root}/{name} exists and is not one altvoice wrote: move it, or choose another "
                             "--output (the job writes its own there)")


def check_grounding(model_dir: str, card: dict) -> None:
    """Loads the export's grounding files once at launch: a missing or damaged one is a UsageError."""
    from altvoice.model.export import load_grounding

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


def base_name(url: str) -> str:
    """A written file's name as records keep it (wire form: valid text even when the bytes are not UTF-8)."""
    return to_wire(posixpath.basename(url))


def copy_path(settings: "Settings", relpath: str) -> str:
    """Where an image's XMP-tagged copy goes: mirrored under --output, `photo.alt.jpg` in place."""
    if not settings.in_place:
        return f"{settings.output_root}/{to_os(relpath)}"
    stem, ext = posixpath.splitext(to_os(relpath))
    return f"{settings.output_root}/{stem}{ALT_COPY}{ext}"


class IgnoreOwn:
    """Picklable listing filter: the job's records, audio and manifests, and the output folder when
    it lies inside the input, are never inputs."""

    def __init__(self, settings: "Settings"):
        self.exclude = settings.exclude

    def __call__(self, name: str) -> bool:
        if self.exclude and (name == self.exclude or name.startswith(self.exclude + "/")):
            return True
        return name.lower().endswith(OWN_SUFFIXES)


class SkipDone:
    """Picklable read-time filter: ignores in-place tagged copies the job made; skips (unless
    --force) images whose record is current: same model, voice and source stamp, audio and (with
    --embed-metadata) tagged copy present."""

    def __init__(self, settings: "Settings"):
        self.settings = settings

    def __call__(self, entry, content_hash=None) -> str | None:
        if self._own_copy(entry.name):
            return IGNORED
        if self.settings.force:
            return None
        return UP_TO_DATE if self._done(entry.name, entry.stamp, content_hash) else None

    def _own_copy(self, name: str) -> bool:
        """An in-place `photo.alt.jpg` is the job's only when photo.jpg's record claims it."""
        stem, ext = posixpath.splitext(name)
        if not self.settings.in_place or not stem.lower().endswith(ALT_COPY):
            return False
        record = read_record(output_paths(self.settings.output_root, stem[: -len(ALT_COPY)] + ext, None)["json"])
        return posixpath.basename(name) in claimed(record)

    def _done(self, name: str, stamp: tuple, content_hash) -> bool:
        s = self.settings
        paths = output_paths(s.output_root, name, s.extension)
        record = read_record(paths["json"])
        if not record or record.get("model_id") != s.model_id or record.get("voice") != s.voice_id:
            return False
        if not same_source(record.get("source"), stamp, content_hash):
            return False
        if paths["audio"] and (record.get("audio") != base_name(paths["audio"]) or not exists(paths["audio"])):
            return False
        if s.embed and record.get("embed") != UNSUPPORTED:
            return bool(record.get("tagged_copy")) and exists(copy_path(s, name))
        return True


class WriteOutputs(beam.DoFn):
    """(((relpath, stamp), bytes or None), Grounded) -> audio, tagged copy, then the JSON record; a
    manifest line. Speech that fails is an error record: the JSON is still written, without audio,
    and the next run retries the audio. A file there that the job did not make is never replaced.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.synthesizer = None

    def setup(self):
        from altvoice.tts import get_synthesizer

        s = self.settings
        self.synthesizer = get_synthesizer(s.backend, s.voice, s.audio_format, **s.tts_options)

    def process(self, element):
        ((relpath, stamp), data), prediction = element
        try:
            yield from self._write(relpath, stamp, data, prediction.inference)
        except Exception as err:  # a bug or an unforeseen error on one image must not stop the run
            failure = error_record(relpath, "write", "write_failed", f"{type(err).__name__}: {err}")
            yield from self._finish(relpath, prediction.inference, alt_text(prediction.inference.caption), None,
                                    [failure])

    def _write(self, relpath, stamp, data, found):
        s = self.settings
        paths = output_paths(s.output_root, relpath, s.extension)
        text, failures = alt_text(found.caption), []
        old = read_record(paths["json"])
        if old is None and exists(paths["json"]):
            failures.append(error_record(relpath, "write", "output_exists", f"{paths['json']} exists and is not "
                                         "an altvoice record: not overwritten, image not captioned"))
            yield from self._finish(relpath, found, text, None, failures)
            return
        record = {**described(relpath), "caption": found.caption, "score": round(float(found.score), 4),
                  "alt_text": text, "audio": None, "model_id": s.model_id, "voice": s.voice_id,
                  "input": s.source, "source": dict(stamp), "claims": sorted(claimed(old)),
                  "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        if found.grounding != "off":
            record.update(grounding=found.grounding, objects=found.objects, confidence=found.confidence,
                          needs_review=found.needs_review)
        targets = {"audio": paths["audio"] if self.synthesizer else None,
                   "copy": copy_path(s, relpath) if s.embed and data is not None else None}
        for key, url in targets.items():
            if url and base_name(url) not in claimed(old) and exists(url):
                stage = "speech" if key == "audio" else "embed"
                failures.append(error_record(relpath, stage, "output_exists", f"{url} exists and was not written "
                                             "by altvoice: not overwritten"))
                targets[key] = None
        new = {base_name(u) for u in targets.values() if u} - claimed(old)
        try:
            if new:  # an intent record first: a run killed before the final record still owns these files
                record["claims"] = sorted(claimed(old) | new)
                atomic_write(paths["json"], json.dumps({**described(relpath), "claims": record["claims"]}).encode())
            if targets["audio"]:
                failures += self._speak(relpath, text, targets["audio"], record)
            if targets["copy"]:
                failures += self._embed(relpath, data, text, targets["copy"], record)
            made = {record["audio"], record.get("tagged_copy")} - {None}
            record["claims"] = sorted(claimed(old) | made)  # a claimed file that was not written is not kept
            atomic_write(paths["json"], json.dumps(record, indent=2, ensure_ascii=False).encode("utf-8"))
        except OSError as err:
            failures.append(error_record(relpath, "write", "write_failed", f"record not written: {err}"))
            record = None
        yield from self._finish(relpath, found, text, record, failures)

    def _speak(self, relpath: str, text: str, url: str, record: dict) -> list:
        try:
            audio = self.synthesizer.synthesize(text)
        except Exception as err:  # TTSError, or a backend's own: caption kept, audio retried next run
            transient = getattr(err, "transient", False)
            return [error_record(relpath, "speech", "tts_failed", f"{err} (transient: {transient})")]
        try:
            atomic_write(url, audio)
        except OSError as err:
            return [error_record(relpath, "speech", "audio_write_failed", f"audio not written: {err}")]
        record["audio"] = base_name(url)
        return []

    def _embed(self, relpath: str, data: bytes, text: str, url: str, record: dict) -> list:
        try:
            atomic_write(url, embed_alt_text(data, text))
        except UnsupportedFormat as err:
            record["embed"] = UNSUPPORTED  # not retried: the format can't carry it
            return [error_record(relpath, "embed", "embed_unsupported", str(err))]
        except (ValueError, OSError) as err:
            return [error_record(relpath, "embed", "embed_failed", str(err))]
        record["tagged_copy"] = base_name(url)
        return []

    def _finish(self, relpath, found, text, record, failures):
        for failure in failures:
            beam.metrics.Metrics.counter("altvoice", f"failed_{failure['stage']}").inc()
            yield beam.pvalue.TaggedOutput(ERRORS, failure)
        written = record is not None
        beam.metrics.Metrics.counter("altvoice", "images_captioned" if written else "images_failed").inc()
        status = "written" if written and not failures else ("partial" if written else "failed")
        if found.needs_review:
            beam.metrics.Metrics.counter("altvoice", "images_needing_review").inc()
        yield {**described(relpath), "status": status, "caption": found.caption, "alt_text": text,
               "audio": record["audio"] if written else None, "needs_review": found.needs_review}


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
    handler = CaptionModelHandler(settings.model_dir, opts.beam_width, opts.batch_size or 32, settings.grounding,
                                  settings.min_confidence)
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
    if opts.max_file_mb <= 0 or opts.max_megapixels <= 0:
        raise UsageError("--max-file-mb and --max-megapixels must be positive")
    check_source(opts.input)


def run(argv=None, wait: bool = True) -> dict | None:
    """Parses flags, runs the job and returns counts from the manifest (None with `wait=False`:
    Flex Templates hand the pipeline to the runner and must not wait)."""
    options = job_pipeline_options(argv, CaptionOptions)
    opts = PipelineOptions(argv).view_as(CaptionOptions)  # a view of its own: unset job flags stay out of the job
    check_inputs(opts)
    settings = Settings(opts)
    check_writable(settings.output_root)
    check_job_files(settings.output_root)
    removed = remove_leftovers(settings.output_root)
    if removed:
        log.info("removed %d temp files and folders left by an interrupted run", removed)
    start = time.monotonic()
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, opts, settings)
    if not wait:
        pipeline.run()
        return None
    pipeline.run().wait_until_finish()
    counts = manifest_counts(settings.output_root)
    log.info("%s", summary(counts, time.monotonic() - start, settings.output_root))
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
