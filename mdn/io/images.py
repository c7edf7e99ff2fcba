"""Read and write every image format mdn supports, exactly as it came.

`read` returns an `Image`: float32 planes of shape (N, H, W, C) with C = 1 (grey) or 3 (RGB), an optional
alpha plane, and the `Source` that `write` needs to put the result back in the same format, dtype, axis
order and metadata. Integer pixels are scaled to [0, 1]; float pixels (EXR, float TIFF) keep their values.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import tifffile

from mdn.errors import MdnError
from mdn.io import atomic, exr, metadata, ome
from mdn.io.alpha import fill_hidden, restore_hidden
from mdn.io.metadata import Metadata
from mdn.io.picture import Image, Layout, Source, check_layout, from_planes, plain_layout, sanitise, to_planes

FORMATS: dict[str, str] = {
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".webp": "webp",
    ".bmp": "bmp",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".exr": "exr",
}
"""File extension -> format name."""
CAMERA_RAW = frozenset(
    {".3fr", ".arw", ".cr2", ".cr3", ".crw", ".dcr", ".dng", ".erf", ".iiq", ".kdc", ".mef", ".mos", ".mrw", ".nef"}
    | {".nrw", ".orf", ".pef", ".raf", ".raw", ".rw2", ".rwl", ".sr2", ".srf", ".srw", ".x3f"}
)
"""Camera raw extensions: mdn denoises developed pictures, so these get a hint instead of a bare refusal."""
PICTURES_NOT_READ = CAMERA_RAW | {".gif", ".heic", ".heif", ".avif", ".jxl", ".jp2", ".psd", ".tga", ".ico"}
"""Extensions of pictures mdn does not read: a folder's are named when a batch leaves them out (a card's HEIC
and raw files beside its JPEGs)."""

_DTYPES: dict[str, tuple[str, ...]] = {
    "png": ("uint8", "uint16"),
    "jpeg": ("uint8",),
    "webp": ("uint8",),
    "bmp": ("uint8",),
    "tiff": ("uint8", "uint16", "float32", "float16", "float64"),
    "exr": ("float16", "float32"),
}
"""Sample types each format can store."""
_STORED = {t for types in _DTYPES.values() for t in types}
SAMPLE_TYPES = tuple(sorted(_STORED, key=lambda t: (t[0] != "u", np.dtype(t).itemsize)))
"""Every sample type some format stores (`--dtype`): uint8, uint16, float16, float32, float64."""

_TIFF_COMPRESSIONS = {"NONE", "ADOBE_DEFLATE", "DEFLATE", "LZW", "ZSTD", "PACKBITS", "LZMA"}
"""Lossless TIFF compressions that are written back as they came; anything else is written uncompressed."""


# ----------------------------------------------------------------------------------------------- read


def format_of(path: Path) -> str:
    """The format name for a path's extension, or an MdnError naming the supported ones."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None and path.suffix.lower() in CAMERA_RAW:
        raise MdnError("camera raw files are not read: develop it into a 16-bit TIFF or PNG first", path)
    if fmt is None:
        supported = ", ".join(sorted(FORMATS))
        raise MdnError(f"unsupported file type {path.suffix or '(none)'!r} (supported: {supported})", path)
    return fmt


def read(path: str | Path, layer: str | None = None) -> Image:
    """Read an image file; `layer` picks an EXR layer or part (default: the beauty RGB layer)."""
    path = Path(path)
    if not path.exists():
        raise MdnError("does not exist", path)
    if path.is_dir():
        raise MdnError("is a directory, expected an image file", path)
    format_of(path)  # an extension mdn does not read is refused before the file is opened
    if path.stat().st_size == 0:
        raise MdnError("file is empty", path)
    if not os.access(path, os.R_OK):
        raise MdnError("cannot read: permission denied", path)
    try:
        fmt = format_of_file(path)
    except OSError as exc:
        raise MdnError(f"cannot read: {exc.strerror or exc}", path) from None
    if layer is not None and fmt != "exr":
        raise MdnError("--layer applies to EXR files only", path)
    try:
        if fmt == "exr":
            raw, layout, meta = exr.read(path, layer)
        elif fmt == "tiff":
            raw, layout, meta = _read_tiff(path)
        elif fmt == "png":
            import imagecodecs  # imported where needed: training and its tests run without it

            data = path.read_bytes()
            _check_still(path, fmt, metadata.png_frames(data))
            raw = imagecodecs.png_decode(data)
            layout, meta = plain_layout(raw), {"photo": metadata.read_png(data)}
        else:
            settings = _check_pillow_image(path, fmt)
            raw = iio.imread(path)
            layout, meta = plain_layout(raw), {"photo": metadata.read(path, fmt)}
            if fmt == "jpeg":
                meta["left_out"] = settings.pop("left_out", [])
                meta["jpeg"] = settings
    except MdnError:
        raise
    except PermissionError:
        raise MdnError("cannot read: permission denied", path) from None
    except Exception as exc:  # decoders raise anything from OSError to SyntaxError on a bad file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if reason.startswith("Could not find a backend"):  # imageio's words when no decoder takes the bytes
            reason = f"not a {fmt.upper()} file"
        raise MdnError(f"cannot read {fmt.upper()} (corrupt or truncated?): {reason}", path) from None
    return _image(raw, Source(path, fmt, layout, meta), hdr=fmt == "exr")


SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "png",
    b"\xff\xd8\xff": "jpeg",
    b"II*\x00": "tiff",
    b"MM\x00*": "tiff",
    b"II+\x00": "tiff",
    b"MM\x00+": "tiff",
    b"v/1\x01": "exr",
}
"""A file's first bytes -> its format (WebP: RIFF....WEBP and BMP: BM with its reserved bytes zero, apart)."""


def format_of_file(path: Path) -> str:
    """The format an existing file's first bytes say it is, or its extension's where they say none: a JPEG saved
    as .png is read as the JPEG it is, as Pillow reads a PNG saved as .jpg."""
    named = format_of(path)
    with open(path, "rb") as file:
        head = file.read(12)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] == b"BM" and head[6:10] == bytes(4):  # a text that begins "BMW..." is no bitmap
        return "bmp"
    return next((fmt for signature, fmt in SIGNATURES.items() if head.startswith(signature)), named)


