"""How much noise an image holds, and how much of a denoiser's change to keep: a card's self-check.

A card trained at one noise level, given an image with less noise, removes what it learned to remove, texture
included, and can come out below its input. The self-check measures the image's noise and the card's change,
and keeps the share of the change that minimises the expected error (a Wiener blend of output and input).

The noise variance comes from the smallest eigenvalues of the covariance of 7x7 patches (Chen, Zhu and Heng,
ICCV 2015): noise independent from pixel to pixel adds the same variance to every direction, while image
structure occupies few. It is measured in the two chroma channels of an opponent colour space, since texture is
mostly luminance and leaves chroma nearly to the noise. Spatially correlated noise (box-filtered, demosaicked)
hides from full-resolution patches; it shows on every other pixel, where its neighbours correlate less, but so
does more texture: that measure is taken only where it finds clearly more than a light noise (`CORRELATED_FROM`),
and where it finds clearly more than full resolution does (`correlated`), so is every third pixel's, past a 3x3
box's reach. Noise left in luminance alone, as JPEG compression leaves it, is not seen: the check then keeps
less of the card's change than it could.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mdn.nets.dct import OPPONENT

PATCH = 7
"""Side of the patches whose covariance is measured."""

MAX_PATCHES = 200_000
"""Patches sampled per measure at most (on a regular grid): enough for a 49 x 49 covariance, fast on 24 MP."""

CORRELATED_FROM = (7 / 255) ** 2
"""The variance on every other pixel above which it is taken as the noise's (correlated noise); below it, the
texture that measure also picks up would outweigh a light noise, and the full-resolution measure stands."""

CORRELATED_ABOVE = (8.5 / 255) ** 2
"""How much more variance every other pixel must find than full resolution for `correlated`: box-filtered noise
of sigma 40 finds (9.2/255)^2 to (10.2/255)^2 more on the bench's pictures, white noise none; of 80 clean photos
(the training, validation and bench sets) the most finds (7.8/255)^2, the next (5.6/255)^2, a chroma texture at
the scale of two pixels."""


def sampled_patches(planes: np.ndarray, step: int = 1) -> np.ndarray:
    """The (N, PATCH, PATCH) patches of (H, W, C) channels that the measures read: of every `step`-th pixel (all
    step x step phases and channels pooled), on a regular grid sparse enough for at most about MAX_PATCHES."""
    height, width = planes.shape[0] // step, planes.shape[1] // step
    if min(height, width) < PATCH:
        return np.empty((0, PATCH, PATCH))
    count = step * step * planes.shape[-1] * (height - PATCH + 1) * (width - PATCH + 1)
    stride = max(1, int(np.ceil(np.sqrt(count / MAX_PATCHES))))
    windows = (
        sliding_window_view(planes[i::step, j::step, c], (PATCH, PATCH))[::stride, ::stride]
        for i in range(step)
        for j in range(step)
        for c in range(planes.shape[-1])
    )
    return np.concatenate([w.reshape(-1, PATCH, PATCH) for w in windows]).astype(np.float64)


def tail_variance(patches: np.ndarray) -> float:
    """Variance of pixel-independent noise in (N, PATCH, PATCH) patches: the mean of the tail of the eigenvalues
    of their covariance, the largest tail whose mean is not above its median (Chen et al. 2015)."""
    flat = patches.reshape(len(patches), -1)
    flat = flat - flat.mean(axis=0)
    eigenvalues = np.linalg.eigvalsh(flat.T @ flat / len(flat))[::-1]
    for first in range(len(eigenvalues)):
        tail = eigenvalues[first:]
        if tail.mean() <= np.median(tail):
            return float(max(tail.mean(), 0.0))
    return float(max(eigenvalues[-1], 0.0))


def patch_noise_variance(planes: np.ndarray, step: int = 1) -> float:
    """Variance of pixel-independent noise in (H, W, C) channels, from their 7x7 patches' covariance
    (`tail_variance`); with `step`, of the patches of every `step`-th pixel (all step x step phases pooled)."""
    patches = sampled_patches(planes, step)
    return tail_variance(patches) if len(patches) else 0.0


class Measure:
    """An image's noise as the self-check and the coarse pass read it, each part measured once, when first asked:
    `variance`, the mean noise variance per channel of an (H, W, C) image in [0, 1], C 1 or 3 (colour: in chroma,
    at full resolution, or where every other pixel finds more than `CORRELATED_FROM`, the more of that and it;
    where the noise is `correlated`, the more of every other and every third pixel's; grey, which has no chroma to
    hide texture from: at full resolution only, as every other pixel of a clean grey photo finds 8-16/255), and
    `correlated`, whether a colour image holds spatially correlated noise: every other pixel finds more than
    `CORRELATED_ABOVE` above the variance that full resolution finds (white noise finds the same on both). Grey
    pictures are never taken as correlated: texture alone passes that test."""

    def __init__(self, image: np.ndarray) -> None:
        self.image = np.asarray(image, dtype=np.float32)

    @functools.cached_property
    def _chroma(self) -> np.ndarray:
        return self.image @ OPPONENT[1:].T

    @functools.cached_property
    def white_and_spaced(self) -> tuple[float, float]:
        """The chroma's noise variance at full resolution and on every other pixel."""
        return patch_noise_variance(self._chroma), patch_noise_variance(self._chroma, step=2)

    @functools.cached_property
    def correlated(self) -> bool:
        if self.image.shape[-1] != 3:
            return False
        white, spaced = self.white_and_spaced
        return spaced - white > CORRELATED_ABOVE

    @functools.cached_property
    def variance(self) -> float:
        if self.image.shape[-1] != 3:
            return patch_noise_variance(self.image)
        white, spaced = self.white_and_spaced
        if spaced <= CORRELATED_FROM:
            return white
        if not self.correlated:
            return max(white, spaced)
        # box-filtered noise still correlates by a third on every other pixel, whose smallest eigenvalues understate
        return max(spaced, patch_noise_variance(self._chroma, step=3))


