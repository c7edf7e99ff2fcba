"""Tiled inference: any image size through a network in bounded memory, with seamless blending.

Each plane is split into overlapping tiles (multiples of the network's window), tiles run in batches, and
overlaps are blended with weights that fade out towards each tile's inner edges, so no seam shows. Grey
planes run through 3-channel networks replicated and are averaged back. On out-of-memory the tile is halved
and the plane retried. The caller fits normalisation or tone mapping once per image before this.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from mdn import allocator
from mdn.device import autocast, pick_device, pick_dtype
from mdn.errors import MdnError
from mdn.inference.tiling import TileGrid
from mdn.io import tonemap
from mdn.nets.swinir import input_mask
from mdn.stages import clean as keep
from mdn.stages import coarse, detail, impulse, light, noise_level, wiener, windows

ProgressCallback = Callable[[int, int], None]
"""Called with (tiles done, tiles in total)."""


class TooLarge(MdnError):
    """Out of memory even at the smallest tile: the picture (or a plane of it) does not fit this machine."""


MIN_TILE = 64

MAX_TILE = 512
"""The largest tile chosen from a memory budget."""

QUALITIES = ("fast", *wiener.QUALITY)
"""What runs after the detail stage, OIDN's names: nothing (fast), or collaborative Wiener filtering searching as
`wiener.QUALITY` says (balanced, the default; high)."""

REPEATS = 2
"""At most this many more runs of the network on its own output (`EngineOptions.repeat_above`)."""

TILES_PER_RELEASE = 8
"""On the CPU, the heap keeps freed blocks for the next tiles (`allocator.keep_freed_memory`), and for a network
whose freed blocks malloc does not all reuse (`reuses_freed_memory` False) its free pages go back to the kernel
after this many tiles (`allocator.release_freed_memory`)."""

SYMMETRIES = (0, 4, 2, 6, 1, 5, 3, 7)
"""The order in which passes take the eight flips and quarter turns of the square (`turn`): two passes see the
tile and its mirror image, four every symmetry that keeps a tile's shape, eight all of them."""


def turn(tile: torch.Tensor, k: int) -> torch.Tensor:
    """Symmetry k (0-7) of an (H, W, C) tile: k % 4 quarter turns, then a left-right flip when k >= 4."""
    if k == 0:
        return tile
    turned = torch.rot90(tile, k % 4, dims=(0, 1))
    return turned.flip(1) if k >= 4 else turned


def unturn(tile: torch.Tensor, k: int) -> torch.Tensor:
    """The inverse of `turn(tile, k)`."""
    if k == 0:
        return tile
    return torch.rot90(tile.flip(1) if k >= 4 else tile, -(k % 4), dims=(0, 1))


def symmetry(pass_: int, square: bool) -> int:
    """The symmetry pass `pass_` runs with: SYMMETRIES in turn, only the shape-keeping first four for an oblong
    tile."""
    return SYMMETRIES[pass_ % (8 if square else 4)]


