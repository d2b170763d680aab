"""Alt text embedded losslessly in JPEG and PNG copies, merged into existing XMP, readable by Pillow's XMP reader."""
import io
import struct
from xml.etree import ElementTree

import numpy as np
import pytest
from PIL import Image, ImageCms, PngImagePlugin

from altvoice.xmp import UnsupportedFormat, embed_alt_text
from testdata import encode, scene_image

ALT = 'A dog & a cat "playing" <outside>.'
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
DC = "{http://purl.org/dc/elements/1.1/}"
ACME = "{http://example.com/acme/1.0/}"
IPTC = "{http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/}"
LANG = "{http://www.w3.org/XML/1998/namespace}lang"
XMP_NS = b"http://ns.adobe.com/xap/1.0/\x00"
GUID = "0123456789ABCDEF0123456789ABCDEF"
PHOTO_XMP = f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="Test XMP 1.0">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:xmpNote="http://ns.adobe.com/xmp/note/"
    xmlns:acme="http://example.com/acme/1.0/"
    dc:format="image/jpeg" xmpNote:HasExtendedXMP="{GUID}" acme:shotId="A-17">
   <dc:creator><rdf:Seq><rdf:li>Ana Photographer</rdf:li><rdf:li>Bo Assistant</rdf:li></rdf:Seq></dc:creator>
   <dc:rights><rdf:Alt><rdf:li xml:lang="x-default">© 2024 Ana</rdf:li></rdf:Alt></dc:rights>
   <dc:description>
    <rdf:Alt>
     <rdf:li xml:lang="x-default">Old caption</rdf:li>
     <rdf:li xml:lang="de">Alte Beschreibung</rdf:li>
    </rdf:Alt>
   </dc:description>
   <acme:project><rdf:Bag><rdf:li>spring</rdf:li></rdf:Bag></acme:project>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""


def packet_of(data: bytes) -> str:
    """The XMP packet the way Pillow finds it."""
    info = Image.open(io.BytesIO(data)).info
    packet = info.get("xmp") or info["XML:com.adobe.xmp"]
    return packet if isinstance(packet, str) else packet.decode("utf-8")


def alt_of(data: bytes) -> str:
    field = ElementTree.fromstring(packet_of(data)).find(f".//{IPTC}AltTextAccessibility")
    return field.find(f".//{RDF}li").text


def lang_alt(root, name) -> dict:
    return {li.get(LANG): li.text for prop in root.iter(name) for li in prop.iter(f"{RDF}li")}


def segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


def jpeg_segments(data: bytes) -> tuple[list[bytes], bytes]:
    """Every segment before the scan, and the rest of the file."""
    position, found = 2, []
    while data[position + 1] != 0xDA:
        end = position + 2 + struct.unpack(">H", data[position + 2 : position + 4])[0]
        found.append(data[position:end])
        position = end
    return found, data[position:]


def png_chunks(data: bytes) -> list[bytes]:
    position, found = 8, []
    while position < len(data):
        end = position + 12 + struct.unpack(">I", data[position : position + 4])[0]
        found.append(data[position:end])
        position = end
    return found


def is_xmp(part: bytes) -> bool:
    return part[:2] == b"\xff\xe1" and part[4:].startswith(XMP_NS) or part[4:26] == b"iTXtXML:com.adobe.xmp\x00"


def iptc_app13() -> bytes:
    """A Photoshop APP13 segment with an IPTC-IIM block (8BIM 0x0404): caption and by-line."""
    iim = b"".join(b"\x1c\x02" + bytes([n]) + struct.pack(">H", len(v)) + v
                   for n, v in ((0, b"\x00\x04"), (120, b"IPTC caption"), (80, b"Ana Photographer")))
    block = b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(iim)) + iim + b"\x00" * (len(iim) % 2)
    return segment(0xED, b"Photoshop 3.0\x00" + block)


def exif_and_icc() -> dict:
    exif = Image.Exif()
    exif[0x010E] = "camera description"
    return {"exif": exif, "icc_profile": ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()}


