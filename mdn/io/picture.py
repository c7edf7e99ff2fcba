"""An image as mdn works on it: float32 colour planes (N, H, W, C) with C = 1 (grey) or 3 (RGB), an optional
alpha plane, and the `Source` (path, format, stored `Layout`, what writing it back the same way needs); and the
exact conversions between stored arrays and planes (integers scaled to [0, 1], rounded and clipped back)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from mdn.errors import MdnError


@dataclass(frozen=True)
class Layout:
    """How (N, H, W, C) planes map onto the array as stored: axis letters, shape and sample type.

    Axes use tifffile's letters: Y and X are the image plane, S holds samples (grey+alpha, RGB, RGBA) and
    every other axis (T, Z, C, I, Q, ...) is a stack axis, flattened into N in stored order. A grey TIFF's
    unspecified extra samples (bands, no alpha) are read on C instead, each a channel (`images.stored_axes`).
    """

    axes: str
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def samples(self) -> int:
        return self.shape[self.axes.index("S")] if "S" in self.axes else 1

    @property
    def colours(self) -> int:
        return 3 if self.samples >= 3 else 1

    @property
    def has_alpha(self) -> bool:
        return self.samples in (2, 4)

    def channel_of_planes(self) -> np.ndarray | None:
        """The index on the C axis (a stack's channels: one detector or dye each) of each of the N planes, in the
        order `to_planes` stacks them; None without a C axis of two or more channels."""
        stack = [(axis, size) for axis, size in zip(self.axes, self.shape, strict=True) if axis not in "YXS"]
        sizes = [size for _, size in stack]
        axes = [axis for axis, _ in stack]
        if "C" not in axes or sizes[axes.index("C")] < 2:
            return None
        return np.indices(sizes)[axes.index("C")].ravel()


@dataclass
class Source:
    """Where an image came from and what is needed to write it back the same way."""

    path: Path
    format: str
    layout: Layout
    meta: dict[str, Any] = field(default_factory=dict)
    value_range: tuple[float, float] | None = None
    """The finite min and max of a float source's colour samples as read (None for integers)."""


@dataclass
class Image:
    """Pixels as float32 planes (N, H, W, C), alpha beside them, and their source."""

    pixels: np.ndarray
    alpha: np.ndarray | None
    source: Source
    hdr: bool = False
    nonfinite: int = 0
    """How many NaN and Inf samples the read replaced (a render's NaN, any Inf), for the warning that says so."""
    missing: np.ndarray | None = None
    """(N, H, W, C) True where a float picture that is no render held NaN ("no data", as microscopy and science
    files use it): filled from the pixels around for the work (`images.missing_filled`), NaN again when written
    as floats. None where there is none."""

    @property
    def path(self) -> Path:
        return self.source.path

    @property
    def height(self) -> int:
        return self.pixels.shape[1]

    @property
    def width(self) -> int:
        return self.pixels.shape[2]

    def with_pixels(self, pixels: np.ndarray) -> Image:
        """The same image with new pixels (alpha and source carried over). New pixels keep the planes and colours;
        a new height and width (a noise that decimates) resample alpha to it by nearest neighbour and scale the
        resolution (dpi, a TIFF's pixels per unit) with it."""
        n, h, w, c = self.pixels.shape
        if pixels.ndim != 4 or pixels.shape[0] != n or pixels.shape[3] != c:
            raise ValueError(f"pixels shape {pixels.shape} does not fit {self.pixels.shape}")
        pixels = pixels.astype(np.float32, copy=False)
        if pixels.shape[1:3] == (h, w):
            return dataclasses.replace(self, pixels=pixels)
        rows, cols = (kept_lines(old, new) for old, new in zip((h, w), pixels.shape[1:3], strict=True))
        alpha = None if self.alpha is None else self.alpha[:, rows][:, :, cols]
        missing = None if self.missing is None else self.missing[:, rows][:, :, cols]
        layout = self.source.layout
        shape = list(layout.shape)
        shape[layout.axes.index("Y")], shape[layout.axes.index("X")] = pixels.shape[1:3]
        source = dataclasses.replace(self.source, layout=dataclasses.replace(layout, shape=tuple(shape)))
        return dataclasses.replace(
            self,
            pixels=pixels,
            alpha=alpha,
            missing=missing,
            source=_rescaled(source, h / pixels.shape[1], w / pixels.shape[2]),
        )


def kept_lines(old: int, new: int) -> np.ndarray:
    """The rows (or columns) of `old` that a picture `new` long made from it keeps: every step-th from the first
    where a whole step makes it so (`aliased` noise's `x[::2]`), else the nearest."""
    step = -(-old // new)
    return np.arange(new) * step if -(-old // step) == new else np.arange(new) * old // new


def _rescaled(source: Source, y_shrink: float, x_shrink: float) -> Source:
    """`source` with its resolution (a photo's dpi, a TIFF's pixels per unit) scaled to a picture made from it
    `y_shrink` and `x_shrink` times smaller: a thumbnail's half size covers the same inches with half the pixels
    (as an OME-XML's physical pixel size doubles: `ome.patched`)."""
    meta = dict(source.meta)
    photo = meta.get("photo")
    if photo is not None and photo.dpi:
        meta["photo"] = dataclasses.replace(photo, dpi=(photo.dpi[0] / x_shrink, photo.dpi[1] / y_shrink))
    if "resolution" in meta:
        x, y = (Fraction(*part) for part in meta["resolution"])
        meta["resolution"] = tuple(_rational(value) for value in (x / Fraction(x_shrink), y / Fraction(y_shrink)))
    return dataclasses.replace(source, meta=meta)


def _rational(value: Fraction) -> tuple[int, int]:
    """A TIFF rational (two 32-bit parts) nearest `value`."""
    value = value.limit_denominator(2**31)
    return value.numerator, value.denominator


def _scale(dtype: np.dtype) -> float:
    return float(np.iinfo(dtype).max) if dtype.kind == "u" else 1.0


def to_planes(raw: np.ndarray, layout: Layout) -> tuple[np.ndarray, np.ndarray | None]:
    """Stored array -> float32 colour planes (N, H, W, C) and alpha (N, H, W, 1) or None."""
    stack = [i for i, a in enumerate(layout.axes) if a not in "YXS"]
    order = [*stack, layout.axes.index("Y"), layout.axes.index("X")]
    if "S" in layout.axes:
        order.append(layout.axes.index("S"))
    planes = np.transpose(raw, order)
    if "S" not in layout.axes:
        planes = planes[..., None]
    planes = planes.reshape(-1, *planes.shape[-3:]).astype(np.float32)  # always a copy: scaled in place
    planes /= np.float32(_scale(layout.dtype))
    colours = layout.colours
    alpha = planes[..., colours : colours + 1] if layout.has_alpha else None
    return np.ascontiguousarray(planes[..., :colours]), alpha


def from_planes(pixels: np.ndarray, alpha: np.ndarray | None, layout: Layout) -> np.ndarray:
    """Colour planes and alpha -> array in the stored axis order and dtype (rounded and clipped)."""
    planes = np.concatenate([pixels, alpha], axis=-1) if alpha is not None else pixels
    dtype = layout.dtype
    if dtype.kind == "u":
        planes = quantised(planes, dtype)
    elif dtype.kind == "f":
        info = np.finfo(dtype)
        planes = np.clip(planes, info.min, info.max)
    planes = planes.astype(dtype, copy=False)
    stack = [i for i, a in enumerate(layout.axes) if a not in "YXS"]
    order = [*stack, layout.axes.index("Y"), layout.axes.index("X")]
    if "S" in layout.axes:
        order.append(layout.axes.index("S"))
    stacked_shape = [layout.shape[i] for i in order]
    planes = planes.reshape(stacked_shape if "S" in layout.axes else [*stacked_shape, 1])
    if "S" not in layout.axes:
        planes = planes[..., 0]
    return np.ascontiguousarray(np.transpose(planes, np.argsort(order)))


def plain_layout(raw: np.ndarray) -> Layout:
    """Layout of a 2-D or 3-D (H, W[, S]) array."""
    return Layout("YXS" if raw.ndim == 3 else "YX", tuple(raw.shape), raw.dtype)


def check_layout(path: Path, layout: Layout) -> None:
    if 0 in layout.shape:
        raise MdnError(f"image is empty (shape {layout.shape})", path)
    if "Y" not in layout.axes or "X" not in layout.axes:
        raise MdnError(f"unsupported layout: axes {layout.axes!r} have no image plane", path)
    if layout.samples > 4:
        raise MdnError(f"unsupported layout: {layout.samples} samples per pixel (1 to 4 are supported)", path)
    if layout.dtype.kind not in "uf" or layout.dtype.itemsize > 8:
        hint = {"i": " (signed: convert it to uint16 or float32)", "b": " (1-bit: convert it to 8-bit grey)"}
        raise MdnError(f"unsupported sample type {layout.dtype}{hint.get(layout.dtype.kind, '')}", path)


def quantised(planes: np.ndarray, dtype: np.dtype, rows: int = 256) -> np.ndarray:
    """Float planes in [0, 1] -> unsigned integers, rounded and clipped, a band of `rows` rows at a time: scaled,
    rounded and clipped in place in one float band (2x faster than separate arrays), so that a 24 MP photo
    needs a few MB beside its result instead of another float copy. 32- and 64-bit integers take float64 bands
    (float32 rounds 2**32 - 1 up to 2**32, which wrapped white to 0)."""
    dtype = np.dtype(dtype)
    work = np.float64 if dtype.itemsize >= 4 else np.float32
    top = work(_scale(dtype))
    out = np.empty(planes.shape, dtype)
    for plane, target in zip(planes, out, strict=True):
        for start in range(0, plane.shape[0], rows):
            target[start : start + rows] = _quantised_band(plane[start : start + rows], top, dtype)
    return out


def _quantised_band(band: np.ndarray, top: np.floating, dtype: np.dtype) -> np.ndarray:
    """One band of `quantised`: scaled by `top`, rounded and clipped to what `dtype` holds. 2**64 - 1 has no float:
    values that reach it become the type's maximum."""
    scaled = np.multiply(band, top, dtype=top.dtype)
    np.rint(scaled, out=scaled)
    if int(top) <= np.iinfo(dtype).max:
        return np.clip(scaled, 0, top, out=scaled)
    white = scaled >= top
    np.clip(scaled, 0, np.nextafter(top, 0), out=scaled)
    result = scaled.astype(dtype)
    result[white] = np.iinfo(dtype).max
    return result


def replaced(count: int) -> str:
    """The words every command and the API use for the NaN and Inf values a read replaced."""
    return f"{count} NaN/Inf values replaced"


def sanitise(pixels: np.ndarray) -> int:
    """Replace NaN and -Inf by 0 and +Inf by the largest finite magnitude (a firefly, which the denoiser removes),
    in place; return how many were replaced. -Inf is no light at all: as the largest negative value it left a
    black dot that no denoiser takes away."""
    bad = ~np.isfinite(pixels)
    count = int(bad.sum())
    if count:
        finite = pixels[~bad]
        top = float(np.abs(finite).max()) if finite.size else 0.0
        np.copyto(pixels, np.nan_to_num(pixels, nan=0.0, posinf=top, neginf=0.0))
    return count
