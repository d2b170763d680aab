"""Images that left the source: records under the output root with no image behind them any more.

Scheduled runs list them in the manifest (`removed_from_source`); with --prune their outputs
(the record and the files it claims, nothing else) are deleted (`pruned`). Nothing is reported
when any part of the source could not be listed or read: a missing listing is not a deletion.
"""
import os
import posixpath
import re

import apache_beam as beam
import fsspec

from altvoice.names import described, to_os, to_wire
from altvoice.outputs import claimed, read_record
from altvoice.sources import is_local, walk_local

LISTING_FAILURES = ("unreadable_source", "unreadable_archive", "unreadable_folder", "broken_link",
                    "symlinked_folder", "compression_bomb")


class _ListRecords(beam.DoFn):
    def __init__(self, root: str, pattern: str | None):
        self.root, self.pattern = root, pattern

    def process(self, _):
        fs, path = fsspec.core.url_to_fs(self.root)
        if not fs.exists(path):
            return
        if is_local(fs):
            names = (name for name, _ in walk_local(path))
        else:
            names = (posixpath.relpath(f, path) for f in fs.find(path))
        for name in names:
            relpath = to_wire(name[: -len(".json")]) if name.endswith(".json") else None
            if relpath and (self.pattern is None or re.match(self.pattern, relpath)):
                yield relpath, "record"


class _Removed(beam.DoFn):
    def __init__(self, root: str, source: str, prune: bool, in_place: bool):
        self.root, self.source, self.prune, self.in_place = root, source, prune, in_place

    def process(self, element, failures):
        relpath, seen = element
        record = None if failures or "listed" in seen else read_record(f"{self.root}/{to_os(relpath)}.json")
        if record and "model_id" in record and record.get("input") == self.source:  # this source's, image gone
            try:
                pruned = self.prune and self._prune(relpath, record)
            except OSError:
                pruned = False
            if pruned:
                beam.metrics.Metrics.counter("altvoice", "images_pruned").inc()
            yield {**described(relpath), "status": "pruned" if pruned else "removed_from_source"}

    def _prune(self, relpath: str, record: dict) -> bool:
        """Deletes the record and the files it claims that the job could have made for this image
        (never any other name), regular files only."""
        fs, path = fsspec.core.url_to_fs(f"{self.root}/{to_os(relpath)}.json")
        folder, base = posixpath.dirname(path), posixpath.basename(to_os(relpath))
        stem, ext = posixpath.splitext(base)
        own = {f"{base}.{e}" for e in ("wav", "mp3", "ogg")} | {f"{stem}.alt{ext}" if self.in_place else base}
        for name in sorted(own & {to_os(n) for n in claimed(record)}):
            target = f"{folder}/{name}"
            if fs.exists(target) and fs.isfile(target) and not (is_local(fs) and os.path.islink(target)):
                fs.rm_file(target)
        fs.rm_file(path)
        return True


class FindRemoved(beam.PTransform):
    """(listed relative paths, error records of the read) -> manifest lines of images whose record
    (written from `source`) has no image any more. `pattern`: a regex the relative paths of a glob
    or single-file source match."""

    def __init__(self, root: str, source: str, pattern: str | None, prune: bool, in_place: bool):
        super().__init__()
        self.root, self.source, self.pattern, self.prune, self.in_place = root, source, pattern, prune, in_place

    def expand(self, inputs):
        listed, errors = inputs
        failures = (
            errors
            | "ListingFailures" >> beam.Filter(lambda e: e["kind"] in LISTING_FAILURES)
            | "CountFailures" >> beam.combiners.Count.Globally()
        )
        records = (
            listed.pipeline
            | "OutputRoot" >> beam.Create([self.root])
            | "ListRecords" >> beam.ParDo(_ListRecords(self.root, self.pattern))
        )
        return (
            (listed | "Seen" >> beam.Map(lambda name: (name, "listed")), records)
            | "Both" >> beam.Flatten()
            | "ByImage" >> beam.GroupByKey()
            | "Removed" >> beam.ParDo(_Removed(self.root, self.source, self.prune, self.in_place),
                                      beam.pvalue.AsSingleton(failures))
        )
