"""Alt text embedded in an image copy's XMP, as IPTC "Alt Text (Accessibility)", without re-encoding.

JPEG gets an APP1 XMP segment after its leading APP segments; PNG an iTXt chunk
"XML:com.adobe.xmp" before IDAT. Pixels are untouched: only metadata bytes are added.
An existing XMP packet is replaced.
"""
import struct
import zlib
from xml.sax.saxutils import escape

XMP_NAMESPACE = b"http://ns.adobe.com/xap/1.0/\x00"


class UnsupportedFormat(ValueError):
    """Embedding is implemented for JPEG and PNG only."""


def xmp_packet(alt_text: str, description: str | None = None) -> bytes:
    """An XMP packet with Iptc4xmpCore:AltTextAccessibility (and dc:description) set."""
    text = escape(alt_text, {'"': "&quot;"})
    description = escape(description or alt_text, {'"': "&quot;"})
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:Iptc4xmpCore="http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f'<Iptc4xmpCore:AltTextAccessibility><rdf:Alt><rdf:li xml:lang="x-default">{text}</rdf:li></rdf:Alt>'
        "</Iptc4xmpCore:AltTextAccessibility>"
        f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{description}</rdf:li></rdf:Alt></dc:description>'
        '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode("utf-8")


def embed_alt_text(data: bytes, alt_text: str) -> bytes:
    """The image bytes with the alt text embedded; raises UnsupportedFormat for other formats."""
    packet = xmp_packet(alt_text)
    if data[:2] == b"\xff\xd8":
        return _jpeg(data, packet)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _png(data, packet)
    raise UnsupportedFormat("alt text can be embedded in JPEG and PNG images only")


def _jpeg(data: bytes, packet: bytes) -> bytes:
    segment = XMP_NAMESPACE + packet
    if len(segment) + 2 > 0xFFFF:
        raise ValueError("XMP packet too large for one JPEG segment")
    position, kept = 2, [data[:2]]
    while position + 4 <= len(data) and data[position] == 0xFF and 0xE0 <= data[position + 1] <= 0xEF:
        length = struct.unpack(">H", data[position + 2 : position + 4])[0]
        chunk = data[position : position + 2 + length]
        if not (data[position + 1] == 0xE1 and chunk[4:].startswith(XMP_NAMESPACE)):
            kept.append(chunk)  # keep JFIF, EXIF and others; drop an old XMP packet
        position += 2 + length
    app1 = b"\xff\xe1" + struct.pack(">H", len(segment) + 2) + segment
    return b"".join(kept) + app1 + data[position:]


def _png(data: bytes, packet: bytes) -> bytes:
    body = b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + packet  # keyword, no compression, no language
    chunk = struct.pack(">I", len(body)) + b"iTXt" + body + struct.pack(">I", zlib.crc32(b"iTXt" + body))
    out, position, inserted = [data[:8]], 8, False
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        whole = data[position : position + 12 + length]
        if kind == b"IDAT" and not inserted:
            out.append(chunk)
            inserted = True
        if not (kind == b"iTXt" and whole[8:].startswith(b"XML:com.adobe.xmp\x00")):
            out.append(whole)
        position += 12 + length
    return b"".join(out)