def noise_variance(image: np.ndarray) -> float:
    """`Measure.variance` of an (H, W, C) image in [0, 1]."""
    return Measure(image).variance


def correlated(image: np.ndarray) -> bool:
    """`Measure.correlated` of an (H, W, C) image in [0, 1]."""
    return Measure(image).correlated


def input_share(error_var: float, noise_var: float, memorised: float = 0.0) -> float:
    """The input's share in the blend of a denoised image with its input that minimises the expected error,
    for an output of error variance `error_var` whose change removed all but a `memorised` share of noise of
    variance `noise_var` (0: the output's error is independent of the noise, the Wiener weight)."""
    return float(input_shares(np.float64(error_var), np.float64(noise_var), np.float64(memorised)))


def input_shares(error_var: np.ndarray, noise_var: np.ndarray, memorised: np.ndarray | float = 0.0) -> np.ndarray:
    """`input_share` for arrays of each (broadcast), element by element: a pixel's own share."""
    kept = 1 - memorised
    numerator = error_var - memorised * kept * noise_var
    denominator = error_var + kept**2 * noise_var
    share = np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)
    return np.maximum(share, 0, out=share)


def kept_share(noise_var: float, change_var: float) -> float:
    """The share of a denoiser's change to keep, 1 - `input_share`, with the output's error estimated as the mean
    squared change less the noise (a change made of noise alone is all kept)."""
    return 1.0 - input_share(max(change_var - noise_var, 0.0), noise_var)


def self_checked(noisy: np.ndarray, denoised: np.ndarray, measure: Measure | None = None) -> tuple[np.ndarray, float]:
    """The denoised (H, W, C) image with the input blended back by `kept_share`, and the share kept; `measure`:
    the noisy image's, where the caller has one already."""
    change = denoised - noisy
    variance = (measure or Measure(noisy)).variance
    share = kept_share(variance, float(np.mean(np.square(change, dtype=np.float64))))
    if share >= 1.0:
        return denoised, 1.0
    return (noisy + np.float32(share) * change).astype(np.float32), share
