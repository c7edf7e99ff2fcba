"""A colour picture with little noise keeps most of itself: the light-noise check (`--strength auto`).

The default's network and stages were trained and tuned for noise of sigma 3-50; given a clean picture, or one
with the noise of a camera at its base sensitivity, they still take away what they would take from such noise,
fine texture with it: on the validation crops clean colour pictures came out at 41 dB, sigma 1 noise 7 dB below
its input. Where the output's change to its (impulse-filled) input is small (`LIGHT_BELOW`), the check measures
the input's noise and keeps a share of the change by it, as the self-check does (`noise_level.self_checked`),
with two differences:

- The noise is measured in chroma (`noise_level.Measure`), also on every other pixel, where a camera's
  demosaicked noise shows (on the validation crops full resolution read under half of what every other pixel
  did), and in luminance on weak-texture patches only (Liu, Tanaka and Okutomi, "Single-image noise level
  estimation for blind denoising", 2013): the patches whose steps noise alone explains, re-selected as the
  estimate falls, so that texture does not count as noise; per quarter of the picture's brightness, the largest
  (noise that grows with the signal measures most where the picture is brightest). Noise that a JPEG left
  coarser than a pixel hides from full-resolution patches: where every other pixel's find clearly more
  (`COARSER`), that is taken instead.
- The share kept is `KEPT_FACTOR` times the noise over the change: a denoiser's output still holds part of the
  noise it was given, so its error is more than its change less the noise (the self-check's estimate; Stein's
  unbiased risk estimate adds twice the noise times the share of it the output passes).

Grey planes are left out: a camera's light noise, demosaicked, holds little at a pixel's scale and hides from
both luminance measures, and a grey picture has no chroma to show it (on the grey validation crops the check
lost 0.2-3 dB on light camera noise). In colour it can still hide (a held-out photo lost 4.5 dB before the
chroma's every other pixel was measured too), which is why the check is asked for, not the default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from mdn.nets.dct import OPPONENT
from mdn.stages import noise_level

LIGHT_BELOW = 4.0
"""RMS of the output's change to its (impulse-filled) input, in 1/255, under which the check runs. On the colour
validation crops clean pictures change by 1.8-2.9, sigma 1-4 noise by 2.0-4.3, light camera JPEGs by 0.9-5.1,
camera noise mostly by 6 or more but its lightest by 2.0 (whence chroma's every other pixel: see above)."""

KEPT_FACTOR = 0.8
"""The share of the change kept is this times the measured noise variance over the change's mean square. The
best share on the validation crops was 0.5-0.8 of that ratio at sigma 1-8; 0.8 errs toward the output."""

WEAK_TRACE = 273.5
"""A patch counts as weak texture where the sum of its squared horizontal and vertical steps is below this many
times the noise variance: the 99th percentile of that sum over 7x7 patches of unit white noise."""

BRIGHTNESS_BINS = 4
"""The picture's patches are measured in this many groups of equal count by their mean brightness."""

COARSER = 2.0
"""Every other pixel's noise (the median over the brightness groups) is taken where its standard deviation is
more than this many times full resolution's: JPEG's and demosaicking's noise. Clean pictures' texture reaches
1.6 times, sigma 1-8 white noise 1.0-1.1, light camera JPEGs 2.8-3.3 (the grey validation crops)."""

FILLED_FROM = 0.03
"""The share of a picture's values filled as impulses from which the check does not run: the fills' own errors
lie where the impulses were, which the patch measures read as texture (salt and pepper at density 0.05 fills
about 0.05, at 0.02 about 0.02)."""

ROWS = 256
"""Rows a step over a whole plane takes at a time (this blend, `clean`'s comparisons): a 24 MP picture's whole
difference would take 288 MB."""

MIN_PATCHES = 4 * noise_level.PATCH**2
"""The fewest patches a covariance of theirs is measured on: four per dimension."""

ITERATIONS = 8
"""The weak-texture selection is repeated at most this often: on the colour validation crops 212 of 300 measures
settled within it, the rest (clean pictures' flattest patches) still drifting down when it stopped."""


def weak_texture_variance(patches: np.ndarray) -> float:
    """The noise variance of (N, 7, 7) patches from their weak-texture ones: start from all, keep those whose
    squared steps sum below WEAK_TRACE times the estimate, measure again (`noise_level.tail_variance`)."""
    steps = np.square(np.diff(patches, axis=1)).sum(axis=(1, 2)) + np.square(np.diff(patches, axis=2)).sum(axis=(1, 2))
    variance = noise_level.tail_variance(patches)
    for _ in range(ITERATIONS):
        weak = steps < variance * WEAK_TRACE
        if np.count_nonzero(weak) < MIN_PATCHES:
            break
        estimate = noise_level.tail_variance(patches[weak])
        settled = abs(estimate - variance) <= 1e-3 * variance
        variance = estimate
        if settled:
            break
    return variance


def brightness_variances(luminance: np.ndarray, step: int = 1) -> list[float]:
    """`weak_texture_variance` of an (H, W) luminance's patches (of every `step`-th pixel) in each of
    BRIGHTNESS_BINS groups by their mean."""
    patches = noise_level.sampled_patches(luminance[..., None], step)
    if len(patches) < BRIGHTNESS_BINS * MIN_PATCHES:
        return [np.inf]  # too small to measure: the check keeps the change
    order = np.argsort(patches.mean(axis=(1, 2)), kind="stable")
    return [weak_texture_variance(patches[group]) for group in np.array_split(order, BRIGHTNESS_BINS)]


def noise_variance(image: np.ndarray, boxes: Sequence[tuple[slice, slice]] = ()) -> float:
    """The noise variance of an (H, W, C) image in [0, 1], C 1 or 3, as the check reads it: its luminance's
    weak-texture noise at the brightness where it is largest (every other pixel's, where that is `COARSER`),
    or a colour image's chroma noise (`noise_level.Measure`), at full resolution or on every other pixel
    (a camera's demosaicked noise), where that is larger; of a large image, the median over its sample `boxes`."""
    if boxes:
        return float(np.median([noise_variance(image[box]) for box in boxes]))
    luminance = image @ OPPONENT[0] if image.shape[-1] == 3 else image[..., 0]
    variance = max(brightness_variances(luminance))
    coarser = float(np.median(brightness_variances(luminance, step=2)))
    if coarser > COARSER**2 * variance:
        variance = coarser
    if image.shape[-1] == 3:
        measure = noise_level.Measure(image)
        variance = max(variance, measure.variance, measure.white_and_spaced[1])
    return variance


def kept_share(channels: int, change: Callable[[], float], variance: Callable[[], float], filled: float) -> float:
    """The share of an output's change to keep, for a plane of `channels` channels of whose values a `filled`
    share were filled as impulses: `change()` the mean square of the output's change to it and `variance()` its
    noise variance, each asked only where the tests before it pass. 1 for grey, where FILLED_FROM were filled,
    or where the change is not light."""
    if channels != 3 or filled >= FILLED_FROM:
        return 1.0
    square = change()
    if not 0 < square < (LIGHT_BELOW / 255) ** 2:
        return 1.0
    return min(1.0, KEPT_FACTOR * variance() / square)


def keep_share(image: np.ndarray, out: np.ndarray, share: float) -> None:
    """`out` (H, W, C), in place: `image` plus `share` of its change to `out`, row block by row block."""
    for top in range(0, out.shape[0], ROWS):
        given, result = image[top : top + ROWS], out[top : top + ROWS]
        result -= given
        result *= np.float32(share)
        result += given
