"""What a photo carries besides its pixels: EXIF, the ICC colour profile, XMP (ratings, keywords, captions,
an editor's settings), its resolution (dpi) and text, read from JPEG, PNG, WebP and TIFF and written back into any
of them, so that a denoised photo keeps its camera record and catalogue entry and looks the same in a
colour-managed viewer.

PNG chunks are read and written here (the file is walked chunk by chunk without decoding the pixels, and the
chunks are put after the header of a PNG encoded elsewhere); JPEG and WebP go through Pillow; TIFF keeps its
profile, resolution and the EXIF fields that TIFF stores in its first directory (make, model, software, date,
artist, copyright, orientation), not EXIF's own sub-directory. A description crosses formats as PNG's Description,
a TIFF's ImageDescription or a JPEG comment; PNG's colour chunks (gAMA, cHRM, sRGB) go into PNG alone.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXIF_HEADER = b"Exif\x00\x00"
XMP_KEYWORD = "XML:com.adobe.xmp"
"""The iTXt keyword under which a PNG keeps its XMP packet."""
TIFF_XMP_TAG = 700
"""The TIFF tag of the XMP packet."""
TIFF_EXIF_TAGS = {271: "Make", 272: "Model", 305: "Software", 306: "DateTime", 315: "Artist", 33432: "Copyright"}
"""EXIF's text fields that a TIFF keeps in its first directory, by tag number."""
ORIENTATION_TAG = 274
"""EXIF's and TIFF's Orientation (a SHORT, 1 to 8): how a viewer turns the stored pixels."""
DESCRIPTION_KEYS = ("Description", "Comment", "Title")
"""PNG text keys that stand for a picture's description where a format has one text field, best first."""
JPEG_COMMENT_BYTES = 65533
"""The most a JPEG comment holds (its segment's 16-bit length counts itself): a longer description is left out."""
PNG_COLOUR_CHUNKS = {b"gAMA": 4, b"cHRM": 32, b"sRGB": 1}
"""PNG chunks that say how to show the values (gamma, primaries, sRGB intent) -> their length: kept into PNG."""
_INCH = 0.0254
"""Metres in an inch: PNG gives resolution per metre."""


@dataclass(frozen=True)
class Metadata:
    """A photo's metadata: `exif` as Pillow keeps it (b"Exif\\0\\0" and a TIFF structure), the ICC profile's
    bytes, the resolution in dots per inch, text fields (PNG's keywords; a JPEG comment as "Comment", a TIFF's
    ImageDescription as "Description"), the XMP packet's bytes and a PNG's colour chunks (type -> body)."""

    exif: bytes | None = None
    icc: bytes | None = None
    dpi: tuple[float, float] | None = None
    text: dict[str, str] = field(default_factory=dict)
    xmp: bytes | None = None
    png_colour: dict[bytes, bytes] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.exif or self.icc or self.dpi or self.text or self.xmp or self.png_colour)


def description(meta: Metadata | None) -> str | None:
    """The text that stands for the picture's description in a format with one text field (a TIFF's
    ImageDescription, a JPEG comment): PNG's Description, else its Comment, else its Title."""
    text = meta.text if meta else {}
    return next((text[key] for key in DESCRIPTION_KEYS if text.get(key)), None)


def read(path: Path, fmt: str) -> Metadata:
    """The metadata of a JPEG or WebP file, through Pillow (nothing for other formats: a PNG's comes from the bytes
    its reader has already, `read_png`; a TIFF's with its tags, `from_tiff`)."""
    if fmt not in ("jpeg", "webp"):
        return Metadata()
    from PIL import Image

    with Image.open(path) as image:
        info = image.info
        comment = info.get("comment")
        text = {"Comment": comment.decode("utf-8", "replace") if isinstance(comment, bytes) else comment}
        return Metadata(
            exif=_with_header(info.get("exif")),
            icc=info.get("icc_profile") or None,
            dpi=_dpi(info.get("dpi")),
            text=text if comment else {},
            xmp=_xmp(info.get("xmp")),
        )


