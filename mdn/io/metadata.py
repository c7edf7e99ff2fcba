"""What a photo carries besides its pixels: EXIF, the ICC colour profile, XMP (ratings, keywords, captions,
an editor's settings), its resolution (dpi) and text, read from JPEG, PNG, WebP and TIFF and written back into any
of them (a WebP has no place for the resolution or text), so that a denoised photo keeps its camera record and
catalogue entry and looks the same in a colour-managed viewer.

PNG chunks are read and written here (the file is walked chunk by chunk without decoding the pixels, and the
chunks are put after the header of a PNG encoded elsewhere); JPEG and WebP go through Pillow; TIFF keeps its
profile, resolution and the EXIF fields that TIFF stores in its first directory (make, model, software, date,
artist, copyright, orientation), not EXIF's own sub-directories (exposure, GPS). A description crosses formats as
PNG's Description, a TIFF's ImageDescription or a JPEG comment; PNG's colour chunks (gAMA, cHRM, sRGB) go into PNG
alone.

What cannot be written is left out rather than refused: a JPEG's EXIF, XMP or comment over its 64 KB segment (an
EXIF first without its thumbnail and maker note), a resolution past the field a format stores it in, a colour
profile whose colour space is not the output's (a grey profile on RGB pixels), an EXIF block too damaged to read
into a TIFF's tags, and always a JPEG's extended XMP and a motion photo's video (whose claims the XMP kept no longer
makes). `for_output` decides, in one place, what of a photo's metadata an output carries (the writers write that
whole) and names what it leaves out, for a warning.
"""

from __future__ import annotations

import functools
import re
import struct
import types
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image as Pillow

