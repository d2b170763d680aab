"""`altvoice review OUTPUT`: the review page of a caption output folder (see altvoice.review).

    <output>/manifest.jsonl --ReadRecords--> (image, manifest line, its record)
    the images (the records' input, or --images-from) --ReadImages--MakeThumbnail--> review/thumbs/*.jpg
    <output>/errors.jsonl --> reasons per image, and the page's errors section
      --CoGroupByKey--> page records --ToList--> review/data/*.js + review/index.html

Thumbnails already made for the same version of a file are kept (--remake-thumbnails redoes them).
"""
import hashlib
import json
import time

import apache_beam as beam
import fsspec
from apache_beam.options.pipeline_options import PipelineOptions

from altvoice import progress
from altvoice.console import log
from altvoice.errors import ERRORS, WriteErrors, tagged_error
from altvoice.flags import UsageError, require
from altvoice.images import ImageError, thumbnail
from altvoice.outputs import atomic_write, exists, output_paths, read_record
from altvoice.pipelines.caption_checks import relative_inside, source_id
from altvoice.pipelines.caption_outputs import IgnoreOwn
from altvoice.pipelines.options import ReviewOptions, job_pipeline_options, run_pipeline
from altvoice.pipelines.read_images import IGNORED, SKIPPED, UP_TO_DATE, ReadImages
from altvoice.progress import ShowProgress
from altvoice.names import wire_name
from altvoice.review import (ERRORS_SHOWN, PAGE_DIR, SHOWN_STATUSES, THUMB_SIZE, check_ours, page_record,
                             thumb_name, write_page)
from altvoice.sources import Limits, archive_kind, source_root


class Settings:
    """What the workers need, resolved at launch: picklable values only."""

    def __init__(self, opts: ReviewOptions):
        require(opts, "output")
        self.root = opts.output.rstrip("/")
        fs, path = fsspec.core.url_to_fs(self.root)
        if not fs.isdir(path):
            raise UsageError(f"{opts.output} is not a folder: give the --output folder of an altvoice caption run")
        try:
            check_ours(self.root)
        except ValueError as err:
            raise UsageError(str(err)) from None
        self.has_manifest = exists(f"{self.root}/manifest.jsonl")
        self.has_errors = exists(f"{self.root}/errors.jsonl")
        self.images_from = opts.images_from or (self._records_input() if self.has_manifest else None)
        self.force = opts.remake_thumbnails
        self.limits = Limits()
        self.exclude = None  # the output folder, when it lies inside the images' folder
        if self.images_from and not archive_kind(self.images_from):
            self.exclude = relative_inside(self.root, source_root(self.images_from)) or None
        self.page_id = hashlib.sha1(source_id(self.root).encode()).hexdigest()[:12]

    def _records_input(self) -> str | None:
        """The `input` the caption job recorded: the first record's that has one."""
        with fsspec.open(f"{self.root}/manifest.jsonl", "r", encoding="utf-8") as f:
            for number, line in enumerate(f):
                if number > 1000:
                    break
                try:
                    record = read_record(output_paths(self.root, wire_name(json.loads(line)), None)["json"])
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue
                if record and record.get("input"):
                    return record["input"]
        return None


class ParseLines(beam.DoFn):
    """JSON lines of the manifest or errors.jsonl -> (image, line); a malformed line is an error."""

    def __init__(self, name: str, statuses: tuple | None = None):
        self.name, self.statuses = name, statuses

    def process(self, text):
        try:
            line = json.loads(text)
            image = wire_name(line)
            if not isinstance(image, str):
                raise TypeError("the image is not named")
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            yield tagged_error(self.name, "review", "malformed_line", f"{type(err).__name__}: {text[:200]!r}")
            return
        if self.statuses is None or line.get("status") in self.statuses:
            yield image, line