def pillow_options(meta: Metadata | None, fmt: str) -> dict[str, Any]:
    """Pillow's save options that write `meta` into a JPEG or WebP."""
    if not meta:
        return {}
    options: dict[str, Any] = {}
    if meta.exif:
        options["exif"] = meta.exif
    if meta.icc:
        options["icc_profile"] = meta.icc
    if meta.dpi and fmt == "jpeg":
        options["dpi"] = tuple(round(d) for d in meta.dpi)
    comment = (description(meta) or "").encode()
    if fmt == "jpeg" and 0 < len(comment) <= JPEG_COMMENT_BYTES:
        options["comment"] = comment
    if meta.xmp:
        options["xmp"] = meta.xmp
    return options


# ------------------------------------------------------------------------------------------------- PNG


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """A PNG's chunks as (type, data), walked by their lengths; a damaged tail ends the walk."""
    found, offset = [], 8
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        found.append((kind, data[offset + 8 : offset + 8 + length]))
        offset += 12 + length
        if kind == b"IEND":
            break
    return found


def read_png(data: bytes) -> Metadata:
    """The metadata in a PNG file's bytes."""
    exif = icc = dpi = None
    text: dict[str, str] = {}
    colour: dict[bytes, bytes] = {}
    for kind, body in _chunks(data):
        try:
            if kind in PNG_COLOUR_CHUNKS and len(body) == PNG_COLOUR_CHUNKS[kind]:
                colour[kind] = body
            elif kind == b"eXIf":
                exif = EXIF_HEADER + body
            elif kind == b"iCCP":
                icc = zlib.decompress(body[body.index(b"\x00") + 2 :])
            elif kind == b"pHYs" and len(body) == 9 and body[8] == 1:
                x, y = struct.unpack(">II", body[:8])
                dpi = (x * _INCH, y * _INCH)
            elif kind in (b"tEXt", b"zTXt", b"iTXt"):
                key, value = _png_text(kind, body)
                text[key] = value
        except (ValueError, zlib.error, UnicodeDecodeError):
            continue  # a damaged chunk of metadata is left behind, not the image
    xmp = text.pop(XMP_KEYWORD, None)
    return Metadata(exif, icc, dpi, text, xmp.encode("utf-8") if xmp else None, colour)


def png_frames(data: bytes) -> int:
    """How many frames a PNG file's bytes hold: an animated PNG's count (its acTL chunk), else 1."""
    for kind, body in _chunks(data):
        if kind == b"acTL" and len(body) >= 4:
            return max(1, struct.unpack(">I", body[:4])[0])
        if kind == b"IDAT":
            break  # acTL comes before the image data
    return 1


def _png_text(kind: bytes, body: bytes) -> tuple[str, str]:
    key, _, rest = body.partition(b"\x00")
    if kind == b"tEXt":
        return key.decode("latin-1"), rest.decode("latin-1")
    if kind == b"zTXt":
        return key.decode("latin-1"), zlib.decompress(rest[1:]).decode("latin-1")
    compressed, rest = rest[0], rest[2:]
    _language, _, rest = rest.partition(b"\x00")
    _translated, _, value = rest.partition(b"\x00")
    return key.decode("latin-1"), (zlib.decompress(value) if compressed else value).decode("utf-8")


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_with(encoded: bytes, meta: Metadata | None) -> bytes:
    """An encoded PNG with `meta`'s chunks put right after its header (IHDR), where every reader finds them."""
    if not meta:
        return encoded
    chunks = [_chunk(kind, body) for kind, body in meta.png_colour.items()]
    if meta.icc:
        chunks.append(_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(meta.icc)))
    if meta.dpi:
        x, y = (round(d / _INCH) for d in meta.dpi)
        chunks.append(_chunk(b"pHYs", struct.pack(">IIB", x, y, 1)))
    if meta.exif:
        chunks.append(_chunk(b"eXIf", meta.exif.removeprefix(EXIF_HEADER)))
    text = {**meta.text, XMP_KEYWORD: meta.xmp.decode("utf-8", "replace")} if meta.xmp else meta.text
    for key, value in text.items():
        name = key.encode("latin-1", "replace")[:79]
        chunks.append(_chunk(b"iTXt", name + b"\x00\x00\x00\x00\x00" + value.encode("utf-8")))
    header_end = 8 + 12 + struct.unpack(">I", encoded[8:12])[0]
    return encoded[:header_end] + b"".join(chunks) + encoded[header_end:]