EXIF_HEADER = b"Exif\x00\x00"
XMP_KEYWORD = "XML:com.adobe.xmp"
"""The iTXt keyword under which a PNG keeps its XMP packet."""
TIFF_XMP_TAG = 700
"""The TIFF tag of the XMP packet."""
TIFF_EXIF_TAGS = {271: "Make", 272: "Model", 305: "Software", 306: "DateTime", 315: "Artist", 33432: "Copyright"}
"""EXIF's text fields that a TIFF keeps in its first directory, by tag number."""
ORIENTATION_TAG = 274
"""EXIF's and TIFF's Orientation (a SHORT, 1 to 8): how a viewer turns the stored pixels."""
RESOLUTION_TAGS = {282, 283}
"""EXIF's XResolution and YResolution."""
DESCRIPTION_KEYS = ("Description", "Comment", "Title")
"""PNG text keys that stand for a picture's description where a format has one text field, best first."""
JPEG_SEGMENT_BYTES = 65533
"""The most a JPEG segment holds after its 16-bit length, which counts itself: an APP1's EXIF with its b"Exif\\0\\0"
header or XMP with its namespace, a comment (Pillow's limit too). A packet that does not fit is left out."""
JPEG_COMMENT_BYTES = JPEG_SEGMENT_BYTES
"""The most a JPEG comment holds: a longer description is left out."""
JPEG_XMP_NAMESPACE = b"http://ns.adobe.com/xap/1.0/\x00"
"""What comes before the XMP packet in a JPEG's APP1 segment (29 bytes)."""
ICC_SPACES = {1: b"GRAY", 3: b"RGB "}
"""An ICC profile's colour space (its header's bytes 16 to 20) for pixels of 1 (grey) and 3 (colour) channels."""
COLOURS_NAMED = {1: "grey", 3: "RGB"}
"""What pixels of 1 and 3 channels are called in a warning."""
ORIENTATION_SHOWN = {
    2: "mirrored",
    3: "upside down",
    4: "flipped",
    5: "turned and mirrored",
    6: "turned",
    7: "turned and mirrored",
    8: "turned",
}
"""How a viewer shows pixels stored with an EXIF orientation other than 1 (upright)."""
PHOTO_FORMATS = ("png", "jpeg", "webp", "tiff")
"""The output formats whose writers carry a photo's metadata (a BMP's carries its resolution alone, an EXR's none)."""
PNG_COLOUR_CHUNKS = {b"gAMA": 4, b"cHRM": 32, b"sRGB": 1}
"""PNG chunks that say how to show the values (gamma, primaries, sRGB intent) -> their length: kept into PNG."""
_INCH = 0.0254
"""Metres in an inch: PNG gives resolution per metre."""
PILLOW_BMP_PER_INCH = 39.3701
"""Pixels per metre to a dot per inch as Pillow's BMP writer counts them (rounding half up)."""
RESOLUTION_RANGES = {
    "png": (_INCH, (2**32 - 1) * _INCH),
    "jpeg": (1.0, 65535.0),
    "bmp": (1 / PILLOW_BMP_PER_INCH, (2**31 - 1) / PILLOW_BMP_PER_INCH),
    "tiff": (1 / (2**32 - 1), 2**32 - 1.0),
}
"""The least and largest resolution, in dots per inch, that a format's writer stores as it is: PNG's pHYs holds
whole pixels per metre in 32 bits, JPEG's JFIF density whole dots per inch in 16 bits (Pillow rounds), a BMP whole
pixels per metre in a signed 32-bit field, a TIFF a fraction of two 32-bit numbers (tifffile's `rational`). Beyond
them a writer wraps the value or fails."""
EXIF_IFD, GPS_IFD, THUMBNAIL_IFD, MAKER_NOTE_TAG = 0x8769, 0x8825, -1, 0x927C
"""EXIF's sub-directories (exposure and capture settings, GPS position), its second directory (the thumbnail) and
the Exif sub-directory's MakerNote (a camera maker's own record, often tens of KB), as Pillow's Exif numbers them
(ExifTags.IFD: the second directory is -1)."""
EXIF_SPARED_FOR_JPEG = ("thumbnail", "maker note")
"""What of an EXIF over JPEG's segment is left out first, in this order, for the rest to fit."""
TIFF_DIRECTORY_NAMES = {EXIF_IFD: "exposure", GPS_IFD: "GPS", THUMBNAIL_IFD: "thumbnail"}
"""EXIF's directories that a TIFF's first directory has no place for, and what a warning calls their fields."""
TIFF_EXIF_HANDLED = {282, 283, 296, 531, EXIF_IFD, GPS_IFD}
"""Fields of EXIF's first directory that a TIFF output needs not carry as tags: the resolution and its unit (the
TIFF's own), YCbCrPositioning (how a JPEG's colour samples sat) and the sub-directories' places (named apart)."""
EXTENDED_XMP_NAMESPACE = b"http://ns.adobe.com/xmp/extension/\x00"
"""What begins a JPEG's APP1 segment of extended XMP, before the packet's GUID (32 bytes), full length and offset
(4 bytes each) and a piece of the packet: XMP beyond one segment, such as a depth map."""
EXTENDED_XMP_HOLDS = {
    b"http://ns.google.com/photos/1.0/depthmap/": "depth map",
    b"http://ns.google.com/photos/1.0/image/": "original picture",
}
"""Namespaces of extended XMP -> what a warning says it holds (Google's portrait and lens-blur photos)."""
XMP_CLAIMS_OF_WHAT_FOLLOWS = {
    b"http://ns.google.com/photos/1.0/camera/": rb"(?:MicroVideo|MotionPhoto)\w*",
    b"http://ns.google.com/photos/1.0/container/": rb"Directory",
    b"http://ns.adobe.com/xmp/note/": rb"HasExtendedXMP",
}
"""XMP properties (by namespace, a pattern of their names) that say what a JPEG holds besides its picture: a
motion photo's video, the container's list of items after the picture, extended XMP. No writer here keeps those,
so they are taken out of the XMP kept, lest a viewer look for a video that is not there."""
MOTION_PHOTO_CLAIM = re.compile(rb"""(?:MicroVideo|MotionPhoto)(?:\s*=\s*["']|>)\s*1""")
"""An XMP's claim that its JPEG is a motion photo (GCamera:MicroVideo or GCamera:MotionPhoto set to 1, as an
attribute or an element)."""


