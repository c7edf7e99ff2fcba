"""The "skip" encoder-decoder of Deep Image Prior, as MPI uses it for zero-shot denoising.

The input is the masked image concatenated with its mask; the output, through a sigmoid, is the clean image
in [0, 1]. Every scale halves the resolution with a stride-2 convolution and keeps a 1x1 skip branch at its
own resolution; on the way up, the deeper result is upsampled (nearest), concatenated with the skip branch
and merged. BatchNorm everywhere, LeakyReLU(0.2), reflection padding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mdn.errors import MdnError


@dataclass(frozen=True)
class SkipConfig:
    """Sizes of a skip network; the defaults are MPI's per-channel-mask net (747,395 parameters)."""

    channels: int = 3
    mask_channels: int = 3
    width: int = 64
    scales: int = 5

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SkipConfig:
        return cls(**data)


SIZES: dict[str, SkipConfig] = {
    "syn": SkipConfig(),
    "real": SkipConfig(mask_channels=1),
    "grey": SkipConfig(channels=1, mask_channels=1),
    "syn-fast": SkipConfig(width=32),
    "grey-fast": SkipConfig(channels=1, mask_channels=1, width=16),
}
"""Named fill networks: MPI's per-channel-mask ("syn") and shared-mask ("real") nets, a grey one for
microscopy, and narrower ones that fine-tune several times faster on a CPU."""


def _conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """Convolution (reflection-padded when wider than 1x1) -> BatchNorm -> LeakyReLU(0.2)."""
    layers: list[nn.Module] = [nn.ReflectionPad2d(kernel // 2)] if kernel > 1 else []
    layers += [
        nn.Conv2d(in_channels, out_channels, kernel, stride=stride),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(0.2, inplace=True),
    ]
    return nn.Sequential(*layers)


class SkipLevel(nn.Module):
    """One scale: a skip branch at this resolution, and a stride-2 branch through the deeper scales and back
    up; the two are concatenated and merged."""

    def __init__(self, in_channels: int, width: int, deeper: SkipLevel | None) -> None:
        super().__init__()
        self.skip = _conv(in_channels, width, 1)
        self.down = nn.Sequential(_conv(in_channels, width, 3, stride=2), _conv(width, width, 3))
        self.deeper = deeper if deeper is not None else nn.Identity()
        self.merge = nn.Sequential(nn.BatchNorm2d(2 * width), _conv(2 * width, width, 3), _conv(width, width, 1))

    def forward(self, x: Tensor) -> Tensor:
        deep = F.interpolate(self.deeper(self.down(x)), scale_factor=2, mode="nearest")
        return self.merge(torch.cat([self.skip(x), deep], dim=1))


def _reflect_pad(x: Tensor, height: int, width: int) -> Tensor:
    """Reflect-pad x at the bottom and right to (height, width), mirroring again while the image is smaller
    than the padding."""
    while x.shape[-2:] != (height, width):
        h, w = x.shape[-2:]
        x = F.pad(x, (0, min(width - w, w - 1), 0, min(height - h, h - 1)), mode="reflect")
    return x


class SkipNet(nn.Module):
    """Masked image (B, channels, H, W) and mask (B, mask_channels, H, W), 1 = hidden -> clean image in (0, 1)."""

    def __init__(self, config: SkipConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or SkipConfig()
        level = None
        for scale in reversed(range(config.scales)):
            in_channels = config.channels + config.mask_channels if scale == 0 else config.width
            level = SkipLevel(in_channels, config.width, level)
        self.body = level
        self.head = nn.Sequential(nn.Conv2d(config.width, config.channels, 1), nn.Sigmoid())

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """H and W are reflect-padded to a multiple of 2**scales (at least twice that, so that the coarsest
        scale keeps 2x2 pixels) and cropped back."""
        h, w = x.shape[-2:]
        if min(h, w) < 2:
            raise MdnError(f"image of {h}x{w} pixels is too small for the skip network")
        multiple = 2**self.config.scales

        def padded(n: int) -> int:
            return max(-(-n // multiple) * multiple, 2 * multiple)

        inputs = _reflect_pad(torch.cat([x, mask.to(x.dtype)], dim=1), padded(h), padded(w))
        return self.head(self.body(inputs))[..., :h, :w]
