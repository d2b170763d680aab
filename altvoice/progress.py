"""A progress bar for local runs: counts elements passing a point of the pipeline."""
import sys

import apache_beam as beam


class ShowProgress(beam.DoFn):
    """Passes elements through, updating a tqdm bar on stderr when it is a terminal (local runs).

    On remote workers stderr is no terminal, so nothing is drawn; Beam metrics count there.
    """

    def __init__(self, description: str):
        self.description = description
        self.bar = None

    def setup(self):
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(desc=self.description, unit=" images", dynamic_ncols=True)

    def process(self, element):
        if self.bar is not None:
            self.bar.update()
        yield element

    def teardown(self):
        if self.bar is not None:
            self.bar.close()
