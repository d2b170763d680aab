"""Alt text embedded in an image copy's XMP, as IPTC "Alt Text (Accessibility)", without re-encoding.

JPEG carries XMP in an APP1 segment, PNG in an iTXt chunk "XML:com.adobe.xmp". An existing packet is
merged: only the x-default entries of Iptc4xmpCore:AltTextAccessibility and dc:description are set;
every other property, language, namespace prefix and the xpacket wrapper are kept, and so is every
other segment or chunk, byte for byte and in place. Without a packet a new one is added (JPEG: after
the APP segments; PNG: before IDAT). Pixels are untouched. A packet that can't be read safely
(malformed, DOCTYPE/ENTITY declarations) raises ValueError rather than being dropped.
"""
import re
import struct
import zlib
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

XMP_NAMESPACE = b"http://ns.adobe.com/xap/1.0/\x00"
PNG_XMP_KEYWORD = b"XML:com.adobe.xmp\x00"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
DC = "http://purl.org/dc/elements/1.1/"
IPTC = "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
PREFIXES = {RDF: "rdf", DC: "dc", IPTC: "Iptc4xmpCore", "http://www.w3.org/XML/1998/namespace": "xml"}
NEW_PACKET = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="{RDF}">'
    f'<rdf:Description xmlns:Iptc4xmpCore="{IPTC}" xmlns:dc="{DC}" rdf:about=""/>'
    '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
).encode("utf-8")
MAX_PNG_PACKET = 16 << 20  # bound on inflating a compressed iTXt


class UnsupportedFormat(ValueError):
    """Embedding is implemented for JPEG and PNG only."""


def unreadable(reason) -> ValueError:
    return ValueError(f"existing XMP can't be read: {reason}")


def xmp_packet(alt_text: str, description: str | None = None, existing: bytes | None = None) -> bytes:
    """The existing packet (or a new one) with AltTextAccessibility and dc:description's x-default set."""
    try:
        text = (existing or NEW_PACKET).decode("utf-8")
    except UnicodeDecodeError as err:
        raise unreadable(err) from err
    if re.search(r"<!\s*(DOCTYPE|ENTITY)", text, re.I):
        raise unreadable("DOCTYPE/ENTITY declarations are refused")
    builder = _Builder()
    parser = ET.XMLParser(target=builder)
    try:
        parser.feed(text)
        root = parser.close()
    except ET.ParseError as err:
        raise unreadable(err) from err
    rdf = next(root.iter(f"{{{RDF}}}RDF"), None)
    if rdf is None:
        raise unreadable("no rdf:RDF element")
    descriptions = rdf.findall(f"{{{RDF}}}Description") or [ET.SubElement(rdf, f"{{{RDF}}}Description")]
    fields = ((f"{{{IPTC}}}AltTextAccessibility", alt_text), (f"{{{DC}}}description", description or alt_text))
    for name, value in fields:
        target, found = descriptions[0], False
        for node in descriptions:
            if node.attrib.pop(name, None) is not None:  # non-standard short form of a lang Alt
                target = node
            for prop in node.findall(name):
                _set_default(prop, value)
                found = True
        if not found:
            _set_default(ET.SubElement(target, name), value)
    head = re.match(r"(?:\s|<\?(?:(?!\?>).)*\?>|<!--(?:(?!-->).)*-->)*", text, re.S).group()
    tail = max((m.start() for m in re.finditer(r"<\?xpacket\s+end\b", text)), default=len(text))
    out = [head]
    _write(root, builder.declared, {}, out)
    return ("".join(out) + text[tail:]).encode("utf-8")


def embed_alt_text(data: bytes, alt_text: str) -> bytes:
    """The image bytes with the alt text merged into its XMP; raises UnsupportedFormat for other formats."""
    if data[:2] == b"\xff\xd8":
        return _jpeg(data, alt_text)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _png(data, alt_text)
    raise UnsupportedFormat("alt text can be embedded in JPEG and PNG images only")


class _Builder(ET.TreeBuilder):
    """Keeps comments, processing instructions and where each namespace prefix was declared."""

    def __init__(self):
        super().__init__(insert_comments=True, insert_pis=True)
        self.pending, self.declared = [], {}

    def start_ns(self, prefix, uri):
        self.pending.append((prefix, uri))

    def start(self, tag, attrs):
        element = super().start(tag, attrs)
        if self.pending:
            self.declared[element], self.pending = self.pending, []
        return element


def _set_default(prop: ET.Element, value: str) -> None:
    """Sets the x-default item of a language alternative, keeping its other languages."""
    alt = prop.find(f"{{{RDF}}}Alt")
    if alt is None or len(prop) != 1:
        tail = prop.tail
        prop.clear()
        prop.tail, alt = tail, ET.SubElement(prop, f"{{{RDF}}}Alt")
    items = [li for li in alt.findall(f"{{{RDF}}}li") if li.get(XML_LANG, "").lower() == "x-default"]
    if not items:
        items = [ET.Element(f"{{{RDF}}}li")]
        alt.insert(0, items[0])
    tail = items[0].tail
    items[0].clear()
    items[0].set(XML_LANG, "x-default")
    items[0].text, items[0].tail = value, tail


