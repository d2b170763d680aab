"""Reading caption files: Flickr8k token format (`<image>#<n>\\t<caption>`), an `image,caption` CSV,
MS-COCO captions JSON (`captions_train2014.json`) or a Karpathy split JSON (`dataset_coco.json`)."""
import csv
import json
import posixpath
import re

import fsspec

KARPATHY_SPLITS = {"train": "train", "restval": "train", "val": "dev", "test": "test"}
JSON_START = re.compile(r"\s*\{")


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


def load(path: str) -> dict | list[str]:
    """A captions or split file, read once: its JSON object if it starts with `{`, else its lines.
    Raises OSError, or ValueError for malformed JSON."""
    with fsspec.open(path, "r", encoding="utf-8-sig", errors="replace") as f:
        text = f.read()
    return json.loads(text) if JSON_START.match(text) else text.splitlines()


def is_karpathy(path: str) -> bool:
    """Whether the file looks like a Karpathy split JSON: `{` first and, within its first 64 KiB (the
    first image's entry), "sentences". MS-COCO captions files have no splits of their own."""
    with fsspec.open(path, "r", encoding="utf-8-sig", errors="replace") as f:
        head = f.read(65536)
    return bool(JSON_START.match(head)) and '"sentences"' in head


def json_format(data: dict) -> str:
    """'coco' for MS-COCO captions ("images" and "annotations"), 'karpathy' for "images" with
    "sentences", else ValueError."""
    images = data.get("images")
    if isinstance(images, list) and isinstance(data.get("annotations"), list):
        return "coco"
    if isinstance(images, list) and all(isinstance(i, dict) and "sentences" in i for i in images[:1]):
        return "karpathy"
    raise ValueError("neither MS-COCO captions ('images' and 'annotations') nor a Karpathy split "
                     "('images' with 'sentences')")


def json_images(data: dict, fmt: str):
    """(entry, image name or '' when it has none) for each entry of the JSON's "images"."""
    key = "file_name" if fmt == "coco" else "filename"
    for image in data["images"]:
        name = image.get(key) if isinstance(image, dict) else None
        yield image, posixpath.basename(name.strip()) if isinstance(name, str) else ""


def json_captions(data: dict, fmt: str):
    """(where, image name or None when its image_id is unknown, caption) for each caption of the JSON."""
    if fmt == "karpathy":
        for index, (image, name) in enumerate(json_images(data, fmt)):
            sentences = image.get("sentences") if name else None
            for number, sentence in enumerate(sentences or []):
                yield f"images[{index}].sentences[{number}]", name, sentence.get("raw")
        return
    names = {image.get("id"): name for image, name in json_images(data, fmt) if name}
    for index, annotation in enumerate(data["annotations"]):
        image_id = annotation.get("image_id")
        name = names.get(image_id) if isinstance(image_id, int | str) else None  # a list id is unknown too
        yield f"annotations[{index}]", name, annotation.get("caption")
