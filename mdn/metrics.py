"""Image quality metrics as the masked-training paper computes them: on 8-bit RGB, one pixel border excluded."""

from __future__ import annotations

import numpy as np

PSNR_MAX = 100.0
"""The highest PSNR reported (dB): an exact restoration scores this, not infinity, so that means stay finite.
8-bit images below 150,000 values (e.g. 220x220 RGB) cannot score more unless exact."""


def to_uint8(x: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8, rounded and clipped."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) * 255), 0, 255).astype(np.uint8)


def psnr(estimate: np.ndarray, reference: np.ndarray, border: int = 1) -> float:
    """PSNR in dB of two [0, 1] images (H, W[, C]) after 8-bit quantisation, `border` pixels excluded, at most
    `PSNR_MAX` (100 dB: identical images score it)."""
    a = to_uint8(estimate).astype(np.float64)
    b = to_uint8(reference).astype(np.float64)
    if border:
        a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    mse = float(np.mean((a - b) ** 2))
    return PSNR_MAX if mse == 0 else min(float(10 * np.log10(255.0**2 / mse)), PSNR_MAX)


def _gaussian_filter_valid(x: np.ndarray, sigma: float = 1.5, radius: int = 5) -> np.ndarray:
    """Separable Gaussian filter of (H, W) keeping only the positions the whole window covers."""
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    size = 2 * radius + 1
    rows = sum(taps[i] * x[i : x.shape[0] - size + 1 + i] for i in range(size))
    return sum(taps[i] * rows[:, i : rows.shape[1] - size + 1 + i] for i in range(size))


def ssim(estimate: np.ndarray, reference: np.ndarray, border: int = 1) -> float:
    """SSIM (Wang et al. 2004: Gaussian window sigma 1.5, K1 0.01, K2 0.03) on 8-bit values, mean over channels."""
    a = to_uint8(estimate).astype(np.float64)
    b = to_uint8(reference).astype(np.float64)
    if border:
        a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    scores = []
    for channel in range(a.shape[-1]):
        x, y = a[..., channel], b[..., channel]
        mx, my = _gaussian_filter_valid(x), _gaussian_filter_valid(y)
        vx = _gaussian_filter_valid(x * x) - mx * mx
        vy = _gaussian_filter_valid(y * y) - my * my
        cov = _gaussian_filter_valid(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        scores.append(s.mean())
    return float(np.mean(scores))
