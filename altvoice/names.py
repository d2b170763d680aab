"""File names that are not UTF-8, carried safely through a pipeline.

Python reads such a name as text with surrogate escapes ("bad\\udcff.jpg"), which no UTF-8
coder can encode. Between reading and writing, altvoice carries every relative path in a *wire*
form that is always valid text and converts back exactly where a file is opened:

    wire = to_wire(os_name); os_name == to_os(wire)   # for every name
    printable(wire) -> "bad\\xff.jpg"   raw(wire) -> "bad%FF.jpg"   (for records)

Each undecodable byte becomes ESCAPE + two hex digits, and ESCAPE itself (a private-use
character) is doubled, so the mapping is reversible; UTF-8 names are their own wire form.
"""
import os
import re
import urllib.parse

ESCAPE = "\uf8ff"
_SURROGATE = re.compile("[\udc80-\udcff]")
_WIRE = re.compile(ESCAPE + "(" + ESCAPE + "|[0-9A-F]{2})")


def to_wire(name: str) -> str:
    """A name as read from the OS (surrogate escapes allowed) as valid text."""
    if ESCAPE not in name and not _SURROGATE.search(name):
        return name
    name = name.replace(ESCAPE, ESCAPE * 2)
    return _SURROGATE.sub(lambda m: f"{ESCAPE}{ord(m.group()) - 0xDC00:02X}", name)


def to_os(wire: str) -> str:
    """The name to open: the inverse of `to_wire`."""
    if ESCAPE not in wire:
        return wire
    return _WIRE.sub(lambda m: ESCAPE if m.group(1) == ESCAPE else chr(0xDC00 + int(m.group(1), 16)), wire)


def is_utf8(wire: str) -> bool:
    """True when the name's bytes are valid UTF-8 (its printable form is the name itself)."""
    return not _SURROGATE.search(to_os(wire))


def printable(wire: str) -> str:
    """The name for people and JSON: undecodable bytes shown as \\xNN."""
    return os.fsencode(to_os(wire)).decode("utf-8", "backslashreplace") if not is_utf8(wire) else to_os(wire)


def raw(wire: str) -> str:
    """The name's exact bytes, percent-encoded (for records of names that are not UTF-8)."""
    return urllib.parse.quote(os.fsencode(to_os(wire)), safe="/")


def described(wire: str) -> dict:
    """{'image': printable name} plus 'image_raw' (its bytes, percent-encoded) when they differ."""
    return {"image": to_os(wire)} if is_utf8(wire) else {"image": printable(wire), "image_raw": raw(wire)}


def wire_name(line: dict) -> str:
    """The wire form of the image a record, manifest or error line names (`image_raw` when present)."""
    if "image_raw" in line:
        return to_wire(os.fsdecode(urllib.parse.unquote_to_bytes(line["image_raw"])))
    return line["image"]
