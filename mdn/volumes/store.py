"""A volume's stores and chunk grid: zarr arrays and OME-Zarr images opened and checked, their chunks named, the
output store created (or reopened where a run stopped) mirroring the input, its coarser levels rebuilt, and the
progress markers of the chunks done."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np

from mdn.errors import MdnError
from mdn.io import images, tonemap
from mdn.stabilise import Stabiliser, stabiliser_for

PROGRESS = ".mdn-progress"
"""The folder of an output volume that marks its finished chunks while a run is under way."""


Chunk = tuple[slice, ...]


Unit = tuple[Chunk, ...]
"""Adjacent chunks of one stack position, denoised together."""


def is_volume(path: str | Path) -> bool:
    """Whether `path` names a zarr store (a `.zarr` folder, or a folder holding zarr metadata)."""
    path = Path(path)
    markers = ("zarr.json", ".zarray", ".zgroup")
    return path.suffix.lower() == ".zarr" or (path.is_dir() and any((path / m).is_file() for m in markers))


def zarr_module() -> Any:
    try:
        import zarr
    except ImportError:
        raise MdnError("zarr volumes need the distributed extra: pip install 'mdn[distributed]'") from None
    return zarr


def multiscales(attributes: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The OME-NGFF multiscales of a group's attributes (0.4 at the top, 0.5 under "ome"), or None."""
    found = attributes.get("multiscales") or attributes.get("ome", {}).get("multiscales")
    return found or None


@dataclass(frozen=True)
class Volume:
    """An opened zarr store: its level-0 array, and the dataset paths of an OME-Zarr image's levels."""

    path: Path
    root: Any  # zarr.Group or zarr.Array
    levels: tuple[str, ...]
    """The arrays of an OME-Zarr image, finest first; () for a plain array."""

    @classmethod
    def open(cls, path: str | Path) -> Volume:
        zarr = zarr_module()
        path = Path(path)
        try:
            root = zarr.open(str(path), mode="r")
        except Exception as exc:  # zarr raises many kinds for a missing or broken store
            raise MdnError(f"cannot open zarr store: {exc}", path) from None
        if isinstance(root, zarr.Array):
            return cls(path, root, ())
        scales = multiscales(dict(root.attrs))
        if not scales:
            raise MdnError("zarr group without OME-Zarr multiscales: name one of its arrays (STORE.zarr/ARRAY)", path)
        levels = tuple(d["path"] for d in scales[0]["datasets"])
        return cls(path, root, levels)

    @property
    def array(self) -> Any:
        """The array that is denoised: level 0 of an image, or the plain array."""
        return self.root[self.levels[0]] if self.levels else self.root

    def check(self) -> None:
        """Refuse what cannot be denoised plane by plane."""
        array = self.array
        if array.ndim < 2 or min(array.shape[-2:]) < 2:
            raise MdnError(f"zarr array of shape {array.shape} has no image plane in its last two axes", self.path)
        if array.ndim >= 3 and array.shape[-1] <= CHANNELS_AT_MOST < array.shape[-2]:
            raise MdnError(
                f"zarr array of shape {array.shape} ends in an axis of {array.shape[-1]} (colour channels?): mdn "
                "denoises the planes of the last two axes (Y, X); store the channels before them",
                self.path,
            )
        if array.dtype.kind not in "uf":
            raise MdnError(f"unsupported sample type {array.dtype} (unsigned integers or floats)", self.path)


CHANNELS_AT_MOST = 4
"""A last axis this short, after a longer one, holds a pixel's channels (RGB, RGBA), not an image's columns: its
planes would mix colours as rows of three pixels (a colour volume stored channels-last gained 0.5 dB where its
TIFF gained 14)."""


def chunks_of(shape: tuple[int, ...], chunks: tuple[int, ...]) -> list[Chunk]:
    """The chunk grid of an array as slices, in C order."""
    ranges = [[slice(s, min(s + c, n)) for s in range(0, n, c)] for n, c in zip(shape, chunks, strict=True)]
    return [tuple(chunk) for chunk in itertools.product(*ranges)]