def photo_jpeg(packet: str = PHOTO_XMP) -> bytes:
    """JFIF, EXIF, COM, XMP, Extended XMP, ICC and IPTC segments, in that order."""
    base = encode(scene_image((200, 120, 40)), "JPEG", comment="a COM segment", **exif_and_icc())
    (jfif, exif, icc, com, *tables), scan = jpeg_segments(base)
    assert (jfif[1], exif[1], icc[1], com[1]) == (0xE0, 0xE1, 0xE2, 0xFE)
    extension = b"http://ns.adobe.com/xmp/extension/\x00" + GUID.encode() + struct.pack(">II", 30, 0)
    parts = [jfif, exif, com, segment(0xE1, XMP_NS + packet.encode()),
             segment(0xE1, extension + b"<x:xmpmeta xmlns:x='adobe'/> "), icc, iptc_app13()]
    return b"\xff\xd8" + b"".join(parts + tables) + scan


def photo_png(packet: str = PHOTO_XMP, zip_xmp: bool = False) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "a tEXt chunk")
    info.add_text("Comment", "a zTXt chunk " * 20, zip=True)
    info.add_itxt("XML:com.adobe.xmp", packet, zip=zip_xmp)
    info.add_text("Software", "after the XMP")
    return encode(scene_image((40, 120, 200)), "PNG", pnginfo=info, **exif_and_icc())


def assert_merged(packet: str) -> None:
    """The alt text is set; every other property, language, prefix and the wrapper survive."""
    root = ElementTree.fromstring(packet)
    assert lang_alt(root, f"{IPTC}AltTextAccessibility") == {"x-default": ALT}
    assert lang_alt(root, f"{DC}description") == {"x-default": ALT, "de": "Alte Beschreibung"}
    assert lang_alt(root, f"{DC}rights") == {"x-default": "© 2024 Ana"}
    assert [li.text for li in root.find(f".//{DC}creator").iter(f"{RDF}li")] == ["Ana Photographer", "Bo Assistant"]
    assert [li.text for li in root.find(f".//{ACME}project").iter(f"{RDF}li")] == ["spring"]
    description = root.find(f".//{RDF}Description")
    assert description.get(f"{DC}format") == "image/jpeg" and description.get(f"{ACME}shotId") == "A-17"
    assert description.get("{http://ns.adobe.com/xmp/note/}HasExtendedXMP") == GUID
    for kept in ('xmlns:acme="http://example.com/acme/1.0/"', '<acme:project>', 'acme:shotId="A-17"',
                 'xmlns:xmpNote="http://ns.adobe.com/xmp/note/"', '<dc:creator>', 'x:xmptk="Test XMP 1.0"'):
        assert kept in packet
    assert "ns0:" not in packet and packet.count("<Iptc4xmpCore:AltTextAccessibility") == 1
    assert packet.startswith('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>')
    assert packet.endswith('<?xpacket end="w"?>')


def assert_same_pixels(original: bytes, tagged: bytes) -> None:
    before, after = Image.open(io.BytesIO(original)), Image.open(io.BytesIO(tagged))
    np.testing.assert_array_equal(np.asarray(before), np.asarray(after))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_alt_text_is_embedded_and_pixels_are_unchanged(fmt):
    original = encode(scene_image((200, 40, 40)), fmt)
    tagged = embed_alt_text(original, ALT)
    assert alt_of(tagged) == ALT
    assert_same_pixels(original, tagged)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_embedding_again_replaces_the_alt_text(fmt):
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


def test_jpeg_merge_keeps_xmp_properties_and_every_other_segment():
    original = photo_jpeg()
    tagged = embed_alt_text(original, ALT)
    assert_merged(packet_of(tagged))
    (before, scan_before), (after, scan_after) = jpeg_segments(original), jpeg_segments(tagged)
    assert [is_xmp(s) for s in before] == [is_xmp(s) for s in after]  # the XMP segment stays in place
    assert [s for s in before if not is_xmp(s)] == [s for s in after if not is_xmp(s)]  # byte for byte, in order
    assert scan_before == scan_after
    assert_same_pixels(original, tagged)
    assert Image.open(io.BytesIO(tagged)).getexif()[0x010E] == "camera description"


@pytest.mark.parametrize("zip_xmp", [False, True], ids=["plain", "compressed"])
def test_png_merge_keeps_xmp_properties_and_every_other_chunk(zip_xmp):
    original = photo_png(zip_xmp=zip_xmp)
    tagged = embed_alt_text(original, ALT)
    assert_merged(packet_of(tagged))
    before, after = png_chunks(original), png_chunks(tagged)
    assert [is_xmp(c) for c in before] == [is_xmp(c) for c in after]
    assert [c for c in before if not is_xmp(c)] == [c for c in after if not is_xmp(c)]
    assert {c[4:8] for c in before} >= {b"eXIf", b"iCCP", b"tEXt", b"zTXt", b"IDAT"}
    assert_same_pixels(original, tagged)