def _check_pillow_image(path: Path, fmt: str) -> dict[str, Any]:
    """An MdnError for a file that Pillow decodes as something mdn would get wrong: CMYK (a JPEG's print
    separation, whose four channels would pass for RGB and alpha) or an animation (whose frames after the first
    would be lost); from the same opening, a JPEG's settings to re-encode it as it was made (`_jpeg_settings`).
    Bytes Pillow cannot open are left to the decoder's own error. Pillow's guard against decompression bombs (a
    web server's, refusing pictures over 179 MP) is lifted for the process: the files are the user's own, and a
    stitched panorama runs in tiles and windows like any photo."""
    from PIL import Image as Pillow

    Pillow.MAX_IMAGE_PIXELS = None
    try:
        with Pillow.open(path) as opened:
            mode, frames = opened.mode, getattr(opened, "n_frames", 1)
            settings = _jpeg_settings(opened) if fmt == "jpeg" else {}
    except Exception:  # Pillow raises anything from OSError to SyntaxError on a bad file
        return {}
    if mode == "CMYK":
        raise MdnError(f"unsupported {fmt.upper()} colour model CMYK (a print separation: convert it to RGB)", path)
    if fmt != "jpeg":  # a camera JPEG's further pictures (MPO: a large preview, a depth map) are no animation
        _check_still(path, fmt, frames)
    elif frames > 1:
        settings["left_out"] = [f"its {frames - 1} further picture{'s' if frames > 2 else ''} (MPO: a second view, "
                                "preview or depth map)"]  # fmt: skip
    return settings


JPEG_QUALITY = 95
"""The quality JPEG is written at, or the input JPEG's where that is higher."""
_IJG_LUMINANCE = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ]
).ravel()
"""libjpeg's luminance quantisation table at quality 50 (the JPEG standard's Annex K), which its quality scales."""


def _jpeg_settings(opened: Any) -> dict[str, Any]:
    """Pillow's save options that re-encode an opened JPEG as it was made: its chroma subsampling, progressive
    scans, and its quality where above `JPEG_QUALITY`."""
    from PIL import JpegImagePlugin

    sampling = JpegImagePlugin.get_sampling(opened)  # -1 for grey
    tables = getattr(opened, "quantization", None) or {}
    settings: dict[str, Any] = {"quality": max(JPEG_QUALITY, _jpeg_quality(tables.get(0)))}
    if sampling >= 0:
        settings["subsampling"] = sampling
    if opened.info.get("progressive"):
        settings["progressive"] = True
    return settings


