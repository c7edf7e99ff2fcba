"""Image quality metrics as the masked-training paper computes them: on 8-bit RGB, one pixel border excluded."""

from __future__ import annotations

import numpy as np


def to_uint8(x: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8, rounded and clipped."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) * 255), 0, 255).astype(np.uint8)


def psnr(estimate: np.ndarray, reference: np.ndarray, border: int = 1) -> float:
    """PSNR in dB of two [0, 1] images (H, W[, C]) after 8-bit quantisation, `border` pixels excluded."""
    a = to_uint8(estimate).astype(np.float64)
    b = to_uint8(reference).astype(np.float64)
    if border:
        a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
