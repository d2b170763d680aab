"""ReadImages: a URL (folder, glob, fsspec URL, .zip/.tar archive) -> (relative path, bytes), streamed."""
import apache_beam as beam

from altvoice.errors import tagged_error
from altvoice.sources import list_sources, read_task


class _ListSources(beam.DoFn):
    def process(self, url):
        try:
            yield from list_sources(url)
        except Exception as err:  # any listing failure is the whole source's: record it, keep going
            yield tagged_error(url, "read", "unreadable_source", f"cannot list {url}: {err}")


class _ReadTask(beam.DoFn):
    def process(self, task):
        try:
            for name, data in read_task(task):
                if isinstance(data, Exception):
                    kind = "unsafe_path" if isinstance(data, ValueError) else "unreadable_file"
                    yield tagged_error(name, "read", kind, str(data))
                else:
                    beam.metrics.Metrics.counter("altvoice", "files_read").inc()
                    yield name, data
        except Exception as err:  # an archive that can't be opened or ends mid-stream
            yield tagged_error(task.url, "read", "unreadable_archive", f"cannot read {task.url}: {err}")


class ReadImages(beam.PTransform):
    """Outputs `ok`: (relative path, bytes) and `errors`: error records. Read tasks are spread over workers."""

    def __init__(self, url: str):
        super().__init__()
        self.url = url

    def expand(self, pbegin):
        listed = (
            pbegin
            | "Source" >> beam.Create([self.url])
            | "List" >> beam.ParDo(_ListSources()).with_outputs("errors", main="tasks")
        )
        read = (
            listed.tasks
            | "Spread" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(_ReadTask()).with_outputs("errors", main="ok")
        )
        errors = (listed.errors, read.errors) | "Errors" >> beam.Flatten()
        return {"ok": read.ok, "errors": errors}