@dataclass(frozen=True)
class EngineOptions:
    """How to run a network over an image. `passes` passes are averaged, each over the tiles flipped or turned
    its own way (`symmetry`: the geometric self-ensemble), drawing its own masks; `input_mask` hides that share
    of the input pixels in every pass, drawn afresh, the way masked training showed them to the net; `impulses`
    fills each plane's impulses (values stuck at black or white) before the network (`impulse.fill_impulses`),
    and the stages after it see the filled plane as its input; `detail`
    puts back the texture each whole plane's network output smoothed (`detail.restore_detail`), then, at
    `quality` balanced or high (not fast), refines it by collaborative Wiener filtering of the input with it as
    pilot (`wiener.collaborative_wiener`, searching as `wiener.search_for` says); `self_check` blends each whole
    plane's input back into its output by the plane's own noise (`noise_level.self_checked`); `repeat_above`
    (noise standard deviation in 1/255) runs the network again on its own output, up to REPEATS times, while the
    output's measured noise (`noise_level.noise_variance`) is above it (IDF's iteration, where noise is heavier
    than the network's training noise); 0: once; `coarse` runs it on each whole colour plane halved where the
    plane's noise is correlated (`noise_level.correlated`) and takes the output's coarse band from that run
    (`stages.coarse`), before the stages after the network; `light_check` keeps, where the output changed a colour
    plane's (impulse-filled) input little, only the share of the change that the input's measured noise explains
    (`stages.light`), and `strength` that share of whatever change is kept (1: all); `keep_clean` gives a clean
    plane whose only fault is impulses its input back wherever the output does not stand out from it
    (`stages.clean`)."""

    tile: int = 0
    overlap: int = 32
    batch: int = 0
    device: str = "auto"
    precision: str = "auto"
    passes: int = 1
    seed: int = 0
    attention_mask: bool = True
    input_mask: float = 0.0
    impulses: bool = False
    detail: bool = False
    quality: str = "balanced"
    self_check: bool = False
    repeat_above: float = 0.0
    coarse: bool = False
    light_check: bool = False
    strength: float = 1.0
    keep_clean: bool = False
    max_memory: int = 2 << 30

    @property
    def plane_stages(self) -> bool:
        """Whether stages that measure the whole plane run around the network (`Engine.denoise_plane`;
        `keep_clean` acts only where `impulses` filled some)."""
        stages = self.impulses or self.detail or self.self_check or self.light_check or self.strength != 1
        return stages or self.repeat_above > 0 or self.coarse

    def windowed(self, shape: tuple[int, int, int]) -> bool:
        """Whether an (H, W, C) plane's stages run window by window (`stages.windows`: the impulse, texture and
        Wiener stages of a plane too large for the memory budget; `Engine.refined_region`), not whole."""
        local = (self.impulses or self.detail) and not (self.self_check or self.repeat_above > 0 or self.coarse)
        return local and windows.too_large(shape, self.max_memory)

    @property
    def stage_window(self) -> int:
        """The side of the windows a large plane's stages run in (`windowed`)."""
        return windows.window_for(self.max_memory)

    def whole_planes(self, shape: tuple[int, int, int]) -> bool:
        """Whether a plane of this (H, W, C) shape runs whole: its stages measure and refine the whole plane."""
        return self.plane_stages and not self.windowed(shape)


def default_batch(device: torch.device) -> int:
    """Tiles per forward pass where `--tile-batch` is 0: 1 on a CPU, 4 on a GPU."""
    return 4 if device.type != "cpu" else 1


def tiling(options: EngineOptions, config: Any, device: torch.device) -> tuple[int, int]:
    """The tile size and tiles per pass that `options` resolve to for a network of `config` on `device`: `--tile`
    or the largest the memory budget holds, `--tile-batch` or the device's default."""
    batch = options.batch or default_batch(device)
    return options.tile or tile_for_budget(config, options.max_memory, batch), batch


