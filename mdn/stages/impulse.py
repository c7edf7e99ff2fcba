"""Impulses found and filled before the network: salt and pepper, dead and hot pixels.

An impulse is a value stuck at an end of the range, black or white, that its neighbours do not share. A colour
network fed a grey picture sees such a dot in all three channels at once, which is how it saw picture content (a
glint, a star), not noise, so it keeps the dot, and the stages after it keep what it kept (on the bench's grey set
the default gained 0.9 to 6 dB on salt and pepper, where it gains 8 on colour). Finding them is old and reliable:
a value at 0 or 1 (decision-based filtering, Srinivasan and Ebenezer 2007) whose four nearest of its eight
neighbours still lie far from it (ROAD, the rank-ordered absolute differences of Garnett et al. 2005): above
FLOOR, and above TYPICAL times the plane's median ROAD, which is how far neighbours lie in its texture and noise.
A clipped highlight's neighbours are clipped too, an edge pixel has four neighbours on its side, a one-pixel
line two (`SECOND`), and heavy Gaussian or Poisson noise raises the median. Each impulse is then filled with the
median of its neighbours that are no impulse, within 1 pixel, else 2, else 3.

Colour noise hits channels independently, so a pixel whose every channel is such an impulse at once is taken as a
white or black dot of the picture and kept: the colour network removes coloured dots itself.
"""

from __future__ import annotations

import math

import numpy as np

NEAREST = 4
"""Neighbours (of the eight) whose distances make a pixel's ROAD."""
FLOOR = 0.6
"""A ROAD at or below this is no impulse, whatever the plane: four neighbours 0.15 away on average."""
TYPICAL = 8.0
"""An impulse's ROAD stands this many times above the plane's median ROAD."""
SECOND = 0.25
"""Nor is a value whose second-nearest neighbour lies within this share of the threshold: a one-pixel line or a
small shape's corner (two or three neighbours share it), where an impulse has at most one (a pair)."""
SAMPLES = 1 << 16
"""Pixels at most (on a regular grid) from which the plane's median ROAD is measured."""
CHUNK = 1 << 18
"""Candidates (values at 0 or 1) measured at a time: their distances take 8 MB."""
RADII = (1, 2, 3)
"""Window radii tried in turn for an impulse's fill: the first whose window holds a pixel that is no impulse."""

_RING = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


Fills = list[tuple[np.ndarray, np.ndarray]]
"""Per channel: the flat indices (into the (H, W) plane) of the values to fill, and their fills."""


def impulse_fills(image: np.ndarray, thresholds: list[float] | None = None) -> Fills:
    """The fills of the (H, W, C) float32 `image`'s impulses, per channel: a few values, where a filled copy
    would hold the whole picture again (288 MB at 24 MP). The ROAD thresholds per channel are measured on the
    image (`threshold`), or given (measured on a whole plane of which this is a window)."""
    height, width, channels = image.shape
    if min(height, width) < 3:
        return [(np.zeros(0, np.int64), np.zeros(0, np.float32)) for _ in range(channels)]
    found = [  # one channel's contiguous copy at a time
        _impulses(np.ascontiguousarray(image[..., c]), thresholds[c] if thresholds else None) for c in range(channels)
    ]
    if channels > 1:
        every = found[0]
        for other in found[1:]:
            every = np.intersect1d(every, other, assume_unique=True)
        found = [np.setdiff1d(f, every, assume_unique=True) for f in found]
    return [_fill(np.ascontiguousarray(image[..., c]), where) for c, where in enumerate(found)]


def filled_count(fills: Fills) -> int:
    """How many values `fills` fills."""
    return sum(len(where) for where, _ in fills)


def apply_fills(image: np.ndarray, fills: Fills) -> np.ndarray:
    """Write `fills` into the (H, W, C) `image` in place; returns the values they replaced (in the same layout),
    for `apply_fills(image, replaced)` to put back."""
    width = image.shape[1]
    replaced = []
    for c, (where, values) in enumerate(fills):
        rows, cols = np.divmod(where, width)
        replaced.append((where, image[rows, cols, c].copy()))
        image[rows, cols, c] = values
    return replaced


