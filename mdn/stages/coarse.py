"""The coarse band of a denoised picture taken from the network run on the picture halved.

A network trained on white noise meets spatially correlated noise (box-filtered, demosaicked) as blobs a few
pixels wide and keeps them as texture. Halved by 2x2 means, the same noise is finer and weaker, and the network
removes it there. The output keeps its own fine band (a Laplacian pyramid's first level: the picture less its
halved picture brought back up) and takes the halved run's coarse band in place of its own.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def halved(plane: np.ndarray) -> np.ndarray:
    """An (H, W, C) plane halved by 2x2 means, an odd last row or column repeated first."""
    image = _nchw(plane)
    pad = (0, plane.shape[1] % 2, 0, plane.shape[0] % 2)
    if any(pad):
        image = F.pad(image, pad, mode="replicate")
    return _hwc(F.avg_pool2d(image, 2))


def with_coarse_band(out: np.ndarray, coarse: np.ndarray) -> None:
    """`out` (H, W, C), in place: its fine band kept, its coarse band taken from `coarse`, a denoised
    `halved` picture, both brought back up bilinearly."""
    out += _hwc(_doubled(_nchw(coarse - halved(out)), out.shape[:2]))  # bringing up is linear: one pass


def _doubled(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A halved (1, C, h, w) picture brought back up to (H, W), bilinearly, centres aligned as 2x2 means set them."""
    twice = F.interpolate(image, scale_factor=2, mode="bilinear", align_corners=False)
    return twice[..., : size[0], : size[1]]


def _nchw(plane: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(plane, dtype=np.float32)).permute(2, 0, 1)[None]


def _hwc(image: torch.Tensor) -> np.ndarray:
    return image[0].permute(1, 2, 0).contiguous().numpy()