class ReadRecord(beam.DoFn):
    """(image, manifest line) -> (image, (line, record or None)): the JSON record beside the image."""

    def __init__(self, root: str):
        self.root = root

    def process(self, element):
        image, line = element
        yield image, (line, read_record(output_paths(self.root, image, None)["json"]) if line["status"] != "failed"
                      else None)


def _thumb_of(root: str, image: str) -> str | None:
    """Where an image's thumbnail goes, named from its record's source stamp (None: no record)."""
    record = read_record(output_paths(root, image, None)["json"])
    source = (record or {}).get("source")
    return f"{root}/{PAGE_DIR}/{thumb_name(image, source)}" if isinstance(source, dict) else None


class ThumbDone:
    """Picklable read-time filter: images without a caption record are left out, and an image whose
    thumbnail exists (for the version its record names) is not read again."""

    def __init__(self, settings: Settings):
        self.root, self.force = settings.root, settings.force

    def __call__(self, entry, content_hash=None):
        where = _thumb_of(self.root, entry.name)
        if where is None:
            return IGNORED
        return UP_TO_DATE if not self.force and exists(where) else None


class MakeThumbnail(beam.DoFn):
    """((image, stamp), bytes) -> image, with its review/thumbs/<hash>.jpg written; errors tagged."""

    def __init__(self, root: str, size: int):
        self.root, self.size = root, size

    def process(self, element):
        (image, _), data = element
        try:
            where = _thumb_of(self.root, image)
            if where is None:
                return
            atomic_write(where, thumbnail(data, self.size)[0])
        except ImageError as err:
            yield tagged_error(image, "thumbnail", err.kind, str(err))
            return
        except Exception as err:  # a write that failed, or a decoder's own error: one image's thumbnail
            yield tagged_error(image, "thumbnail", "thumbnail_failed", f"{type(err).__name__}: {err}")
            return
        beam.metrics.Metrics.counter("altvoice", "thumbnails_made").inc()
        yield image


def _page_record(element):
    _, joined = element
    if not joined["record"]:
        return []
    line, record = joined["record"][0]
    reasons = [f"{e.get('stage', '?')}: {e.get('reason', '')}" for e in joined["reasons"]]
    return [page_record(line, record, bool(joined["thumb"]), reasons)]


