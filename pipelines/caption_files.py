"""Reading caption files: Flickr8k token format (`<image>#<n>\\t<caption>`) or an `image,caption` CSV."""
import csv
import posixpath

import apache_beam as beam
import fsspec

from altvoice.errors import tagged_error


def detect_format(path: str, first_line: str) -> str:
    """'csv' for a .csv file or an `image,caption` header, else 'token'."""
    if path.lower().endswith(".csv") or first_line.strip().lower().replace(" ", "") == "image,caption":
        return "csv"
    return "token"


def parse_line(line: str, fmt: str) -> tuple[str, str]:
    """(image name, caption) from one line, or ValueError saying what is wrong with it."""
    if fmt == "csv":
        fields = next(csv.reader([line]), [])
        if len(fields) < 2:
            raise ValueError("expected 'image,caption'")
        image, caption = fields[0], ",".join(fields[1:])
    else:
        if "\t" not in line:
            raise ValueError("expected '<image>#<n><TAB><caption>'")
        key, caption = line.split("\t", 1)
        image = key.rsplit("#", 1)[0] if "#" in key else key
    image = posixpath.basename(image.strip())
    if not image:
        raise ValueError("no image name")
    return image, caption.strip()


def parse_lines(path: str, lines: list[str]):
    """(line number, line, (image, caption) or the ValueError) for each non-blank line of a captions
    file; the format is detected from the path and the first line, a CSV header skipped."""
    fmt = detect_format(path, lines[0] if lines else "")
    start = 1 if fmt == "csv" and lines and lines[0].strip().lower().startswith("image") else 0
    for number, line in enumerate(lines[start:], start + 1):
        if line.strip():
            try:
                yield number, line, parse_line(line, fmt)
            except ValueError as err:
                yield number, line, err


class ReadCaptions(beam.DoFn):
    """A captions file path -> (image, caption); malformed lines and empty captions become error records."""

    def process(self, path):
        try:
            with fsspec.open(path, "r", encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        except OSError as err:
            yield tagged_error(path, "captions", "unreadable_captions", f"cannot read {path}: {err}")
            return
        for number, line, parsed in parse_lines(path, lines):
            if isinstance(parsed, ValueError):
                yield tagged_error(f"{path}:{number}", "captions", "malformed_line", f"{parsed}: {line[:80]!r}")
                continue
            image, caption = parsed
            if not caption:
                yield tagged_error(image, "captions", "empty_caption", f"empty caption at {path}:{number}")
                continue
            beam.metrics.Metrics.counter("altvoice", "captions_read").inc()
            yield image, caption


class ReadSplit(beam.DoFn):
    """(split, file) -> (image name, split) for each name listed in the file."""

    def process(self, element):
        split, path = element
        try:
            with fsspec.open(path, "r", encoding="utf-8") as f:
                names = [posixpath.basename(n.strip()) for n in f if n.strip()]
        except OSError as err:
            yield tagged_error(path, "splits", "unreadable_split", f"cannot read the {split} split {path}: {err}")
            return
        for name in names:
            yield name, split
