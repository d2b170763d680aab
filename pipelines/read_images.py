"""ReadImages: a URL (folder, glob, fsspec URL, .zip/.tar archive) -> (relative path, bytes), streamed."""
import os
from typing import Callable

import apache_beam as beam

from altvoice.errors import tagged_error
from altvoice.names import to_os
from altvoice.progress import expect
from altvoice.sources import Limits, ReadRefused, Refused, UnsafePath, content_sha256, list_sources, read_task

SKIPPED = "skipped"  # tag of the relative paths a `skip` predicate left out (up to date)
LISTED = "listed"  # tag of every relative path the source has (read, skipped or refused)
UP_TO_DATE, IGNORED = "up_to_date", "ignored"  # what `skip` may answer


class _ListSources(beam.DoFn):
    def __init__(self, limits: Limits, ignore: Callable | None):
        self.limits, self.ignore = limits, ignore

    def process(self, url):
        try:
            for task in list_sources(url, limits=self.limits):
                if isinstance(task, Refused):
                    expect(1)
                    yield beam.pvalue.TaggedOutput(LISTED, task.name)
                    yield tagged_error(task.name, "read", task.kind, task.reason)
                    continue
                if self.ignore is not None:
                    task = task._replace(entries=tuple(e for e in task.entries if not self.ignore(e.name)))
                expect(len(task.entries))
                if task.entries or task.kind == "tar":
                    yield task
        except Exception as err:  # any listing failure is the whole source's: record it, keep going
            yield tagged_error(url, "read", "unreadable_source", f"cannot list {url}: {err}")


def _content_hash(task, entry):
    if task.kind != "files" or "://" in task.root:
        return None
    return lambda: content_sha256(os.path.join(task.root, to_os(entry.name)))


class _ReadTask(beam.DoFn):
    def __init__(self, skip: Callable | None, limits: Limits, stamped: bool, ignore: Callable | None):
        self.skip, self.limits, self.stamped, self.ignore = skip, limits, stamped, ignore

    def _verdict(self, entry, content_hash=None) -> str | None:
        if self.skip is None:
            return None
        try:
            return self.skip(entry, content_hash)
        except Exception:  # an unsafe path (read_task reports it) or a hostile file where a record goes:
            return None  # read and caption it; writing checks what is there

    def process(self, task):
        kept = []
        for entry in task.entries:  # decided before reading: skipped files' bytes are never fetched
            verdict = self._verdict(entry, _content_hash(task, entry)) if task.kind != "tar" else None
            if verdict != IGNORED:
                yield beam.pvalue.TaggedOutput(LISTED, entry.name)
            if verdict == UP_TO_DATE:
                beam.metrics.Metrics.counter("altvoice", "files_skipped").inc()
                yield beam.pvalue.TaggedOutput(SKIPPED, entry.name)
            elif verdict is None:
                kept.append(entry)
        task = task._replace(entries=tuple(kept))
        try:
            for entry, data in read_task(task, self.limits):
                if task.kind == "tar":  # tar streams: listed and skipped after reading
                    if self.ignore is not None and self.ignore(entry.name):
                        continue
                    expect(1)
                    verdict = self._verdict(entry) if isinstance(data, bytes) else None
                    if verdict == IGNORED:
                        continue
                    yield beam.pvalue.TaggedOutput(LISTED, entry.name)
                    if verdict == UP_TO_DATE:
                        beam.metrics.Metrics.counter("altvoice", "files_skipped").inc()
                        yield beam.pvalue.TaggedOutput(SKIPPED, entry.name)
                        continue
                if isinstance(data, Exception):
                    yield tagged_error(entry.name, "read", _kind(data), str(data))
                else:
                    beam.metrics.Metrics.counter("altvoice", "files_read").inc()
                    yield ((entry.name, entry.stamp) if self.stamped else entry.name), data
        except Exception as err:  # an archive that can't be opened, ends mid-stream or is a bomb
            yield tagged_error(task.url, "read", "unreadable_archive", f"cannot read {task.url}: {err}")


def _kind(error: Exception) -> str:
    if isinstance(error, ReadRefused):
        return error.kind
    return "unsafe_path" if isinstance(error, UnsafePath) else "unreadable_file"


class ReadImages(beam.PTransform):
    """Outputs `ok`: (relative path, bytes), `skipped` and `listed`: relative paths, `errors`: error records.

    `ignore(relpath) -> bool` (picklable) leaves files out at listing: never listed or read.
    `skip(entry, content_hash) -> None | 'up_to_date' | 'ignored'` (picklable) leaves files out
    before their bytes are read (tar members: after); `content_hash()` is the sha256 of a local
    file (None elsewhere). With `stamped`, `ok` keys are (relative path, stamp). Read tasks are
    spread over workers; `limits` bound every read. The listing announces its count to
    altvoice.progress.
    """

    def __init__(self, url: str, skip: Callable | None = None, limits: Limits = Limits(), stamped: bool = False,
                 ignore: Callable | None = None):
        super().__init__()
        self.url, self.skip, self.limits, self.stamped, self.ignore = url, skip, limits, stamped, ignore

    def expand(self, pbegin):
        listed = (
            pbegin
            | "Source" >> beam.Create([self.url])
            | "List" >> beam.ParDo(_ListSources(self.limits, self.ignore)).with_outputs("errors", LISTED, main="tasks")
        )
        read = (
            listed.tasks
            | "Spread" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(_ReadTask(self.skip, self.limits, self.stamped, self.ignore)).with_outputs(
                "errors", SKIPPED, LISTED, main="ok")
        )
        errors = (listed.errors, read.errors) | "Errors" >> beam.Flatten()
        names = (listed[LISTED], read[LISTED]) | "Listed" >> beam.Flatten()
        return {"ok": read.ok, SKIPPED: read[SKIPPED], LISTED: names, "errors": errors}
