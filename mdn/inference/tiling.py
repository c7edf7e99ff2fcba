"""Overlapping tiles that cover an image, and the weights that blend them back without a seam.

The one tiling used everywhere: the inference engine (torch, on the device) and MPI's zero-shot fill (one tile
after another) cut the same grids and blend with the same weights. A grid is a product of row and column
positions and each tile's weight a product of a row and a column ramp, so the summed weight of every pixel
factorises too: a blend is finished by two 1-D divisions, without an image-sized weight map.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np


def tile_positions(length: int, tile: int, overlap: int, align: int = 1) -> list[int]:
    """Start offsets (multiples of `align`) of tiles of size `tile` covering [0, length), sharing at least
    `overlap` pixels; `length` and `tile` are multiples of `align`."""
    if length <= tile:
        return [0]
    stride = max(align, (tile - overlap) // align * align)
    count = math.ceil((length - tile) / stride) + 1
    return [min(i * stride, length - tile) for i in range(count)]


def balanced_tile(length: int, tile: int, overlap: int, align: int = 1) -> int:
    """The smallest tile side (a multiple of `align`, at most `tile`) that covers `length` with as few tiles as
    `tile` needs, so that the last tile does not redo most of its neighbour: 6000 px in 512-px tiles with a
    32-px overlap become 13 tiles of 496 px instead of 13 of 512."""
    if length <= tile:
        return length
    count = math.ceil((length - overlap) / (tile - overlap))
    side = math.ceil((length + (count - 1) * overlap) / count)
    return min(tile, -(-side // align) * align)


def edge_ramp(length: int, overlap: int, fade_start: bool, fade_end: bool) -> np.ndarray:
    """1-D blending weight of a tile side: 0 over the outer quarter of the overlap (where a tile lacks
    context), then rising linearly to 1; sides on the image border keep full weight."""
    margin = overlap // 4
    distance = np.arange(length, dtype=np.float32)
    weight = np.ones(length, np.float32)
    if overlap:
        ramp = np.clip((distance - margin + 1) / (overlap - 2 * margin + 1), 0.0, 1.0)
        if fade_start:
            weight = np.minimum(weight, ramp)
        if fade_end:
            weight = np.minimum(weight, ramp[::-1])
    return weight


@dataclass(frozen=True)
class TileGrid:
    """Tiles of `size` (height, width) at every (row, column) start, covering a height x width image."""

    height: int
    width: int
    size: tuple[int, int]
    overlap: int
    rows: tuple[int, ...]
    columns: tuple[int, ...]

    @classmethod
    def cover(cls, height: int, width: int, tile: int, overlap: int, align: int = 1) -> TileGrid:
        """The fewest balanced tiles of at most `tile` pixels a side (multiples of `align`) sharing at least
        `overlap` pixels."""
        th, tw = balanced_tile(height, tile, overlap, align), balanced_tile(width, tile, overlap, align)
        rows, columns = tile_positions(height, th, overlap, align), tile_positions(width, tw, overlap, align)
        return cls(height, width, (th, tw), overlap, tuple(rows), tuple(columns))

    def __len__(self) -> int:
        return len(self.rows) * len(self.columns)

    def corners(self) -> list[tuple[int, int]]:
        """Top-left corners of the tiles, row by row."""
        return [(y, x) for y in self.rows for x in self.columns]

    @functools.cached_property
    def _ramps(self) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
        (th, tw), overlap = self.size, self.overlap
        rows = {y: edge_ramp(th, overlap, y > 0, y + th < self.height) for y in self.rows}
        columns = {x: edge_ramp(tw, overlap, x > 0, x + tw < self.width) for x in self.columns}
        return rows, columns

    def ramps(self, y: int, x: int) -> tuple[np.ndarray, np.ndarray]:
        """The row and column factors of the blending weight of the tile at (y, x)."""
        rows, columns = self._ramps
        return rows[y], columns[x]

    def weight(self, y: int, x: int) -> np.ndarray:
        """The (th, tw, 1) blending weight of the tile at (y, x)."""
        ramp_y, ramp_x = self.ramps(y, x)
        return (ramp_y[:, None] * ramp_x[None, :])[..., None]

    def coverage(self) -> tuple[np.ndarray, np.ndarray]:
        """The summed blending weight of every pixel as its row factor (height,) and column factor (width,)."""
        (th, tw), (rows, columns) = self.size, self._ramps
        row_sum, column_sum = np.zeros(self.height, np.float32), np.zeros(self.width, np.float32)
        for y, ramp in rows.items():
            row_sum[y : y + th] += ramp
        for x, ramp in columns.items():
            column_sum[x : x + tw] += ramp
        return row_sum, column_sum
