"""Sliding-window DCT hard thresholding, the first stage of BM3D without its block matching, as a fixed network
stage.

Fine repeated texture (woven cloth, railings, a thumbnail's aliased stripes) is sparse in an 8x8 DCT: a few large
coefficients carry it, and independent noise spreads evenly over all 64. Hard thresholding at 2.7 sigma keeps the
first and drops most of the second, so it keeps texture that a narrow convolutional network trained on photos
flattens (docs/training.md, "Barbara is texture, not distance": BM3D's block matching was worth 0.3 dB on barbara's
thumbnail, its transform shrinkage the rest). On smooth ground it rings; a network decides where to trust it.

Patches overlap (`stride` < `size`) and are aggregated with BM3D's weights, 1 / (coefficients kept), in an
orthonormal opponent colour space, where independent noise stays independent and of the same strength.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

THRESHOLD = 2.7
"""Hard threshold in noise standard deviations (BM3D's lambda_3D for its first stage)."""
BAND = 32
"""Rows per band: the stage's 16 coefficients per pixel and level stay in cache band by band (2.4 times faster
than the whole tile at once on 512² tiles, one thread)."""


def dct_basis(size: int) -> Tensor:
    """(size², 1, size, size): the orthonormal 2-D DCT-II basis, DC first, as convolution filters."""
    k = torch.arange(size, dtype=torch.float64)
    one = torch.cos(math.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * size)) * math.sqrt(2 / size)
    one[0] /= math.sqrt(2)
    return torch.einsum("ui,vj->uvij", one, one).reshape(size * size, 1, size, size).float()


def opponent(channels: int) -> Tensor:
    """(C, C) orthonormal colour transform: luminance and two opponent chroma axes for RGB, identity for grey."""
    if channels != 3:
        return torch.eye(channels)
    rows = torch.tensor([[1.0, 1.0, 1.0], [1.0, -1.0, 0.0], [1.0, 1.0, -2.0]])
    return rows / rows.norm(dim=1, keepdim=True)


def aggregation_kernel(basis: Tensor, stride: int) -> Tensor:
    """(stride², size², k, k), k = size / stride: the convolution over the grid of patch coefficients that sums
    every patch's inverse DCT into the pixels it covers, one output channel per position in a stride x stride
    block (then `pixel_shuffle`): the overlap-add of `F.fold` as a plain convolution, which runs on the fast
    path everywhere."""
    size = basis.shape[-1]
    k = size // stride
    patches = basis[:, 0].reshape(size * size, k, stride, k, stride)  # (q, m_r, a_r, m_c, a_c)
    kernel = patches.flip(1, 3).permute(2, 4, 0, 1, 3)  # tap t = k - 1 - m
    return kernel.reshape(stride * stride, size * size, k, k).contiguous()


class DctShrinkage(nn.Module):
    """(B, C, H, W) in [0, 1] -> (B, C * len(sigmas), H, W): the image hard-thresholded in overlapping size x size
    DCTs at each noise level of `sigmas` (0-255 scale), one estimate per level. No trained parameters."""

    def __init__(self, sigmas: tuple[float, ...], channels: int = 3, size: int = 8, stride: int = 2) -> None:
        super().__init__()
        if size % stride:
            raise ValueError(f"stride {stride} must divide the patch size {size}")
        self.sigmas, self.size, self.stride = tuple(sigmas), size, stride
        basis = dct_basis(size)
        self.register_buffer("basis", basis, persistent=False)
        self.register_buffer("aggregate", aggregation_kernel(basis, stride), persistent=False)
        self.register_buffer("colour", opponent(channels), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        n, s = self.size, self.stride
        pad = n - s  # every pixel then lies in (n / s)² patches, borders included
        with torch.autocast(x.device.type, enabled=False):  # thresholds need full precision
            y = torch.einsum("dc,bchw->bdhw", self.colour, x.float()).reshape(b * c, 1, h, w)
            y = F.pad(y, (pad, pad + (-w) % s, pad, pad + (-h) % s), mode="reflect")
            rows = y.shape[-2] - 2 * pad
            bands = [self._band(y[..., r : min(r + BAND, rows) + 2 * pad, :]) for r in range(0, rows, BAND)]
            out = torch.cat(bands, dim=-2)[..., :h, pad : pad + w].reshape(len(self.sigmas), b, c, h, w)
            estimates = torch.einsum("dc,lbdhw->blchw", self.colour, out).reshape(b, -1, h, w)
        return estimates.to(x.dtype)

    def _band(self, y: Tensor) -> Tensor:
        """(levels B C, 1, rows, W) estimates of the rows of a padded band `y` (B C, 1, rows + 2 pad, W) past its
        padding, which hold every patch that covers them: bands give the whole image's result."""
        n, s = self.size, self.stride
        k, pad = n // s, n - s
        coefficients = F.conv2d(y, self.basis, stride=s)  # (B C, n², grid)
        magnitude = coefficients.abs()
        magnitude[:, 0] = torch.inf  # the patch's mean always stays
        kept, weights = [], []
        for sigma in self.sigmas:
            keep = magnitude > THRESHOLD * sigma / 255
            weight = 1.0 / keep.sum(dim=1, keepdim=True, dtype=y.dtype)
            kept.append(torch.where(keep, coefficients, 0.0).mul_(weight))
            weights.append(weight)
        summed = F.pixel_shuffle(F.conv2d(torch.cat(kept), self.aggregate, padding=k - 1), s)
        ones = torch.ones(1, 1, k, k, dtype=y.dtype, device=y.device)
        norm = F.conv2d(torch.cat(weights), ones, padding=k - 1).repeat_interleave(s, 2).repeat_interleave(s, 3)
        return (summed / norm)[..., pad : y.shape[-2] - pad, :]