def tile_for_budget(config: Any, budget: int, batch: int) -> int:
    """The largest tile (a multiple of the network's window, at most MAX_TILE) whose activations for `batch`
    tiles fit the memory budget, for a network of this configuration."""
    side = int(math.sqrt(budget / (config.activation_bytes_per_pixel() * batch)))
    return max(MIN_TILE, min(MAX_TILE, side // config.window * config.window))


def check_tiling(tile: int, overlap: int, window: int) -> None:
    """Refuse a tile that is not a multiple of the network's window of at least MIN_TILE, or an overlap outside
    [0, tile / 2]."""
    if tile % window or tile < MIN_TILE:
        raise MdnError(f"--tile must be a multiple of {window} and at least {MIN_TILE}, got {tile}")
    if not 0 <= overlap <= tile // 2:
        raise MdnError(f"--overlap must be in [0, {tile // 2}], got {overlap}")


def grey_in_colour(plane: np.ndarray) -> bool:
    """Whether an (H, W, C) plane is a grey picture stored in colour: three channels, all equal (a scanner's or a
    converter's RGB file of a grey picture). Its noise is the same in every channel, which the stages' chroma
    measures cannot see and the impulse test takes for colour."""
    if plane.shape[-1] != 3:
        return False
    sample = plane[::17, ::13]
    if not (np.array_equal(sample[..., 0], sample[..., 1]) and np.array_equal(sample[..., 0], sample[..., 2])):
        return False
    return bool(np.array_equal(plane[..., 0], plane[..., 1]) and np.array_equal(plane[..., 0], plane[..., 2]))


RegionReader = Callable[[slice, slice], np.ndarray]
"""Reads rows and columns of a plane as float32 (h, w, C) display-range pixels."""


def _slicer(plane: np.ndarray) -> RegionReader:
    """A reader of an array's rows and columns."""
    return lambda rows, columns: plane[rows, columns]


def _reflected_read(
    read: RegionReader, size: tuple[int, int], rows: tuple[int, int], columns: tuple[int, int]
) -> np.ndarray:
    """Rows and columns of a plane padded at its bottom and right by reflection (numpy's "reflect", as `__call__`
    pads to the window multiple), read from the unpadded plane."""
    (height, width), wanted = size, []
    for (start, stop), length in zip((rows, columns), (height, width), strict=True):
        index = np.arange(start, stop)
        wanted.append(np.where(index < length, index, 2 * (length - 1) - index))
    low_y, low_x = int(wanted[0].min()), int(wanted[1].min())
    block = read(slice(low_y, int(wanted[0].max()) + 1), slice(low_x, int(wanted[1].max()) + 1))
    return block[np.ix_(wanted[0] - low_y, wanted[1] - low_x)]


class Engine:
    """Runs a denoising network over (N, H, W, C) planes in [0, 1] display range."""

    def __init__(
        self, model: nn.Module, options: EngineOptions | None = None, grey_model: nn.Module | None = None
    ) -> None:
        self.options = options = options or EngineOptions()
        self.device = pick_device(options.device)
        self.model = model.to(self.device).eval()
        self.grey_model = grey_model.to(self.device).eval() if grey_model is not None else None
        """The network for grey tiles (`ModelCard.grey`), taking them as `model` does; None: `model` runs them."""
        if self.device.type == "cpu":
            allocator.keep_freed_memory()
        reuses = getattr(model, "reuses_freed_memory", True)
        self.release_every = TILES_PER_RELEASE if self.device.type == "cpu" and not reuses else 0
        self.channels: int = model.config.channels
        self.aux: int = getattr(model.config, "aux", 0)
        """Auxiliary channels planes carry after their image's (a render's albedo and normal): in, not out."""
        self.window: int = model.config.window
        self.dtype = pick_dtype(options.precision, self.device)
        self.tile, self.batch = tiling(options, model.config, self.device)
        check_tiling(self.tile, options.overlap, self.window)
        self.tiles_run = 0
        self.kept_shares: list[float] = []
        """With `self_check`: the share of the network's change kept in each plane of the last call."""
        self.repeats: list[int] = []
        """With `repeat_above`: how many more times the network ran on each plane's output in the last call."""
        self.coarse_runs: list[bool] = []
        """With `coarse`: whether each whole plane of the last call took its coarse band from a halved run."""
        self.impulses_filled = 0
        """With `impulses`: the values filled in the planes of the last call."""
        self.light_shares: list[float] = []
        """With `light_check` or a `strength`: the share of the output's change kept in each plane of the last
        call."""
        self.clean: list[bool] = []
        """With `keep_clean`: whether each plane of the last call was a clean picture with impulses and kept its
        input but for them (`stages.clean`)."""

    def _grid(self, height: int, width: int) -> TileGrid:
        return TileGrid.cover(height, width, self.tile, self.options.overlap, self.window)

    def count_tiles(self, shape: tuple[int, ...]) -> int:
        """Tiles needed for planes of this (N, H, W, C) shape, over all passes."""
        n, h, w = shape[:3]
        return n * self.options.passes * len(self._grid(h + (-h) % self.window, w + (-w) % self.window))

    def __call__(self, planes: np.ndarray, progress: ProgressCallback | None = None) -> np.ndarray:
        """Denoise every plane; returns float32 planes of the same shape (less the auxiliary channels). `progress`
        gets (tiles done, in all)."""
        total = self.count_tiles(planes.shape)
        done = 0

        def advance(count: int) -> None:
            nonlocal done
            done += count
            if progress:
                progress(done, total)

        result = np.empty((*planes.shape[:-1], self._image_channels(planes.shape[-1])), dtype=np.float32)
        self.kept_shares, self.repeats, self.coarse_runs, self.impulses_filled = [], [], [], 0
        self.clean, self.light_shares = [], []
        for index, plane in enumerate(planes):
            self.denoise_plane(plane, index, result[index], advance)
        return result

    def denoise_plane(
        self, plane: np.ndarray, index: int, out: np.ndarray, advance: Callable[[int], None] = lambda _: None
    ) -> None:
        """One (H, W, C) plane into `out` (H, W, C'), as `__call__` denoises plane `index` of a stack: the network
        over its tiles (`advance` gets the tiles as they finish), then the stages the options turn on, which
        measure the whole plane (and refine it window by window where it is too large for them whole:
        `EngineOptions.windowed`). A grey picture stored as three equal channels runs as grey, its output given to
        all three: the same pixels as the picture read as grey. A plane each of whose channels holds one value (a
        blank or saturated frame) comes back as it came: it has no noise, and a network's small offsets on flat
        ground would show in 16 bits."""
        if out.shape[-1] == 3 and grey_in_colour(plane):
            grey = np.empty((*out.shape[:-1], 1), np.float32)
            self.denoise_plane(plane[..., :1], index, grey, advance)
            out[...] = grey
            return
        windowed = self.options.windowed(out.shape)
        boxes = self._sample_boxes(out.shape[:2]) if windowed else []
        thresholds = (
            windows.impulse_thresholds(_slicer(plane), boxes, out.shape[-1])
            if boxes and self.options.impulses
            else None
        )
        given = plane  # until `finally` puts back what filling replaced in place, its impulses are filled too
        flat = tonemap.flat_values(plane[..., : out.shape[-1]]) is not None
        replaced, filled = None, 0.0  # filled: the share of the plane's values filled as impulses
        if self.options.impulses:
            if thresholds:  # a windowed plane's from its sample boxes, as `plane_statistics` measures it
                filled = windows.impulse_share(_slicer(plane), boxes, thresholds)
            count = self.impulses_filled
            plane, replaced = self._impulses_filled(plane, out.shape[-1], thresholds)
            if not thresholds:
                filled = (self.impulses_filled - count) / out.size
        clean = False
        try:
            self._plane(plane, index, advance, out)
            if windowed:
                if self.options.detail:
                    self._refine_windows(plane[..., : out.shape[-1]], out, boxes, thresholds, filled)
                clean = self._clean(plane[..., : out.shape[-1]], out, boxes, filled)
                self._light(plane[..., : out.shape[-1]], out, boxes, filled, clean)
                return
            self._repeat(plane, index, out)
            noisy = plane[..., : out.shape[-1]]
            measure = noise_level.Measure(noisy)  # the coarse pass's test and the self-check read it once
            self._coarse(plane, measure, index, out)
            if self.options.detail:
                self._release()
                detail.restore_detail(noisy, out, self.device, out=out)
                search = wiener.search_for(self.options.quality, out.shape[-1])
                if search:
                    self._release()
                    wiener.collaborative_wiener(noisy, out, self.device, out, search, impulses_filled=filled)
            if self.options.self_check:
                out[...], share = noise_level.self_checked(noisy, out, measure)
                self.kept_shares.append(share)
            clean = self._clean(noisy, out, [], filled, measure)
            self._light(noisy, out, [], filled, clean)
        finally:
            if replaced is not None:
                impulse.apply_fills(plane, replaced)
            if clean:
                keep.keep_input(given[..., : out.shape[-1]], out)
            if flat:
                out[...] = given[..., : out.shape[-1]]

    def _clean(
        self,
        filled: np.ndarray,
        out: np.ndarray,
        boxes: list[windows.Box],
        share: float,
        measure: noise_level.Measure | None = None,
    ) -> bool:
        """With `keep_clean`, whether the (H, W, C) plane whose impulses (a `share` of its values) were filled to
        `filled` is a clean picture with impulses (`stages.clean`), measured whole (`measure`, if taken) or over
        its sample `boxes`; noted in `clean`."""
        if not self.options.keep_clean:
            return False
        variance = functools.partial(keep.noise_variance, filled, boxes, measure)
        self.clean.append(keep.is_clean(share, variance, lambda: keep.mean_square_change(filled, out, boxes)))
        return self.clean[-1]

    def _light(self, plane: np.ndarray, out: np.ndarray, boxes: list[windows.Box], filled: float, clean: bool) -> None:
        """`out` (H, W, C), in place, keeping `strength` of its change to `plane` (whose impulses, a `filled`
        share of its values, were filled) and, with `light_check`, of that the share `stages.light` finds, measured
        whole or over the plane's sample `boxes`; all of it where the plane is `clean` (`_clean`: its rule keeps
        the input's pixels and the output's filled impulses, which the check would pull back toward their fills)."""
        if not self.options.light_check and self.options.strength == 1:
            return
        share = self.options.strength
        if self.options.light_check and not clean:
            variance = functools.partial(light.noise_variance, plane, boxes)
            change = functools.partial(keep.mean_square_change, plane, out, boxes)
            share *= light.kept_share(out.shape[-1], change, variance, filled)
        self.light_shares.append(share)
        if share < 1.0:
            light.keep_share(plane, out, share)

    def _repeat(self, plane: np.ndarray, index: int, out: np.ndarray) -> None:
        """The network again on its own output `out` (with the plane's auxiliary channels), in place, while the
        output's measured noise is above `repeat_above` (at most REPEATS times)."""
        threshold = (self.options.repeat_above / 255) ** 2
        if not threshold:
            return
        self.repeats.append(0)
        for _ in range(REPEATS):
            if noise_level.noise_variance(out) <= threshold:
                return
            self.repeats[-1] += 1
            channels = out.shape[-1]
            again = np.concatenate([out, plane[..., channels:]], axis=-1) if plane.shape[-1] > channels else out.copy()
            self._plane(again, index, lambda _: None, out)

    def _coarse(self, plane: np.ndarray, measure: noise_level.Measure, index: int, out: np.ndarray) -> None:
        """With `coarse`, where the plane's noise is correlated (`measure`, its noisy channels'): `out`'s coarse
        band, in place, from the network run on the plane (with its auxiliary channels) halved."""
        if not self.options.coarse:
            return
        self.coarse_runs.append(measure.correlated)
        if not self.coarse_runs[-1]:
            return
        half = coarse.halved(plane)
        estimate = np.empty((*half.shape[:2], out.shape[-1]), np.float32)
        self._plane(half, index, lambda _: None, estimate)
        coarse.with_coarse_band(out, estimate)

    def _impulses_filled(
        self, plane: np.ndarray, channels: int, thresholds: list[float] | None = None
    ) -> tuple[np.ndarray, impulse.Fills | None]:
        """The (H, W, C) plane with the impulses of its first `channels` filled (by the plane's own thresholds or
        `thresholds`), and what the fills replaced where they went into `plane` itself (a writable float32 plane:
        put back when the plane is done, so that the caller's array ends as it came and no second copy of the
        picture is held), None where they went into a copy or there were none."""
        fills = impulse.impulse_fills(np.asarray(plane[..., :channels], dtype=np.float32), thresholds)
        count = impulse.filled_count(fills)
        self.impulses_filled += count
        if not count:
            return plane, None
        if plane.dtype == np.float32 and plane.flags.writeable:
            return plane, impulse.apply_fills(plane, fills)
        filled = np.array(plane, dtype=np.float32)
        impulse.apply_fills(filled, fills)
        return filled, None

    def _refine_windows(
        self,
        noisy: np.ndarray,
        out: np.ndarray,
        boxes: list[windows.Box],
        thresholds: list[float] | None,
        filled: float,
    ) -> None:
        """The texture and Wiener stages of a large plane window by window, in place in `out` (which holds the
        network's output), with the statistics of its sample `boxes` (a `filled` share of whose values were
        impulses)."""
        self._release()
        search = wiener.search_for(self.options.quality, out.shape[-1])
        size = out.shape[:2]
        statistics = windows.measure(_slicer(noisy), _slicer(out), size, boxes, search, self.device, thresholds, filled)
        windows.refine_plane(noisy, out, statistics, search, self.device, self.options.stage_window)

    def _sample_boxes(self, size: tuple[int, int]) -> list[windows.Box]:
        """The boxes a large plane's statistics are measured on, each inside one of the network's tiles."""
        grid = self._grid(size[0] + (-size[0]) % self.window, size[1] + (-size[1]) % self.window)
        return windows.sample_boxes(grid.rows, grid.columns, grid.size, size)

    def plane_statistics(self, read: RegionReader, shape: tuple[int, int, int], index: int = 0) -> windows.Statistics:
        """What the stages measure over plane `index` of an (H, W, C) `shape` plane (`windows.measure`), read
        region by region through `read` and its network's `region`s."""
        size, channels = shape[:2], self._image_channels(shape[-1])
        boxes = self._sample_boxes(size)
        thresholds = windows.impulse_thresholds(read, boxes, channels) if self.options.impulses else None
        source = windows.filled(read, size, thresholds) if thresholds else read
        if not self.options.detail:
            return windows.Statistics(thresholds, None, None)
        search = wiener.search_for(self.options.quality, channels)
        network = functools.partial(self._network_region, source, shape, index)
        filled = windows.impulse_share(read, boxes, thresholds) if thresholds else 0.0
        return windows.measure(source, network, size, boxes, search, self.device, thresholds, filled)

    def refined_region(
        self,
        read: RegionReader,
        shape: tuple[int, int, int],
        rows: slice,
        columns: slice,
        index: int,
        statistics: windows.Statistics,
    ) -> np.ndarray:
        """Rows and columns of what `__call__` returns for plane `index` of an (H, W, C) `shape` plane that runs
        its stages window by window (`EngineOptions.windowed`), bit for bit, given the plane's `statistics`
        (`plane_statistics`): memory bounded by the region and its windows, not by the plane. (The clean rule
        and the light-noise check, which measure the plane's output, are left out.)"""
        size = shape[:2]
        source = windows.filled(read, size, statistics.impulses) if statistics.impulses else read
        network = functools.partial(self._network_region, source, shape, index)
        if statistics.detail is None:
            result = network(rows, columns)
        else:
            search = wiener.search_for(self.options.quality, self._image_channels(shape[-1]))
            window = self.options.stage_window
            result = windows.refine(source, network, size, rows, columns, statistics, search, self.device, window)
        if self.options.strength != 1:
            given = np.asarray(source(rows, columns), dtype=np.float32)[..., : result.shape[-1]]
            light.keep_share(given, result, self.options.strength)
        return result

    def _network_region(
        self, read: RegionReader, shape: tuple[int, int, int], index: int, rows: slice, columns: slice
    ) -> np.ndarray:
        """`region` with the reader, shape and plane first: the network's output as a reader of regions."""
        return self.region(read, shape, rows, columns, index)

    def _release(self) -> None:
        """Before a stage on the CPU: the heap's free pages back to the kernel, so that the stage's temporaries
        start from what is live, not from the network's or the last stage's high-water mark."""
        if self.device.type == "cpu":
            allocator.release_freed_memory()

    @torch.inference_mode()
    def _plane(self, plane: np.ndarray, index: int, advance: Callable[[int], None], result: np.ndarray) -> None:
        """One (H, W, C) plane into `result`: padded to the window multiple so that every tile sits on the whole
        image's window grid, copied to the device once, every pass blended there, and copied back once. On the
        CPU an unpadded plane is blended straight into `result`, so no image-sized buffer is added."""
        height, width = plane.shape[:2]
        pad_h, pad_w = (-height) % self.window, (-width) % self.window
        padded = np.pad(plane, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect") if pad_h or pad_w else plane
        image = self._with_aux(torch.from_numpy(np.asarray(padded, dtype=np.float32)).to(self.device))
        in_place = self.device.type == "cpu" and not (pad_h or pad_w)
        shape = (*image.shape[:2], result.shape[-1])
        total = torch.from_numpy(result) if in_place else torch.empty(shape, device=self.device)
        self._run_with_retry(image, index, total, advance)
        host = total[:height, :width].cpu().numpy()
        if not in_place:
            result[...] = host

    def _run_with_retry(
        self, image: torch.Tensor, index: int, total: torch.Tensor, advance: Callable[[int], None]
    ) -> None:
        """`_tiled`, with the tile halved and the plane redone on out-of-memory."""
        while True:
            try:
                return self._tiled(image, index, total, advance)
            except (torch.OutOfMemoryError, MemoryError, RuntimeError) as exc:
                if "out of memory" not in str(exc).lower() and not isinstance(exc, MemoryError):
                    raise
                if self.tile // 2 < MIN_TILE:
                    raise TooLarge(f"out of memory even with {self.tile}px tiles") from None
                self.tile = self.tile // 2 // self.window * self.window
                self.batch = max(1, self.batch // 2)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()

    def _tiled(self, image: torch.Tensor, index: int, total: torch.Tensor, advance: Callable[[int], None]) -> None:
        """Every pass over a padded (H, W, C) image on the device into `total` of the same shape."""
        grid = self._grid(*image.shape[:2])
        self._blend(image, grid, list(enumerate(grid.corners())), (0, 0), index, total, advance)

    def _blend(
        self,
        image: torch.Tensor,
        grid: TileGrid,
        tiles: list[tuple[int, tuple[int, int]]],
        origin: tuple[int, int],
        index: int,
        total: torch.Tensor,
        advance: Callable[[int], None],
    ) -> None:
        """Every pass of the numbered `tiles` of `grid` into `total`, blended and normalised; `image` and `total`
        hold the grid's pixels from `origin` on. Work goes in batches of (tile, pass) pairs, the passes of a tile
        side by side, each pair turned by its pass's symmetry and drawing its masks from its own generator
        (numbered by its place in the whole grid), so that neither the batch size nor the tiles left out change a
        pixel's result."""
        (th, tw), passes, (oy, ox) = grid.size, self.options.passes, origin
        ramps: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}
        work = [
            (y - oy, x - ox, symmetry(k, th == tw), self._generator(index, k, t))
            for t, (y, x) in tiles
            for k in range(passes)
        ]
        total.zero_()
        for start in range(0, len(work), self.batch):
            group = work[start : start + self.batch]
            batch = torch.stack([turn(image[y : y + th, x : x + tw], k) for y, x, k, _ in group])
            outputs = self._forward(batch, [generator for *_, generator in group])
            if outputs.shape[-1] != total.shape[-1]:
                outputs = outputs.mean(dim=-1, keepdim=True)
            for (y, x, k, _), out in zip(group, outputs, strict=True):
                if (y, x) not in ramps:
                    ramps[y, x] = tuple(torch.from_numpy(r).to(self.device) for r in grid.ramps(y + oy, x + ox))
                ramp_y, ramp_x = ramps[y, x]
                weighted = unturn(out, k).mul_(ramp_y[:, None, None]).mul_(ramp_x[None, :, None])
                total[y : y + th, x : x + tw] += weighted
            self.tiles_run += len(group)
            if self.release_every and self.tiles_run % self.release_every < len(group):
                allocator.release_freed_memory()
            advance(len(group))
        rows, columns = (torch.from_numpy(c).to(self.device) for c in grid.coverage())
        height, width = total.shape[:2]
        rows, columns = rows[oy : oy + height], columns[ox : ox + width]
        total.div_(rows[:, None, None] * passes).div_(columns[None, :, None])

    @torch.inference_mode()
    def region(
        self, read: RegionReader, shape: tuple[int, int, int], rows: slice, columns: slice, index: int = 0
    ) -> np.ndarray:
        """Rows and columns (slices with starts and stops) of what `__call__` returns for plane `index` of an
        (H, W, C) `shape` plane, bit for bit, from the parts of the plane that `read(rows, columns)` returns as
        float32 (h, w, C) display-range pixels: only the tiles of the whole plane's grid that touch the region
        run, on the pixels they would see there (the plane's reflected border included), with their weights.
        Memory is bounded by the region and a tile around it, not by the plane: the chunk-wise path for volumes
        without the stages around the network (`refined_region` adds them where a plane runs them by windows)."""
        height, width, _ = shape
        padded = height + (-height) % self.window, width + (-width) % self.window
        grid = self._grid(*padded)
        (th, tw), (r0, r1), (c0, c1) = grid.size, (rows.start, rows.stop), (columns.start, columns.stop)
        tiles = [
            (t, (y, x)) for t, (y, x) in enumerate(grid.corners()) if y < r1 and r0 < y + th and x < c1 and c0 < x + tw
        ]
        y0, x0 = min(y for _, (y, _) in tiles), min(x for _, (_, x) in tiles)
        y1, x1 = max(y for _, (y, _) in tiles) + th, max(x for _, (_, x) in tiles) + tw
        box = _reflected_read(read, (height, width), (y0, y1), (x0, x1))
        channels = self._image_channels(box.shape[-1])
        image = self._with_aux(torch.from_numpy(np.ascontiguousarray(box, dtype=np.float32)).to(self.device))
        total = torch.empty((*image.shape[:2], channels), device=self.device)
        self._blend(image, grid, tiles, (y0, x0), index, total, lambda _: None)
        return total[r0 - y0 : r1 - y0, c0 - x0 : c1 - x0].cpu().numpy()

    def _image_channels(self, channels: int) -> int:
        """The image's channels in planes of `channels`: all of them, or those before the auxiliary ones."""
        return channels - self.aux if channels > self.channels else channels

    def _with_aux(self, image: torch.Tensor) -> torch.Tensor:
        """An (H, W, C) image with its auxiliary channels: zeros (none given) appended when it has none."""
        if not self.aux or image.shape[-1] > self.channels:
            return image
        return torch.cat([image, image.new_zeros((*image.shape[:2], self.aux))], dim=-1)

    def _generator(self, plane: int, pass_: int, tile: int) -> torch.Generator:
        """The seeded generator of one (plane, pass, tile)."""
        seed = np.random.SeedSequence([self.options.seed, plane, pass_, tile]).generate_state(1, np.uint64)[0]
        return torch.Generator(self.device).manual_seed(int(seed))

    def _forward(self, batch: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
        """The network on a (B, h, w, C) batch of tiles on the device, sample i drawing its masks from
        generators[i]; float32 (B, h, w, C') out, C' the network's channels. Grey tiles run replicated, through the
        grey network where there is one."""
        x = batch.permute(0, 3, 1, 2)
        grey = x.shape[1] - self.aux == 1
        if grey and self.channels == 3:
            x = torch.cat([x[:, :1].expand(-1, 3, -1, -1), x[:, 1:]], dim=1)
        if self.options.input_mask:
            x = input_mask(x, (self.options.input_mask,) * 2, generators)
        network = self.grey_model if grey and self.grey_model is not None else self.model
        with autocast(self.device, self.dtype):
            y = network(x, generator=generators, attention_mask=self.options.attention_mask)
        return y.float().permute(0, 2, 3, 1)