class WritePage(beam.DoFn):
    """All page records (one list) -> the page, with the run's counts and its first errors."""

    def __init__(self, root: str, page_id: str):
        self.root, self.page_id = root, page_id

    def process(self, records, errors, errors_total):
        counts = {}
        for record in records:
            counts[record["status"]] = counts.get(record["status"], 0) + 1
        counts["need_review"] = sum(1 for r in records if r.get("needs_review"))
        shown = sorted(errors, key=lambda e: (str(e.get("image", "")), str(e.get("stage", ""))))[:ERRORS_SHOWN]
        run = {"id": self.page_id, "counts": counts, "errors": shown, "errors_total": errors_total,
               "created": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        yield write_page(self.root, records, run)


def build_pipeline(p: beam.Pipeline, opts: ReviewOptions, settings: Settings | None = None) -> Settings:
    """Adds the review job to `p`; returns the resolved settings."""
    settings = settings or Settings(opts)
    root = settings.root
    progress.reset()
    empty = p | "NoLines" >> beam.Create([])
    lines = (p | "Manifest" >> beam.io.ReadFromText(f"{root}/manifest.jsonl")) if settings.has_manifest else empty
    parsed = lines | "ParseManifest" >> beam.ParDo(ParseLines("manifest.jsonl", SHOWN_STATUSES)).with_outputs(
        ERRORS, main="ok")
    records = parsed.ok | "ReadRecords" >> beam.ParDo(ReadRecord(root))
    error_text = (p | "ErrorsFile" >> beam.io.ReadFromText(f"{root}/errors.jsonl")) if settings.has_errors else empty
    errors = error_text | "ParseErrors" >> beam.ParDo(ParseLines("errors.jsonl")).with_outputs(ERRORS, main="ok")
    thumbs = p | "NoThumbs" >> beam.Create([])
    thumb_errors = p | "NoThumbErrors" >> beam.Create([])
    if settings.images_from:
        images = p | "ReadImages" >> ReadImages(settings.images_from, skip=ThumbDone(settings),
                                                 limits=settings.limits, stamped=True, ignore=IgnoreOwn(settings))
        made = images["ok"] | "Thumbnail" >> beam.ParDo(MakeThumbnail(root, THUMB_SIZE)).with_outputs(
            ERRORS, main="ok")
        thumbs = ((made.ok, images[SKIPPED]) | "Thumbs" >> beam.Flatten()
                  | "Progress" >> beam.ParDo(ShowProgress("thumbnails")))
        thumb_errors = (images["errors"], made[ERRORS]) | "ThumbErrors" >> beam.Flatten()
    page = (
        {"record": records, "thumb": thumbs | "KeyThumbs" >> beam.Map(lambda image: (image, True)),
         "reasons": errors.ok}
        | "Join" >> beam.CoGroupByKey()
        | "PageRecords" >> beam.FlatMap(_page_record)
        | "AllRecords" >> beam.combiners.ToList()
    )
    caption_errors = errors.ok | "ErrorLines" >> beam.Values()
    first = caption_errors | "FirstErrors" >> beam.combiners.Top.Of(ERRORS_SHOWN, key=lambda e: str(e.get("image")),
                                                                    reverse=True)
    total = caption_errors | "CountErrors" >> beam.combiners.Count.Globally()
    _ = page | "WritePage" >> beam.ParDo(WritePage(root, settings.page_id), beam.pvalue.AsSingleton(first),
                                        beam.pvalue.AsSingleton(total))
    own_errors = (parsed[ERRORS], errors[ERRORS], thumb_errors) | "ReviewErrors" >> beam.Flatten()
    _ = own_errors | "WriteErrors" >> WriteErrors(f"{root}/{PAGE_DIR}/errors")
    return settings


def run(argv=None, wait: bool = True) -> dict | None:
    """Parses flags (`OUTPUT` may come first, without --output), writes the page and returns counts."""
    argv = list(argv or [])
    if argv and not argv[0].startswith("-"):
        argv = ["--output", *argv]
    options = job_pipeline_options(argv, ReviewOptions)
    opts = PipelineOptions(argv).view_as(ReviewOptions)
    settings = Settings(opts)
    seconds = run_pipeline(options, lambda p: build_pipeline(p, opts, settings), wait)
    if seconds is None:
        return None
    counts = page_counts(settings.root)
    log.info("%s", summary(counts, seconds, settings.root))
    return counts


def page_counts(root: str) -> dict:
    """The counts the page shows, read back from its run.js; and the review job's own errors."""
    with fsspec.open(f"{root}/{PAGE_DIR}/data/run.js", "r", encoding="utf-8") as f:
        text = f.read()
    run = json.loads(text[text.index("(") + 1: text.rindex(")")])
    counts = dict(run["counts"], errors=run["errors_total"])
    with fsspec.open(f"{root}/{PAGE_DIR}/errors.jsonl", "r", encoding="utf-8") as f:
        counts["review_errors"] = sum(1 for _ in f)
    return counts


def summary(counts: dict, seconds: float, root: str) -> str:
    images = sum(n for status, n in counts.items() if status in SHOWN_STATUSES)
    parts = [f"{counts[s]} {s.replace('_', ' ')}" for s in SHOWN_STATUSES if counts.get(s)]
    parts += [f"{counts['need_review']} need review"] if counts.get("need_review") else []
    problems = f"; {counts['review_errors']} thumbnails or lines failed (review/errors.jsonl)" if counts.get(
        "review_errors") else ""
    return (f"review: {images} images on the page in {seconds:.0f} s ({', '.join(parts) or 'no records'})"
            f"{problems}; open {root}/{PAGE_DIR}/index.html")
