"""Sliding-window DCT shrinkage, the first stage of BM3D without its block matching, as a learned network stage.

Fine repeated texture (woven cloth, railings, a thumbnail's aliased stripes) is sparse in an 8x8 DCT: a few large
coefficients carry it, and independent noise spreads evenly over all 64. Hard thresholding at 2.7 sigma keeps the
first and drops most of the second, so it keeps texture that a narrow convolutional network trained on photos
flattens (docs/training.md, "Barbara is texture, not distance": BM3D's block matching was worth 0.3 dB on barbara's
thumbnail, its transform shrinkage the rest). Alone, at the right sigma, it already beats `unet-practical` on the
bench's sigma-15 and thumbnail means; on smooth ground it rings, and the sigma is unknown, so here it is the first stage
of a network: its gains are learned, and the network denoises what it leaves, residual taken from it.

Patches overlap (`stride` < `size`) and are averaged uniformly (as good as BM3D's 1 / kept weights here, and
linear, so that any number of levels costs one transform), in an orthonormal opponent colour space, where
independent noise stays independent and of the same strength.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

OPPONENT = np.array([[1, 1, 1], [1, -1, 0], [1, 1, -2]], dtype=np.float32) / np.sqrt(
    np.array([[3], [2], [6]], dtype=np.float32)
)
"""Orthonormal luminance and two chroma axes: channel-independent noise has the same variance along each."""


THRESHOLD = 2.7
"""Hard threshold in noise standard deviations (BM3D's lambda_3D for its first stage)."""
BAND = 32
"""Rows per band: a band's 16 coefficients per pixel and channel stay in cache (`unet-dct` at 1024², one thread:
0.305 MP/s in bands, 0.184 with each 512² tile at once; `unet` 0.38)."""


def dct_basis(size: int) -> Tensor:
    """(size², 1, size, size): the orthonormal 2-D DCT-II basis, DC first, as convolution filters."""
    k = torch.arange(size, dtype=torch.float64)
    one = torch.cos(math.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * size)) * math.sqrt(2 / size)
    one[0] /= math.sqrt(2)
    return torch.einsum("ui,vj->uvij", one, one).reshape(size * size, 1, size, size).float()


def opponent(channels: int) -> Tensor:
    """(C, C) orthonormal colour transform: the noise measure's luminance and opponent chroma axes for RGB
    (`OPPONENT`), identity for grey."""
    return torch.from_numpy(OPPONENT.copy()) if channels == 3 else torch.eye(channels)


def analysis_kernel(basis: Tensor, stride: int) -> Tensor:
    """(size², stride², k, k), k = size / stride: the transform of every patch on a stride grid as a plain
    convolution of the image's stride x stride blocks (`pixel_unshuffle`), which runs on the fast path everywhere."""
    size = basis.shape[-1]
    k = size // stride
    blocks = basis.reshape(size * size, 1, k, stride, k, stride).permute(0, 1, 3, 5, 2, 4)
    return blocks.reshape(size * size, stride * stride, k, k).contiguous()


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


class DctShrink(nn.Module):
    """(B, C, H, W) -> (B, C, H, W): each overlapping size x size DCT coefficient of the image (in the opponent
    colour space) scaled by a learned gain that falls with its magnitude, then the patches averaged back.

    The gain of a coefficient c is 1 - sum_k share[k] * [|c| <= 2.7 sigma_k]: a staircase that keeps what stands
    above the highest threshold and shrinks what falls below the lower ones, with shares learned per colour
    channel, frequency and level (the patch mean keeps gain 1). With all shares at s / L it is exactly the image
    blended with hard thresholding at every level: (1 - s) x + (s / L) sum_k HT_sigma_k(x), patches averaged
    uniformly. One pass of the transform whatever the number of levels."""

    def __init__(
        self, sigmas: tuple[float, ...], channels: int = 3, share: float = 0.5, size: int = 8, stride: int = 2
    ) -> None:
        super().__init__()
        if size % stride:
            raise ValueError(f"stride {stride} must divide the patch size {size}")
        self.size, self.stride = size, stride
        self.thresholds = [THRESHOLD * sigma / 255 for sigma in sorted(sigmas)]
        self.shares = nn.Parameter(torch.full((channels, len(sigmas), size * size), share / len(sigmas)))
        basis = dct_basis(size)
        self.register_buffer("analyse", analysis_kernel(basis, stride), persistent=False)
        self.register_buffer("aggregate", aggregation_kernel(basis, stride), persistent=False)
        self.register_buffer("colour", opponent(channels), persistent=False)
        ac = torch.ones(size * size)
        ac[0] = 0.0
        self.register_buffer("ac", ac, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        n, s = self.size, self.stride
        pad = n - s
        with torch.autocast(x.device.type, enabled=False):
            y = torch.einsum("dc,bchw->bdhw", self.colour, x.float()).reshape(b * c, 1, h, w)
            y = F.pad(y, (pad, pad + (-w) % s, pad, pad + (-h) % s), mode="reflect")
            shares = (self.shares * self.ac / 2).repeat(b, 1, 1)  # halved: a step is (1 + sign) / 2
            rows = y.shape[-2] - 2 * pad
            bands = [self._band(y[..., r : min(r + BAND, rows) + 2 * pad, :], shares) for r in range(0, rows, BAND)]
            out = torch.cat(bands, dim=-2)[..., :h, pad : pad + w].reshape(b, c, h, w)
            return torch.einsum("dc,bdhw->bchw", self.colour, out).to(x.dtype)

    def _band(self, y: Tensor, shares: Tensor) -> Tensor:
        n, s = self.size, self.stride
        k, pad = n // s, n - s
        blocks = F.pixel_unshuffle(y, s).contiguous(memory_format=torch.channels_last)
        coefficients = F.conv2d(blocks, self.analyse)  # (B C, n², grid), channels last
        bc, _, gh, gw = coefficients.shape
        flat = coefficients.permute(0, 2, 3, 1).reshape(bc, gh * gw, n * n)  # a view: frequencies innermost
        magnitude = flat.abs()
        shrink = torch.zeros_like(flat)
        for level, threshold in enumerate(self.thresholds):  # float steps: boolean masks take a slow path
            shrink += torch.sign(threshold - magnitude).add_(1).mul_(shares[:, level, None, :])
        kept = (flat - flat * shrink).reshape(bc, gh, gw, n * n).permute(0, 3, 1, 2)
        summed = F.pixel_shuffle(F.conv2d(kept, self.aggregate, padding=k - 1), s)
        return summed[..., pad : y.shape[-2] - pad, :] / (k * k)
