"""MPI's self-check: pixels the network never sees, its predictions there against the noisy values, and the blend
with the input that minimises the estimated error, pixel by pixel (the input itself when the fill looks worse)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mdn.stabilise import IMMERKAER, binned_variances
from mdn.stages.noise_level import input_share, input_shares

HOLDOUT = (0.02, 2000, 0.1)
"""Pixels MPI never shows the network and never trains on: 2 % of an image, at least 2000 but at most 10 %.
Its predictions there are independent of those pixels' noise, which is what lets the self-check measure the
result without a clean image."""


ERROR_MARGIN = 1.0
"""The self-check takes the fill's error this many standard errors above its estimate: small images and
heavy noise leave the estimate uncertain, and the margin then blends a little more of the input back."""


SMALL_GAIN_DB = 1.0
"""An estimated gain below this is reported as a preset that cannot improve the image much."""


LOCAL_WINDOW = 7
"""Side of the window around each pixel in which the blend measures the fill's error (its own pixel left out):
a fill from neighbours misses texture and edges and is right on flat ground, so the input is given back where
the fill errs. Against one weight for the image, on grey validation photos at photon peaks 160, 40 and 10
with `fast`: +1.05, +0.31 and -0.25 dB alone, +2.26, +1.53 and +0.72 with the Wiener stage after it (`mpi.refined`);
windows of 11 to 21 did less (docs/zeroshot.md)."""


NOISE_VAR_LOW = 0.85
"""The self-check's range takes the true noise variance between this share of `noise_variance`'s estimate and
the estimate itself: on the grey zero-shot grid the estimate read 0.99-1.19 times the truth (texture leaks in,
most at light noise), and `scripts/selfcheck_grid.py` found every measured gain inside the range."""


@dataclass(frozen=True)
class SelfCheck:
    """What MPI's result is worth, estimated from the noisy image alone, and how it was made safe.

    For pixel-independent, zero-mean noise of variance s (from `noise_variance`), a prediction that never saw a
    pixel's noise differs from the noisy value by (error a) + s in the mean square: that is what the held-out
    pixels measure. Where the net trained, its fill also reproduces a share k of the pixel's own noise
    (memorisation), so there the mean square difference is a + (1 - k)^2 s, smaller by (2k - k^2) s: the two
    residuals give a and k. The output is the blend with the input, `weight` of the input, that minimises the
    expected squared error (1 - w)^2 a + (w + (1 - w) k)^2 s; a fill estimated worse than the input gives way
    to the input entirely (weight 1). Held-out pixels, which the fill never memorised, take k = 0.
    The held-out and trained mean squares, and the standard error of the first, give the gain's range.
    """

    noise_var: float
    fill_error_var: float
    memorised: float
    weight: float
    held_residual: float = 0.0
    held_error: float = 0.0
    trained_residual: float = 0.0

    @property
    def fill_gain_db(self) -> float:
        """Estimated PSNR gain of the fine-tuned fill alone over the input (negative: worse than the input)."""
        return 10 * math.log10(self.noise_var / (self.fill_error_var + self.memorised**2 * self.noise_var))

    @property
    def gain_db(self) -> float:
        """Estimated PSNR gain of the blended output over the input."""
        return 10 * math.log10(
            self.noise_var / blend_error(self.fill_error_var, self.memorised, self.noise_var, self.weight)
        )

    @property
    def gain_range_db(self) -> tuple[float, float]:
        """A low and a high estimate of `gain_db`: the held-out mean square one standard error above and below its
        value, the noise variance at NOISE_VAR_LOW of its estimate and at the estimate, the fill's error at
        least one standard error (finer it cannot be told). A result equal to the input has gained exactly 0."""
        if self.weight == 1.0:
            return 0.0, 0.0
        floor = max(self.held_error, 1e-12)
        low = _gain(self.noise_var * NOISE_VAR_LOW, self.held_residual + self.held_error, self.trained_residual,
                    self.weight, floor)  # fmt: skip
        high = _gain(self.noise_var, self.held_residual - self.held_error, self.trained_residual, self.weight, floor)
        return min(low, self.gain_db), max(high, self.gain_db)

    def to_json(self) -> dict[str, float]:
        low, high = self.gain_range_db
        return {
            "estimated_gain_db": round(self.gain_db, 2),
            "estimated_gain_db_low": round(low, 2),
            "estimated_gain_db_high": round(high, 2),
            "fill_gain_db": round(self.fill_gain_db, 2),
            "input_weight": round(self.weight, 3),
            "memorised_noise": round(self.memorised, 3),
            "noise_sigma": round(math.sqrt(self.noise_var) * 255, 2),
        }


def blend_error(error_var: float, memorised: float, noise_var: float, weight: float) -> float:
    """Expected squared error of w * input + (1 - w) * fill, for a fill with independent error `error_var` that
    reproduces a share `memorised` of the pixel's noise of variance `noise_var`."""
    return (1 - weight) ** 2 * error_var + (weight + (1 - weight) * memorised) ** 2 * noise_var


def _gain(noise_var: float, held: float, trained: float, weight: float, floor: float) -> float:
    """Estimated PSNR gain of the blend at `weight`, from held-out and trained mean squares `held` and `trained`
    and a noise variance, the fill's error taken at least `floor`."""
    memorised = 1 - math.sqrt(min(max(1 - (held - trained) / noise_var, 0.0), 1.0))
    error = blend_error(max(held - noise_var, floor), memorised, noise_var, weight)
    return 10 * math.log10(noise_var / error)


