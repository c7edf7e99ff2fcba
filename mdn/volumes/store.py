"""A volume's stores and chunk grid: zarr arrays and OME-Zarr images opened and checked, their chunks named, the
output store created (or reopened where a run stopped with the same settings, `record`) mirroring the input, its
coarser levels rebuilt and its other members (an OME-Zarr image's labels) copied, and the progress markers of the
chunks done."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np

from mdn.errors import MdnError
from mdn.io import atomic, batch, images, picture, tonemap
from mdn.stabilise import Stabiliser, stabiliser_for
from mdn.volumes import record

PROGRESS = ".mdn-progress"
"""The folder of an output volume that marks its finished chunks while a run is under way."""


Chunk = tuple[slice, ...]


Unit = tuple[Chunk, ...]
"""Adjacent chunks of one stack position, denoised together."""


ZARR_MARKERS = ("zarr.json", ".zarray", ".zgroup")
"""The files that make a folder a zarr store (v3, v2 array, v2 group)."""


def is_volume(path: str | Path) -> bool:
    """Whether `path` names a zarr store (a `.zarr` folder, or a folder holding zarr metadata)."""
    path = Path(path)
    return path.suffix.lower() == ".zarr" or (path.is_dir() and any((path / m).is_file() for m in ZARR_MARKERS))


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

    @property
    def channel_axis(self) -> int | None:
        """The axis of the image's channels (one detector or dye each), as an OME-Zarr image's axes or a zarr v3
        array's dimension names say; None without one of two or more channels before the plane's axes."""
        scales = multiscales(dict(self.root.attrs)) if self.levels else None
        axes = scales[0].get("axes") if scales else getattr(self.array.metadata, "dimension_names", None)
        for index, axis in enumerate(axes or ()):
            name, kind = (axis.get("name"), axis.get("type")) if isinstance(axis, dict) else (axis, None)
            channel = kind == "channel" or str(name).lower() in ("c", "channel")
            if channel and index < self.array.ndim - 2 and self.array.shape[index] >= 2:
                return index
        return None

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
    """`array[index]` (a plane or a region of one) as float32 in the file's [0, 1] scale (`scale`: `sample_scale`),
    as a file's are read: NaN ("no data") filled from the pixels around in the region read
    (`images.missing_filled`: next to NaN a region's pixels can differ slightly from the whole plane's; `missing_kept`
    writes it back), -Inf as 0 and +Inf as the largest finite magnitude read (`picture.sanitise`). How the planes
    are read for their transform's fit and for the network alike."""
    pixels = np.asarray(array[index], dtype=np.float32) / scale
    if array.dtype.kind == "f":  # a fresh array: filled and replaced in place
        images.missing_filled(pixels.reshape(-1, *pixels.shape[-2:], 1))
        picture.sanitise(pixels)
    return pixels


def missing_kept(pixels: np.ndarray, source: Any, chunk: Chunk, dtype: np.dtype) -> np.ndarray:
    """Worked `pixels` of `chunk` with NaN again where the `source` array held it there, when both it and the
    array they go to (`dtype`) store floats."""
    if dtype.kind != "f" or source.dtype.kind != "f":
        return pixels
    missing = np.isnan(source[chunk])
    return np.where(missing, np.float32(np.nan), pixels) if missing.any() else pixels


def count_nonfinite(array: Any) -> int:
    """How many +-Inf samples a float volume holds (read chunk by chunk; 0 for integers): what `read_pixels`
    replaces (NaN it keeps), counted once for the warning a file's replacements get."""
    if array.dtype.kind != "f":
        return 0
    return sum(int(np.count_nonzero(np.isinf(array[chunk]))) for chunk in chunks_of(array.shape, array.chunks))


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
    return tonemap.Stretch.of_range(float(low), float(high))  # a flat volume as a flat file


def robust_range(array: Any) -> tonemap.Stretch | tonemap.Identity:
    """The transform zero-shot fitting gives a file of this sample type (`tonemap.fit_robust`): 8-bit as it is,
    16-bit and float stretched from the range of a sample of the volume's planes without its outliers, the pixels
    a file's fit samples."""
    if array.dtype == np.uint8:
        return tonemap.Identity()
    return tonemap.Stretch.robust(_Planes(array))


class ChannelView:
    """One channel of an array with a channel axis, indexed as an array without that axis: what the range and
    the noise of each channel are fitted on."""

    def __init__(self, array: Any, axis: int, channel: int) -> None:
        self.array, self.axis, self.channel, self.dtype = array, axis, channel, array.dtype
        self.shape = tuple(array.shape[:axis] + array.shape[axis + 1 :])
        self.chunks = tuple(array.chunks[:axis] + array.chunks[axis + 1 :])

    def __getitem__(self, index: Any) -> np.ndarray:
        index = index if isinstance(index, tuple) else (index,)
        return self.array[(*index[: self.axis], self.channel, *index[self.axis :])]


