"""Seller logos: only small PNG images and sanitized SVG drawings are kept.

A logo is printed on every document and shown in the admin console, so what is stored must
be harmless wherever it ends up. A PNG is decoded (not only its signature read) and written
again without its ancillary chunks; an SVG is parsed with the standard library's expat with
DTDs (and so every entity but the five predefined ones) refused, and rebuilt from an
allow-list of drawing elements and attributes: scripts, event handlers, ``foreignObject``,
embedded images, style sheets and references outside the drawing are dropped.
"""

from __future__ import annotations

import io
import re
import struct
import xml.etree.ElementTree as ET
import zlib
from xml.parsers import expat
from xml.sax.saxutils import escape, quoteattr

from PIL import Image, UnidentifiedImageError

from portal.ops.audit import N_

#: Largest logo accepted, in bytes (as uploaded and as stored).
LOGO_MAX_BYTES = 512 * 1024
#: Largest width or height of a PNG logo, in pixels.
LOGO_MAX_PIXELS = 4096
#: Deepest element nesting of an SVG logo.
SVG_MAX_DEPTH = 64
#: Most elements in an SVG logo.
SVG_MAX_ELEMENTS = 5000

PNG = "image/png"
SVG = "image/svg+xml"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"

#: Drawing elements kept (everything else is dropped with its content).
SVG_ELEMENTS = frozenset(
    {
        "svg", "g", "defs", "title", "desc", "symbol", "use", "path", "rect", "circle",
        "ellipse", "line", "polyline", "polygon", "text", "tspan", "linearGradient",
        "radialGradient", "stop", "clipPath", "mask",
    }
)  # fmt: skip
#: Attributes kept (without namespace; ``xlink:href`` is handled apart).
SVG_ATTRIBUTES = frozenset(
    {
        "id", "class", "viewBox", "width", "height", "x", "y", "x1", "y1", "x2", "y2",
        "cx", "cy", "r", "rx", "ry", "d", "points", "transform", "fill", "fill-opacity",
        "fill-rule", "stroke", "stroke-width", "stroke-opacity", "stroke-linecap",
        "stroke-linejoin", "stroke-miterlimit", "stroke-dasharray", "stroke-dashoffset",
        "opacity", "clip-path", "clip-rule", "mask", "offset", "stop-color", "stop-opacity",
        "gradientUnits", "gradientTransform", "spreadMethod", "fx", "fy", "fr",
        "preserveAspectRatio", "font-family", "font-size", "font-weight", "font-style",
        "text-anchor", "dominant-baseline", "letter-spacing", "dx", "dy", "style",
        "version", "href", "visibility", "display", "color", "clipPathUnits", "maskUnits",
        "maskContentUnits",
    }
)  # fmt: skip
#: ``url(…)`` in an attribute may only point inside the drawing (``url(#id)``).
_URL = re.compile(r"url\s*\(\s*['\"]?\s*([^'\")\s]*)", re.IGNORECASE)
_CSS_DANGER = re.compile(r"@import|expression\s*\(|javascript:|\\|behavior\s*:", re.IGNORECASE)


class LogoRejected(ValueError):
    """The upload is not a logo this portal keeps; ``str()`` says why, in English."""


