"""Fill the colour hidden under full transparency before denoising, and put it back after.

A cut-out (a product shot on a transparent background) stores some colour under alpha == 0: black, white, or
whatever the editor left there. The user never sees it, but the network and the block-matching stages do, and a
hidden black beside a bright object pulls the denoised visible edge towards black: a halo along every cut-out
edge. `fill_hidden` replaces that colour with a smooth continuation of the visible colours around it (push-pull:
average the visible pixels down an image pyramid weighted by alpha, then fill each hole from the coarser levels,
upsampled bilinearly), so the edge sees what a continuous background would show; `restore_hidden` gives the
stored hidden colour back exactly afterwards.
"""

from __future__ import annotations

import numpy as np


def fill_hidden(pixels: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """A copy of float `pixels` (N, H, W, C) with every pixel whose `alpha` (N, H, W, 1) is 0 (or below) replaced by a
    smooth continuation of the visible colours around it, within their range; visible pixels are unchanged bit
    for bit, and a plane with no hidden or no visible pixel comes back as it was."""
    filled = np.array(pixels, order="C")
    for plane, plane_alpha in zip(filled, alpha, strict=True):
        weight = np.clip(plane_alpha[..., 0], 0.0, 1.0, dtype=np.float32)  # a filter's negative lobes: hidden
        hidden = weight == 0
        if not hidden.any() or hidden.all():
            continue
        _copy_pixels_where(plane, _push_pull(plane, weight, hidden), hidden)
    return filled


def restore_hidden(out: np.ndarray, original: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """A copy of the denoised `out` (N, H, W, C) with the `original` colours put back exactly where `alpha`
    (N, H, W, 1) is 0 (or below), in planes that show something (one whose alpha was never set, 0 everywhere, keeps its
    denoised colours, as `fill_hidden` left it whole)."""
    restored = np.array(out, order="C")
    for plane, original_plane, plane_alpha in zip(restored, original, alpha, strict=True):
        hidden = plane_alpha[..., 0] <= 0
        if not hidden.all():
            _copy_pixels_where(plane, original_plane, hidden)
    return restored


def _push_pull(plane: np.ndarray, weight: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """The colours of `plane` (H, W, C) where `weight` (H, W) is above 0 continued into the `hidden` pixels, from
    the coarser levels of a weighted pyramid (a blur at the visible pixels, which the caller keeps as they were)."""
    weighted = np.multiply(plane, weight[..., None], dtype=np.float32)
    _zero_pixels_where(weighted, hidden)  # so that even a NaN stored under alpha 0 weighs nothing
    colours, weights = _pull(weighted, weight)
    del weighted
    filled = colours[-1]
    for colour, level_weight in zip(reversed(colours[:-1]), reversed(weights[:-1]), strict=True):
        filled = _upsample(filled, colour.shape[:2])
        filled += level_weight[..., None] * (colour - filled)
    return _upsample(filled, plane.shape[:2])


def _pull(weighted: np.ndarray, weight: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """From weighted colours (H, W, C) and their weights (H, W): each coarser level's mean colours and weights
    (clamped to 1), finest first, down to the first level where every pixel has full weight, or to one pixel."""
    colours: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    while weight.shape[0] > 1 or weight.shape[1] > 1:
        weight_sum = _sum_2x2(weight)
        colour = _sum_2x2(weighted)
        colour /= np.maximum(weight_sum, np.float32(1e-30))[..., None]
        weight = np.minimum(weight_sum, np.float32(1))
        colours.append(colour)
        weights.append(weight)
        if weight.min() >= 1:
            break
        weighted = colour * weight[..., None]
    return colours, weights


def _sum_2x2(values: np.ndarray) -> np.ndarray:
    """Sums of 2x2 blocks over the first two axes, an odd last row or column padded with zeros (rows first:
    the pairs of whole rows are contiguous, and halve what the column pass reads)."""
    height, width = values.shape[:2]
    if height % 2 or width % 2:
        values = np.pad(values, [(0, height % 2), (0, width % 2)] + [(0, 0)] * (values.ndim - 2))
    row_pairs = values[0::2] + values[1::2]
    return row_pairs[:, 0::2] + row_pairs[:, 1::2]


def _upsample(coarse: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """`coarse` (h, w, C) upsampled bilinearly by 2 (pixel centres aligned, edges replicated) and cropped to
    `shape` (H, W); columns first, while there are only h rows."""
    return _upsample_axis(_upsample_axis(coarse, 1, shape[1]), 0, shape[0])


def _upsample_axis(coarse: np.ndarray, axis: int, length: int) -> np.ndarray:
    """`coarse` doubled along `axis` and cut to `length`: fine 2i is 3/4 of coarse i and 1/4 of i - 1, fine 2i + 1
    3/4 of i and 1/4 of i + 1 (the ends clamped)."""
    quarter = np.float32(0.25) * coarse
    even = np.float32(3) * quarter
    odd = even.copy()
    along_quarter, along_even, along_odd = (np.moveaxis(part, axis, 0) for part in (quarter, even, odd))
    along_even[1:] += along_quarter[:-1]
    along_even[:1] += along_quarter[:1]
    along_odd[:-1] += along_quarter[1:]
    along_odd[-1:] += along_quarter[-1:]
    del quarter, along_quarter
    shape = list(coarse.shape)
    shape[axis] *= 2
    fine = np.stack([even, odd], axis=axis + 1).reshape(shape)
    return np.moveaxis(np.moveaxis(fine, axis, 0)[:length], 0, axis)


def _copy_pixels_where(target: np.ndarray, source: np.ndarray, where: np.ndarray) -> None:
    """Copy the whole pixels of `source` (H, W, C) into C-contiguous `target` (H, W, C) where `where` (H, W) is
    true."""
    np.copyto(_pixel_records(target), _pixel_records(np.ascontiguousarray(source, target.dtype)), where=where)


def _zero_pixels_where(target: np.ndarray, where: np.ndarray) -> None:
    """Set the whole pixels of C-contiguous `target` (H, W, C) to 0 where `where` (H, W) is true."""
    records = _pixel_records(target)
    np.copyto(records, np.zeros((), records.dtype), where=where)


def _pixel_records(pixels: np.ndarray) -> np.ndarray:
    """A C-contiguous (H, W, C) array seen as (H, W) records of C samples: a mask over (H, W) then moves whole
    pixels at once, an order of magnitude faster than the same mask broadcast over the channels."""
    return pixels.view(np.dtype((np.void, pixels.dtype.itemsize * pixels.shape[-1])))[..., 0]
