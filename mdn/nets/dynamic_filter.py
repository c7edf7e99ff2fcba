"""Iterative dynamic filtering: a small network that, from the current estimate alone, predicts a 3x3 kernel per
pixel and filters the estimate with it, the same weights every iteration (the idea of IDF, Kim et al. 2025).

Every iteration's output is a convex combination of the last one's pixels, so it cannot paint a noise it learned;
the kernels are power-normalised (|logit|^p over their sum: a tap can weigh exactly nothing, which an outlier
needs) and alternate between dilation 2 and 1, so a few iterations reach across a noise grain. In training each
iteration's output is mixed with its input by a random share per crop, so the block meets every state between
noisy and clean that more or fewer iterations on other noise would hand it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mdn.nets.swinir import Generators, per_sample

SIDE = 3
"""Kernel side: 3x3 taps."""


def neighbours(image: Tensor, dilation: int) -> Tensor:
    """(B, C, H, W) -> (B, C, 9, H, W): each pixel's 3x3 neighbourhood at `dilation`, edges replicated."""
    h, w = image.shape[-2:]
    padded = F.pad(image, (dilation,) * 4, mode="replicate")
    d = dilation
    return torch.stack([padded[..., y * d : y * d + h, x * d : x * d + w] for y in range(3) for x in range(3)], dim=2)


def rms(x: Tensor) -> Tensor:
    """Each sample's root mean square, (B, 1, 1, 1)."""
    return x.square().mean(dim=(1, 2, 3), keepdim=True).add(1e-8).sqrt()


class DynamicFilter(nn.Module):
    """(B, C, H, W) estimate -> the estimate after `iterations` passes of per-pixel 3x3 kernels predicted from it.

    The kernel predictor sees the estimate scaled to unit RMS (a brightness-free view) and each tap's mean
    absolute difference to the centre on that scale (how alike the neighbours are, on grey as on colour)."""

    def __init__(self, channels: int, width: int, iterations: int, power: float = 3.0) -> None:
        super().__init__()
        self.iterations, self.power = iterations, power
        self.features = nn.Sequential(
            nn.Conv2d(channels + SIDE * SIDE, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        self.kernels = nn.Conv2d(width, SIDE * SIDE, 3, padding=1)

    def forward(self, image: Tensor, generator: Generators = None) -> Tensor:
        """`generator` draws the training mix shares."""
        for step in range(self.iterations):
            image = self.step(image, 2 if step % 2 == 0 else 1, generator)
        return image

    def step(self, image: Tensor, dilation: int, generator: Generators = None) -> Tensor:
        """One iteration: predict the kernels from `image`, filter it, and in training mix the result with it."""
        taps = neighbours(image, dilation)
        scale = rms(image)
        centre = taps[:, :, SIDE * SIDE // 2 : SIDE * SIDE // 2 + 1]
        distance = (taps - centre).abs().mean(dim=1) / scale
        logits = self.kernels(self.features(torch.cat([image / scale, distance], dim=1)))
        weights = logits.abs().pow(self.power)
        weights = weights / weights.sum(dim=1, keepdim=True).clamp(min=1e-12)  # sums to 1: no darkening
        filtered = (taps * weights[:, None]).sum(dim=2)
        if not self.training:
            return filtered

        def draw(x: Tensor, generator: torch.Generator | None) -> Tensor:
            return torch.rand(x.shape[0], 1, 1, 1, generator=generator, device=x.device, dtype=x.dtype)

        share = per_sample(draw, image, generator)
        return share * image + (1 - share) * filtered
