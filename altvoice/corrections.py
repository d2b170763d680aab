"""Reviewers' corrections: corrections.jsonl as the review page exports it, checked line by line.

    {"version": 1, "image": "sub/b.png", "alt_text": "A green door.", "decision": "approved",
     "note": "...", "reviewer": "Ana", "time": "2026-11-26T21:00:00.000Z"}

`image` is the name the records use (with `image_raw`, its bytes, for names that are not UTF-8);
`alt_text` and `decision` ("approved" or "rejected") may each be left out, not both. A later line
for the same image replaces an earlier one. A line that can't be used is one error record and
nothing of it is applied.
"""
import json
from typing import NamedTuple

import fsspec

from altvoice.errors import error_record
from altvoice.names import to_os, wire_name
from altvoice.sources import safe_relpath

FORMAT = 1
DECISIONS = ("approved", "rejected")
MAX_TEXT = 1000  # characters of alt text or note
STAGE = "corrections"


class Correction(NamedTuple):
    image: str  # wire form
    alt_text: str | None
    decision: str | None
    note: str
    reviewer: str
    time: str
    line: int

    def already_in(self, record: dict) -> bool:
        """True when the record holds this very correction, spoken (a scheduled run passing the same
        file again redoes nothing)."""
        held = record.get("correction")
        return isinstance(held, dict) and not held.get("pending") and held == {
            k: v for k, v in self.applied_to(record).items() if k != "pending"}

    def applied_to(self, record: dict) -> dict:
        """The record's `correction` block: the human alt text, the decision, who and when; `pending`
        until the caption job has spoken it. An approval without a text (the review page always
        sends the text it showed) approves the record's text, a pending correction's first; a
        rejection without one leaves no alt text."""
        text = self.alt_text
        if text is None and self.decision == "approved":
            earlier = record.get("correction") if isinstance(record.get("correction"), dict) else {}
            text = earlier.get("alt_text") if isinstance(earlier.get("alt_text"), str) else record.get("alt_text")
        text = text if isinstance(text, str) else ""
        block = {"source": "human", "alt_text": text, "pending": True}
        block.update((k, v) for k, v in zip(("decision", "note", "reviewer", "time"),
                                            (self.decision, self.note, self.reviewer, self.time)) if v)
        return block


def _text(line: dict, key: str, required: bool = False) -> str | None:
    value = line.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be text")
    if len(value) > MAX_TEXT:
        raise ValueError(f"{key!r} is longer than {MAX_TEXT} characters")
    return " ".join(value.split())


def parse_line(text: str, number: int) -> Correction:
    """One line as a Correction, or ValueError saying what is wrong with it."""
    try:
        line = json.loads(text)
    except ValueError as err:
        raise ValueError(f"not JSON ({err})") from None
    if not isinstance(line, dict):
        raise ValueError("not a JSON object")
    version = line.get("version")
    if not isinstance(version, int) or version < 1:
        raise ValueError("no format version (\"version\": 1)")
    if version > FORMAT:
        raise ValueError(f"format version {version} is newer than this altvoice reads ({FORMAT}): upgrade altvoice")
    _text(line, "image", required=True)
    if "image_raw" in line:
        _text(line, "image_raw", required=True)
    try:
        image = wire_name(line)
        safe_relpath(to_os(image))
    except (ValueError, TypeError) as err:  # UnsafePath, or bytes that are no name
        raise ValueError(f"image {line['image']!r}: {err}") from None
    decision = line.get("decision")
    if decision is not None and decision not in DECISIONS:
        raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
    alt_text = _text(line, "alt_text")
    if alt_text is None and decision is None:
        raise ValueError("neither an alt_text nor a decision")
    if alt_text == "":
        raise ValueError("an empty alt_text: reject the image instead")
    return Correction(image, alt_text, decision, _text(line, "note") or "", _text(line, "reviewer") or "",
                      _text(line, "time") or "", number)


def read_corrections(url: str) -> tuple[dict, list]:
    """({image: Correction}, error records) of a corrections file; OSError if it can't be read."""
    found, errors = {}, []
    with fsspec.open(url, "r", encoding="utf-8", errors="replace") as f:
        for number, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                correction = parse_line(text, number)
            except ValueError as err:
                errors.append(error_record(f"corrections line {number}", STAGE, "bad_correction", str(err)))
                continue
            found[correction.image] = correction
    return found, errors