@dataclass(frozen=True)
class Metadata:
    """A photo's metadata: `exif` as Pillow keeps it (b"Exif\\0\\0" and a TIFF structure), the ICC profile's
    bytes, the resolution in dots per inch, text fields (PNG's keywords; a JPEG comment and a TIFF's
    ImageDescription as "Description", as a PNG's is), the XMP packet's bytes, a PNG's colour chunks (type ->
    body), a JPEG's extended XMP (its pieces joined) and the size of a motion photo's video after the picture: the
    last two are read to be named when they are left out, which every output does."""

    exif: bytes | None = None
    icc: bytes | None = None
    dpi: tuple[float, float] | None = None
    text: dict[str, str] = field(default_factory=dict)
    xmp: bytes | None = None
    png_colour: dict[bytes, bytes] = field(default_factory=dict)
    extended_xmp: bytes | None = None
    video_bytes: int = 0

    def __bool__(self) -> bool:
        held = (self.exif, self.icc, self.dpi, self.text, self.xmp, self.png_colour, self.extended_xmp)
        return any(held) or self.video_bytes > 0


def description(meta: Metadata | None) -> str | None:
    """The text that stands for the picture's description in a format with one text field (a TIFF's
    ImageDescription, a JPEG comment): PNG's Description, else its Comment, else its Title."""
    text = meta.text if meta else {}
    return next((text[key] for key in DESCRIPTION_KEYS if text.get(key)), None)


def read(path: Path, fmt: str) -> Metadata:
    """The metadata of a JPEG, WebP or BMP file (a BMP's resolution alone), through Pillow, with a JPEG's extended
    XMP and the size of a motion photo's video (nothing for other formats: a PNG's comes from the bytes its reader
    has already, `read_png`; a TIFF's with its tags, `from_tiff`)."""
    if fmt not in ("jpeg", "webp", "bmp"):
        return Metadata()
    from PIL import Image

    with Image.open(path) as image:
        info = image.info
        comment = info.get("comment")
        text = {"Description": comment.decode("utf-8", "replace") if isinstance(comment, bytes) else comment}
        xmp = _xmp(info.get("xmp"))
        jpeg = fmt == "jpeg"
        return Metadata(
            exif=_with_header(info.get("exif")),
            icc=info.get("icc_profile") or None,
            dpi=_dpi(info.get("dpi")),
            text=text if comment else {},
            xmp=xmp,
            extended_xmp=_extended_xmp(image.applist) if jpeg else None,
            video_bytes=_motion_video_bytes(path) if jpeg and xmp and MOTION_PHOTO_CLAIM.search(xmp) else 0,
        )


def _extended_xmp(segments: list[tuple[str, bytes]]) -> bytes | None:
    """A JPEG's extended XMP from its APPn segments (Pillow's `applist`), its pieces put in order of their offset;
    None where it has none."""
    start = len(EXTENDED_XMP_NAMESPACE) + 32  # the GUID, then the full length and this piece's offset
    pieces = {}
    for marker, body in segments:
        if marker == "APP1" and body.startswith(EXTENDED_XMP_NAMESPACE) and len(body) >= start + 8:
            pieces[struct.unpack(">I", body[start + 4 : start + 8])[0]] = body[start + 8 :]
    return b"".join(pieces[offset] for offset in sorted(pieces)) or None


def _motion_video_bytes(path: Path) -> int:
    """How many bytes follow the pictures of a JPEG file (its own and the further ones of an MPO, a gain map):
    a motion photo's video, which its XMP says is there."""
    data = path.read_bytes()
    end = 0
    while data.startswith(b"\xff\xd8", end):
        end = _jpeg_end(data, end)
    return len(data) - end


def _jpeg_end(data: bytes, start: int) -> int:
    """Where the JPEG that begins at `start` ends, after its EOI marker: walked segment by segment by their lengths
    and through each scan's coded data to the next marker; the end of `data` where it is cut short or damaged."""
    offset = start + 2  # after SOI
    while offset + 4 <= len(data) and data[offset] == 0xFF:
        marker = data[offset + 1]
        if marker == 0xD9:  # EOI
            return offset + 2
        if marker == 0xFF or 0xD0 <= marker <= 0xD7:  # a fill byte, a restart marker: no length follows
            offset += 1 if marker == 0xFF else 2
            continue
        offset += 2 + struct.unpack(">H", data[offset + 2 : offset + 4])[0]
        if marker == 0xDA:  # SOS: its coded data runs to the next marker
            offset = _scan_end(data, offset)
    return len(data)


