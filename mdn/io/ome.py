"""An OME-TIFF's OME-XML, patched to describe the file it is written into.

The XML records the pixels' type and size and names the file (a UUID and a file name) that holds each plane;
an output at another type or size, under another name, gets those rewritten and keeps everything else
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


def patched(xml: str, dtype: np.dtype, size: tuple[int, int], source: str, name: str) -> str | None:
    """`xml` for an output of `dtype` and (height, width) `size` named `name`, from an input named `source`; None
    where it cannot be parsed, is no OME document or OME has no type for `dtype`."""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return None
    namespace, _, tag = root.tag.removeprefix("{").rpartition("}")
    pixels = root.find(f"{{{namespace}}}Image/{{{namespace}}}Pixels")
    if not namespace or tag != "OME" or pixels is None or np.dtype(dtype).name not in OME_TYPES:
        return None
    _set_type(pixels, np.dtype(dtype))
    _set_size(pixels, size)
    _renew_uuids(root, namespace, source, name)
    return '<?xml version="1.0" encoding="UTF-8"?>' + _serialised(root, namespace)


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


def _renew_uuids(root: ElementTree.Element, namespace: str, source: str, name: str) -> None:
    """A fresh root UUID, given to every TiffData UUID that named the input (by its UUID or `source` file name),
    their FileName set to `name`."""
    old = root.get("UUID")
    new = f"urn:uuid:{uuid.uuid4()}"
    if old is not None:
        root.set("UUID", new)
    for reference in root.iterfind(f".//{{{namespace}}}TiffData/{{{namespace}}}UUID"):
        if (old is not None and (reference.text or "").strip() == old) or reference.get("FileName") == source:
            reference.text = new
            reference.set("FileName", name)


def _serialised(root: ElementTree.Element, namespace: str) -> str:
    """The document as text, OME's namespace the default one (its elements unprefixed, as OME writers make them)
    where no element is outside every namespace (ElementTree's own `default_namespace` refuses plain attributes)."""
    if any(not element.tag.startswith("{") for element in root.iter()):
        return ElementTree.tostring(root, encoding="unicode")  # an annotation's own XML: OME's names prefixed
    for element in root.iter():
        element.tag = element.tag.removeprefix(f"{{{namespace}}}")
    root.attrib = {"xmlns": namespace, **root.attrib}
    return ElementTree.tostring(root, encoding="unicode")
