"""Alt text embedded losslessly in JPEG and PNG copies, readable by Pillow's XMP reader."""
import io
from xml.etree import ElementTree

import numpy as np
import pytest
from PIL import Image

from altvoice.xmp import UnsupportedFormat, embed_alt_text
from testdata import encode, scene_image

ALT = 'A dog & a cat "playing" <outside>.'


def alt_of(data: bytes) -> str:
    """Reads the packet back the way Pillow finds it, and parses it as XML."""
    info = Image.open(io.BytesIO(data)).info
    packet = info.get("xmp") or info["XML:com.adobe.xmp"]
    root = ElementTree.fromstring(packet if isinstance(packet, str) else packet.decode("utf-8"))
    field = root.find(".//{http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/}AltTextAccessibility")
    return field.find(".//{http://www.w3.org/1999/02/22-rdf-syntax-ns#}li").text


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_alt_text_is_embedded_and_pixels_are_unchanged(fmt):
    original = encode(scene_image((200, 40, 40)), fmt)
    tagged = embed_alt_text(original, ALT)
    assert alt_of(tagged) == ALT
    before, after = Image.open(io.BytesIO(original)), Image.open(io.BytesIO(tagged))
    np.testing.assert_array_equal(np.asarray(before), np.asarray(after))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_embedding_twice_replaces_the_packet(fmt):
    tagged = embed_alt_text(embed_alt_text(encode(scene_image((1, 2, 3)), fmt), "first"), "second")
    assert alt_of(tagged) == "second" and tagged.count(b"AltTextAccessibility") == 2  # open + close tag


def test_exif_is_kept():
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x010E] = "camera description"
    scene_image((9, 9, 9)).save(buffer, "JPEG", exif=exif)
    tagged = embed_alt_text(buffer.getvalue(), ALT)
    assert Image.open(io.BytesIO(tagged)).getexif()[0x010E] == "camera description"


def test_other_formats_are_refused():
    with pytest.raises(UnsupportedFormat):
        embed_alt_text(encode(scene_image((1, 2, 3)), "GIF"), ALT)
