"""Error records: every bad input becomes one JSON line with its reason, never a crash."""
import json

import apache_beam as beam

from altvoice.names import described

ERRORS = "errors"  # the tag of error outputs in multi-output DoFns


def error_record(image: str, stage: str, kind: str, reason: str) -> dict:
    """One bad input: which image (or line), the stage that rejected it, a kind to count, and why.
    `image` is a wire-form name (altvoice.names): the record shows it printable, raw bytes beside."""
    return {**described(image), "stage": stage, "kind": kind, "reason": reason}


def tagged_error(image: str, stage: str, kind: str, reason: str):
    """The error record as a tagged output of a DoFn, counted in the Beam metrics."""
    beam.metrics.Metrics.counter("altvoice", f"failed_{stage}").inc()
    return beam.pvalue.TaggedOutput(ERRORS, error_record(image, stage, kind, reason))


class WriteErrors(beam.PTransform):
    """Writes error records, one JSON object a line, to `<prefix>.jsonl` (one file)."""

    def __init__(self, path_prefix: str):
        super().__init__()
        self.path_prefix = path_prefix

    def expand(self, errors):
        return (
            errors
            | "ToJson" >> beam.Map(json.dumps, sort_keys=True)
            | "Write" >> beam.io.WriteToText(
                self.path_prefix, file_name_suffix=".jsonl", num_shards=1, shard_name_template=""
            )
        )