# ------------------------------------------------------------------------------------------------ TIFF


def from_tiff(page: Any, dpi: tuple[float, float] | None, text: str | None = None) -> Metadata:
    """The metadata of a tifffile page: its ICC profile and EXIF's fields in its first directory (as EXIF), with
    its resolution in dots per inch and `text`, its description (None where it records the file's layout)."""
    from PIL import Image

    exif = Image.Exif()
    for tag in TIFF_EXIF_TAGS:
        if tag in page.tags and isinstance(page.tags[tag].value, str) and page.tags[tag].value:
            exif[tag] = page.tags[tag].value
    orientation = page.tags[ORIENTATION_TAG].value if ORIENTATION_TAG in page.tags else None
    if _orientation(orientation):
        exif[ORIENTATION_TAG] = int(orientation)
    icc = page.tags[34675].value if 34675 in page.tags else None
    xmp = page.tags[TIFF_XMP_TAG].value if TIFF_XMP_TAG in page.tags else None
    return Metadata(
        exif=exif.tobytes() if len(exif) else None,
        icc=bytes(icc) if icc else None,
        dpi=dpi,
        text={"Description": text} if text else {},
        xmp=_xmp(xmp),
    )


def _orientation(value: Any) -> bool:
    """Whether a tag's value is an orientation a TIFF can store (1 to 8; a damaged file may hold anything)."""
    return isinstance(value, int) and 1 <= value <= 8


def tiff_options(meta: Metadata | None) -> dict[str, Any]:
    """tifffile.imwrite's options that write `meta`: the profile, the resolution, EXIF's first-directory
    fields as tags (the Software tag as it was, or none rather than tifffile's own name)."""
    options: dict[str, Any] = {"software": False}
    if not meta:
        return options
    if meta.icc:
        options["iccprofile"] = meta.icc
    if meta.dpi:
        options.update(resolution=meta.dpi, resolutionunit="INCH")
    if meta.exif:
        from PIL import Image

        exif = Image.Exif()
        exif.load(meta.exif)
        fields = {tag: exif[tag] for tag in TIFF_EXIF_TAGS if isinstance(exif.get(tag), str) and exif[tag].isascii()}
        options["extratags"] = [(tag, "s", 0, value, True) for tag, value in fields.items() if tag != 305]
        options["software"] = fields.get(305, False)
        if _orientation(exif.get(ORIENTATION_TAG)):
            options["extratags"].append((ORIENTATION_TAG, "H", 1, exif[ORIENTATION_TAG], True))
    if meta.xmp:
        options.setdefault("extratags", []).append((TIFF_XMP_TAG, "B", len(meta.xmp), meta.xmp, True))
    return options


def _with_header(exif: bytes | None) -> bytes | None:
    if not exif:
        return None
    return exif if exif.startswith(EXIF_HEADER) else EXIF_HEADER + exif


def _xmp(value: Any) -> bytes | None:
    """An XMP packet as bytes (Pillow and tifffile give bytes, a tuple of byte values or text), None if empty."""
    if not value:
        return None
    if isinstance(value, str):
        return value.encode("utf-8")
    return bytes(value)


def _dpi(value: Any) -> tuple[float, float] | None:
    if not value:
        return None
    x, y = (float(v) for v in value)
    return (x, y) if x > 0 and y > 0 else None