def _scan_end(data: bytes, offset: int) -> int:
    """Where a scan's coded data from `offset` ends: at the first 0xFF that is not a stuffed byte (0xFF00), a
    restart marker or a fill byte before a marker."""
    while (offset := data.find(b"\xff", offset)) != -1 and offset + 1 < len(data):
        following = data[offset + 1]
        if following != 0xFF and following != 0x00 and not 0xD0 <= following <= 0xD7:
            return offset
        offset += 1 if following == 0xFF else 2
    return len(data)


def pillow_options(kept: Metadata) -> dict[str, Any]:
    """Pillow's save options that write `kept` (what `for_output` keeps for a JPEG or WebP) into the file."""
    options: dict[str, Any] = {}
    if kept.exif:
        options["exif"] = kept.exif
    if kept.icc:
        options["icc_profile"] = kept.icc
    if kept.dpi:
        options["dpi"] = tuple(round(d) for d in kept.dpi)
    if comment := description(kept):
        options["comment"] = comment.encode()
    if kept.xmp:
        options["xmp"] = kept.xmp
    return options


def _fits_jpeg(packet: bytes, header: bytes = b"") -> bool:
    """Whether `packet` after `header` fits in one JPEG segment."""
    return len(header) + len(packet) <= JPEG_SEGMENT_BYTES


def icc_fits(icc: bytes, colours: int) -> bool:
    """Whether an ICC profile can describe pixels of `colours` channels (1 grey, 3 colour): a grey profile grey
    ones, an RGB profile colour ones; a profile of another colour space (CMYK, Lab) or none readable is taken as
    it is."""
    space = icc[16:20]
    return space not in ICC_SPACES.values() or ICC_SPACES.get(colours, space) == space


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
                exif = _with_header(body)  # some writers (older ImageMagick) put b"Exif\0\0" inside the chunk
            elif kind == b"iCCP":
                icc = zlib.decompress(body[body.index(b"\x00") + 2 :])
            elif kind == b"pHYs" and len(body) == 9 and body[8] == 1:
                x, y = struct.unpack(">II", body[:8])
                dpi = _dpi((x * _INCH, y * _INCH))  # none where it is 0: no resolution
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


def png_with(encoded: bytes, kept: Metadata) -> bytes:
    """An encoded PNG with the chunks of `kept` (what `for_output` keeps for it) put right after its header (IHDR),
    where every reader finds them."""
    if not kept:
        return encoded
    chunks = [_chunk(kind, body) for kind, body in kept.png_colour.items()]
    if kept.icc:
        chunks.append(_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(kept.icc)))
    if kept.dpi:
        x, y = (round(d / _INCH) for d in kept.dpi)
        chunks.append(_chunk(b"pHYs", struct.pack(">IIB", x, y, 1)))
    if kept.exif:
        chunks.append(_chunk(b"eXIf", kept.exif.removeprefix(EXIF_HEADER)))
    text = {**kept.text, XMP_KEYWORD: kept.xmp.decode("utf-8", "replace")} if kept.xmp else kept.text
    for key, value in text.items():
        name = key.encode("latin-1", "replace")[:79]
        chunks.append(_chunk(b"iTXt", name + b"\x00\x00\x00\x00\x00" + value.encode("utf-8")))
    header_end = 8 + 12 + struct.unpack(">I", encoded[8:12])[0]
    return encoded[:header_end] + b"".join(chunks) + encoded[header_end:]


# ------------------------------------------------------------------------------------------------ TIFF


