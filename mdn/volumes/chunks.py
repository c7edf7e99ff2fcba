"""A volume's chunks denoised: the job every chunk needs (small enough to send to a cluster's workers), units of
adjacent chunks, and one unit through the engine's `region` (or a zero-shot run per plane), written with its
markers."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mdn import registry
from mdn.errors import MdnError
from mdn.inference.engine import Engine, EngineOptions
from mdn.io import tonemap
from mdn.stabilise import Stabiliser
from mdn.stages import windows
from mdn.volumes.store import (
    PROGRESS,
    ByChannel,
    Unit,
    Volume,
    bounding_box,
    chunk_name,
    chunks_of,
    missing_kept,
    plane_transform,
    read_pixels,
    sample_scale,
    stored,
    unit_name,
    zarr_module,
)
from mdn.zeroshot import run as zeroshot_run
from mdn.zeroshot.run import Settings as ZeroShotSettings


@dataclass(frozen=True)
class VolumeJob:
    """What every chunk of one volume needs, small enough to send to a cluster's workers: the stores, the card
    (its JSON path, so that workers load the same weights) and how it runs."""

    source: str
    target: str
    card: str | None
    options: EngineOptions | None
    transform: tonemap.Stretch | tonemap.Identity | Stabiliser | ByChannel
    chunks: tuple[int, ...]
    """The chunk shape of the source's level-0 array, which the output shares."""
    zeroshot: ZeroShotSettings | None = None
    """Zero-shot settings instead of a card: every plane is fitted whole, by itself (`mdn zeroshot`)."""


@functools.lru_cache(maxsize=4)
def _opened(job: VolumeJob) -> tuple[Any, Any, Engine]:
    """The job's source and target arrays and its engine, opened once per process (a cluster worker keeps them
    for all the chunks it runs)."""
    zarr = zarr_module()
    source, target = Volume.open(job.source), zarr.open(job.target, mode="r+")
    if source.levels:
        target = target[source.levels[0]]
    engine = None
    if job.zeroshot is None:
        model = registry.load_model(job.card)
        engine = Engine(model.net, job.options, model.grey_net)
    return source.array, target, engine


def _zeroshot_plane(read: Callable[[slice, slice], np.ndarray], size: tuple[int, int], job: VolumeJob) -> np.ndarray:
    """One whole plane through the job's zero-shot method, as `mdn zeroshot` runs a single image."""
    plane = read(slice(0, size[0]), slice(0, size[1]))[None]
    result, _ = zeroshot_run.run(plane, job.zeroshot)
    return result[0]


def _reader(job: VolumeJob, source: Any, plane: tuple[int, ...]) -> Callable[[slice, slice], np.ndarray]:
    """A reader of rows and columns of one plane of the source, in the display range as (h, w, 1) pixels."""
    scale = sample_scale(source.dtype)

    transform = plane_transform(job.transform, plane)

    def read(rows: slice, columns: slice) -> np.ndarray:
        return transform.forward(read_pixels(source, (*plane, rows, columns), scale))[..., None]

    return read


@functools.lru_cache(maxsize=2)
def _plane_statistics(job: VolumeJob, plane: tuple[int, ...], index: int) -> windows.Statistics:
    """What the stages measure over one plane that runs them window by window, measured once per process."""
    source, _, engine = _opened(job)
    return engine.plane_statistics(_reader(job, source, plane), (*source.shape[-2:], 1), index)


def denoise_unit(job: VolumeJob, unit: Unit) -> list[str]:
    """Denoise a unit of adjacent chunks of the job's level-0 array (the tiles they share run once), write each
    chunk and mark it done; returns their names."""
    source, target, engine = _opened(job)
    box = bounding_box(unit)
    stack, rows, columns = box[:-2], box[-2], box[-1]
    height, width = source.shape[-2:]
    result = np.empty([s.stop - s.start for s in box], np.float32)
    for offset in np.ndindex(*result.shape[:-2]):
        plane = tuple(s.start + i for s, i in zip(stack, offset, strict=True))
        index = int(np.ravel_multi_index(plane, source.shape[:-2])) if plane else 0
        read = _reader(job, source, plane)
        if engine is None:
            part = _zeroshot_plane(read, (height, width), job)
        elif engine.options.windowed((height, width, 1)):  # the stages window by window, with the plane's statistics
            statistics = _plane_statistics(job, plane, index)
            part = engine.refined_region(read, (height, width, 1), rows, columns, index, statistics)
        elif (rows.start, rows.stop, columns.start, columns.stop) == (0, height, 0, width):
            part = np.empty((height, width, 1), np.float32)  # a whole plane: the network, then its stages
            engine.denoise_plane(read(rows, columns), index, part)
        else:
            part = engine.region(read, (height, width, 1), rows, columns, index)
        result[offset] = plane_transform(job.transform, plane).inverse(part[..., 0])
    names = []
    for chunk in unit:
        inside = tuple(slice(c.start - b.start, c.stop - b.start) for c, b in zip(chunk, box, strict=True))
        target[chunk] = stored(missing_kept(result[inside], source, chunk, target.dtype), target.dtype)
        names.append(chunk_name(chunk, job.chunks))
        (Path(job.target) / PROGRESS / names[-1]).touch()
    return names


UNIT_BYTES_PER_VOXEL = 64
"""A unit of work holds at most the memory budget (`--max-memory`) over this many voxels: its float32 result
and its source with a tile around it take about 16 bytes a voxel, a quarter of the budget; 2 GB give 32 M
voxels. Adjacent chunks of a plane's rows and columns are grouped up to it, so that tiles cut by chunk borders
run once per unit, not once per chunk."""


def units_of(shape: tuple[int, ...], chunks: tuple[int, ...], budget: int, window: int = 0) -> list[Unit]:
    """The chunk grid grouped into units: the chunks of one stack position, in blocks of rows and columns of
    chunks holding at most `budget` voxels (at least one chunk); with a `window` side (the stages' windows,
    `stages.windows`), blocks of whole windows where chunks tile them, so that no window runs twice."""
    per_unit = max(1, budget // int(np.prod(chunks)))
    counts = [-(-n // c) for n, c in zip(shape, chunks, strict=True)]
    step_y, step_x = (window // c if window and window % c == 0 else 1 for c in chunks[-2:])
    across = min(counts[-1], max(step_x, per_unit // step_y // step_x * step_x))
    down = min(counts[-2], max(step_y, per_unit // across // step_y * step_y))
    grid = chunks_of(shape, chunks)
    by_index = {tuple(s.start // c for s, c in zip(chunk, chunks, strict=True)): chunk for chunk in grid}
    units = []
    for stack in itertools.product(*(range(n) for n in counts[:-2])):
        for top in range(0, counts[-2], down):
            for left in range(0, counts[-1], across):
                rows, columns = range(top, min(top + down, counts[-2])), range(left, min(left + across, counts[-1]))
                units.append(tuple(by_index[(*stack, y, x)] for y in rows for x in columns))
    return units


def run_here(job: VolumeJob, units: list[Unit], failed: list[str]) -> Iterator[list[str]]:
    """The units in this process, one after another; yields the names of each unit's chunks when they are
    written, and appends the units that failed, with their errors, to `failed` (the others go on)."""
    for unit in units:
        try:
            yield denoise_unit(job, unit)
        except (MdnError, OSError, MemoryError, RuntimeError, ValueError) as exc:
            failed.append(f"{unit_name(unit, job.chunks)}: {exc}")
