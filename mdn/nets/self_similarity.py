"""Non-local self-similarity for a convolutional denoiser: each position gathers features from the positions of
its window whose neighbourhoods look like its own, as BM3D's block matching gathers similar patches.

A U-Net sees a few dozen pixels around each one; a picture's repeated structure (fabric, stripes, a thumbnail's
aliased pattern) lies further apart. Non-local networks (NLRN, Liu et al. 2018; N3Net, Plötz and Roth 2018) add a
stage that compares patches across a search window and averages the matches; here that is attention inside
square windows of one U-Net level, with queries and keys from a 3x3 convolution (a patch descriptor) and a second
block over windows shifted by half, so that no position is cut off at a window's edge. A learned sharpness
scales the similarities (started at 4x the usual 1/sqrt(d)), so that the softmax can pick the few best matches
as block matching does rather than average the window. The output projection starts at zero: a network with
the blocks added starts as the one without them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class WindowSelfSimilarity(nn.Module):
    """(B, C, H, W) -> (B, C, H, W): features plus the attention-weighted features of their window (`window`
    positions a side, shifted by half when `shifted`); any H and W (padded to whole windows)."""

    def __init__(self, channels: int, window: int = 16, key_channels: int = 16, shifted: bool = False) -> None:
        super().__init__()
        self.window, self.shifted = window, shifted
        self.keys = nn.Conv2d(channels, key_channels, 3, padding=1)
        self.values = nn.Conv2d(channels, channels, 1)
        self.sharpness = nn.Parameter(torch.tensor(math.log(4.0)))
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        n = self.window
        pad_h, pad_w = -h % n, -w % n
        y = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x
        if self.shifted:
            y = y.roll((-(n // 2), -(n // 2)), dims=(2, 3))
        keys, values = self.keys(y), self.values(y)
        keys = _windows(keys, n)
        gathered = F.scaled_dot_product_attention(keys * self.sharpness.exp(), keys, _windows(values, n))
        out = _unwindow(gathered, n, b, y.shape[2], y.shape[3])
        if self.shifted:
            out = out.roll((n // 2, n // 2), dims=(2, 3))
        return x + self.out(out[:, :, :h, :w])


def _windows(x: Tensor, n: int) -> Tensor:
    """(B, C, H, W) -> (B * windows, n * n, C): the positions of each n x n window as a sequence."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // n, n, w // n, n).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(b * (h // n) * (w // n), n * n, c)


def _unwindow(x: Tensor, n: int, b: int, h: int, w: int) -> Tensor:
    """The inverse of `_windows`: (B * windows, n * n, C) -> (B, C, H, W)."""
    c = x.shape[-1]
    x = x.reshape(b, h // n, w // n, n, n, c).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(b, c, h, w)