def from_tiff(page: Any, dpi: tuple[float, float] | None, text: str | None = None) -> Metadata:
    """The metadata of a tifffile page: its ICC profile and EXIF's fields in its first directory (as EXIF), with
    its resolution in dots per inch (none where it is not positive) and `text`, its description (None where it
    records the file's layout)."""
    from PIL import Image

    exif = Image.Exif()
    for tag in TIFF_EXIF_TAGS:
        if tag in page.tags and isinstance(page.tags[tag].value, str) and page.tags[tag].value:
            value = page.tags[tag].value  # text that is not ASCII as its UTF-8 bytes: Pillow writes "?" for it
            exif[tag] = value if value.isascii() else value.encode("utf-8")
    orientation = page.tags[ORIENTATION_TAG].value if ORIENTATION_TAG in page.tags else None
    if _orientation(orientation):
        exif[ORIENTATION_TAG] = int(orientation)
    icc = page.tags[34675].value if 34675 in page.tags else None
    xmp = page.tags[TIFF_XMP_TAG].value if TIFF_XMP_TAG in page.tags else None
    return Metadata(
        exif=exif.tobytes() if len(exif) else None,
        icc=bytes(icc) if icc else None,
        dpi=_dpi(dpi),
        text={"Description": text} if text else {},
        xmp=_xmp(xmp),
    )


def _orientation(value: Any) -> bool:
    """Whether a tag's value is an orientation a TIFF can store (1 to 8; a damaged file may hold anything)."""
    return isinstance(value, int) and 1 <= value <= 8


def tiff_options(kept: Metadata) -> dict[str, Any]:
    """tifffile.imwrite's options that write `kept` (what `for_output` keeps for a TIFF) into the file: the
    profile, the resolution, EXIF's first-directory fields as tags (the Software tag as it was, or none rather than
    tifffile's own name) and the XMP packet."""
    options: dict[str, Any] = {"software": False}
    if kept.icc:
        options["iccprofile"] = kept.icc
    if kept.dpi:
        options.update(resolution=kept.dpi, resolutionunit="INCH")
    exif = _first_directory(kept.exif) if kept.exif else None
    if exif is not None:
        fields = {tag: _tiff_string(text) for tag, text in _tiff_texts(exif).items()}
        options["extratags"] = [(tag, "s", 0, value, True) for tag, value in fields.items() if tag != 305]
        options["software"] = fields.get(305, False)
        if _orientation(exif.get(ORIENTATION_TAG)):
            options["extratags"].append((ORIENTATION_TAG, "H", 1, exif[ORIENTATION_TAG], True))
    if kept.xmp:
        options.setdefault("extratags", []).append((TIFF_XMP_TAG, "B", len(kept.xmp), kept.xmp, True))
    return options


def _tiff_string(text: str) -> str | bytes:
    """An EXIF text field as a TIFF tag holds it: ASCII as it is, other text as the bytes the EXIF held (Pillow
    reads them as Latin-1; a camera's or an editor's are UTF-8, which tifffile reads back as the same text)."""
    return text if text.isascii() else text.encode("latin-1", "replace")


def _tiff_texts(directory: Mapping[int, Any]) -> dict[int, str]:
    """The text fields of EXIF's first directory that a TIFF keeps in its own (TIFF_EXIF_TAGS), by tag."""
    return {tag: directory[tag] for tag in TIFF_EXIF_TAGS if isinstance(directory.get(tag), str)}


@functools.lru_cache(maxsize=8)
def _first_directory(exif: bytes) -> Mapping[int, Any] | None:
    """EXIF bytes' first directory as Pillow reads it (tag -> value), None where they cannot be read (damaged: no
    TIFF header after b"Exif\\0\\0", a directory cut short). Read once for `lost`'s questions and the TIFF
    writer's (a damaged block makes Pillow print a warning each time): callers only read it."""
    from PIL import Image

    directory = Image.Exif()
    try:
        directory.load(exif)
    except (SyntaxError, ValueError, OSError, EOFError, struct.error):
        return None
    return types.MappingProxyType(dict(directory))


# ------------------------------------------------------------------------------------------ For output


