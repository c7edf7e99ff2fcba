"""Chunked volumes: zarr arrays and OME-Zarr images, denoised chunk by chunk in bounded memory.

A volume's planes are its last two axes (Y, X); every other axis (T, C, Z, or any) indexes planes, which run as
grey images, as the planes of a TIFF stack do. Each output chunk is the engine's `region` of its planes: the
tiles of the whole plane's grid that touch the chunk, read from the source as they are needed, blended with the
whole plane's weights, so that the chunk equals what the whole volume read from a TIFF gives, bit for bit before
rounding. Adjacent chunks of a plane are denoised together in units (within `--max-memory`), so that the tiles
that chunk borders cut run once per unit. The display range (the volume's own minimum and maximum, as for a 16-bit TIFF)
comes from one pass over the source. Memory is bounded by a unit and a tile around it.

The output mirrors the input: the same zarr format, shape, chunks, sample type, compressors and attributes; for
an OME-Zarr image level 0 is denoised and every other level of its multiscales rebuilt from it by block means.
Chunks are written as they finish, and a marker per chunk (in `.mdn-progress`, removed at the end) lets an
interrupted run go on where it stopped. Chunks run in this process or as tasks on a dask.distributed cluster
(`mdn.cluster`).
"""

from __future__ import annotations

import functools
import itertools
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mdn import images, registry, tonemap
from mdn.engine import Engine, EngineOptions
from mdn.errors import MdnError
from mdn.stabilise import Stabiliser

if TYPE_CHECKING:
    from mdn.zeroshot_run import Settings as ZeroShotSettings

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


def _zarr() -> Any:
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
        zarr = _zarr()
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
        if array.dtype.kind not in "uf":
            raise MdnError(f"unsupported sample type {array.dtype} (unsigned integers or floats)", self.path)


def chunks_of(shape: tuple[int, ...], chunks: tuple[int, ...]) -> list[Chunk]:
    """The chunk grid of an array as slices, in C order."""
    ranges = [[slice(s, min(s + c, n)) for s in range(0, n, c)] for n, c in zip(shape, chunks, strict=True)]
    return [tuple(chunk) for chunk in itertools.product(*ranges)]