@pytest.mark.parametrize("make", [photo_jpeg, photo_png, lambda: encode(scene_image((5, 5, 5)), "JPEG")])
def test_merge_is_idempotent(make):
    once = embed_alt_text(make(), ALT)
    assert embed_alt_text(once, ALT) == once
    parts = png_chunks(once) if once.startswith(b"\x89PNG") else jpeg_segments(once)[0]
    assert sum(map(is_xmp, parts)) == 1


def test_fields_are_replaced_where_they_are():
    """An existing alt text in another rdf:Description, and a (non-standard) short-form dc:description."""
    packet = PHOTO_XMP.replace("<dc:description>", "<dc:description-x>")
    packet = packet.replace("</dc:description>", "</dc:description-x>")
    packet = packet.replace('dc:format="image/jpeg"', 'dc:format="image/jpeg" dc:description="flat"').replace(
        "</rdf:RDF>", '<rdf:Description rdf:about="" xmlns:Iptc4xmpCore="http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/">'
        '<Iptc4xmpCore:AltTextAccessibility><rdf:Alt><rdf:li xml:lang="fr">Un chien</rdf:li>'
        '<rdf:li xml:lang="x-default">Old alt</rdf:li></rdf:Alt></Iptc4xmpCore:AltTextAccessibility>'
        "</rdf:Description></rdf:RDF>")
    root = ElementTree.fromstring(packet_of(embed_alt_text(photo_jpeg(packet), ALT)))
    first, second = root.iter(f"{RDF}Description")
    assert f"{DC}description" not in first.attrib and lang_alt(first, f"{DC}description") == {"x-default": ALT}
    assert lang_alt(second, f"{IPTC}AltTextAccessibility") == {"fr": "Un chien", "x-default": ALT}
    assert first.find(f"{IPTC}AltTextAccessibility") is None


UNREADABLE = {
    "malformed": '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF',
    "doctype": '<?xml version="1.0"?><!DOCTYPE x:xmpmeta [<!ENTITY e "boom">]>' + PHOTO_XMP.replace("Ana", "&e;"),
    "not rdf": "<photo>nothing here</photo>",
}


@pytest.mark.parametrize("make", [photo_jpeg, photo_png])
@pytest.mark.parametrize("packet", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_unreadable_packet_is_refused(make, packet):
    with pytest.raises(ValueError, match="existing XMP can't be read"):
        embed_alt_text(make(packet), ALT)


def test_packet_too_large_for_a_jpeg_segment_is_refused():
    big = PHOTO_XMP.replace("spring", "s" * (65000 - len(PHOTO_XMP.encode())))
    original = photo_jpeg(big)
    assert embed_alt_text(original, "short") and packet_of(original)
    with pytest.raises(ValueError, match="JPEG APP1 segment"):
        embed_alt_text(original, ALT * 20)


@pytest.mark.parametrize("make", [photo_jpeg, photo_png])
def test_an_independent_reader_sees_the_merged_metadata(make):
    pyexiv2 = pytest.importorskip("pyexiv2")
    with pyexiv2.ImageData(embed_alt_text(make(), ALT)) as image:
        xmp, exif = image.read_xmp(), image.read_exif()
        iptc = image.read_iptc() if make is photo_jpeg else {}
    assert xmp["Xmp.iptc.AltTextAccessibility"] == {'lang="x-default"': ALT}
    assert xmp["Xmp.dc.description"] == {'lang="x-default"': ALT, 'lang="de"': "Alte Beschreibung"}
    assert xmp["Xmp.dc.creator"] == ["Ana Photographer", "Bo Assistant"]
    assert xmp["Xmp.dc.rights"] == {'lang="x-default"': "© 2024 Ana"}
    assert xmp["Xmp.dc.format"] == "image/jpeg" and xmp["Xmp.acme.shotId"] == "A-17"
    assert exif["Exif.Image.ImageDescription"] == "camera description"
    if make is photo_jpeg:
        assert iptc["Iptc.Application2.Caption"] == "IPTC caption"
        assert iptc["Iptc.Application2.Byline"] == ["Ana Photographer"]
