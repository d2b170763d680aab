"""Beam steps reading caption and split files (the formats: altvoice.caption_files)."""
import posixpath

import apache_beam as beam

from altvoice.caption_files import KARPATHY_SPLITS, json_captions, json_format, json_images, load, parse_lines
from altvoice.errors import tagged_error

SPLITS = "splits"  # the tag of ReadCaptions' (image, split) output


class ReadCaptions(beam.DoFn):
    """A captions file path -> (image, caption), and (image, split) tagged SPLITS: with `file_splits`
    ({file: split} of the split flags) for every image of a named file, without (no split flags) for
    Karpathy images by their own split. Malformed lines or JSON, captions of unknown images, empty
    captions and, without split flags, an MS-COCO captions file become error records."""

    def __init__(self, file_splits: dict | None = None):
        self.file_splits = file_splits

    def split_of(self, path: str, own) -> str | None:
        if self.file_splits is None:
            return KARPATHY_SPLITS.get(own)
        return self.file_splits.get(path)

    def process(self, path):
        try:
            content = load(path)
            fmt = json_format(content) if isinstance(content, dict) else None
        except OSError as err:
            yield tagged_error(path, "captions", "unreadable_captions", f"cannot read {path}: {err}")
            return
        except ValueError as err:
            yield tagged_error(path, "captions", "malformed_json", f"{path}: {err}")
            return
        if not fmt:
            yield from self.read_lines(path, content)
            return
        try:
            yield from self.read_json(path, content, fmt)
        except (AttributeError, TypeError) as err:  # an entry of the wrong type: the rest of the file is lost
            yield tagged_error(path, "captions", "malformed_json", f"{path}: unexpected structure: {err}")

    def read_lines(self, path, lines):
        split = self.split_of(path, None)
        for number, line, parsed in parse_lines(path, lines):
            if isinstance(parsed, ValueError):
                yield tagged_error(f"{path}:{number}", "captions", "malformed_line", f"{parsed}: {line[:80]!r}")
                continue
            if split:
                yield beam.pvalue.TaggedOutput(SPLITS, (parsed[0], split))
            yield from self.emit(*parsed, f"{path}:{number}")

    def read_json(self, path, data, fmt):
        if fmt == "coco" and self.file_splits is None:
            yield tagged_error(path, "captions", "no_splits", "MS-COCO captions carry no splits: name the file "
                               "in --train-split, --dev-split or --test-split")
        for index, (image, name) in enumerate(json_images(data, fmt)):
            if not name:
                yield tagged_error(f"{path}:images[{index}]", "captions", "malformed_entry", "no file name")
                continue
            split = self.split_of(path, image.get("split"))
            if split:
                yield beam.pvalue.TaggedOutput(SPLITS, (name, split))
        for where, name, caption in json_captions(data, fmt):
            if name is None:
                yield tagged_error(f"{path}:{where}", "captions", "unknown_image_id", "image_id not in 'images'")
            else:
                yield from self.emit(name, caption, f"{path}:{where}")

    @staticmethod
    def emit(image: str, caption, where: str):
        caption = caption.strip() if isinstance(caption, str) else ""
        if not caption:
            yield tagged_error(image, "captions", "empty_caption", f"empty caption at {where}")
            return
        beam.metrics.Metrics.counter("altvoice", "captions_read").inc()
        yield image, caption


class ReadSplit(beam.DoFn):
    """(split, file) -> (image name, split) for each name the file lists, one a line, or each image of
    a COCO or Karpathy JSON."""

    def process(self, element):
        split, path = element
        try:
            content = load(path)
            if isinstance(content, dict):
                names = [name for _, name in json_images(content, json_format(content))]
            else:
                names = [posixpath.basename(line.strip()) for line in content]
        except (OSError, ValueError) as err:
            yield tagged_error(path, "splits", "unreadable_split", f"cannot read the {split} split {path}: {err}")
            return
        for name in names:
            if name:
                yield name, split


class ReadCorrections(beam.DoFn):
    """A corrections.jsonl path (the review page's) -> (image, human alt text): extra captions of the
    image of that name under --images. Lines without an alt text add nothing; unusable lines and an
    unreadable file are error records."""

    def process(self, path):
        from altvoice.corrections import STAGE, read_corrections

        try:
            found, errors = read_corrections(path)
        except OSError as err:
            yield tagged_error(path, STAGE, "unreadable_corrections", f"cannot read {path}: {err}")
            return
        for error in errors:
            yield tagged_error(error["image"], STAGE, error["kind"], f"{path}: {error['reason']}")
        for image, correction in found.items():
            if correction.alt_text:
                beam.metrics.Metrics.counter("altvoice", "correction_captions").inc()
                yield image, correction.alt_text