def for_output(meta: Metadata | None, fmt: str, colours: int) -> tuple[Metadata, list[str]]:
    """What of `meta` an output of format `fmt` ("png", "jpeg", "webp", "tiff", "bmp", "exr") whose file stores
    `colours` channels (1 grey, 3 colour) carries, as the Metadata its writer writes whole, and what it leaves out,
    a few words each ("its EXIF (70 KB, over JPEG's 64 KB)"), for a warning. What this module leaves behind by
    design is not named: PNG's colour chunks outside PNG, text other than the description outside PNG."""
    if not meta:
        return Metadata(), []
    exif, exif_lost = _exif_for(meta.exif, fmt)
    icc, icc_lost = _profile_for(meta.icc, fmt, colours)
    dpi, dpi_lost = _resolution_for(meta, fmt)
    xmp, xmp_lost = _xmp_for(meta.xmp, fmt)
    text, text_lost = _text_for(meta, fmt)
    kept = Metadata(exif, icc, dpi, text, xmp, meta.png_colour if fmt == "png" else {})
    return kept, [*exif_lost, *icc_lost, *dpi_lost, *xmp_lost, *text_lost, *_after_the_picture(meta)]


def _exif_for(exif: bytes | None, fmt: str) -> tuple[bytes | None, list[str]]:
    """EXIF where `fmt` holds it: whole, or what fits a JPEG's segment (`_exif_for_jpeg`), or in a TIFF what its
    first directory holds (`_left_out_of_tiff`); else none, and it and the orientation it holds named."""
    if not exif:
        return None, []
    if fmt == "jpeg" and not _fits_jpeg(exif):
        return _exif_for_jpeg(exif)
    if fmt == "tiff":
        if _first_directory(exif) is None:
            return None, _exif_named(exif, "unreadable")
        return exif, list(_left_out_of_tiff(exif))
    if fmt in PHOTO_FORMATS:
        return exif, []
    return None, _exif_named(exif, "")


def _exif_named(exif: bytes, why: str) -> list[str]:
    """Words for an EXIF left out for `why`, and for the orientation it held."""
    return [_named("its EXIF", why), *_lost_orientation(exif)]


def _exif_for_jpeg(exif: bytes) -> tuple[bytes | None, list[str]]:
    """EXIF over JPEG's segment without its thumbnail, then without its maker note too, where the rest fits (the
    orientation, camera and dates then stay with the picture); else none."""
    present = _spare_parts(exif)
    for count in range(1, len(present) + 1):
        spared = present[:count]
        rest = _exif_without(exif, spared)
        if rest is not None and _fits_jpeg(rest):
            return rest, [_spared_words(spared, len(exif) - len(rest))]
    return None, _exif_named(exif, _over_jpeg(len(exif), JPEG_SEGMENT_BYTES))


def _spared_words(spared: list[str], size: int) -> str:
    """Words for the parts of an EXIF (`size` bytes in all) left out for the rest to fit JPEG's segment."""
    them = "them" if len(spared) > 1 else "it"
    limit = round(JPEG_SEGMENT_BYTES / 1024)
    return f"its EXIF {' and '.join(spared)} ({_kilobytes(size)} KB; with {them} the EXIF is over JPEG's {limit} KB)"


def _spare_parts(exif: bytes) -> list[str]:
    """The parts of `EXIF_SPARED_FOR_JPEG` that an EXIF holds, in that order."""
    loaded = _loaded_exif(exif)
    if loaded is None:
        return []
    held = {"thumbnail": bool(loaded.get_ifd(THUMBNAIL_IFD)), "maker note": MAKER_NOTE_TAG in loaded.get_ifd(EXIF_IFD)}
    return [part for part in EXIF_SPARED_FOR_JPEG if held[part]]


def _exif_without(exif: bytes, parts: list[str]) -> bytes | None:
    """EXIF written again by Pillow without its thumbnail (Pillow writes no second directory) and, where `parts`
    name it, its maker note; None where Pillow cannot write it again or read it back."""
    loaded = _loaded_exif(exif)
    if loaded is None:
        return None
    if "maker note" in parts:
        loaded.get_ifd(EXIF_IFD).pop(MAKER_NOTE_TAG, None)
    try:
        rest = loaded.tobytes()
    except Exception:  # Pillow's writer raises anything from struct.error to TypeError on a value it cannot write
        return None
    return rest if _first_directory(rest) is not None else None