def chunk_name(chunk: Chunk, chunks: tuple[int, ...]) -> str:
    """A chunk's grid index as zarr names it, e.g. '0.3.1'."""
    return ".".join(str(s.start // c) for s, c in zip(chunk, chunks, strict=True))


def sample_scale(dtype: np.dtype) -> np.float32:
    return np.float32(np.iinfo(dtype).max if dtype.kind == "u" else 1.0)


def read_pixels(array: Any, index: tuple[Any, ...], scale: np.float32) -> np.ndarray:
    """`array[index]` as float32 in the file's [0, 1] scale (`scale`: `sample_scale`), NaN as 0: how the planes
    are read for their transform's fit and for the network alike."""
    return np.nan_to_num(np.asarray(array[index], dtype=np.float32) / scale)


def display_range(array: Any) -> tonemap.Stretch | tonemap.Identity:
    """The transform a file of this sample type gets (`tonemap.fit`): 8-bit as it is, 16-bit and float
    stretched from the volume's own minimum and maximum, found chunk by chunk."""
    if array.dtype == np.uint8:
        return tonemap.Identity()
    low, high = np.inf, -np.inf
    for chunk in chunks_of(array.shape, array.chunks):
        block = array[chunk]
        finite = block[np.isfinite(block)] if array.dtype.kind == "f" else block
        if finite.size:
            low, high = min(low, finite.min()), max(high, finite.max())
    scale = sample_scale(array.dtype)
    low, high = (np.float32(v) / scale for v in (low, high)) if np.isfinite(low) else (np.float32(0),) * 2
    return tonemap.Stretch(float(low), float(high) if high > low else float(low) + 1.0)


class _Plane:
    """One plane of a volume, read when it is indexed by rows and columns (a region) or taken as an array (all of
    it), as float32 in the file's [0, 1] scale: a fit reads crops of a large plane (`stabilise._crops`)."""

    def __init__(self, array: Any, plane: tuple[int, ...], scale: np.float32) -> None:
        self.array, self.plane, self.scale = array, plane, scale
        self.shape: tuple[int, int] = tuple(array.shape[-2:])
        self.size = self.shape[0] * self.shape[1]

    def __getitem__(self, region: tuple[slice, slice]) -> np.ndarray:
        return read_pixels(self.array, (*self.plane, *region), self.scale)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        pixels = read_pixels(self.array, self.plane, self.scale)
        return pixels if dtype is None else pixels.astype(dtype)


class _Planes(Sequence[_Plane]):
    """A volume's planes, each read when it is used (as `chunks` reads them), so that a fit over them holds one
    plane, or crops of one, at a time."""

    def __init__(self, array: Any) -> None:
        self.array, self.scale = array, sample_scale(array.dtype)
        self.stack = array.shape[:-2]

    def __len__(self) -> int:
        return int(np.prod(self.stack))

    @overload
    def __getitem__(self, index: int) -> _Plane: ...
    @overload
    def __getitem__(self, index: slice) -> list[_Plane]: ...
    def __getitem__(self, index: int | slice) -> _Plane | list[_Plane]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not 0 <= index < len(self):
            raise IndexError(index)
        plane = np.unravel_index(index, self.stack) if self.stack else ()
        return _Plane(self.array, tuple(int(i) for i in plane), self.scale)


def noisy_range(array: Any) -> tonemap.Stretch | tonemap.Identity | Stabiliser:
    """The transform a file of this sample type gets on its way to a denoiser (`tonemap.fit_noisy`): the
    stabilising transform fitted to the volume's planes where their noise grows with the signal, else
    `display_range`."""
    if array.dtype == np.uint8:
        return tonemap.Identity()
    return stabiliser_for(_Planes(array)) or display_range(array)


def bounding_box(chunks: Unit) -> Chunk:
    """The slices that cover a unit's chunks."""
    return tuple(slice(min(c[d].start for c in chunks), max(c[d].stop for c in chunks)) for d in range(len(chunks[0])))


def stored(pixels: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float pixels in the array's sample type: integers rounded and clipped as image files are."""
    if dtype.kind == "u":
        flat = pixels.reshape(-1, *pixels.shape[-2:], 1)
        return images.quantised(flat, dtype).reshape(pixels.shape)
    return pixels.astype(dtype)


def prepare_target(volume: Volume, target: Path, overwrite: bool) -> list[str]:
    """Create the output store mirroring `volume` (format, shapes, chunks, sample types, compressors and
    attributes), or open an interrupted one; returns the names of the chunks already done."""
    zarr = zarr_module()
    progress = target / PROGRESS
    if target.exists() and progress.is_dir() and not overwrite:
        return sorted(p.name for p in progress.iterdir())
    if target.exists():
        if not overwrite:
            raise MdnError("output exists (--overwrite to replace it)", target)
        shutil.rmtree(target)
    arrays = {name: volume.root[name] for name in volume.levels} if volume.levels else {"": volume.root}
    if volume.levels:
        group = zarr.open_group(str(target), mode="w", zarr_format=volume.root.metadata.zarr_format)
        group.attrs.update(dict(volume.root.attrs))
    for name, array in arrays.items():
        settings = {"shape": array.shape, "chunks": array.chunks, "dtype": array.dtype, "attributes": dict(array.attrs)}
        settings |= {"compressors": array.compressors, "fill_value": array.fill_value}
        if name:
            group.create_array(name, **settings)
        else:
            zarr.create_array(str(target), zarr_format=array.metadata.zarr_format, **settings)
    progress.mkdir()
    return []


def rebuild_levels(volume: Volume, target: Path) -> None:
    """Every coarser level of an OME-Zarr output from its level 0, by block means over the factors between the
    levels' shapes, chunk by chunk."""
    zarr = zarr_module()
    group = zarr.open_group(str(target), mode="r+")
    finest = group[volume.levels[0]]
    for name in volume.levels[1:]:
        level = group[name]
        factors = [max(1, round(a / b)) for a, b in zip(finest.shape, level.shape, strict=True)]
        for chunk in chunks_of(level.shape, level.chunks):
            source = tuple(slice(s.start * f, s.stop * f) for s, f in zip(chunk, factors, strict=True))
            block = np.asarray(finest[source], dtype=np.float64)
            shape = [s.stop - s.start for s in chunk]
            block = np.pad(block, [(0, n * f - b) for n, f, b in zip(shape, factors, block.shape, strict=True)],
                           mode="edge")  # fmt: skip
            means = block.reshape([v for n, f in zip(shape, factors, strict=True) for v in (n, f)])
            means = means.mean(axis=tuple(range(1, 2 * len(shape), 2)))
            level[chunk] = np.rint(means).astype(level.dtype) if level.dtype.kind == "u" else means.astype(level.dtype)


def finish(volume: Volume, target: Path) -> None:
    """Rebuild an image's coarser levels and drop the progress markers: the output is complete."""
    if len(volume.levels) > 1:
        rebuild_levels(volume, target)
    shutil.rmtree(target / PROGRESS, ignore_errors=True)


def unit_name(unit: Unit, chunks: tuple[int, ...]) -> str:
    """'chunk 0.1.2' or 'chunks 0.0.0-0.1.1': a unit's chunks as a message names them."""
    first, last = chunk_name(unit[0], chunks), chunk_name(unit[-1], chunks)
    return f"chunk {first}" if len(unit) == 1 else f"chunks {first}-{last}"


def output_path(source: Path, output: Path | None, suffix: str, several: bool) -> Path:
    """Where a volume's result goes: NAME{suffix}.zarr beside it, `output` itself (one volume, a .zarr path), or
    `output`/NAME.zarr."""
    if output is None:
        return source.with_name(f"{source.stem}{suffix}{source.suffix or '.zarr'}")
    if output.suffix.lower() == ".zarr" and not several:
        return output
    return output / source.name