Bins = list[tuple[np.ndarray, np.ndarray]]
"""Per channel: noise bins' mean brightness and variance (`noise_bins`)."""


def noise_variance(image: np.ndarray, bins: int = 16) -> float:
    """Mean variance of pixel-independent noise in (H, W, C), signal-dependent noise included: each channel's
    response to Immerkaer's operator (1996, `stabilise.IMMERKAER`) is sorted by local (3x3) brightness into
    equal-count bins, each bin's variance is the robust (median |response| / 0.6745 / 6)^2
    (`stabilise.binned_variances`), and the bins' variances are averaged. Texture leaks in less than through the
    finest Haar band: 3-10 % high on the textured samples, against 11-14 %."""
    return _mean_variance(noise_bins(image, bins))


def _mean_variance(bins: Bins) -> float:
    return float(np.mean(np.concatenate([variances for _, variances in bins])))


def noise_bins(image: np.ndarray, bins: int = 16) -> Bins:
    """Per channel of (H, W, C): the bins' mean brightness (sum over 3x3 pixels) and noise variance, as
    `noise_variance` measures them."""
    x = np.pad(image.astype(np.float64), ((1, 1), (1, 1), (0, 0)), mode="reflect")
    height, width = image.shape[:2]
    windows = [x[i : i + height, j : j + width] for i in range(3) for j in range(3)]
    response = sum(k * w for k, w in zip(IMMERKAER.ravel(), windows, strict=True))
    brightness = sum(windows)
    channels = range(image.shape[-1])
    return [binned_variances(brightness[..., c].ravel(), response[..., c].ravel(), bins) for c in channels]


def noise_map(bins: Bins, level: np.ndarray) -> np.ndarray:
    """(H, W, C): each pixel's noise variance, read from its channel's `noise_bins` at the brightness `level`
    (H, W, C) gives it (a denoised image: the noisy one's own brightness carries its noise)."""
    return np.stack([np.interp(9 * level[..., c], *bins[c]) for c in range(level.shape[-1])], axis=-1)


def local_mean(values: np.ndarray, size: int = LOCAL_WINDOW) -> np.ndarray:
    """(H, W, C): the mean of `values` over the `size` x `size` window around each pixel, the pixel itself left
    out (its own noise would otherwise raise its own estimate) and the image's edges shortening the window."""
    x = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)).permute(2, 0, 1)[None]
    ones = torch.ones_like(x[:, :1])
    sums, counts = (F.avg_pool2d(t, size, 1, size // 2, count_include_pad=True) * size * size for t in (x, ones))
    mean = (sums - x) / (counts - 1).clamp_min(1)
    return mean[0].permute(1, 2, 0).numpy()


def local_weights(
    noisy: np.ndarray, filled: np.ndarray, holdout: np.ndarray, memorised: float, bins: Bins
) -> np.ndarray:
    """(H, W, C): each pixel's share of the input in the blend that minimises its expected error (`input_shares`),
    from the fill's error measured around it: the mean squared difference from the noisy values over
    `LOCAL_WINDOW` less the noise the fill kept, with each pixel's own noise variance (`noise_map` of the noisy
    image's `bins`) and the share `memorised` of it the fill reproduces where it trained (none at held-out pixels)."""
    noise = noise_map(bins, filled).astype(np.float32)
    memorised_here = np.where(holdout[..., None], np.float32(0), np.float32(memorised))
    kept = 1 - memorised_here
    error = np.maximum(local_mean((filled - noisy) ** 2) - kept**2 * noise, 0.0)
    return input_shares(error, noise, memorised_here)


def holdout_mask(height: int, width: int, seed: int) -> np.ndarray:
    """The (H, W) held-out pixels of an image (HOLDOUT), drawn from their own seeded generator."""
    share, least, most = HOLDOUT
    ratio = min(most, max(share, least / (height * width)))
    return np.random.default_rng([seed, 1]).random((height, width)) < ratio


def self_checked(noisy: np.ndarray, filled: np.ndarray, holdout: np.ndarray) -> tuple[np.ndarray, SelfCheck]:
    """Blend the fill (H, W, C) with the noisy input by the self-check's estimate; both in [0, 1] out. The check
    (`SelfCheck`) weighs the whole image; where it finds the fill better than the input, the blend is made pixel by
    pixel (`local_weights`), else the output is the input."""
    bins = noise_bins(noisy)
    noise_var = max(_mean_variance(bins), 1e-10)
    squares = (filled - noisy) ** 2
    held, trained = squares[holdout], squares[~holdout]
    residual = float(np.mean(held)) if held.size else 2 * noise_var
    margin = ERROR_MARGIN * residual * math.sqrt(2 / max(held.size, 1))
    error_var = max(residual - noise_var, 0.0) + margin
    trained_residual = float(np.mean(trained)) if trained.size else residual
    shortfall = (residual - trained_residual) / noise_var
    memorised = 1 - math.sqrt(min(max(1 - shortfall, 0.0), 1.0))
    spread = float(np.std(held)) / math.sqrt(held.size) if held.size > 1 else residual
    check = SelfCheck(noise_var, error_var, memorised, 1.0, residual, spread, trained_residual)
    if check.fill_gain_db > 0:
        check = dataclasses.replace(check, weight=input_share(error_var, noise_var, memorised))
    weight = np.float32(1.0) if check.weight == 1.0 else local_weights(noisy, filled, holdout, memorised, bins)
    blended = (1 - weight) * filled + weight * np.clip(noisy, 0.0, 1.0)
    return blended.astype(np.float32), check