def _loaded_exif(exif: bytes) -> Pillow.Exif | None:
    """EXIF bytes as a Pillow Exif of its own, its sub-directories read (for editing), None where they cannot be
    read."""
    from PIL import Image

    loaded = Image.Exif()
    try:
        loaded.load(exif)
        for directory in (EXIF_IFD, GPS_IFD, THUMBNAIL_IFD):
            loaded.get_ifd(directory)
    except (SyntaxError, ValueError, OSError, EOFError, struct.error, KeyError, TypeError):
        return None
    return loaded


@functools.lru_cache(maxsize=8)
def _left_out_of_tiff(exif: bytes) -> tuple[str, ...]:
    """Words for EXIF's fields that a TIFF's first directory has no place for: its sub-directories' (exposure,
    GPS), its thumbnail's and first-directory fields other than those a TIFF keeps (by Pillow's names)."""
    loaded = _loaded_exif(exif)
    if loaded is None:
        return ()
    from PIL import ExifTags

    kept = TIFF_EXIF_TAGS.keys() | TIFF_EXIF_HANDLED | {ORIENTATION_TAG}
    names = [name for directory, name in TIFF_DIRECTORY_NAMES.items() if loaded.get_ifd(directory)]
    names += [ExifTags.TAGS.get(tag, f"tag {tag}") for tag in loaded if tag not in kept]
    return (f"its EXIF {_listed(names)} fields",) if names else ()


def _lost_orientation(exif: bytes) -> list[str]:
    """EXIF's orientation where it is not upright: left out with its EXIF, the picture is shown otherwise."""
    directory = _first_directory(exif) or {}
    value = directory.get(ORIENTATION_TAG)
    if not _orientation(value) or value == 1:
        return []
    return [f"its orientation (EXIF {value}: shown {ORIENTATION_SHOWN[value]})"]


def _profile_for(icc: bytes | None, fmt: str, colours: int) -> tuple[bytes | None, list[str]]:
    """The colour profile where `fmt` holds one and its colour space is the output's."""
    if not icc:
        return None, []
    if fmt not in PHOTO_FORMATS:
        return None, ["its colour profile"]
    if icc_fits(icc, colours):
        return icc, []
    profile = next(channels for channels, space in ICC_SPACES.items() if space == icc[16:20])
    return None, [f"its {COLOURS_NAMED[profile]} colour profile (the output is {COLOURS_NAMED[colours]})"]


def _resolution_for(meta: Metadata, fmt: str) -> tuple[tuple[float, float] | None, list[str]]:
    """The resolution where `fmt`'s writer puts it and its field holds it (`RESOLUTION_RANGES`; a WebP holds it in
    its EXIF alone: named where that has none)."""
    if not meta.dpi:
        return None, []
    if fmt in RESOLUTION_RANGES:
        least, largest = RESOLUTION_RANGES[fmt]
        if all(least <= d <= largest for d in meta.dpi):
            return meta.dpi, []
        return None, [f"its resolution ({_dpi_words(meta.dpi)}, {_beyond(meta.dpi, fmt)})"]
    directory = _first_directory(meta.exif) if meta.exif and fmt == "webp" else None
    if directory is not None and set(directory) >= RESOLUTION_TAGS:
        return None, []
    return None, [f"its resolution ({_dpi_words(meta.dpi)})"]


def _beyond(dpi: tuple[float, float], fmt: str) -> str:
    """Words for a resolution outside what `fmt` stores: over its largest (whole dots per inch, rounded down) or
    under its least."""
    least, largest = RESOLUTION_RANGES[fmt]
    if max(dpi) > largest:
        return f"over {fmt.upper()}'s {int(largest)}"
    return f"under {fmt.upper()}'s {least:.3g}"


def _dpi_words(dpi: tuple[float, float]) -> str:
    """A resolution as a warning gives it: "300 dpi", "300 x 150 dpi" (whole where it is 1 or more)."""
    x, y = (f"{d:.0f}" if abs(d) >= 1 else f"{d:.2g}" for d in dpi)
    return f"{x} dpi" if x == y else f"{x} x {y} dpi"


