"""The stages over windows of a plane too large to hold their temporaries whole (a slide scan, a mosaic).

The impulse, texture and Wiener stages measure a plane's noise once and then work locally: an impulse is filled
from its 3x3 neighbourhood, a pixel's texture comes from the network's output within 14 pixels of it, and its
Wiener estimate from the texture stage's output within 31. So a plane whose stages would not fit the memory
budget (`too_large`) is measured on sample boxes spread over it, each inside one of the network's tiles
(`measure`), then refined window by window on a fixed grid of the plane (squares of `window_for` the budget),
each window with a MARGIN around it that its pixels never see past. A window's result depends only on the plane,
the statistics and its place on the grid: any region (a TIFF read whole, a volume's unit of chunks, a cluster
worker's share) gets the same pixels, bit for bit (`refine`). Planes that fit run the stages whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from mdn.nets.dct import opponent
from mdn.stages import detail, impulse, wiener

WINDOWS = (512, 4096)
"""The least and the largest side of the windows a plane's grid is cut into (powers of two, so that a volume's
chunks tile them: `window_for`)."""
MARGIN = 60
"""Pixels of the plane each side of a window that its stages see and its result leaves out: beyond the 45 a
pixel's result depends on (its Wiener groups' search reaches 31 pixels of the texture stage's output, and that
14 of the network's), so that a window's border never shows."""
ALIGN = 60
"""Windows with their margins start on multiples of this (of the Wiener searches' steps 3 to 6 and the detail
stage's stride 2): their reference patches and patch grids are the plane's."""
SAMPLE = 256
"""The side of the sample boxes a large plane's noise is measured on (at most half a tile: each box's network
output costs one tile)."""
SAMPLE_GRID = 4
"""Sample boxes along each side of a plane, in tiles evenly spread: at most 16 boxes, 1 M pixels."""
SAMPLE_MARGIN = 24
"""Pixels around a sample box that its texture stage sees (a pixel's texture depends on the 14 around it)."""
IMPULSE_MARGIN = 8
"""Pixels read around a region to find its impulses: a value's test sees its 3x3 neighbours, its fill the
impulses within 3 pixels."""
BYTES_PER_PIXEL = 64
"""The whole-plane stages' peak memory per pixel of a plane, grey or colour, with its network's input and output
(a 24 MP colour photo through `mdn denoise`: 1.46 GB at peak, 61 bytes a pixel; a 67 MP grey volume plane: 4.17
GB, 62): a plane over the memory budget by this count runs window by window."""

Box = tuple[slice, slice]
Reader = Callable[[slice, slice], np.ndarray]
"""Rows and columns of a plane as float32 (h, w, C) pixels."""


def window_for(budget: int) -> int:
    """The side of the windows under a memory `budget` in bytes: the largest power of two in WINDOWS whose
    window takes at most a quarter of it (2048 at 2 GB, 1024 at 512 MB)."""
    side = WINDOWS[1]
    while side > WINDOWS[0] and side * side * BYTES_PER_PIXEL > budget // 4:
        side //= 2
    return side


def too_large(shape: tuple[int, int, int], budget: int) -> bool:
    """Whether an (H, W, C) plane's stages run window by window under a memory `budget` in bytes."""
    return shape[0] * shape[1] * BYTES_PER_PIXEL > budget


@dataclass
class Statistics:
    """What the stages measure over a whole plane: the impulse thresholds per channel (`impulse.threshold`), the
    texture stage's noise (`detail.Noise`) and the Wiener stage's (`wiener.PlaneNoise`)."""

    impulses: list[float] | None
    detail: detail.Noise | None
    wiener: wiener.PlaneNoise | None


def impulse_thresholds(read: Reader, boxes: list[Box], channels: int) -> list[float]:
    """The impulse threshold of each of the first `channels` channels, from the ROADs sampled in the plane's
    sample `boxes`."""
    roads: list[list[np.ndarray]] = [[] for _ in range(channels)]
    every = _every(boxes)
    for box in boxes:
        block = np.asarray(read(*box), dtype=np.float32)
        for c, plane in enumerate(roads):
            plane.append(impulse.sampled_roads(np.ascontiguousarray(block[..., c]), every))
    return [impulse.threshold(np.concatenate(r)) for r in roads]


def impulse_share(read: Reader, boxes: list[Box], thresholds: list[float]) -> float:
    """The share of the values in the plane's sample `boxes` that its impulse `thresholds` fill."""
    filled = values = 0
    for box in boxes:
        block = np.asarray(read(*box), dtype=np.float32)[..., : len(thresholds)]
        filled += impulse.filled_count(impulse.impulse_fills(np.ascontiguousarray(block), thresholds))
        values += block.size
    return filled / max(values, 1)


def filled(read: Reader, size: tuple[int, int], thresholds: list[float]) -> Reader:
    """`read`, with each region's impulses filled as they are in the whole plane (the region read with
    IMPULSE_MARGIN more each side, filled by the plane's thresholds, cut back)."""

    def read_filled(rows: slice, columns: slice) -> np.ndarray:
        (top, bottom), (left, right) = (
            _widened(rows, size[0], IMPULSE_MARGIN),
            _widened(columns, size[1], IMPULSE_MARGIN),
        )
        block = np.array(read(slice(top, bottom), slice(left, right)), dtype=np.float32)
        channels = len(thresholds)
        impulse.apply_fills(block, impulse.impulse_fills(np.ascontiguousarray(block[..., :channels]), thresholds))
        return block[rows.start - top : rows.stop - top, columns.start - left : columns.stop - left]

    return read_filled


def sample_boxes(
    rows: Sequence[int], columns: Sequence[int], tile: tuple[int, int], size: tuple[int, int]
) -> list[Box]:
    """The boxes a plane's noise is measured on: squares of SAMPLE pixels (at most half a tile) centred in
    SAMPLE_GRID x SAMPLE_GRID of the network's tiles, whose starts are `rows` x `columns`, evenly spread."""
    side = min(SAMPLE, tile[0] // 2, tile[1] // 2, *size)
    tops, lefts = (
        [min(start + (t - side) // 2, length - side) for start in _spread(starts)]
        for starts, t, length in zip((rows, columns), tile, size, strict=True)
    )
    return [(slice(y, y + side), slice(x, x + side)) for y in tops for x in lefts]


def measure(
    read: Reader,
    network: Reader,
    size: tuple[int, int],
    boxes: list[Box],
    search: wiener.Search | None,
    device: torch.device | str,
    impulses: list[float] | None = None,
    impulses_filled: float = 0.0,
) -> Statistics:
    """The plane's statistics from its sample `boxes`, given its (impulse-filled) pixels and its network's output:
    the texture stage's noise in what the network removed, then, with a `search`, the Wiener stage's in what the
    texture stage's result removed (each box refined with its margin, as `refine` would), and for a grey plane
    whose filled share of impulses (`impulses_filled`) is below `wiener.KEPT_IMPULSES` the noise its pilot kept."""
    every = _every(boxes)
    boxes = [_with_margin(box, size, SAMPLE_MARGIN) for box in boxes]
    pairs = [(np.asarray(read(*outer), np.float32), np.asarray(network(*outer), np.float32)) for outer, _ in boxes]
    channels = pairs[0][1].shape[-1]
    axes = opponent(channels)
    with torch.inference_mode():
        axis = detail.luminance_axis(channels)
        removed = []
        for (_, inner), (noisy, net) in zip(boxes, pairs, strict=True):
            level = net[inner] @ axis
            removed.append((noisy[inner][..., :channels] @ axis - level, level))
        texture = _noise(removed, every, device)
        if search is None:
            return Statistics(impulses, texture, None)
        refined = []
        for (_, inner), (noisy, net) in zip(boxes, pairs, strict=True):
            out = detail.restore_detail(noisy, net, device, noise=texture)
            refined.append((noisy[inner][..., :channels], out[inner]))
        lum = axes[0].numpy()  # the Wiener stage's luminance
        per_axis = [
            _noise([(noisy @ a - out @ a, out @ lum) for noisy, out in refined], every, device) for a in axes.numpy()
        ]
        kept = 1.0
        if channels == 1 and impulses_filled < wiener.KEPT_IMPULSES:
            kept = wiener.kept_noise(
                _noise([(noisy @ lum, out @ lum) for noisy, out in refined], every, device), per_axis[0]
            )
    return Statistics(impulses, texture, wiener.PlaneNoise(per_axis, kept))


def refine(
    read: Reader,
    network: Reader,
    size: tuple[int, int],
    rows: slice,
    columns: slice,
    statistics: Statistics,
    search: wiener.Search | None,
    device: torch.device | str,
    window: int,
) -> np.ndarray:
    """Rows and columns of the plane after its stages, from its (impulse-filled) pixels and its network's output:
    every `window`-sided square of the plane's grid that the region touches refined with its margin, the
    region's part kept. The pixels are those of any other region's call, bit for bit."""
    window_rows = range(rows.start // window, (rows.stop - 1) // window + 1)
    window_columns = range(columns.start // window, (columns.stop - 1) // window + 1)
    corners = (window_rows[0], window_columns[0]), (window_rows[-1], window_columns[-1])
    (first, _), (last, _) = (_with_margin(_window(y, x, size, window), size) for y, x in corners)
    top, left, bottom, right = first[0].start, first[1].start, last[0].stop, last[1].stop
    noisy, net = (np.asarray(r(slice(top, bottom), slice(left, right)), np.float32) for r in (read, network))
    channels, region = net.shape[-1], (rows, columns)
    result = np.empty((rows.stop - rows.start, columns.stop - columns.start, channels), np.float32)
    for wy in window_rows:
        for wx in window_columns:
            box = _window(wy, wx, size, window)
            (outer_rows, outer_columns), _ = _with_margin(box, size)
            here = _within((outer_rows, outer_columns), (first[0], first[1]))
            out = np.array(net[here])
            detail.restore_detail(noisy[here], out, device, out=out, noise=statistics.detail)
            if search is not None:
                wiener.collaborative_wiener(noisy[here], out, device, out, search, statistics.wiener)
            keep = [slice(max(b.start, r.start), min(b.stop, r.stop)) for b, r in zip(box, region, strict=True)]
            result[_within(keep, region)] = out[_within(keep, (outer_rows, outer_columns))]
    return result


def refine_plane(
    noisy: np.ndarray,
    out: np.ndarray,
    statistics: Statistics,
    search: wiener.Search | None,
    device: torch.device | str,
    window: int,
) -> None:
    """A whole (H, W, C) plane's stages in place in `out`, which holds its network's output, one row of
    `window`-sided squares at a time: a row's result is written once the next row, whose margin reads the
    network's output there, is done (memory: two rows of windows, not a plane)."""
    size = out.shape[:2]
    columns = slice(0, size[1])
    pending: tuple[slice, np.ndarray] | None = None
    for top in range(0, size[0], window):
        rows = slice(top, min(top + window, size[0]))
        result = refine(
            lambda r, c: noisy[r, c], lambda r, c: out[r, c], size, rows, columns, statistics, search, device, window
        )
        if pending is not None:
            out[pending[0]] = pending[1]
        pending = (rows, result)
    if pending is not None:
        out[pending[0]] = pending[1]


def _noise(pairs: list[tuple[np.ndarray, np.ndarray]], every: int, device: torch.device | str) -> detail.Noise:
    """The noise of (residual, brightness plane) pairs of boxes: their patches on the stride grid, every `every`-th
    each way, pooled."""
    coefficients, brightness = [], []
    for residual, level in pairs:
        plane = torch.from_numpy(np.ascontiguousarray(residual))[None, None].to(device)
        sums = detail.patch_sums(torch.from_numpy(np.ascontiguousarray(level))[None, None].to(device), detail.STRIDE)
        c, b = detail.noise_samples(plane, sums, every)
        coefficients.append(c)
        brightness.append(b)
    return detail.Noise(torch.cat(coefficients), torch.cat(brightness))


def _every(boxes: list[Box]) -> int:
    """Every how many patches (or pixels) each way the sample boxes are sampled: at most detail.SAMPLES in all."""
    patches = sum(
        ((rows.stop - rows.start) // detail.STRIDE) * ((cols.stop - cols.start) // detail.STRIDE)
        for rows, cols in boxes
    )
    return max(1, math.ceil(math.sqrt(patches / detail.SAMPLES)))


def _spread(starts: Sequence[int]) -> list[int]:
    """SAMPLE_GRID of the tile starts, evenly spread (all of them where there are fewer)."""
    count = len(starts)
    return [starts[i] for i in sorted({int((k + 0.5) * count / SAMPLE_GRID) for k in range(SAMPLE_GRID)})]


def _window(row: int, column: int, size: tuple[int, int], window: int) -> Box:
    """The window at (row, column) of the plane's grid of `window`-sided squares."""
    return (
        slice(row * window, min((row + 1) * window, size[0])),
        slice(column * window, min((column + 1) * window, size[1])),
    )


def _within(spans: Sequence[slice], origin: Sequence[slice]) -> Box:
    """Row and column spans of the plane as spans of the box whose spans are `origin`."""
    rows, columns = (slice(s.start - o.start, s.stop - o.start) for s, o in zip(spans, origin, strict=True))
    return rows, columns


def _widened(span: slice, length: int, margin: int) -> tuple[int, int]:
    """A span widened by `margin` each side, within [0, length)."""
    return max(0, span.start - margin), min(length, span.stop + margin)


def _with_margin(box: Box, size: tuple[int, int], margin: int | None = None) -> tuple[Box, Box]:
    """A box widened by `margin` (MARGIN) each side (its start down to ALIGN), within the plane, and the box
    within that."""
    margin = MARGIN if margin is None else margin
    outer = []
    for span, length in zip(box, size, strict=True):
        start = max(0, (span.start - margin) // ALIGN * ALIGN)
        outer.append(slice(start, min(length, span.stop + margin)))
    inner = tuple(slice(s.start - o.start, s.stop - o.start) for s, o in zip(box, outer, strict=True))
    return (outer[0], outer[1]), (inner[0], inner[1])
