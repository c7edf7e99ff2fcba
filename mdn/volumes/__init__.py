"""Chunked volumes: zarr arrays and OME-Zarr images, denoised chunk by chunk in bounded memory.

A volume's planes are its last two axes (Y, X); every other axis (T, C, Z, or any) indexes planes, which run as
grey images, as the planes of a TIFF stack do. Each output chunk is the engine's `region` of its planes: the
tiles of the whole plane's grid that touch the chunk, read from the source as they are needed, blended with the
whole plane's weights, so that the chunk equals what the whole volume read from a TIFF gives, bit for bit before
rounding. Adjacent chunks of a plane are denoised together in units (within `--max-memory`), so that the tiles
that chunk borders cut run once per unit. The display transform (as for a 16-bit TIFF: photon noise stabilised,
fitted from a few evenly spaced planes or crops of a large one, else the volume's own minimum and maximum) comes
from reading the source before. The stages around the network run on whole planes where they fit the budget, else
window by window with the plane's statistics measured first (`stages.windows`). Memory is bounded by a unit and a
tile around it (a plane, where its stages run whole).

The output mirrors the input: the same zarr format, shape, chunks, sample type, compressors and attributes; for
an OME-Zarr image level 0 is denoised, every other level of its multiscales rebuilt from it by block means, and
its other members (its `labels`) copied unchanged. Chunks are written as they finish, and a marker per chunk (in
`.mdn-progress`, removed at the end) lets an interrupted run go on where it stopped, where it is given the input
and settings that began it (`record`, kept in the same folder). Chunks run in this process or as tasks on a
dask.distributed cluster (`cluster`). `store` opens, mirrors and finishes the stores; `chunks` denoises units of
chunks.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mdn import registry
from mdn.errors import MdnError
from mdn.inference.engine import EngineOptions
from mdn.io import tonemap
from mdn.volumes import record
from mdn.volumes.chunks import UNIT_BYTES_PER_VOXEL, VolumeJob, denoise_unit, run_here, units_of
from mdn.volumes.cluster import check_address, run_on_cluster
from mdn.volumes.store import (
    PROGRESS,
    ByChannel,
    Unit,
    Volume,
    camera_noise,
    chunk_name,
    count_nonfinite,
    finish,
    is_volume,
    noisy_range,
    output_path,
    prepare_target,
    robust_range,
    write_grid,
)

if TYPE_CHECKING:
    from mdn.zeroshot.run import Settings as ZeroShotSettings


def plan(
    source: Path,
    target: Path,
    card: registry.ModelCard | None,
    options: EngineOptions | None,
    overwrite: bool,
    zeroshot: ZeroShotSettings | None = None,
) -> tuple[Volume, VolumeJob, list[Unit], list[str], list[str]]:
    """The job, the units with chunks left to do, the names of the chunks done and warnings, for denoising
    `source` into `target` with a card and its options, or with zero-shot settings, the output created or
    reopened (an unfinished output is taken up only where it was begun with the same input and settings,
    `record`). Units are whole planes where what runs measures and refines the whole plane (zero-shot fitting, a
    card's stages on a plane they fit whole, its self-check), else blocks of chunks within the memory budget (of
    whole windows where a plane's stages run window by window)."""
    volume = Volume.open(source)
    volume.check()
    array = volume.array
    plane = (*array.shape[-2:], 1)
    whole_planes = zeroshot or options is None or options.whole_planes(plane)  # they measure a whole plane
    window = options.stage_window if options is not None and options.windowed(plane) else 0
    path = None
    if zeroshot is None:
        if card is None or card.path is None or options is None:
            raise MdnError("a card saved to a file and its options are needed to denoise a volume")
        path = str(card.path)
        settings = record.of_card(source, card, options, window)
    else:
        settings = record.of_zeroshot(source, zeroshot)
    done, begun, warnings = prepare_target(volume, target, overwrite, settings)
    if card is not None and tonemap.is_camera(card.transform):
        transform = tonemap.camera_transform(card.transform, array.dtype, source)
    else:  # a card evens out photon noise as it does in files; zero-shot fits the range alone, as for files
        fit = robust_range if zeroshot else noisy_range
        axis = volume.channel_axis  # each channel its own, as a file's C axis
        transform = fit(array) if axis is None else ByChannel.fit(array, axis, fit)
    record.check_transform(target, target / PROGRESS, begun, transform)  # before any chunk is written
    grid = write_grid(array)
    budget = sys.maxsize if whole_planes else options.max_memory // UNIT_BYTES_PER_VOXEL
    units = units_of(array.shape, grid, budget, window)
    units = [u for u in units if any(chunk_name(c, grid) not in done for c in u)]
    if zeroshot is not None and zeroshot.time_budget and units:  # a file's budget, shared by the planes left
        zeroshot = dataclasses.replace(zeroshot, time_budget=zeroshot.time_budget / len(units))
    job = VolumeJob(str(source), str(target), path, options, transform, grid, zeroshot)
    return volume, job, units, done, warnings


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
    `scheduler`; `progress` gets (chunks done, chunks in all). Returns what a report records (`nonfinite`: the
    Inf samples replaced, where any; NaN is kept; `warnings`: an unfinished output whose settings could not be
    checked); raises MdnError naming the chunks that failed, or an unfinished output begun otherwise."""
    volume, job, units, done, warnings = plan(source, target, model and model.card, options, overwrite, zeroshot)
    total = int(np.prod([-(-n // c) for n, c in zip(volume.array.shape, job.chunks, strict=True)]))
    written = set(done)
    if progress:
        progress(len(written), total)
    failed: list[str] = []
    finished = run_on_cluster(job, units, scheduler, failed) if scheduler else run_here(job, units, failed)
    for names in finished:
        written.update(names)
        if progress:
            progress(len(written), total)
    if failed:
        missing = total - len(written)
        raise MdnError(f"{missing} of {total} chunks failed ({'; '.join(failed[:3])}); run again to retry them",
                       target)  # fmt: skip
    finish(volume, target)
    info = {
        "model": model.name if model else f"zeroshot {zeroshot.method}", "chunks": total, "units": len(units),
        "resumed_from": len(done), "shape": list(volume.array.shape),
    }  # fmt: skip
    if (ratio := camera_noise(volume.array, job.transform)) is not None:
        info["camera_noise"] = round(ratio, 3)  # how many times the card's camera's its noise is, as for files
    if warnings:  # an unfinished output begun by an earlier mdn, unchecked
        info["warnings"] = warnings
    nonfinite = count_nonfinite(volume.array)
    return {**info, "nonfinite": nonfinite} if nonfinite else info


__all__ = [
    "PROGRESS",
    "Volume",
    "VolumeJob",
    "check_address",
    "denoise",
    "denoise_unit",
    "is_volume",
    "output_path",
    "plan",
]
