"""ReadImages: a URL (folder, glob, fsspec URL, .zip/.tar archive) -> (relative path, bytes), streamed."""
from typing import Callable

import apache_beam as beam

from altvoice.errors import tagged_error
from altvoice.sources import UnsafePath, list_sources, read_task, safe_relpath

SKIPPED = "skipped"  # tag of the relative paths a `skip` predicate left out


class _ListSources(beam.DoFn):
    def process(self, url):
        try:
            yield from list_sources(url)
        except Exception as err:  # any listing failure is the whole source's: record it, keep going
            yield tagged_error(url, "read", "unreadable_source", f"cannot list {url}: {err}")


class _ReadTask(beam.DoFn):
    def __init__(self, skip: Callable[[str], bool] | None):
        self.skip = skip

    def _skipped(self, name: str) -> bool:
        if self.skip is None:
            return False
        try:
            return self.skip(safe_relpath(name))
        except UnsafePath:
            return False  # read_task reports it

    def process(self, task):
        skipped = [n for n in task.names if self._skipped(n)]
        for name in skipped:  # decided before reading: their bytes are never fetched
            beam.metrics.Metrics.counter("altvoice", "files_skipped").inc()
            yield beam.pvalue.TaggedOutput(SKIPPED, safe_relpath(name))
        task = task._replace(names=tuple(n for n in task.names if n not in set(skipped)))
        try:
            for name, data in read_task(task):
                if isinstance(data, Exception):
                    kind = "unsafe_path" if isinstance(data, ValueError) else "unreadable_file"
                    yield tagged_error(name, "read", kind, str(data))
                elif task.kind == "tar" and self._skipped(name):  # tar streams: skipped after reading
                    beam.metrics.Metrics.counter("altvoice", "files_skipped").inc()
                    yield beam.pvalue.TaggedOutput(SKIPPED, name)
                else:
                    beam.metrics.Metrics.counter("altvoice", "files_read").inc()
                    yield name, data
        except Exception as err:  # an archive that can't be opened or ends mid-stream
            yield tagged_error(task.url, "read", "unreadable_archive", f"cannot read {task.url}: {err}")


class ReadImages(beam.PTransform):
    """Outputs `ok`: (relative path, bytes), `skipped`: relative paths and `errors`: error records.

    `skip(relpath) -> bool` (picklable) leaves files out before their bytes are read.
    Read tasks are spread over workers.
    """

    def __init__(self, url: str, skip: Callable[[str], bool] | None = None):
        super().__init__()
        self.url, self.skip = url, skip

    def expand(self, pbegin):
        listed = (
            pbegin
            | "Source" >> beam.Create([self.url])
            | "List" >> beam.ParDo(_ListSources()).with_outputs("errors", main="tasks")
        )
        read = (
            listed.tasks
            | "Spread" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(_ReadTask(self.skip)).with_outputs("errors", SKIPPED, main="ok")
        )
        errors = (listed.errors, read.errors) | "Errors" >> beam.Flatten()
        return {"ok": read.ok, SKIPPED: read[SKIPPED], "errors": errors}
