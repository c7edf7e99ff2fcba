"""An OME-TIFF's OME-XML, patched to describe the file it is written into.

The XML records the pixels' type, size and byte order and names the file (a UUID and a file name) and the page
(IFD) that holds each plane; an output gets those rewritten for what it holds (every plane in its own pages, in the
order written: an input's planes in other files or out of order no longer referenced) and keeps everything else
(channels, physical sizes, annotations).
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ElementTree

import numpy as np

OME_TYPES = {
    "uint8": "uint8",
    "uint16": "uint16",
    "uint32": "uint32",
    "int8": "int8",
    "int16": "int16",
    "int32": "int32",
    "float32": "float",
    "float64": "double",
}
"""Sample type -> OME Pixels Type (OME has none for float16)."""


def patched(
    xml: str, dtype: np.dtype, size: tuple[int, int], name: str, *, planes: int, big_endian: bool = False
) -> str | None:
    """`xml` for an output of `dtype` and (height, width) `size` named `name`, whose `planes` pages hold the
    image's planes in the order of its DimensionOrder (as tifffile reads them: a series' axes are that order
    reversed), stored `big_endian` or not; None where `unpatchable` says why not."""
    parsed = _parsed(xml, dtype)
    if isinstance(parsed, str):
        return None
    root, namespace, pixels = parsed
    _set_type(pixels, np.dtype(dtype))
    _set_size(pixels, size)
    if "BigEndian" in pixels.attrib:
        pixels.set("BigEndian", "true" if big_endian else "false")
    if root.get("UUID") is not None:  # a fresh file's: the output is no copy of the input
        root.set("UUID", f"urn:uuid:{uuid.uuid4()}")
    _set_tiff_data(pixels, namespace, planes, root.get("UUID"), name)
    return '<?xml version="1.0" encoding="UTF-8"?>' + _serialised(root, namespace)


def unpatchable(xml: str, dtype: np.dtype) -> str | None:
    """Why `xml` cannot describe an output of `dtype` (words for a warning), or None where it can."""
    parsed = _parsed(xml, dtype)
    return parsed if isinstance(parsed, str) else None


def _parsed(xml: str, dtype: np.dtype) -> tuple[ElementTree.Element, str, ElementTree.Element] | str:
    """The document's root, its namespace and its image's Pixels; or why it cannot describe an output of `dtype`
    (`unpatchable`'s words)."""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return "unreadable"
    namespace, _, tag = root.tag.removeprefix("{").rpartition("}")
    pixels = root.find(f"{{{namespace}}}Image/{{{namespace}}}Pixels") if namespace and tag == "OME" else None
    if pixels is None:
        return "no OME image"
    if (kind := np.dtype(dtype).name) not in OME_TYPES:
        return f"OME has no {kind} pixel type" + (": --dtype float32 keeps it" if kind == "float16" else "")
    return root, namespace, pixels


def _set_type(pixels: ElementTree.Element, dtype: np.dtype) -> None:
    """Pixels Type of `dtype`, and SignificantBits (where given) its depth where the type changes; kept where it
    does not (a 12-bit camera's in uint16, which viewers set the display range by)."""
    if pixels.get("Type") == OME_TYPES[dtype.name]:
        return
    pixels.set("Type", OME_TYPES[dtype.name])
    if "SignificantBits" in pixels.attrib:
        pixels.set("SignificantBits", str(dtype.itemsize * 8))


def _set_size(pixels: ElementTree.Element, size: tuple[int, int]) -> None:
    """SizeY and SizeX of (height, width) `size`; a physical pixel size scaled by how much the picture shrank."""
    for axis, new in zip("YX", size, strict=True):
        old = pixels.get(f"Size{axis}")
        pixels.set(f"Size{axis}", str(new))
        physical = pixels.get(f"PhysicalSize{axis}")
        if physical is not None and old is not None and old.isdigit() and int(old) != new:
            pixels.set(f"PhysicalSize{axis}", _scaled(physical, int(old) / new))


def _scaled(number: str, factor: float) -> str:
    """A decimal number times `factor`, as text; the text as it was where it is no number."""
    try:
        return repr(float(number) * factor)
    except ValueError:
        return number


def _set_tiff_data(pixels: ElementTree.Element, namespace: str, planes: int, uid: str | None, name: str) -> None:
    """The Pixels' TiffData, where it had any, replaced by one entry for the `planes` pages of this file from its
    first (named by `uid` and `name` where the document has a UUID): the input's map may name other files (a
    multi-file series) or pages in another order, which the output does not keep."""
    old = pixels.findall(f"{{{namespace}}}TiffData")
    if not old:
        return
    at = list(pixels).index(old[0])
    for element in old:
        pixels.remove(element)
    entry = ElementTree.Element(f"{{{namespace}}}TiffData", {"IFD": "0", "PlaneCount": str(planes)})
    if uid is not None:
        ElementTree.SubElement(entry, f"{{{namespace}}}UUID", {"FileName": name}).text = uid
    pixels.insert(at, entry)


def _serialised(root: ElementTree.Element, namespace: str) -> str:
    """The document as text, OME's namespace the default one (its elements unprefixed, as OME writers make them)
    where no element is outside every namespace (ElementTree's own `default_namespace` refuses plain attributes)."""
    if any(not element.tag.startswith("{") for element in root.iter()):
        return ElementTree.tostring(root, encoding="unicode")  # an annotation's own XML: OME's names prefixed
    for element in root.iter():
        element.tag = element.tag.removeprefix(f"{{{namespace}}}")
    root.attrib = {"xmlns": namespace, **root.attrib}
    return ElementTree.tostring(root, encoding="unicode")
