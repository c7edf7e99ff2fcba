"""Other denoisers for side-by-side comparison in `mdn bench`, used only when their packages are installed.

- `bm3d` (PyPI `bm3d`, non-commercial licence): BM3D with the noise level estimated from the image, as a user
  without ground truth would run it.
- `oidn` (PyPI `pyoidn`): Intel Open Image Denoise, the render engineers' denoiser, on LDR colour.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import numpy as np

Denoise = Callable[[np.ndarray], np.ndarray]
"""(H, W, C) float32 in [0, 1], C 3 (colour) or 1 (grey) -> the same."""


def estimate_sigma(image: np.ndarray) -> float:
    """Noise std from the finest diagonal Haar wavelet band: median(|HH|) / 0.6745 (Donoho), channel mean."""
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    x = image[:h, :w].astype(np.float64)
    diagonal = (x[0::2, 0::2] - x[0::2, 1::2] - x[1::2, 0::2] + x[1::2, 1::2]) / 2
    return float(np.mean(np.median(np.abs(diagonal.reshape(-1, x.shape[-1])), axis=0) / 0.6745))


def _bm3d(noisy: np.ndarray) -> np.ndarray:
    """BM3D's colour version (YCbCr) on colour, its grey version on one channel."""
    import bm3d

    sigma = estimate_sigma(noisy)
    out = bm3d.bm3d(noisy[..., 0], sigma)[..., None] if noisy.shape[-1] == 1 else bm3d.bm3d_rgb(noisy, sigma)
    return np.clip(out, 0, 1).astype(np.float32)


def _oidn(noisy: np.ndarray) -> np.ndarray:
    """OIDN's LDR filter; a grey image goes in as three equal channels and comes back as their mean."""
    import pyoidn

    colour = np.ascontiguousarray(np.broadcast_to(noisy, (*noisy.shape[:2], 3)), np.float32)
    out = pyoidn.denoise(colour, hdr=False, quality="high")
    return np.clip(out.mean(axis=-1, keepdims=True) if noisy.shape[-1] == 1 else out, 0, 1)


def oidn_hdr(noisy: np.ndarray, albedo: np.ndarray | None = None, normal: np.ndarray | None = None) -> np.ndarray:
    """OIDN on scene-linear HDR colour, as render engineers run it, with the albedo and normal when given."""
    import pyoidn

    def buffer(x: np.ndarray | None, low: float) -> np.ndarray | None:
        return None if x is None else np.ascontiguousarray(np.clip(x, low, 1.0), np.float32)

    colour = np.ascontiguousarray(np.maximum(noisy, 0), np.float32)
    return pyoidn.denoise(colour, buffer(albedo, 0.0), buffer(normal, -1.0), hdr=True, quality="high")


PEERS: dict[str, tuple[str, Denoise]] = {"bm3d": ("bm3d", _bm3d), "oidn": ("pyoidn", _oidn)}
"""Peer name -> (the package it needs, its denoise function)."""


def available() -> list[str]:
    """Peers whose packages are installed."""
    return [name for name, (package, _) in PEERS.items() if importlib.util.find_spec(package) is not None]