def _write(element: ET.Element, declared: dict, scope: dict, out: list) -> None:
    """Serialises with the original prefixes and declarations; new namespaces are declared where used."""
    if element.tag is ET.Comment:
        out.append(f"<!--{element.text}-->")
    elif element.tag is ET.ProcessingInstruction:
        out.append(f"<?{element.text}?>")
    else:
        scope, own = dict(scope), list(declared.get(element, ()))  # scope: uri -> prefix
        for prefix, uri in own:
            scope = {u: p for u, p in scope.items() if p != prefix}
            scope[uri] = prefix

        def qname(name: str, attribute: bool = False) -> str:
            if not name.startswith("{"):
                return name
            uri, local = name[1:].split("}", 1)
            if uri == "http://www.w3.org/XML/1998/namespace":
                return "xml:" + local
            if uri not in scope or (attribute and not scope[uri]):
                base = PREFIXES.get(uri, "ns")
                prefix = next(p for p in [base] + [f"{base}{n}" for n in range(1, 999)] if p not in scope.values())
                own.append((prefix, uri))
                scope[uri] = prefix
            return f"{scope[uri]}:{local}" if scope[uri] else local

        tag = qname(element.tag)
        attrs = [(qname(k, True), v) for k, v in element.items()]
        quoted = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
        out.append(f"<{tag}" + "".join(f' xmlns{":" if p else ""}{p}="{escape(u, quoted)}"' for p, u in own))
        out.append("".join(f' {k}="{escape(v, quoted)}"' for k, v in attrs))
        if element.text is None and not len(element):
            out.append("/>")
        else:
            out.append(">" + escape(element.text or "", {"\r": "&#13;"}))
            for child in element:
                _write(child, declared, scope, out)
            out.append(f"</{tag}>")
    if element.tail:
        out.append(escape(element.tail, {"\r": "&#13;"}))


def _jpeg(data: bytes, alt_text: str) -> bytes:
    """Replaces the XMP APP1 segment in place (or adds one after the APP segments); all else is kept."""
    position, insert, found = 2, 2, []
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD8:  # fill byte, markers without length
            position += 1 if marker == 0xFF else 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan, end of image
            break
        end = position + 2 + struct.unpack(">H", data[position + 2 : position + 4])[0]
        if 0xE0 <= marker <= 0xEF:
            insert = end
        if marker == 0xE1 and data[position + 4 : end].startswith(XMP_NAMESPACE):
            found.append((position, end))
        position = end
    if len(found) > 1:
        raise ValueError("image has more than one XMP packet")
    start, end = found[0] if found else (insert, insert)
    existing = data[start + 4 + len(XMP_NAMESPACE) : end] if found else None
    segment = XMP_NAMESPACE + xmp_packet(alt_text, existing=existing)
    if len(segment) + 2 > 0xFFFF:
        raise ValueError(f"XMP with the alt text is {len(segment)} bytes, more than one JPEG APP1 segment "
                         "holds (65533); nothing written")
    return data[:start] + b"\xff\xe1" + struct.pack(">H", len(segment) + 2) + segment + data[end:]


def _png(data: bytes, alt_text: str) -> bytes:
    """Replaces the XMP iTXt chunk in place (or adds one before IDAT); all other chunks are kept."""
    position, insert, found = 8, None, []
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        end = position + 12 + length
        if kind == b"IDAT" and insert is None:
            insert = position
        if kind == b"iTXt" and data[position + 8 : end].startswith(PNG_XMP_KEYWORD):
            found.append((position, end))
        position = end
    if len(found) > 1:
        raise ValueError("image has more than one XMP packet")
    if not found and insert is None:
        raise ValueError("PNG has no IDAT chunk")
    start, end = found[0] if found else (insert, insert)
    existing = _itxt_text(data[start + 8 + len(PNG_XMP_KEYWORD) : end - 4]) if found else None
    body = PNG_XMP_KEYWORD + b"\x00\x00\x00\x00" + xmp_packet(alt_text, existing=existing)  # uncompressed
    chunk = struct.pack(">I", len(body)) + b"iTXt" + body + struct.pack(">I", zlib.crc32(b"iTXt" + body))
    return data[:start] + chunk + data[end:]


def _itxt_text(rest: bytes) -> bytes:
    """The text of an iTXt chunk after its keyword, inflated if compressed."""
    try:
        compressed, (_language, _translated, text) = rest[0], rest[2:].split(b"\x00", 2)
        if compressed:
            inflater = zlib.decompressobj()
            text = inflater.decompress(text, MAX_PNG_PACKET)
            if inflater.unconsumed_tail:
                raise ValueError("compressed packet too large")
        return text
    except (ValueError, IndexError, zlib.error) as err:
        raise unreadable(err) from err
