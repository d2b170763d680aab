"""Progress of a local run: a bar with total and ETA on a terminal, a few log lines otherwise.

The listing step announces how many files it found (`expect`); `ShowProgress` counts elements
passing a point of the pipeline. Both run in the launching process on the local runners; on
remote workers there is no terminal and Beam's metrics count instead.
"""
import os
import sys
import threading
import time

import apache_beam as beam

from altvoice.console import log

LOG_EVERY_S = 30
_expected = {"total": 0, "known": False}
_lock = threading.Lock()


def reset() -> None:
    """Forgets the expected total (a new pipeline is being built in this process)."""
    with _lock:
        _expected.update(total=0, known=False)


def expect(count: float) -> None:
    """Adds `count` to what the bar should reach (called as the source is listed)."""
    with _lock:
        _expected["total"] += count
        _expected["known"] = True


class ShowProgress(beam.DoFn):
    """Passes elements through, counting them (or `weight(element)` of each, in `unit`) on a tqdm
    bar (terminal) or in log lines every LOG_EVERY_S seconds (no terminal)."""

    def __init__(self, description: str, unit: str = " images", weight=None):
        self.description, self.unit, self.weight = description, unit, weight
        self.bar, self.done, self.last_log = None, 0, 0.0

    def setup(self):
        if sys.stderr.isatty():
            from tqdm import tqdm

            try:
                sized = os.get_terminal_size(sys.stderr.fileno()).columns > 0
            except (OSError, ValueError):
                sized = False
            width = {"dynamic_ncols": True} if sized else {"ncols": 100, "nrows": 40}  # a pty of size 0x0: tqdm draws nothing
            self.bar = tqdm(desc=self.description, unit=self.unit, file=sys.stderr, **width)
        self.last_log = time.monotonic()

    def process(self, element):
        step = self.weight(element) if self.weight else 1
        self.done += step
        total = _expected["total"] if _expected["known"] else None
        if self.bar is not None:
            if total and self.bar.total != total:
                self.bar.total = total
                self.bar.refresh()
            self.bar.update(step)
        elif time.monotonic() - self.last_log >= LOG_EVERY_S:
            self.last_log = time.monotonic()
            log.info("%s: %d%s%s", self.description, self.done, f" of {total:.0f}" if total else "", self.unit)
        yield element

    def teardown(self):
        if self.bar is not None:
            self.bar.close()