def chunk_name(chunk: Chunk, chunks: tuple[int, ...]) -> str:
    """A chunk's grid index as zarr names it, e.g. '0.3.1'."""
    return ".".join(str(s.start // c) for s, c in zip(chunk, chunks, strict=True))


def _scale(dtype: np.dtype) -> np.float32:
    return np.float32(np.iinfo(dtype).max if dtype.kind == "u" else 1.0)


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
    scale = _scale(array.dtype)
    low, high = (np.float32(v) / scale for v in (low, high)) if np.isfinite(low) else (np.float32(0),) * 2
    return tonemap.Stretch(float(low), float(high) if high > low else float(low) + 1.0)


@dataclass(frozen=True)
class VolumeJob:
    """What every chunk of one volume needs, small enough to send to a cluster's workers: the stores, the card
    (its JSON path, so that workers load the same weights) and how it runs."""

    source: str
    target: str
    card: str | None
    options: EngineOptions | None
    transform: tonemap.Stretch | tonemap.Identity | Stabiliser
    chunks: tuple[int, ...]
    """The chunk shape of the source's level-0 array, which the output shares."""
    zeroshot: ZeroShotSettings | None = None
    """Zero-shot settings instead of a card: every plane is fitted whole, by itself (`mdn zeroshot`)."""


@functools.lru_cache(maxsize=4)
def _opened(job: VolumeJob) -> tuple[Any, Any, Engine]:
    """The job's source and target arrays and its engine, opened once per process (a cluster worker keeps them
    for all the chunks it runs)."""
    zarr = _zarr()
    source, target = Volume.open(job.source), zarr.open(job.target, mode="r+")
    if source.levels:
        target = target[source.levels[0]]
    engine = Engine(registry.load_model(job.card).net, job.options) if job.zeroshot is None else None
    return source.array, target, engine


def _zeroshot_plane(read: Callable[[slice, slice], np.ndarray], size: tuple[int, int], job: VolumeJob) -> np.ndarray:
    """One whole plane through the job's zero-shot method, as `mdn zeroshot` runs a single image."""
    from mdn import zeroshot_run

    plane = read(slice(0, size[0]), slice(0, size[1]))[None]
    result, _ = zeroshot_run.run(plane, job.zeroshot)
    return result[0]


def denoise_unit(job: VolumeJob, unit: Unit) -> list[str]:
    """Denoise a unit of adjacent chunks of the job's level-0 array (the tiles they share run once), write each
    chunk and mark it done; returns their names."""
    source, target, engine = _opened(job)
    box = bounding_box(unit)
    stack, rows, columns = box[:-2], box[-2], box[-1]
    height, width = source.shape[-2:]
    scale = _scale(source.dtype)
    result = np.empty([s.stop - s.start for s in box], np.float32)
    for offset in np.ndindex(*result.shape[:-2]):
        plane = tuple(s.start + i for s, i in zip(stack, offset, strict=True))
        index = int(np.ravel_multi_index(plane, source.shape[:-2])) if plane else 0

        def read(r: slice, c: slice, plane: tuple[int, ...] = plane) -> np.ndarray:
            pixels = np.nan_to_num(np.asarray(source[(*plane, r, c)], dtype=np.float32) / scale)
            return job.transform.forward(pixels)[..., None]

        if engine is None:
            part = _zeroshot_plane(read, (height, width), job)
        else:
            part = engine.region(read, (height, width, 1), rows, columns, index)
        result[offset] = job.transform.inverse(part[..., 0])
    names = []
    for chunk in unit:
        inside = tuple(slice(c.start - b.start, c.stop - b.start) for c, b in zip(chunk, box, strict=True))
        target[chunk] = _stored(result[inside], target.dtype)
        names.append(chunk_name(chunk, job.chunks))
        (Path(job.target) / PROGRESS / names[-1]).touch()
    return names


def bounding_box(chunks: Unit) -> Chunk:
    """The slices that cover a unit's chunks."""
    return tuple(slice(min(c[d].start for c in chunks), max(c[d].stop for c in chunks)) for d in range(len(chunks[0])))


UNIT_BYTES_PER_VOXEL = 64
"""A unit of work holds at most the memory budget (`--max-memory`) over this many voxels: its float32 result
and its source with a tile around it take about 16 bytes a voxel, a quarter of the budget; 2 GB give 32 M
voxels. Adjacent chunks of a plane's rows and columns are grouped up to it, so that tiles cut by chunk borders
run once per unit, not once per chunk."""


def units_of(shape: tuple[int, ...], chunks: tuple[int, ...], budget: int) -> list[Unit]:
    """The chunk grid grouped into units: the chunks of one stack position, in blocks of rows and columns of
    chunks holding at most `budget` voxels (at least one chunk)."""
    per_unit = max(1, budget // int(np.prod(chunks)))
    counts = [-(-n // c) for n, c in zip(shape, chunks, strict=True)]
    across = min(counts[-1], per_unit)
    down = min(counts[-2], max(1, per_unit // across))
    grid = chunks_of(shape, chunks)
    by_index = {tuple(s.start // c for s, c in zip(chunk, chunks, strict=True)): chunk for chunk in grid}
    units = []
    for stack in itertools.product(*(range(n) for n in counts[:-2])):
        for top in range(0, counts[-2], down):
            for left in range(0, counts[-1], across):
                rows, columns = range(top, min(top + down, counts[-2])), range(left, min(left + across, counts[-1]))
                units.append(tuple(by_index[(*stack, y, x)] for y in rows for x in columns))
    return units


def _stored(pixels: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float pixels in the array's sample type: integers rounded and clipped as image files are."""
    if dtype.kind == "u":
        flat = pixels.reshape(-1, *pixels.shape[-2:], 1)
        return images.quantised(flat, dtype).reshape(pixels.shape)
    return pixels.astype(dtype)


def prepare_target(volume: Volume, target: Path, overwrite: bool) -> list[str]:
    """Create the output store mirroring `volume` (format, shapes, chunks, sample types, compressors and
    attributes), or open an interrupted one; returns the names of the chunks already done."""
    zarr = _zarr()
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
    zarr = _zarr()
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


def plan(
    source: Path,
    target: Path,
    card: registry.ModelCard | None,
    options: EngineOptions | None,
    overwrite: bool,
    zeroshot: ZeroShotSettings | None = None,
) -> tuple[Volume, VolumeJob, list[Unit], list[str]]:
    """The job, the units with chunks left to do and the names of the chunks done, for denoising `source` into
    `target` with a card and its options, or with zero-shot settings (units of whole planes), the output created
    or reopened."""
    volume = Volume.open(source)
    volume.check()
    done = prepare_target(volume, target, overwrite)
    array = volume.array
    path = None
    if zeroshot is None:
        if card is None or card.path is None or options is None:
            raise MdnError("a card saved to a file and its options are needed to denoise a volume")
        path = str(card.path)
    camera = card is not None and card.transform
    transform = tonemap.camera_transform(card.transform, array.dtype, source) if camera else display_range(array)
    job = VolumeJob(str(source), str(target), path, options, transform, tuple(array.chunks), zeroshot)
    budget = sys.maxsize if zeroshot or options is None else options.max_memory // UNIT_BYTES_PER_VOXEL
    units = units_of(array.shape, array.chunks, budget)
    units = [u for u in units if any(chunk_name(c, array.chunks) not in done for c in u)]
    return volume, job, units, done


def finish(volume: Volume, target: Path) -> None:
    """Rebuild an image's coarser levels and drop the progress markers: the output is complete."""
    if len(volume.levels) > 1:
        rebuild_levels(volume, target)
    shutil.rmtree(target / PROGRESS, ignore_errors=True)


def run_here(job: VolumeJob, units: list[Unit], failed: list[str]) -> Iterator[list[str]]:
    """The units in this process, one after another; yields the names of each unit's chunks when they are
    written, and appends the units that failed, with their errors, to `failed` (the others go on)."""
    for unit in units:
        try:
            yield denoise_unit(job, unit)
        except (MdnError, OSError, MemoryError, RuntimeError, ValueError) as exc:
            failed.append(f"{unit_name(unit, job.chunks)}: {exc}")


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


def denoise(
    source: Path,
    target: Path,
    model: registry.Model | None,
    options: EngineOptions | None,
    *,
    zeroshot: ZeroShotSettings | None = None,
    overwrite: bool = False,
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Denoise a zarr volume or OME-Zarr image chunk by chunk into `target` (going on with an interrupted run
    there) with a card, or plane by plane with `zeroshot` settings, in this process or on the dask cluster at
    `scheduler`; `progress` gets (chunks done, chunks in all). Returns what a report records; raises MdnError
    naming the chunks that failed."""
    volume, job, units, done = plan(source, target, model and model.card, options, overwrite, zeroshot)
    total = int(np.prod([-(-n // c) for n, c in zip(volume.array.shape, job.chunks, strict=True)]))
    written = set(done)
    if progress:
        progress(len(written), total)
    failed: list[str] = []
    if scheduler:
        from mdn.cluster import run_on_cluster

        finished = run_on_cluster(job, units, scheduler, failed)
    else:
        finished = run_here(job, units, failed)
    for names in finished:
        written.update(names)
        if progress:
            progress(len(written), total)
    if failed:
        missing = total - len(written)
        raise MdnError(f"{missing} of {total} chunks failed ({'; '.join(failed[:3])}); run again to retry them",
                       target)  # fmt: skip
    finish(volume, target)
    return {
        "model": model.name if model else f"zeroshot {zeroshot.method}", "chunks": total, "units": len(units),
        "resumed_from": len(done), "shape": list(volume.array.shape),
    }  # fmt: skip
