"""Names that are not UTF-8: a reversible wire form, a printable form and the raw bytes."""
import os

import pytest

from altvoice.names import ESCAPE, described, printable, raw, to_os, to_wire


@pytest.mark.parametrize("name", ["plain.jpg", "café/ü.png", os.fsdecode(b"bad\xff.jpg"), f"apple{ESCAPE}.jpg",
                                  os.fsdecode(b"x\xe9" + ESCAPE.encode() + b"\x80.jpg"), f"{ESCAPE}41.jpg"])
def test_wire_form_is_valid_text_and_reversible(name):
    wire = to_wire(name)
    wire.encode("utf-8")  # no surrogates left
    assert to_os(wire) == name


def test_utf8_names_are_their_own_wire_form():
    assert to_wire("café.jpg") == "café.jpg" and described("café.jpg") == {"image": "café.jpg"}


def test_records_show_a_printable_name_and_the_raw_bytes():
    wire = to_wire(os.fsdecode(b"caf\xe9 1.jpg"))
    assert printable(wire) == "caf\\xe9 1.jpg" and raw(wire) == "caf%E9%201.jpg"
    assert described(wire) == {"image": "caf\\xe9 1.jpg", "image_raw": "caf%E9%201.jpg"}