def _xmp_for(xmp: bytes | None, fmt: str) -> tuple[bytes | None, list[str]]:
    """The XMP packet, without its claims of what follows the picture (`XMP_CLAIMS_OF_WHAT_FOLLOWS`), where `fmt`
    holds one and it fits (a JPEG's segment)."""
    xmp = _without_claims(xmp) if xmp else None
    if not xmp or (fmt in PHOTO_FORMATS and (fmt != "jpeg" or _fits_jpeg(xmp, JPEG_XMP_NAMESPACE))):
        return xmp, []
    limit = JPEG_SEGMENT_BYTES - len(JPEG_XMP_NAMESPACE)
    return None, [_named("its XMP", _over_jpeg(len(xmp), limit) if fmt == "jpeg" else "")]


def _without_claims(xmp: bytes) -> bytes:
    """An XMP packet without the properties that say what follows a JPEG's picture (a motion photo's video, the
    container's items, extended XMP), as attributes or elements, under whatever prefix the packet gives their
    namespace; the rest byte for byte."""
    for namespace, names in XMP_CLAIMS_OF_WHAT_FOLLOWS.items():
        declared = rb"""xmlns:([\w.-]+)\s*=\s*["']""" + re.escape(namespace) + rb"""["']"""
        for prefix in set(re.findall(declared, xmp)):
            name = re.escape(prefix) + rb":" + names + rb"\b"
            attribute = rb"""\s+""" + name + rb"""\s*=\s*(?:"[^"]*"|'[^']*')"""
            element = rb"<(" + name + rb")(?:[^>]*?/>|[^>]*>.*?</\1\s*>)"
            xmp = re.sub(element, b"", re.sub(attribute, b"", xmp), flags=re.DOTALL)
    return xmp


def _text_for(meta: Metadata, fmt: str) -> tuple[dict[str, str], list[str]]:
    """A PNG's text whole; elsewhere the description alone, where `fmt` holds text (TIFF, JPEG: a comment that fits
    its segment), else it named."""
    text = description(meta)
    if fmt == "png" or not text:
        return (meta.text if fmt == "png" else {}), []
    if fmt == "tiff" or (fmt == "jpeg" and _fits_jpeg(text.encode())):
        return {"Description": text}, []
    return {}, [_named("its description", _over_jpeg(len(text.encode()), JPEG_COMMENT_BYTES) if fmt == "jpeg" else "")]


def _after_the_picture(meta: Metadata) -> list[str]:
    """Words for what a JPEG holds besides its picture and its segments that no output keeps: its extended XMP (a
    depth map) and a motion photo's video."""
    named = []
    if meta.extended_xmp:
        holds = [what for namespace, what in EXTENDED_XMP_HOLDS.items() if namespace in meta.extended_xmp]
        named.append(f"its extended XMP ({', '.join([*holds, f'{_kilobytes(len(meta.extended_xmp))} KB'])})")
    if meta.video_bytes:
        named.append(f"its motion photo's video ({_kilobytes(meta.video_bytes)} KB after the picture)")
    return named


def _kilobytes(size: int) -> int:
    """Bytes in whole KB, rounded up: a few bytes are 1 KB, not 0."""
    return -(-size // 1024)


def _listed(names: list[str]) -> str:
    """Names joined as a sentence lists them: "a", "a and b", "a, b and c"."""
    return " and ".join(names) if len(names) < 3 else f"{', '.join(names[:-1])} and {names[-1]}"


def _over_jpeg(size: int, limit: int) -> str:
    """Words for a packet of `size` bytes over a JPEG segment's `limit`: in KB, or in bytes where KB would not tell
    them apart."""
    size_kb, limit_kb = _kilobytes(size), round(limit / 1024)
    if size_kb > limit_kb:
        return f"{size_kb} KB, over JPEG's {limit_kb} KB"
    return f"{size} bytes, over JPEG's {limit}"


def _named(item: str, why: str) -> str:
    return f"{item} ({why})" if why else item


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
