"""The review page of a caption output folder: what each image shows on it, and the static page itself.

    <output>/review/index.html, review.js, review.css    the page (altvoice/review_page/)
    <output>/review/data/records-NNNNN.js, run.js       the records, as scripts (they load from a folder too)
    <output>/review/thumbs/<hash>.jpg                   thumbnails, at most THUMB_SIZE pixels a side

The folder is the job's own: a review/index.html that altvoice did not write is never replaced.
"""
import hashlib
import json
import os
import re
import urllib.parse
from importlib import resources

import fsspec

from altvoice.names import to_os, wire_name
from altvoice.outputs import alt_text, atomic_write, exists

PAGE_DIR = "review"
GENERATOR = '<meta name="generator" content="altvoice review">'
ASSETS = ("review.js", "review.css")
DATA_MARK = "<!-- altvoice:data -->"
CHUNK = 5000  # records a data script
PAGE_FILES = re.compile(re.escape(PAGE_DIR) + r"/(index\.html|review\.js|review\.css|errors\.jsonl|data/run\.js|"
                        r"data/records-\d{5}\.js|thumbs/[0-9a-f]{24}\.jpg)\Z")  # what the page's folder holds of ours
THUMB_SIZE = 160
ERRORS_SHOWN = 10000  # error lines listed on the page, at most (errors.jsonl has them all)
SHOWN_STATUSES = ("written", "partial", "up_to_date", "failed")


def thumb_name(wire: str, stamp: dict) -> str:
    """The thumbnail's file under review/, named from the record's source stamp: the page and the
    thumbnail agree by construction, and a new version of the image (a new stamp once the caption
    job has redone it) gets a new thumbnail."""
    digest = hashlib.sha1(json.dumps([os.fsencode(to_os(wire)).hex(), sorted(stamp.items())]).encode())
    return f"thumbs/{digest.hexdigest()[:24]}.jpg"


def _url(path: str) -> str:
    return urllib.parse.quote(os.fsencode(path), safe="/")


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def page_record(line: dict, record: dict | None, has_thumb: bool, reasons: list) -> dict:
    """What the page shows of one image: its manifest line, its record (None if it failed before
    one was written), whether its thumbnail exists, and the reasons it failed. Values of the wrong
    type in a record (it is a file anyone can edit) are left out."""
    wire = wire_name(line)
    shown = {key: line[key] for key in ("image", "image_raw") if isinstance(line.get(key), str)}
    shown["status"] = line["status"]
    record = record or {}
    kinds = {"caption": str, "model_id": str, "voice": str, "grounding": str, "needs_review": bool,
             "score": (int, float), "confidence": (int, float)}
    shown.update((key, record[key]) for key, kind in kinds.items() if isinstance(record.get(key), kind))
    shown["alt_text"] = _text(record.get("alt_text")) or _text(line.get("alt_text")) or ""
    correction = record.get("correction")
    if isinstance(correction, dict):
        shown["source"] = "human"
        shown["model_alt_text"] = alt_text(_text(record.get("caption")) or "")
        if correction.get("decision") in ("approved", "rejected"):
            shown["decision"] = correction["decision"]
        if _text(correction.get("time")):
            shown["correction_time"] = correction["time"]
    audio = _text(record.get("audio"))
    if audio and "/" not in audio:
        shown["audio"] = "../" + _url(os.path.join(os.path.dirname(to_os(wire)), to_os(audio)))
    if has_thumb and isinstance(record.get("source"), dict):
        shown["thumb"] = thumb_name(wire, record["source"])
    if reasons:
        shown["reasons"] = sorted(set(reasons))
    return shown


def check_ours(root: str) -> None:
    """ValueError unless <root>/review/ is the page's own folder: absent, empty, or holding an
    index.html altvoice wrote."""
    folder = f"{root}/{PAGE_DIR}"
    fs, path = fsspec.core.url_to_fs(folder)
    if not fs.isdir(path) or not fs.ls(path):
        return
    index = f"{folder}/index.html"
    head = b""
    if exists(index):
        with fsspec.open(index, "rb") as f:
            head = f.read(4096)
    if GENERATOR.encode() not in head:
        raise ValueError(f"{folder} holds files and no review page altvoice wrote: move them, or choose another "
                         "output")


def _script(call: str, value) -> bytes:
    return f"altvoiceReview.{call}({json.dumps(value, ensure_ascii=True, sort_keys=True)});\n".encode()


def write_page(root: str, records: list, run: dict) -> str:
    """Writes the page for `records` (page_record dicts) and `run` (counts, errors, errors_total,
    created, id) under <root>/review/; the data first, index.html last. Returns index.html's URL."""
    folder = f"{root}/{PAGE_DIR}"
    records = sorted(records, key=lambda r: (r["image"], r.get("image_raw", "")))
    names = []
    for start in range(0, len(records), CHUNK):
        names.append(f"data/records-{start // CHUNK:05d}.js")
        atomic_write(f"{folder}/{names[-1]}", _script("addRecords", records[start:start + CHUNK]))
    atomic_write(f"{folder}/data/run.js", _script("setRun", run))
    _remove_stale(folder, "data", r"records-\d{5}\.js", set(names))
    _remove_stale(folder, "thumbs", r"[0-9a-f]{24}\.jpg", {r["thumb"] for r in records if "thumb" in r})
    page = resources.files("altvoice") / "review_page"
    for asset in ASSETS:
        atomic_write(f"{folder}/{asset}", (page / asset).read_bytes())
    tags = "\n".join(f'<script src="{name}"></script>' for name in ["data/run.js", *names])
    index = (page / "index.html").read_text(encoding="utf-8").replace(DATA_MARK, tags)
    atomic_write(f"{folder}/index.html", index.encode("utf-8"))
    return f"{folder}/index.html"


def _remove_stale(folder: str, sub: str, pattern: str, keep: set) -> None:
    """Files of ours under <folder>/<sub> (names matching `pattern`) that the page no longer uses:
    data scripts of an earlier, larger page, thumbnails of images gone or changed."""
    fs, path = fsspec.core.url_to_fs(f"{folder}/{sub}")
    try:
        found = fs.ls(path, detail=False)
    except FileNotFoundError:
        return
    for name in found:
        base = os.path.basename(name)
        if re.fullmatch(pattern, base) and f"{sub}/{base}" not in keep:
            fs.rm_file(name)