@dataclass(frozen=True)
class ByChannel:
    """A transform fitted to each channel of a volume's channel axis (as `tonemap.PerChannel` for files), applied
    to that channel's planes."""

    transforms: tuple[Any, ...]
    axis: int

    @classmethod
    def fit(cls, array: Any, axis: int, fit_one: Callable[[Any], Any]) -> ByChannel:
        return cls(tuple(fit_one(ChannelView(array, axis, c)) for c in range(array.shape[axis])), axis)

    def for_plane(self, plane: tuple[int, ...]) -> Any:
        """The transform of the channel a plane (its index on the stack's axes) belongs to."""
        return self.transforms[plane[self.axis]]


def plane_transform(transform: Any, plane: tuple[int, ...]) -> Any:
    """The transform one plane goes through: the volume's, or its channel's."""
    return transform.for_plane(plane) if isinstance(transform, ByChannel) else transform


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


def camera_noise(array: Any, transform: Any) -> float | None:
    """How many times its camera's the volume's noise is through a camera card's transform (`tonemap.camera_noise`,
    on the planes a file's check reads); None for any other transform."""
    return tonemap.camera_noise(transform, _Planes(array))


def bounding_box(chunks: Unit) -> Chunk:
    """The slices that cover a unit's chunks."""
    return tuple(slice(min(c[d].start for c in chunks), max(c[d].stop for c in chunks)) for d in range(len(chunks[0])))


