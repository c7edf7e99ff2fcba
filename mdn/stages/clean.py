"""A clean picture whose only fault is impulses keeps its pixels: only the impulses change.

Salt and pepper in its classical form, and a sensor's dead and hot pixels, strike a few values of an otherwise
sound picture. The default's network, trained on noise of sigma 5-50, smooths the rest of such a picture to the
texture it learned, and the stages after it keep that: at density 0.002 on the bench's colour pictures the output
lay 10 dB below the picture with its impulses merely filled. A plane counts as such a picture when the engine
filled impulses in at least `wiener.KEPT_IMPULSES` of its values (the share from which the Wiener stage too takes
the filled plane for salt and pepper: on the bench's colour pictures salt and pepper at 0.002 fills 1.4e-3 or
more, no other noise more than 4.3e-4, clean pictures and camera JPEGs at most 3.6e-5) and in less than
`light.FILLED_FROM` (denser impulses leave fills whose errors the measures read as texture), its noise measures
less than CLEAN_BELOW once they are filled, and the output lies within CHANGED (RMS) of the filled plane: a
camera JPEG holds its noise in luminance, where the chroma measure cannot see it, and there the output takes more
away. A colour plane's noise is measured in its chroma (`noise_level.Measure`, as the self-check reads it); a
grey plane's, which has none, on its weak-texture patches (`light.noise_variance`: a clean grey picture's texture
measures as noise on all its patches, 4.5/255 on the median clean bench picture). Then the output keeps the
input's value wherever the two lie within STANDS_OUT of each other, and its own where they lie further apart: the
impulses, filled or not, and nothing else.

Left out: clean pictures without impulses, which cannot be told here from a light camera JPEG: they run the
stages as before.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mdn.stages import light, noise_level, wiener

CLEAN_BELOW = 1.5
"""Noise standard deviation (in 1/255), measured on the filled plane, under which the rest of the picture counts as
clean. Chosen on the validation crops: in chroma clean pictures measure 0.35-1.0, salt and pepper at 0.002
0.63-1.21, at 0.02 1.72-3.25, Gaussian sigma 2 2.03-2.24, camera noise 7 or more (the measure sees correlated
noise on every other pixel); grey, on weak-texture patches, salt and pepper at 0.002-0.02 0.16-1.89, Gaussian
sigma 2 with salt and pepper 0.002 2.04-2.50."""

CHANGED = 4.0
"""RMS of the output's change to the filled plane (in 1/255) under which the output only smoothed a clean picture:
1.5-3.1 on clean pictures, 6.0 or more on the bench's camera JPEGs."""

STANDS_OUT = 0.1
"""How far (in [0, 1]) the output must lie from a clean picture's value to be taken: an impulse lies further, the
network's smoothing of the rest nearer."""


def is_clean(filled_share: float, variance: Callable[[], float], change: Callable[[], float]) -> bool:
    """Whether a plane of whose values a `filled_share` were filled as impulses is a clean picture with impulses:
    `variance()` its noise variance (`noise_variance`) and `change()` the mean square of the output's change to the
    filled plane, each asked only if the tests before it pass."""
    return (
        wiener.KEPT_IMPULSES <= filled_share < light.FILLED_FROM
        and variance() < (CLEAN_BELOW / 255) ** 2
        and change() < (CHANGED / 255) ** 2
    )


def noise_variance(
    plane: np.ndarray, boxes: list[tuple[slice, slice]], measure: noise_level.Measure | None = None
) -> float:
    """The noise variance of an (H, W, C) filled plane as the rule reads it: a colour plane's in chroma (`measure`,
    if taken), a grey one's on its weak-texture patches; of a large plane, the median over its sample `boxes`."""
    if plane.shape[-1] != 3:
        return light.noise_variance(plane, boxes)
    if boxes:
        return float(np.median([noise_level.Measure(plane[box]).variance for box in boxes]))
    return (measure or noise_level.Measure(plane)).variance


def mean_square_change(plane: np.ndarray, out: np.ndarray, boxes: list[tuple[slice, slice]]) -> float:
    """The mean square of `out` less `plane` (both (H, W, C)): over the whole plane, row block by row block, or
    over the sample `boxes` of a large one."""
    if boxes:
        return float(np.mean([np.mean(np.square(out[box] - plane[box])) for box in boxes]))
    total = 0.0
    for top in range(0, out.shape[0], light.ROWS):
        total += float(np.sum(np.square(out[top : top + light.ROWS] - plane[top : top + light.ROWS])))
    return total / out.size


def keep_input(image: np.ndarray, out: np.ndarray) -> None:
    """`out` (H, W, C), in place: `image`'s value wherever the two lie within STANDS_OUT, its own elsewhere."""
    for top in range(0, out.shape[0], light.ROWS):
        given, result = image[top : top + light.ROWS], out[top : top + light.ROWS]
        np.copyto(result, given, where=np.abs(given - result) <= STANDS_OUT)