def fill_impulses(image: np.ndarray) -> tuple[np.ndarray, int]:
    """The (H, W, C) float32 `image` in [0, 1] with its impulses filled (a new array; `image` itself where it has
    none), and how many values were filled."""
    fills = impulse_fills(image)
    count = filled_count(fills)
    if not count:
        return image, 0
    filled = image.copy()
    apply_fills(filled, fills)
    return filled, count


def sampled_roads(plane: np.ndarray, every: int | None = None) -> np.ndarray:
    """The ROAD of every `every`-th pixel each way of a (H, W) plane (by default of at most SAMPLES pixels)."""
    height, width = plane.shape
    every = every or max(1, math.ceil(math.sqrt(height * width / SAMPLES)))
    rows, cols = np.meshgrid(np.arange(0, height, every), np.arange(0, width, every), indexing="ij")
    return road(plane, rows.ravel(), cols.ravel())[0]


def threshold(roads: np.ndarray) -> float:
    """The ROAD above which values at 0 or 1 are impulses in a plane whose sampled ROADs are `roads`: FLOOR, or
    TYPICAL times their median (how far neighbours lie in its texture and noise)."""
    return max(FLOOR, TYPICAL * float(np.median(roads)))


def _impulses(plane: np.ndarray, above: float | None) -> np.ndarray:
    """Sorted flat indices of a (H, W) plane's impulses, at a ROAD above `above` (the plane's `threshold` if
    None)."""
    candidates = _candidates(plane)
    if not len(candidates):
        return candidates
    width = plane.shape[1]
    above = threshold(sampled_roads(plane)) if above is None else above
    found = []
    for start in range(0, len(candidates), CHUNK):  # a clipped sky's millions of candidates, a chunk at a time
        chunk = candidates[start : start + CHUNK]
        distance, second = road(plane, *np.divmod(chunk, width))
        found.append(chunk[(distance > above) & (second > SECOND * above)])
    return np.concatenate(found)


def _candidates(plane: np.ndarray) -> np.ndarray:
    """Flat indices of a (H, W) plane's values at 0 or 1 that at most one of their four nearest neighbours shares
    (a clipped area's values share theirs with all four; `road`'s second-nearest test would keep none of them)."""
    equal = np.zeros(plane.shape, dtype=np.uint8)
    across = plane[:, 1:] == plane[:, :-1]
    equal[:, 1:] += across
    equal[:, :-1] += across
    down = plane[1:] == plane[:-1]
    equal[1:] += down
    equal[:-1] += down
    return np.flatnonzero(((plane == 0) | (plane == 1)) & (equal < 2))


def road(plane: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each given pixel's sum of the NEAREST smallest absolute differences to its eight neighbours (reflected at
    the borders), and the second smallest."""
    height, width = plane.shape
    centre = plane[rows, cols]
    distances = np.stack(
        [np.abs(plane[_reflect(rows + dy, height), _reflect(cols + dx, width)] - centre) for dy, dx in _RING]
    )
    nearest = np.partition(distances, (1, NEAREST - 1), axis=0)
    return nearest[:NEAREST].sum(axis=0), nearest[1]


def _reflect(index: np.ndarray, length: int) -> np.ndarray:
    """Indices reflected into [0, length) about the first and last (numpy's "reflect")."""
    index = np.abs(index)
    return (length - 1) - np.abs((length - 1) - index)


def _fill(plane: np.ndarray, where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The impulses of `plane` (flat indices `where`) that can be filled and their fills: the median of each one's
    window's pixels that are no impulse, in the smallest of RADII whose window has one (left out where none has)."""
    height, width = plane.shape
    impulse = np.zeros(plane.size, dtype=bool)
    impulse[where] = True
    impulse = impulse.reshape(height, width)
    filled, fills = [np.zeros(0, np.int64)], [np.zeros(0, np.float32)]
    for radius in RADII:
        if not len(where):
            break
        rows, cols = np.divmod(where, width)
        offsets = range(-radius, radius + 1)
        window = [(_reflect(rows + dy, height), _reflect(cols + dx, width)) for dy in offsets for dx in offsets]
        values = np.stack([np.where(impulse[r, c], np.nan, plane[r, c]) for r, c in window])
        usable = ~np.isnan(values).all(axis=0)
        filled.append(where[usable])
        fills.append(np.nanmedian(values[:, usable], axis=0).astype(np.float32))
        where = where[~usable]
    return np.concatenate(filled).astype(np.int64), np.concatenate(fills)