def _jpeg_quality(table: Any) -> int:
    """The libjpeg quality (1 to 100) whose luminance table is nearest a JPEG's in sum, 0 without one: cheap, and
    close for a camera's own tables too."""
    if table is None or len(table) != 64:
        return 0
    total = int(np.sum(table))
    qualities = np.arange(1, 101)
    scales = np.where(qualities < 50, 5000 // qualities, 200 - 2 * qualities)
    sums = np.clip((_IJG_LUMINANCE[None] * scales[:, None] + 50) // 100, 1, 255).sum(axis=1)
    return int(qualities[::-1][np.argmin(np.abs(sums[::-1] - total))])  # the highest quality of an equal sum


def _check_still(path: Path, fmt: str, frames: int) -> None:
    """An MdnError for an animated file, whose frames after the first a still image's output would lose."""
    if frames > 1:
        raise MdnError(
            f"animated {fmt.upper()} of {frames} frames: mdn takes still images (save the frames apart)", path
        )


ARRAY = "array"
"""The format name of an image that came from an array rather than a file."""


def from_array(array: np.ndarray, axes: str | None = None, hdr: bool = False) -> Image:
    """An Image of a numpy array (or anything numpy takes as one: a Pillow image in its colours), laid out as `axes`
    says (tifffile's letters: Y, X, S for samples, any other a stack axis) or, by default, as its shape suggests:
    (H, W); (H, W, S) with S = 1 to 4 (grey, grey + alpha, RGB, RGBA); (Z, H, W) when the last axis is longer than
    4; (Z, H, W, S). `hdr` marks scene-linear values."""
    array = _as_array(array)
    if axes is None:
        if array.ndim not in (2, 3, 4):
            raise MdnError(f"expected an (H, W), (H, W, C), (Z, H, W) or (Z, H, W, C) array, got shape {array.shape}")
        axes = {2: "YX", 3: "YXS" if array.shape[-1] <= 4 else "ZYX", 4: "ZYXS"}[array.ndim]
    if len(axes) != array.ndim or len(set(axes.upper())) != len(axes):
        raise MdnError(f"axes {axes!r} do not name the {array.ndim} axes of an array of shape {array.shape} once each")
    return _image(array, Source(Path(f"<{ARRAY}>"), ARRAY, Layout(axes.upper(), array.shape, array.dtype)), hdr=hdr)


_PILLOW_MODES = {"1": "L", "PA": "RGBA", "La": "LA", "RGBa": "RGBA", "RGBX": "RGB"}
_PILLOW_MODES |= dict.fromkeys(("CMYK", "YCbCr", "LAB", "HSV"), "RGB")
"""Pillow modes whose samples are no grey, RGB or alpha values (bits, premultiplied or other colour models) ->
the mode they are converted to before their array is taken. "P" goes to RGB or RGBA (`_pillow_colours`)."""


def _as_array(image: Any) -> np.ndarray:
    """A numpy array of an image array, or an MdnError naming what came instead (None, a number, bytes)."""
    try:
        array = np.asarray(_pillow_colours(image))
    except Exception as exc:  # a torch tensor that needs grad, a ragged list, ...: anything numpy refuses
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MdnError(f"expected an image array, got a {_type_name(image)} numpy cannot take: {reason}") from None
    if array.ndim < 2 or array.dtype.kind in "OSUV":
        got = f"a {array.dtype} array of shape {array.shape}" if isinstance(image, np.ndarray) else _type_name(image)
        raise MdnError(f"expected an image array (H, W[, C]) or a stack (Z, H, W[, C]) of numbers, got {got}")
    return array


def _type_name(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def _pillow_colours(image: Any) -> Any:
    """A Pillow image converted to grey, RGB or RGBA where its mode holds something else (a palette's indices,
    bits, CMYK); anything else as it is."""
    from PIL import Image as Pillow

    if not isinstance(image, Pillow.Image):
        return image
    if image.mode == "P":
        return image.convert("RGBA" if image.has_transparency_data else "RGB")
    return image.convert(_PILLOW_MODES[image.mode]) if image.mode in _PILLOW_MODES else image


def to_array(image: Image) -> np.ndarray:
    """The image's pixels and alpha as stored: the source's axis order and sample type, rounded and clipped; NaN
    where a float source held it (`Image.missing`)."""
    return from_planes(with_missing(image, image.pixels, image.source.layout), image.alpha, image.source.layout)


def with_missing(image: Image, pixels: np.ndarray, layout: Layout) -> np.ndarray:
    """`pixels` with NaN again where the image's source held it (`Image.missing`), when `layout` stores floats;
    as they are otherwise (an integer file cannot hold "no data": it keeps the filled, denoised values)."""
    if image.missing is None or layout.dtype.kind != "f" or image.missing.shape != pixels.shape:
        return pixels
    return np.where(image.missing, np.float32(np.nan), pixels)


def missing_filled(pixels: np.ndarray) -> np.ndarray | None:
    """Where float `pixels` (N, H, W, C) hold NaN, as a mask of their shape (None where none), the NaN samples
    filled in place, each channel from its finite samples around (`alpha.fill_hidden`'s smooth continuation: no dot
    of 0 for a denoiser to keep or a neighbour to feel; an Inf beside them feeds nothing and stays for `sanitise`).
    A plane of a channel with no finite sample becomes 0."""
    missing = np.isnan(pixels)
    if not missing.any():
        return None
    finite = np.isfinite(pixels)
    known = np.where(finite, pixels, np.float32(0))
    for channel in np.flatnonzero(missing.any(axis=(0, 1, 2))):
        part = slice(channel, channel + 1)
        filled = fill_hidden(known[..., part], finite[..., part].astype(np.float32))
        np.copyto(pixels[..., part], filled, where=missing[..., part])
    return missing


def _image(raw: np.ndarray, source: Source, hdr: bool) -> Image:
    """The Image of a stored array: its layout checked; in float samples, NaN of a picture that is no render
    filled and kept for writing back (`Image.missing`), other NaN and Inf replaced and counted."""
    layout = source.layout
    check_layout(source.path, layout)
    pixels, alpha = to_planes(raw, layout)
    if layout.dtype.kind == "f":
        source = dataclasses.replace(source, value_range=_finite_range(pixels))
    missing = missing_filled(pixels) if layout.dtype.kind == "f" and not hdr else None  # a render's NaN: replaced
    nonfinite = sanitise(pixels) if layout.dtype.kind == "f" else 0
    if alpha is not None and layout.dtype.kind == "f":
        nonfinite += sanitise(alpha)
    held = False if missing is None else missing  # a filled NaN may stand above its alpha
    if alpha is not None and _associated(source) and bool(((pixels <= alpha + ASSOCIATED_SLACK) | held).all()):
        straight = unmultiplied(pixels, alpha)
        pixels = np.minimum(straight, 1.0) if layout.dtype.kind == "u" else straight  # rounding: 3/2 of 2/255
        source.meta["straightened"] = True  # straight colours, as every other format holds them, till written back
        if layout.dtype.kind == "f":
            source = dataclasses.replace(source, value_range=_finite_range(pixels))
    return Image(pixels, alpha, source, hdr=hdr, nonfinite=nonfinite, missing=missing)


ASSOCIATED_SLACK = 1e-6
"""How far a float file's colour may lie above its associated alpha and still be taken as multiplied by it (an
integer file's lies at most at it); a file whose colours lie further, or under an alpha of 0, holds them unmultiplied
whatever its tag says, and they are kept so."""


PREMULTIPLIED = ("exr",)
"""Formats whose colours are always multiplied by their alpha (OpenEXR's); a TIFF's are where its alpha is
associated, and are straightened when read (`_image`)."""


def _in_alpha_convention(image: Image, alpha: np.ndarray | None, fmt: str) -> Image:
    """The image with its colours as a file of `fmt` holds them beside `alpha`: an EXR's divided by it for a
    format of straight colours, straight ones multiplied by it for an EXR."""
    premultiplied = image.source.format in PREMULTIPLIED
    if alpha is None or premultiplied == (fmt in PREMULTIPLIED):
        return image
    pixels = unmultiplied(image.pixels, alpha) if premultiplied else image.pixels * alpha
    return dataclasses.replace(image, pixels=pixels)


def unmultiplied(pixels: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Colours multiplied by their alpha (an EXR's always, a TIFF's associated alpha) divided by it, as straight
    colours (PNG's, WebP's, a TIFF's unassociated alpha); where alpha is 0 or below, as they are (an EXR's glow)."""
    return np.divide(pixels, alpha, out=np.array(pixels, np.float32), where=alpha > 0)


def hides(image: Image) -> bool:
    """Whether the image's alpha says where it is transparent (PNG, WebP, EXR, a TIFF's alpha), rather than
    holding another band in a TIFF's unspecified extra sample (near infrared, depth, a mask)."""
    return image.alpha is not None and _extra_sample(image.source) != tifffile.EXTRASAMPLE.UNSPECIFIED


def with_hidden_filled(image: Image) -> tuple[Image, np.ndarray | None]:
    """The image with the colour under full transparency filled from its visible neighbours (`alpha.fill_hidden`)
    for a denoiser to fit and work on, and the weights (N, H, W, 1) whose zeros say where to give the stored colour
    back after (`restore_hidden`); the image itself and None where nothing is hidden. Colour that multiplied
    alpha keeps where its alpha is 0 (an EXR's glow, emitted light) is shown, not hidden."""
    if not hides(image):
        return image, None
    assert image.alpha is not None
    shown = np.clip(image.alpha, 0.0, 1.0)
    if image.source.format == "exr" or (_associated(image.source) and not image.source.meta.get("straightened")):
        shown[(shown == 0) & (image.pixels != 0).any(axis=-1, keepdims=True)] = 1.0
    if not (shown == 0).any():
        return image, None
    return dataclasses.replace(image, pixels=fill_hidden(image.pixels, shown)), shown


def with_hidden_restored(pixels: np.ndarray, image: Image, shown: np.ndarray | None) -> np.ndarray:
    """Worked `pixels` with the colour `image` stored where `shown` (from `with_hidden_filled`) is 0, exactly."""
    return pixels if shown is None else restore_hidden(pixels, image.pixels, shown)


def _extra_sample(source: Source) -> tifffile.EXTRASAMPLE | None:
    """What a TIFF's first extra sample holds (associated or unassociated alpha, or unspecified); None for other
    formats and a TIFF without one."""
    extra = source.meta.get("extrasamples") if source.format == "tiff" else None
    return tifffile.EXTRASAMPLE(int(extra[0])) if extra else None


def _associated(source: Source) -> bool:
    """Whether a file stores its colours multiplied by its alpha (a TIFF's associated alpha, as GIMP writes it)."""
    return _extra_sample(source) == tifffile.EXTRASAMPLE.ASSOCALPHA


def _finite_range(pixels: np.ndarray) -> tuple[float, float] | None:
    """The finite min and max of float pixels (NaN and Inf left out), None where none is finite."""
    low, high = float(pixels.min()), float(pixels.max())
    if np.isfinite(low) and np.isfinite(high):
        return low, high
    finite = pixels[np.isfinite(pixels)]
    return (float(finite.min()), float(finite.max())) if finite.size else None


def _read_tiff(path: Path) -> tuple[np.ndarray, Layout, dict[str, Any]]:
    with tifffile.TiffFile(path) as tif:
        if not tif.series:
            raise MdnError("cannot read TIFF (corrupt or truncated?): no image found", path)
        if len(tif.series) > 1:  # more images than one output keeps (a reduced-resolution preview is no series)
            shapes = ", ".join("x".join(map(str, series.shape)) for series in tif.series[:4])
            raise MdnError(f"TIFF holds {len(tif.series)} images ({shapes}): mdn takes one (save them apart)", path)
        series = tif.series[0]
        raw = series.asarray()
        page = tif.pages.first
        axes = series.axes
        decoded_rgb = page.photometric == tifffile.PHOTOMETRIC.YCBCR and page.compression == tifffile.COMPRESSION.JPEG
        palette = page.photometric == tifffile.PHOTOMETRIC.PALETTE and "S" not in axes and page.colormap is not None
        if palette and not tif.is_imagej:  # ImageJ's palette is a LUT over grey intensities: kept as it is
            raw, axes, decoded_rgb = _palette_colours(raw, page.colormap), axes + "S", True
        colour_models = (tifffile.PHOTOMETRIC.RGB, tifffile.PHOTOMETRIC.MINISBLACK)
        if "S" in axes and not decoded_rgb and page.photometric not in colour_models:
            raise MdnError(f"unsupported TIFF colour model {page.photometric.name}", path)
        meta = _tiff_meta(tif, page, "S" in axes, decoded_rgb)
        meta["pyramid"] = _pyramid(series)
        meta["pyramid_pages"] = bool(meta["pyramid"]) and not page.subifds  # reduced pages in the main chain
        axes = _extra_bands(axes, raw.shape, page, meta)
    return raw, Layout(axes, tuple(raw.shape), raw.dtype), meta


BANDS = "C"
"""The stack axis a grey TIFF's unspecified extra samples are read on (`_extra_bands`), S again when written."""


def _extra_bands(axes: str, shape: tuple[int, ...], page: tifffile.TiffPage, meta: dict[str, Any]) -> str:
    """`axes` with the samples of a grey TIFF whose extra samples are all unspecified (ExtraSamples 0: another
    detector's band, no alpha) read as channels on `BANDS` (each denoised, and fitted, as a channel of its own;
    `meta["bands"]` says so); where they cannot be (a colour picture's band beside RGB, a C axis there already),
    the band kept as it came and named for a warning in `meta["left_out"]`."""
    extras = tuple(int(extra) for extra in page.extrasamples or ())
    if "S" not in axes or not extras or any(extras):
        return axes
    if page.photometric == tifffile.PHOTOMETRIC.MINISBLACK and BANDS not in axes:
        meta["bands"] = BANDS
        return axes.replace("S", BANDS)
    samples = shape[axes.index("S")]
    kept = f"sample {samples}" if len(extras) == 1 else f"samples {samples - len(extras) + 1}-{samples}"
    meta.setdefault("left_out", []).append(
        f"the work on its {kept} (an extra band, not alpha: written back as it came)"
    )
    return axes


def stored_axes(source: Source) -> str:
    """The axes of `source`'s array as its file stores them: a grey TIFF's extra bands on S again (`_extra_bands`)."""
    bands = source.meta.get("bands")
    return source.layout.axes.replace(bands, "S") if bands else source.layout.axes


def _tiff_meta(tif: tifffile.TiffFile, page: tifffile.TiffPage, samples: bool, decoded_rgb: bool) -> dict[str, Any]:
    """What writing a TIFF back the same way needs of its first page: text, colour model, encoding, resolution."""
    compression = page.compression.name
    meta: dict[str, Any] = {
        "imagej": tif.imagej_metadata if tif.is_imagej else None,
        "ome": tif.is_ome,  # its OME-XML is the description, patched for the output (`ome.patched`)
        "description": None if tif.is_imagej or _shape_record(page.description) else page.description or None,
        "shaped": tif.is_shaped,  # tifffile's own record of the shape, written anew for the output's
        "shaped_axes": tif.is_shaped and "axes" in (tif.shaped_metadata or [{}])[0],  # and of the axes
        "photometric": "rgb" if decoded_rgb else page.photometric.name.lower(),  # JPEG's YCbCr comes decoded
        "colormap": page.colormap if page.photometric == tifffile.PHOTOMETRIC.PALETTE and not decoded_rgb else None,
        "planarconfig": tifffile.PLANARCONFIG(page.planarconfig).name.lower() if samples else None,
        "compression": compression.lower() if compression in _TIFF_COMPRESSIONS - {"NONE"} else None,
        "extrasamples": page.extrasamples or None,
        "predictor": page.predictor if compression in _TIFF_COMPRESSIONS - {"NONE"} and page.predictor > 1 else None,
        "byteorder": tif.byteorder,
        "bigtiff": tif.is_bigtiff,
        "tile": page.tile if page.tile and len(page.tile) == 2 and not any(n % 16 for n in page.tile) else None,
    }
    dpi = None
    if _resolution_readable(page):
        meta["resolution"] = (page.tags["XResolution"].value, page.tags["YResolution"].value)
        meta["resolutionunit"] = page.resolutionunit
        per_inch = {tifffile.RESUNIT.INCH: 1.0, tifffile.RESUNIT.CENTIMETER: 2.54}.get(page.resolutionunit)
        if per_inch:
            dpi = tuple(per_inch * numerator / denominator for numerator, denominator in meta["resolution"])
    text = None if tif.is_ome else meta["description"]  # OME-XML records the layout: no text to carry
    meta["photo"] = metadata.from_tiff(page, dpi, text)
    return meta


def _pyramid(series: tifffile.TiffPageSeries) -> list[tuple[int, int]]:
    """(height, width) of every level of a pyramid, kept in SubIFDs (an OME-TIFF's) or as reduced pages of the main
    chain (libvips', a slide scanner's), the full size first; [] for none."""
    if len(series.levels) < 2:
        return []
    return [(level.shape[level.axes.index("Y")], level.shape[level.axes.index("X")]) for level in series.levels]


def _shape_record(description: str) -> bool:
    """Whether a TIFF description is tifffile's own record of the array's shape, not a user's text."""
    return description.startswith('{"shape":')


def _palette_colours(indices: np.ndarray, colormap: np.ndarray) -> np.ndarray:
    """A palette (indexed colour) TIFF's pixels as the RGB colours its (3, N) colour map gives them, as a palette
    PNG reads: 8-bit where the map holds 8-bit colours (each a multiple of 257), else 16-bit. Its indices are no
    brightness to denoise (a 0-7 label map came back as 2-4, its colour map dropped)."""
    colours = np.moveaxis(colormap, 0, -1)[indices]
    return (colours // 257).astype(np.uint8) if not (colormap % 257).any() else colours.astype(np.uint16)


def _resolution_readable(page: Any) -> bool:
    """Whether a TIFF page's resolution can be written back: both tags, a known unit and no zero denominator (a
    damaged file may hold any number there)."""
    tags = [page.tags.get(name) for name in ("XResolution", "YResolution")]
    if any(tag is None for tag in tags) or page.resolutionunit not in tifffile.RESUNIT._value2member_map_:
        return False
    return all(isinstance(tag.value, tuple) and len(tag.value) == 2 and tag.value[1] for tag in tags)


# ---------------------------------------------------------------------------------------------- write


def write(image: Image, path: str | Path, *, overwrite: bool = False, dtype: str | None = None) -> Path:
    """Write `image` to `path` atomically, in the path's format.

    When the format is the source's, dtype, axes and metadata are kept (EXR: every other channel and part
    too). `dtype` changes the stored sample type; scene-linear values (an EXR's) stored as integers are
    sRGB-encoded (`srgb_encoded`), and a photo's sRGB values written as EXR decoded to light (`_display_encoded`).
    An existing file is refused unless `overwrite`; the input's own always.
    """
    path = Path(path)
    fmt = format_of(path)
    if path.exists() and path.resolve() == image.path.resolve():
        raise MdnError("is the input file: mdn never replaces an input; write the result to another file", path)
    if path.exists() and not overwrite:
        raise atomic.OutputExists(path)
    if path.is_dir():
        raise MdnError("is a directory, expected an output file name", path)
    source = image.source
    same = fmt == source.format
    if same and dtype is not None and source.meta.get("types"):  # an EXR's channels in the type asked for
        source = dataclasses.replace(source, meta={**source.meta, "types": None})
    layout = target_layout(image, path, dtype)
    alpha = image.alpha if layout.has_alpha else None  # none where an opaque one went into a format without it
    if fmt == "exr" and _display_encoded(image.source):  # an EXR holds light: a photo's sRGB decoded to it
        image = dataclasses.replace(image, pixels=srgb_decoded(image.pixels))
    image = _in_alpha_convention(image, alpha, fmt)  # linear, before sRGB
    pixels = _for_integers(image) if layout.dtype.kind == "u" else image.pixels
    if alpha is not None and same and source.meta.get("straightened"):  # multiplied again as the file keeps them
        pixels = pixels * alpha
    raw = from_planes(with_missing(image, pixels, layout), alpha, layout)
    encoder: Callable[[Path, np.ndarray, Source | None, Metadata], None] = _ENCODERS[fmt]
    if fmt == "tiff":  # an OME-XML names the file it is in: the published name, not the temporary one's
        encoder = functools.partial(_encode_tiff, name=path.name)
    kept, _ = photo_metadata(image, path, layout)  # EXIF, colour profile, dpi and text, as far as the format goes
    atomic.write_atomic(path, lambda tmp: encoder(tmp, raw, source if same else None, kept), replace=overwrite)
    return path


def photo_metadata(image: Image, path: Path, layout: Layout) -> tuple[Metadata, list[str]]:
    """What of the image's photo metadata (EXIF, colour profile, dpi, text, XMP) a file at `path` stored in `layout`
    (`target_layout`'s) carries, and words for what it leaves out (`metadata.for_output`; an OME-TIFF's OME-XML
    where it cannot describe the output: `ome.unpatchable`)."""
    fmt = format_of(path)
    meta = image.source.meta if fmt == image.source.format else {}
    kept, left_out = metadata.for_output(image.source.meta.get("photo"), fmt, _stored_colours(fmt, layout, meta))
    ome_xml = meta.get("description") if meta.get("ome") and meta.get("imagej") is None else None
    if ome_xml and (why := ome.unpatchable(ome_xml, layout.dtype)) is not None:
        left_out.append(f"its OME-XML ({why})")
    return kept, left_out


def _stored_colours(fmt: str, layout: Layout, meta: dict[str, Any]) -> int:
    """The colour channels a file of `fmt` stores for pixels in `layout` (written as the source of `meta` was, or
    fresh where `meta` is empty): 3 for a WebP (which stores grey as RGB) and for a TIFF that keeps its palette
    (ImageJ's LUT over grey values), else the layout's."""
    if fmt == "webp" or (fmt == "tiff" and _keeps_palette(meta, layout.dtype)):
        return 3
    return layout.colours


def _keeps_palette(meta: dict[str, Any], dtype: np.dtype) -> bool:
    """Whether a TIFF written as the source of `meta` was, in `dtype`, keeps its palette: one of as many colours
    as that integer type has values (written at another depth, it is grey)."""
    colormap = meta.get("colormap")
    return colormap is not None and dtype.kind == "u" and colormap.shape[-1] == 2 ** (dtype.itemsize * 8)


DISPLAY_MARGIN = 0.5
"""How far beyond [0, 1] a float file's values may reach and still be display-referred (noise overshoots its
range: a noisy [0, 1] picture spans about -0.1 to 1.1); further, they are physical units, stretched when written
as integers."""


def _for_integers(image: Image) -> np.ndarray:
    """The pixels as an integer file holds them, in [0, 1] before rounding: scene-linear ones sRGB-encoded; a float
    file's whose values as read left [0, 1] (physical units) stretched from its own min and max, as ImageJ makes an
    8-bit picture of them; others as they are (a small undershoot of [0, 1] data is clipped)."""
    if image.hdr:
        return srgb_encoded(image.pixels)
    units = _physical_units(image.source)
    return image.pixels if units is None else stretched(image.pixels, *units)


def _physical_units(source: Source) -> tuple[float, float] | None:
    """The (min, max) that a float file's values span where they are physical units (beyond [0, 1] by more than
    DISPLAY_MARGIN), stretched to [0, 1] when written as integers; None for display-referred values."""
    low, high = source.value_range or (0.0, 1.0)
    if (low >= -DISPLAY_MARGIN and high <= 1.0 + DISPLAY_MARGIN) or high <= low:
        return None
    return low, high


def stretched(pixels: np.ndarray, low: float, high: float) -> np.ndarray:
    """Float32 pixels with `low` at 0 and `high` at 1, a new array."""
    out = np.subtract(pixels, np.float32(low), dtype=np.float32)
    out *= np.float32(1.0 / (high - low))
    return out


DISPLAY_ENCODED = ("png", "jpeg", "webp", "bmp")
"""Formats whose 8-bit samples, and colour ones at any depth, are sRGB-encoded (display-referred), as viewers show
them; a colour TIFF's are too (a photo's). Grey 16-bit samples are taken as linear (a detector's counts), as the
denoisers' fit takes them."""


def _display_encoded(source: Source) -> bool:
    """Whether a picture read from `source` holds sRGB-encoded values (`DISPLAY_ENCODED`), decoded to light where
    an EXR is written: a PNG's 0.5 written as 0.5 had shown as 0.73 in a renderer."""
    layout = source.layout
    if layout.dtype.kind != "u":
        return False
    if layout.colours == 3:
        return source.format in (*DISPLAY_ENCODED, "tiff")
    return source.format in DISPLAY_ENCODED and layout.dtype.itemsize == 1


def srgb_decoded(encoded: np.ndarray, rows: int = 256) -> np.ndarray:
    """(N, H, W, C) sRGB-encoded values in [0, 1] as linear light (IEC 61966-2-1), `srgb_encoded`'s inverse; a
    band of `rows` rows at a time."""
    out = np.empty(encoded.shape, np.float32)
    for plane in range(encoded.shape[0]):
        for top in range(0, encoded.shape[1], rows):
            values = encoded[plane, top : top + rows]
            curve = np.power((np.maximum(values, 0.04045) + 0.055) / 1.055, 2.4)
            out[plane, top : top + rows] = np.where(values <= 0.04045, values / 12.92, curve)
    return out


def srgb_encoded(linear: np.ndarray, rows: int = 256) -> np.ndarray:
    """(N, H, W, C) scene-linear values as an integer image file shows them: clipped to [0, 1] and sRGB-encoded
    (IEC 61966-2-1), as viewers read PNG, JPEG and 8/16-bit TIFF (a render's linear 0.18 is 118 of 255, not 46); a
    band of `rows` rows at a time, so that the temporaries stay a band's."""
    out = np.empty(linear.shape, np.float32)
    for plane in range(linear.shape[0]):
        for top in range(0, linear.shape[1], rows):
            values = np.clip(linear[plane, top : top + rows], 0.0, 1.0)
            curve = np.power(values, 1 / 2.4) * 1.055 - 0.055
            out[plane, top : top + rows] = np.where(values <= 0.0031308, 12.92 * values, curve)
    return out


NO_ALPHA = ("jpeg", "bmp")
"""Formats that cannot hold an alpha channel (Pillow writes a BMP's as a fourth channel it reads back opaque)."""


MAX_SIDE = {"jpeg": 65500, "webp": 16383}
"""The longest side a format's encoder writes, in pixels (libjpeg's and libwebp's limits)."""


def target_layout(image: Image, path: Path, dtype: str | None = None, shrink: int = 1) -> Layout:
    """The stored layout for writing `image` to `path` (in `dtype`, or the closest to the source's), or an
    MdnError naming the image when that format cannot store it: checked before the work, not after (`shrink`:
    how many times smaller the work makes each side, as `aliased` noise does)."""
    fmt = format_of(path)
    if image.alpha is not None and fmt in NO_ALPHA and _alpha_for(image, fmt) is not None:
        raise MdnError(f"{fmt.upper()} cannot hold its alpha channel: write PNG, WebP or TIFF", image.path)
    height, width = (-(-side // shrink) for side in (image.height, image.width))
    if max(height, width) > MAX_SIDE.get(fmt, sys.maxsize):
        raise MdnError(
            f"{fmt.upper()} holds at most {MAX_SIDE[fmt]:,} pixels a side, and it is {width:,}x{height:,}: write "
            "PNG or TIFF",
            image.path,
        )
    if fmt == image.source.format and not dtype:
        return image.source.layout
    return _target_layout(image, fmt, dtype)


def _alpha_for(image: Image, fmt: str) -> np.ndarray | None:
    """The alpha a file of `fmt` gets: none in a format without alpha where every pixel is opaque (a screenshot's,
    an export's), which carries nothing; else the image's."""
    if image.alpha is not None and fmt in NO_ALPHA and bool((image.alpha >= 1.0).all()):
        return None
    return image.alpha


def sample_types(path: Path) -> tuple[str, ...]:
    """The sample types a file of this path's format stores."""
    return _DTYPES[format_of(path)]


def _target_layout(image: Image, fmt: str, dtype: str | None) -> Layout:
    """The stored layout for writing `image` as `fmt`, in `dtype` or the closest to the source's."""
    allowed = _DTYPES[fmt]
    if dtype is not None and dtype not in allowed:
        raise MdnError(f"{fmt.upper()} cannot store {dtype} (choose from {', '.join(allowed)})", image.path)
    source_dtype = image.source.layout.dtype.name
    target = np.dtype(dtype or (source_dtype if source_dtype in allowed else allowed[0]))
    if fmt == image.source.format:
        return dataclasses.replace(image.source.layout, dtype=target)
    count, height, width, colours = image.pixels.shape
    samples = colours + (_alpha_for(image, fmt) is not None)
    if count == 1:
        return Layout("YXS", (height, width, samples), target)
    if fmt != "tiff":
        raise MdnError(f"a stack of {count} images can only be written as TIFF", image.path)
    return Layout("QYXS", (count, height, width, samples), target)


def _squeeze_grey(raw: np.ndarray) -> np.ndarray:
    """A fresh (..., H, W, S) array without its sample axis where that holds one grey sample: (..., H, W)."""
    return raw[..., 0] if raw.ndim >= 3 and raw.shape[-1] == 1 else raw


PNG_SETTINGS = {"level": 1, "strategy": 3, "filter": 16}
"""Fast lossless PNG (zlib level 1, run-length strategy, the Sub filter: OpenCV's settings). On a 24 MP photo
this encodes in 1.1-1.5 s instead of 7 s at libpng's defaults, and the file is 6 % smaller on a textured image,
27 % larger on a very smooth one; 16-bit RGB: 3.1 s instead of 17.9 s, 3 % smaller."""


def _encode_png(path: Path, raw: np.ndarray, source: Source | None, kept: Metadata) -> None:
    import imagecodecs

    path.write_bytes(metadata.png_with(imagecodecs.png_encode(_squeeze_grey(raw), **PNG_SETTINGS), kept))


@contextlib.contextmanager
def _pillow_refusals() -> Iterator[None]:
    """Pillow's encoders refuse what they cannot write (a size past their limit) with ValueError: an OSError for
    `atomic.write_atomic` to name, as any failed write."""
    try:
        yield
    except ValueError as exc:
        raise OSError(str(exc)) from exc


def _encode_jpeg(path: Path, raw: np.ndarray, source: Source | None, kept: Metadata) -> None:
    # a JPEG's own settings, or full colour resolution (4:4:4): Pillow's 4:2:0 had smeared a lossless master's
    # fine red and blue detail (mean error 73 of 255 where 4:4:4 gives 0.4)
    settings = {"quality": JPEG_QUALITY, "subsampling": 0, **(source.meta.get("jpeg", {}) if source else {})}
    with _pillow_refusals():
        iio.imwrite(
            path,
            _squeeze_grey(raw),
            extension=".jpg",
            **settings,
            **metadata.pillow_options(kept),
        )


def _encode_webp(path: Path, raw: np.ndarray, source: Source | None, kept: Metadata) -> None:
    with _pillow_refusals():
        iio.imwrite(
            path,
            _squeeze_grey(raw),
            extension=".webp",
            lossless=True,
            **metadata.pillow_options(kept),
        )


def _encode_bmp(path: Path, raw: np.ndarray, source: Source | None, kept: Metadata) -> None:
    """A BMP with the picture's resolution, or 0 (none given) where it has none: Pillow's default is 96 dpi, which
    a reader would take for the picture's own."""
    iio.imwrite(path, _squeeze_grey(raw), extension=".bmp", dpi=kept.dpi or (0, 0))


def _encode_tiff(path: Path, raw: np.ndarray, source: Source | None, kept: Metadata, name: str | None = None) -> None:
    """Write a TIFF (`name`: the file's name once published, which an OME-XML records; default `path`'s)."""
    meta = source.meta if source else {}
    kwargs: dict[str, Any] = {
        **metadata.tiff_options(kept),
        **_tiff_pixel_options(raw, meta, fresh=source is None),
        **_tiff_text_options(name or path.name, raw, source, kept),
    }
    pyramid = meta.get("pyramid") if meta.get("imagej") is None else None  # ImageJ reads no SubIFDs
    levels = _reduced_levels(raw, source.layout.axes, pyramid) if source is not None and pyramid else []
    file = {"byteorder": meta.get("byteorder") or "<", "bigtiff": bool(meta.get("bigtiff"))}
    raw = raw if source else _squeeze_grey(raw)  # (H, W, 1) would be H pages
    _write_tiff(path, raw, kwargs, levels, pages=bool(meta.get("pyramid_pages")), **file)


def _tiff_pixel_options(raw: np.ndarray, meta: dict[str, Any], fresh: bool) -> dict[str, Any]:
    """tifffile's options that store `raw` as the source stored its pixels (or the usual way for a `fresh` file):
    colour model, palette, sample layout, compression and its predictor, tiles and resolution."""
    rgb = raw.shape[-1] in (3, 4) and raw.ndim >= 3
    options: dict[str, Any] = {
        "photometric": meta.get("photometric") or ("rgb" if rgb else "minisblack"),
        "compression": meta.get("compression"),
        "tile": meta.get("tile"),
    }
    if _keeps_palette(meta, raw.dtype):
        options["colormap"] = meta["colormap"]
    elif options["photometric"] == "palette":  # written at another depth than its palette's: grey
        options["photometric"] = "minisblack"
    if meta.get("planarconfig"):
        options["planarconfig"] = meta["planarconfig"]
    if meta.get("extrasamples"):
        options["extrasamples"] = meta["extrasamples"]
    elif fresh and raw.shape[-1] in (2, 4):
        options["extrasamples"] = ["unassalpha"]
    if options["compression"] and meta.get("predictor"):
        options["predictor"] = _predictor(meta["predictor"], raw.dtype)
    if "resolution" in meta:
        options["resolution"] = meta["resolution"]
        options["resolutionunit"] = meta["resolutionunit"]
    return options


def _predictor(kept: int, dtype: np.dtype) -> int | bool | None:
    """The TIFF predictor a file of `dtype` is written with where its source had `kept`: the same where it suits
    the type (horizontal for integers, floating point for floats), else the type's own (tifffile's choice), and none
    for integers wider than 32 bits, which tifffile has none for."""
    suits = {2, 34892, 34893} if dtype.kind in "iu" else {3, 34894, 34895}
    if kept in suits:
        return kept
    return True if dtype.kind == "f" or dtype.itemsize <= 4 else None


def _tiff_text_options(name: str, raw: np.ndarray, source: Source | None, kept: Metadata) -> dict[str, Any]:
    """tifffile's options that write the TIFF's text: ImageJ's metadata, an OME-XML patched for the output, the
    source's description or a photo's, and tifffile's shape record where the source had one."""
    meta = source.meta if source else {}
    if source is not None and meta.get("imagej") is not None:
        imagej = {
            k: v
            for k, v in meta["imagej"].items()
            if k not in ("ImageJ", "images", "channels", "slices", "frames", "hyperstack")
        }
        if raw.dtype != source.layout.dtype:  # the display range in the written sample type's units
            imagej.update({k: _display_range(imagej[k], source, raw.dtype) for k in IMAGEJ_RANGES if k in imagej})
        return {"imagej": True, "metadata": {**imagej, "axes": stored_axes(source)}}
    if source is not None and meta.get("ome") and meta.get("description"):
        return _ome_options(name, raw, source)
    # {"shape": ..., "axes": ...} of what is written (a thumbnail's half size, a palette's colours) where one was
    text = meta.get("description") if source else metadata.description(kept)
    shape_record = {"axes": stored_axes(source)} if meta.get("shaped_axes") else {} if meta.get("shaped") else None
    return {"metadata": shape_record, "description": _tiff_text(text)}


IMAGEJ_RANGES = ("min", "max", "Ranges")
"""ImageJ's display range (min and max; a hyperstack's per channel, as Ranges): values of the stored samples."""


def _display_range(values: Any, source: Source, dtype: np.dtype) -> Any:
    """ImageJ display values (a number, or a tuple of them) of `source`'s samples as the same picture written in
    `dtype` stores them: integers scaled to the type's range, physical units stretched as `_for_integers` does."""
    value = np.asarray(values, np.float64)
    kind = source.layout.dtype.kind
    shown = value / np.iinfo(source.layout.dtype).max if kind == "u" else value  # as pixels hold it
    if dtype.kind == "u":
        units = _physical_units(source) if kind == "f" else None
        shown = (shown - units[0]) / (units[1] - units[0]) if units else shown
        shown = shown * np.iinfo(dtype).max
    return tuple(float(v) for v in shown) if shown.ndim else float(shown)


def _ome_options(name: str, raw: np.ndarray, source: Source) -> dict[str, Any]:
    """The OME-XML of `source` patched for `raw` written as `name` (every plane in this file's pages, in the order
    written); where it cannot be (unreadable XML, a type OME has no name for: `ome.unpatchable`, which the batch
    warns of), none but tifffile's record of the axes, rather than XML that describes another file."""
    axes = stored_axes(source)
    size = raw.shape[axes.index("Y")], raw.shape[axes.index("X")]
    planes = int(np.prod([n for axis, n in zip(axes, raw.shape, strict=True) if axis not in "YXS"], dtype=np.int64))
    big_endian = source.meta.get("byteorder") == ">"
    description = source.meta["description"]
    xml = ome.patched(description, raw.dtype, size, name, planes=planes, big_endian=big_endian)
    if xml is None:
        return {"metadata": {"axes": axes}, "description": None}
    return {"metadata": None, "description": _tiff_text(xml)}


_LEVEL_OPTIONS = ("photometric", "colormap", "planarconfig", "extrasamples", "compression", "predictor", "tile")
"""The options of level 0 that its reduced levels are written with too."""


def _write_tiff(
    path: Path,
    raw: np.ndarray,
    options: dict[str, Any],
    levels: list[np.ndarray],
    *,
    pages: bool = False,
    byteorder: str = "<",
    bigtiff: bool = False,
) -> None:
    """Write `raw` with `options`, and its reduced `levels` (if any) in SubIFDs of each of its pages, or with
    `pages` as reduced pages of the main chain after them (as libvips writes a pyramid); each level with tifffile's
    shape record where level 0 has one (its reader had called the file corrupted without); in `byteorder`, as a
    BigTIFF where `bigtiff` (as the source was) or where the data need it."""
    if not levels:
        tifffile.imwrite(path, raw, byteorder=byteorder, bigtiff=bigtiff or None, **options)  # None: imwrite's rule
        return
    size = raw.nbytes + sum(level.nbytes for level in levels)
    with tifffile.TiffWriter(path, bigtiff=bigtiff or size > 2**32 - 2**25, byteorder=byteorder) as tiff:
        tiff.write(raw, subifds=None if pages else len(levels), **options)
        shared = {key: options[key] for key in _LEVEL_OPTIONS if key in options}
        for level in levels:
            tiff.write(level, subfiletype=1, metadata=options.get("metadata"), **shared)


def _reduced_levels(raw: np.ndarray, axes: str, pyramid: list[tuple[int, int]]) -> list[np.ndarray]:
    """The reduced levels of a `pyramid` ((height, width) of each level, the full size first) rebuilt from `raw`,
    each from the one before by block means; sizes scaled where `raw` is not the full size (a noise that
    decimates)."""
    y, x = axes.index("Y"), axes.index("X")
    (height, width), level, levels = pyramid[0], raw, []
    for h, w in pyramid[1:]:
        shape = max(1, round(h * raw.shape[y] / height)), max(1, round(w * raw.shape[x] / width))
        factors = [1] * level.ndim
        factors[y], factors[x] = max(1, round(level.shape[y] / shape[0])), max(1, round(level.shape[x] / shape[1]))
        sizes = list(level.shape)
        sizes[y], sizes[x] = shape
        level = block_means(level, factors, sizes)
        levels.append(level)
    return levels


def block_means(block: np.ndarray, factors: Sequence[int], shape: Sequence[int]) -> np.ndarray:
    """`block` reduced to `shape` by the means of blocks of `factors` (2 on each of two axes: a halving), cut or
    padded to shape x factors with the last row and column repeated where blocks overrun the edge; unsigned
    integers rounded: how an OME-Zarr's and an OME-TIFF's coarser levels are rebuilt from level 0."""
    block = block[tuple(slice(0, n * f) for n, f in zip(shape, factors, strict=True))]
    padding = [(0, n * f - b) for n, f, b in zip(shape, factors, block.shape, strict=True)]
    if any(after for _, after in padding):
        block = np.pad(block, padding, mode="edge")
    split = block.reshape([v for n, f in zip(shape, factors, strict=True) for v in (n, f)])
    means = split.mean(axis=tuple(range(1, 2 * len(shape), 2)), dtype=np.float64)
    return np.rint(means).astype(block.dtype) if block.dtype.kind == "u" else means.astype(block.dtype)


def _tiff_text(text: str | None) -> str | bytes | None:
    """A TIFF string tag as tifffile can write it: ASCII as it is, other text as its UTF-8 bytes (tifffile
    refuses a str that is not 7-bit ASCII, and reads the bytes back as the same text)."""
    return text.encode() if text is not None and not text.isascii() else text


_ENCODERS = {
    "png": _encode_png,
    "jpeg": _encode_jpeg,
    "webp": _encode_webp,
    "bmp": _encode_bmp,
    "tiff": _encode_tiff,
    "exr": exr.write,
}
