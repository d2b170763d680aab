"""The progress bar on a real terminal (a pseudo-terminal), with the total the listing announced."""
import os
import sys

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from altvoice import progress


def test_bar_counts_to_the_announced_total_on_a_terminal(monkeypatch):
    master, terminal = os.openpty()
    monkeypatch.setattr(sys, "stderr", os.fdopen(terminal, "w", buffering=1))
    progress.reset()
    progress.expect(5)
    with TestPipeline(options=PipelineOptions(["--runner", "FnApiRunner"])) as p:  # in this process
        out = p | beam.Create(range(5)) | beam.ParDo(progress.ShowProgress("images"))
        assert_that(out, equal_to(list(range(5))))
    sys.stderr.flush()
    drawn = os.read(master, 65536).decode("utf-8", "replace")
    assert "images" in drawn and "5/5" in drawn


def test_without_a_terminal_nothing_is_drawn(monkeypatch, capsys):
    progress.reset()
    with TestPipeline() as p:
        _ = p | beam.Create(range(3)) | beam.ParDo(progress.ShowProgress("images"))
    assert "images" not in capsys.readouterr().err


def test_a_weighted_bar_counts_what_each_element_is_worth(monkeypatch):
    master, terminal = os.openpty()
    monkeypatch.setattr(sys, "stderr", os.fdopen(terminal, "w", buffering=1))
    progress.reset()
    progress.expect(6)
    with TestPipeline(options=PipelineOptions(["--runner", "FnApiRunner"])) as p:
        _ = p | beam.Create([1.5, 4.5]) | beam.ParDo(progress.ShowProgress("video scanned", " s", lambda e: e))
    sys.stderr.flush()
    drawn = os.read(master, 65536).decode("utf-8", "replace")
    assert "video scanned" in drawn and "6.0/6" in drawn and " s" in drawn