def clean_logo(content: bytes) -> tuple[bytes, str]:
    """The bytes to store and their media type, for an uploaded PNG or SVG.

    :raise LogoRejected: for anything else, an oversize file or an image that does not
        decode.
    """
    if not isinstance(content, bytes | bytearray) or not content:
        raise LogoRejected(N_("Upload a PNG or SVG file."))
    content = bytes(content)
    if len(content) > LOGO_MAX_BYTES:
        raise LogoRejected(N_("The logo is too large: at most 512 KB."))
    if content.startswith(PNG_SIGNATURE):
        return _clean_png(content), PNG
    head = content[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<?xml") or head.startswith(b"<svg") or head.startswith(b"<!--"):
        return _clean_svg(content), SVG
    raise LogoRejected(N_("Upload a PNG or SVG file."))


def _png_is_complete(content: bytes) -> bool:
    """Whether the PNG's chunks are whole (CRCs match) from IHDR to IEND, and its image data
    is one complete zlib stream.

    Checked here rather than left to Pillow: WeasyPrint, once imported, sets Pillow's global
    ``LOAD_TRUNCATED_IMAGES``, and Pillow then decodes a cut-off file without a word.
    """
    offset, first, idat = len(PNG_SIGNATURE), True, zlib.decompressobj()
    while offset + 12 <= len(content):
        (length,) = struct.unpack(">I", content[offset : offset + 4])
        kind = content[offset + 4 : offset + 8]
        end = offset + 12 + length
        if end > len(content):
            return False
        data = content[offset + 8 : end - 4]
        (crc,) = struct.unpack(">I", content[end - 4 : end])
        if zlib.crc32(kind + data) != crc or (first and kind != b"IHDR"):
            return False
        first = False
        if kind == b"IDAT":
            try:
                while data and not idat.eof:  # decompressed in steps: no bomb held in memory
                    idat.decompress(data, 1 << 20)
                    data = idat.unconsumed_tail
            except zlib.error:
                return False
        if kind == b"IEND":
            return idat.eof
        offset = end
    return False


def _clean_png(content: bytes) -> bytes:
    if not _png_is_complete(content):
        raise LogoRejected(N_("This PNG file cannot be read."))
    try:
        with Image.open(io.BytesIO(content), formats=["PNG"]) as probe:
            width, height = probe.size
            if not (0 < width <= LOGO_MAX_PIXELS and 0 < height <= LOGO_MAX_PIXELS):
                raise LogoRejected(N_("The logo may be at most 4096 × 4096 pixels."))
            probe.load()  # decode every pixel: a truncated or corrupt file fails here
            out = io.BytesIO()
            # Written again from the pixels: text chunks and anything appended are gone.
            probe.save(out, format="PNG", optimize=True)
    except LogoRejected:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise LogoRejected(N_("This PNG file cannot be read.")) from None
    cleaned = out.getvalue()
    if len(cleaned) > LOGO_MAX_BYTES:
        raise LogoRejected(N_("The logo is too large: at most 512 KB."))
    return cleaned


class _Refused(Exception):
    pass


def _parse_svg(content: bytes) -> ET.Element:
    """A tree from expat, refusing DTDs, entity declarations and external entities."""
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    depth = 0
    count = 0

    def qualified(name: str) -> str:
        return "{" + name if "}" in name else name

    def refuse(*_args):
        raise _Refused

    def start(name, attrs):
        nonlocal depth, count
        depth += 1
        count += 1
        if depth > SVG_MAX_DEPTH or count > SVG_MAX_ELEMENTS:
            raise _Refused
        builder.start(qualified(name), {qualified(k): v for k, v in attrs.items()})

    def end(name):
        nonlocal depth
        depth -= 1
        builder.end(qualified(name))

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(content, True)
    except (_Refused, expat.ExpatError, ValueError, RecursionError):
        raise LogoRejected(
            N_("This SVG file cannot be used: it must be well-formed, without a DTD or entities.")
        ) from None
    return builder.close()


def _safe_value(name: str, value: str) -> bool:
    if "\x00" in value or len(value) > 100_000:
        return False
    for target in _URL.findall(value):
        if not target.startswith("#"):
            return False
    if name == "style" and _CSS_DANGER.search(value):
        return False
    return True


def _local(tag: str) -> tuple[str | None, str]:
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return None, tag


def _clean_element(element: ET.Element) -> None:
    for key in list(element.attrib):
        namespace, local = _local(key)
        value = element.attrib[key]
        keep = False
        if local == "href" and namespace in (None, XLINK_NS):
            keep = value.strip().startswith("#")  # only references inside the drawing
        elif namespace is None and local in SVG_ATTRIBUTES and not local.lower().startswith("on"):
            keep = _safe_value(local, value)
        if not keep:
            del element.attrib[key]
    for child in list(element):
        namespace, local = _local(child.tag)
        if namespace != SVG_NS or local not in SVG_ELEMENTS:
            element.remove(child)
            continue
        _clean_element(child)


def _serialize(element: ET.Element, parts: list[str], *, root: bool = False) -> None:
    """Write a cleaned element: every element is SVG, every attribute plain or xlink:href."""
    _namespace, local = _local(element.tag)
    parts.append(f"<{local}")
    if root:
        parts.append(f' xmlns="{SVG_NS}" xmlns:xlink="{XLINK_NS}"')
    for key, value in element.attrib.items():
        namespace, name = _local(key)
        parts.append(f" {'xlink:' if namespace == XLINK_NS else ''}{name}={quoteattr(value)}")
    parts.append(">")
    parts.append(escape(element.text or ""))
    for child in element:
        _serialize(child, parts)
        parts.append(escape(child.tail or ""))
    parts.append(f"</{local}>")


def _clean_svg(content: bytes) -> bytes:
    root = _parse_svg(content)
    if root.tag != f"{{{SVG_NS}}}svg":
        raise LogoRejected(N_("This is not an SVG drawing (its root must be an svg element)."))
    _clean_element(root)
    parts: list[str] = ['<?xml version="1.0" encoding="UTF-8"?>\n']
    _serialize(root, parts, root=True)
    cleaned = "".join(parts).encode("utf-8")
    if len(cleaned) > LOGO_MAX_BYTES:
        raise LogoRejected(N_("The logo is too large: at most 512 KB."))
    return cleaned


def sanitize_svg(content: bytes) -> bytes:
    """The SVG drawing rebuilt from the allow-list (see the module docstring).

    :raise LogoRejected: when it does not parse, has a DTD, or is not an SVG.
    """
    return _clean_svg(content)