def stored(pixels: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float pixels in the array's sample type: integers rounded and clipped as image files are."""
    if dtype.kind == "u":
        flat = pixels.reshape(-1, *pixels.shape[-2:], 1)
        return picture.quantised(flat, dtype).reshape(pixels.shape)
    return pixels.astype(dtype)


def check_target(source: Path, target: Path) -> None:
    """An MdnError naming `target` where a volume's output cannot go there whatever `--overwrite` says: an image
    file's name (`check_store_name`), the input itself (or a store inside it, or around it: a volume is read while
    its output is written), a file, a folder that holds no zarr store, or a path below a file."""
    check_store_name(target)
    inside, around = (Path(os.path.abspath(p)) for p in (target, source))
    store = _store_around(source) or around
    if inside == around or inside.is_relative_to(store) or around.is_relative_to(inside):
        raise MdnError("is the input volume or inside it: a volume is not denoised in place (choose another --output)",
                       target)  # fmt: skip
    blocking = atomic.file_in_the_way(target)
    if blocking is not None:
        raise MdnError("is a file, not a zarr store or a folder; refusing to replace it", blocking)
    if target.is_dir() and any(target.iterdir()) and not any((target / name).exists() for name in ZARR_MARKERS):
        raise MdnError("is a folder but no zarr store; refusing to replace it", target)


def prepare_target(
    volume: Volume, target: Path, overwrite: bool, settings: dict[str, Any]
) -> tuple[list[str], dict[str, Any], list[str]]:
    """Create the output store mirroring `volume` (format, shapes, chunks, sample types, compressors and
    attributes) with `settings` (`record`: what makes its chunks) in its progress folder, or open an interrupted
    one begun with the same; returns the names of the chunks already done, the record it was begun with and
    warnings (`check_target` refuses what cannot be replaced; `record.check` what was begun otherwise)."""
    zarr = zarr_module()
    check_target(volume.path, target)
    progress = target / PROGRESS
    if target.exists() and progress.is_dir() and not overwrite:
        _check_same(volume, target)
        begun, warnings = record.read(progress), []
        if begun is None or begun.get(record.UNRECORDED):  # an earlier mdn's: checked from here on
            warnings.append(record.unchecked(target))
            if begun is None:
                begun = {**settings, record.UNRECORDED: True}
                record.write(progress, begun)
        record.check(target, begun, settings)
        return sorted(p.name for p in progress.iterdir() if not p.name.startswith(".")), begun, warnings
    if target.exists():
        if not overwrite:
            raise MdnError("output exists (--overwrite to replace it)", target)
        shutil.rmtree(target)
    arrays = {name: volume.root[name] for name in volume.levels} if volume.levels else {"": volume.root}
    if volume.levels:
        group = zarr.open_group(str(target), mode="w", zarr_format=volume.root.metadata.zarr_format)
        group.attrs.update(dict(volume.root.attrs))
    for name, array in arrays.items():
        mirror = {"shape": array.shape, "chunks": array.chunks, "dtype": array.dtype, "attributes": dict(array.attrs)}
        mirror |= {"compressors": array.compressors, "fill_value": array.fill_value}
        mirror |= {"shards": array.shards, "filters": array.filters, "chunk_key_encoding": _key_encoding(array)}
        if array.metadata.zarr_format == 3:
            mirror |= {"dimension_names": array.metadata.dimension_names, "serializer": array.serializer}
        else:
            mirror |= {"order": array.order}
        if name:
            group.create_array(name, **mirror)
        else:
            zarr.create_array(str(target), zarr_format=array.metadata.zarr_format, **mirror)
    starting = target / f"{PROGRESS}.new"  # the folder appears with its record, or not at all
    starting.mkdir()
    record.write(starting, settings)
    starting.rename(progress)
    return [], settings, []


def write_grid(array: Any) -> tuple[int, ...]:
    """The blocks a volume's output is written in: its shards where it has them (a shard is one file, written
    whole by one task), else its chunks."""
    return tuple(array.shards or array.chunks)


def _key_encoding(array: Any) -> dict[str, str]:
    """How the array names its chunks' files (zarr v2's separator, v3's encoding), for its mirror."""
    metadata = array.metadata
    if metadata.zarr_format == 2:
        return {"name": "v2", "separator": metadata.dimension_separator}
    return metadata.chunk_key_encoding.to_dict()


def _check_same(volume: Volume, target: Path) -> None:
    """An MdnError where an unfinished output is not this volume's (another shape, chunks or sample type)."""
    try:
        output = Volume.open(target).array
    except MdnError:
        output = None
    ours = volume.array
    if output is None or (output.shape, write_grid(output), output.dtype) != (ours.shape, write_grid(ours), ours.dtype):
        found = f"{output.dtype} {output.shape}" if output is not None else "no array"
        raise MdnError(f"holds an unfinished run of another volume ({found}, not {ours.dtype} {ours.shape}); "
                       "--overwrite to start afresh", target)  # fmt: skip


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
            shape = [s.stop - s.start for s in chunk]
            level[chunk] = images.block_means(np.asarray(finest[source]), factors, shape)


def copy_members(volume: Volume, target: Path) -> None:
    """Copy an OME-Zarr image's groups and arrays other than its levels into its output unchanged, attributes and
    all: its `labels` (segmentation masks, which are not denoised), and anything else it holds beside its levels
    (an interrupted copy is made again)."""
    levels = {path.split("/")[0] for path in volume.levels}
    for name in sorted({*volume.root.group_keys(), *volume.root.array_keys()} - levels):
        copy = target / name
        if copy.exists():
            shutil.rmtree(copy)
        try:
            shutil.copytree(volume.path / name, copy)
        except OSError as exc:
            raise MdnError(f"cannot copy the image's {name!r} into its output: {exc.strerror or exc}", target) from None


def finish(volume: Volume, target: Path) -> None:
    """Rebuild an image's coarser levels, copy its other members (`copy_members`) and drop the progress markers:
    the output is complete."""
    if len(volume.levels) > 1:
        rebuild_levels(volume, target)
    if volume.levels:
        copy_members(volume, target)
    shutil.rmtree(target / PROGRESS, ignore_errors=True)


def unit_name(unit: Unit, chunks: tuple[int, ...]) -> str:
    """'chunk 0.1.2' or 'chunks 0.0.0-0.1.1': a unit's chunks as a message names them."""
    first, last = chunk_name(unit[0], chunks), chunk_name(unit[-1], chunks)
    return f"chunk {first}" if len(unit) == 1 else f"chunks {first}-{last}"


def output_path(
    source: Path, output: Path | None, suffix: str, several: bool, root: Path | None = None, in_folder: str = ""
) -> Path:
    """Where a volume's result goes: beside it (`default_output`), `output` itself (one volume, a .zarr path), or
    below `output` as below `root` (the folder the batch's outputs mirror, `batch.tree_root`; default: its own
    folder), as files mirror their tree, with the suffix the user gave (`in_folder`) as files take it."""
    if output is None:
        return default_output(source, suffix)
    if output.suffix.lower() == ".zarr" and not several:
        return output
    check_store_name(output)
    base = Path(os.path.abspath(root if root is not None else source.parent))
    return batch.suffixed(output / Path(os.path.abspath(source)).relative_to(base), in_folder)


def default_output(source: Path, suffix: str) -> Path:
    """NAME{suffix}.zarr beside a store, its ending kept (`cells.ome.zarr`: `cells{suffix}.ome.zarr`, as an
    OME-TIFF's is, `batch.name_parts`); an array inside a store goes beside the store, as STORE_ARRAY{suffix}.zarr."""
    store = _store_around(source)
    if store is not None:
        inner = "_".join(Path(os.path.abspath(source)).relative_to(store).parts)
        return store.with_name(f"{batch.name_parts(store)[0]}_{inner}{suffix}.zarr")
    name, ending = batch.name_parts(source)
    return source.with_name(f"{name}{suffix}{ending or '.zarr'}")


def check_store_name(target: Path) -> None:
    """An MdnError naming `target` where it ends as an image file does and is no folder yet: a zarr store is a
    folder, which a name such as `out.tif` would pass off as an image."""
    if target.suffix.lower() in images.FORMATS and not target.is_dir():
        raise MdnError(f"a zarr volume is written as a .zarr store, not {target.suffix}", target)


def _store_around(path: Path) -> Path | None:
    """The outermost zarr store that holds `path` below its top (None where it is a store's top or in none)."""
    found = None
    for parent in Path(os.path.abspath(path)).parents:
        if any((parent / name).exists() for name in ZARR_MARKERS):
            found = parent
    return found
