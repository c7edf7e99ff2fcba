"""A convolutional U-Net denoiser for CPUs, in the spirit of Intel Open Image Denoise's network.

Plain 3x3 convolutions with ReLU, max-pooling down and nearest-neighbour upsampling with skip concatenations
up, as in OIDN, which makes the network fast wherever oneDNN, AMX or cuDNN run convolutions; thinner than OIDN's
and with a global residual (it predicts the noise), so that a few hours of CPU training suffice. It has no
tokens: the input and attention masks of masked training do not apply to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mdn.nets.swinir import Generators


@dataclass(frozen=True)
class UNetConfig:
    """Sizes of a U-Net: `widths[i]` channels at 1/2^i of the image's resolution."""

    widths: tuple[int, ...] = (32, 48, 64, 80, 96)
    channels: int = 3

    @property
    def window(self) -> int:
        """Image sides must be a multiple of this: the coarsest level's downscaling."""
        return 2 ** (len(self.widths) - 1)

    def activation_bytes_per_pixel(self) -> int:
        """Float32 bytes of the largest activations alive at once in inference, per image pixel: the first
        level's skip, its decoder's concatenation and the convolution's output."""
        return 4 * 5 * self.widths[0]

    def to_dict(self) -> dict[str, Any]:
        return {"widths": list(self.widths), "channels": self.channels}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UNetConfig:
        return cls(**{**data, "widths": tuple(data["widths"])})


UNET_SIZES: dict[str, UNetConfig] = {
    "unet-tiny": UNetConfig(widths=(8, 16)),
    "unet": UNetConfig(widths=(32, 48, 64, 80, 96)),
}
"""Named U-Net sizes: `unet-tiny` for smoke tests, `unet` for the CPU default."""


def _conv(inputs: int, outputs: int) -> nn.Conv2d:
    return nn.Conv2d(inputs, outputs, 3, padding=1)


class UNet(nn.Module):
    """(B, C, H, W) noisy images in [0, 1] -> denoised, H and W multiples of `config.window`."""

    reuses_freed_memory = False
    """Its large feature maps leave holes in a heap that keeps freed blocks (`mdn.allocator`), so the engine
    hands free pages back every few tiles: a 24 MP image peaked at 3.05 GB without that and 1.21 GB with it
    every 8 tiles, at 2.85 MP/s against 3.07 every 16 (2 cores)."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        w = config.widths
        self.first = nn.ModuleList([_conv(config.channels, w[0]), _conv(w[0], w[0])])
        self.down = nn.ModuleList(_conv(w[i - 1], w[i]) for i in range(1, len(w)))
        self.bottom = _conv(w[-1], w[-1])
        self.up = nn.ModuleList(
            nn.ModuleList([_conv(w[i + 1] + w[i], w[i]), _conv(w[i], w[i])]) for i in range(len(w) - 1)
        )
        self.last = _conv(w[0], config.channels)
        self.to(memory_format=torch.channels_last)  # oneDNN's and cuDNN's fast layout for convolutions

    def forward(self, x: Tensor, generator: Generators = None, attention_mask: bool = True) -> Tensor:
        """`generator` and `attention_mask` are the masked networks' arguments, which a U-Net has no use for."""
        skips = []
        y = x
        for conv in self.first:
            y = F.relu(conv(y), inplace=True)
        for conv in self.down:
            skips.append(y)
            y = F.relu(conv(F.max_pool2d(y, 2)), inplace=True)
        y = F.relu(self.bottom(y), inplace=True)
        for level in reversed(range(len(self.up))):
            merge, refine = self.up[level]
            y = torch.cat([F.interpolate(y, scale_factor=2.0, mode="nearest"), skips[level]], dim=1)
            y = F.relu(refine(F.relu(merge(y), inplace=True)), inplace=True)
        with torch.autocast(x.device.type, enabled=False):  # float32 out: bf16 would round pixels to 1/256
            return x + self.last(y.float())
