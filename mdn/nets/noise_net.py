"""ZS-N2N's network (Mansour & Heckel, CVPR 2023): a tiny residual network that predicts the noise."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class NoiseNet(nn.Module):
    """ZS-N2N's network: two 3x3 convolutions to `width` channels with LeakyReLU(0.2), then a 1x1 back; it
    predicts the noise, so the denoiser is `denoise(x) = x - net(x)`. Initialised from `generator` like torch's
    default convolution initialisation."""

    def __init__(self, channels: int, generator: torch.Generator, width: int = 48) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, width, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, channels, 1),
        )
        for conv in self.layers[::2]:
            nn.init.kaiming_uniform_(conv.weight, a=math.sqrt(5), generator=generator)
            bound = 1 / math.sqrt(conv.weight[0].numel())
            nn.init.uniform_(conv.bias, -bound, bound, generator=generator)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)

    def denoise(self, x: Tensor) -> Tensor:
        return x - self(x)
