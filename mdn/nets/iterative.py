"""A denoiser that is nothing but iterative dynamic filtering (the design of IDF, Kim et al. 2025): one small
network predicts a 3x3 kernel per pixel from the current estimate and filters it, ten times with the same
weights, at dilation 2 and 1 in turn.

Every iteration's output is a convex combination of the last one's pixels, and each sees only a 7x7 window of
its estimate, so the network can neither paint a noise it learned nor learn a large pattern of one. What each
iteration knows beyond its window is the noise it has just removed: the mean and spread per channel of the
last iteration's residual, relative to the picture's brightness, gate its features (a measure of how much noise
is left, for the whole picture or tile).

With `partial`, it trains on masked crops (pixels at `MASK_VALUE` hidden, the masked-training paper's input
mask): an iteration weighs only the pixels shown, and a pixel none of whose taps is shown stays hidden until a
later iteration reaches it; a test image, fully shown, runs as an unmasked one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mdn.errors import MdnError
from mdn.nets.dynamic_filter import SIDE, neighbours, rms
from mdn.nets.swinir import Generators, per_sample
from mdn.nets.unet import visible_pixels

TAPS = SIDE * SIDE
SIMILARITIES = ("distance", "correlation")
FLOOR = 1e-20
"""Added to every tap's weight: a pixel whose shown taps all weigh (nearly) nothing takes their mean, not 0."""


@dataclass(frozen=True)
class IterativeConfig:
    """Sizes of an iterative dynamic filter: feature `width`, `iterations`, the kernels' normalising power."""

    channels: int = 3
    width: int = 64
    iterations: int = 10
    power: float = 3.0
    """Kernels are |logit|^power over their sum: a tap can weigh exactly nothing (an outlier's)."""
    partial: bool = False
    """Pixels at `MASK_VALUE` are hidden (masked training); a test image has none."""
    similarity: str = "distance"
    """What the kernel predictor sees of each tap beside the estimate: `distance`, its mean absolute difference
    to the centre on the estimate's scale (unbounded), or `correlation`, the normalised cross-correlation of the
    3x3 patches around it and around the centre (bounded in [-1, 1], as IDF's colour correlation is, and defined
    on grey pictures too)."""

    def __post_init__(self) -> None:
        if self.similarity not in SIMILARITIES:
            raise MdnError(f"unknown tap similarity {self.similarity!r} (one of {', '.join(SIMILARITIES)})")

    @property
    def window(self) -> int:
        """Any image side will do."""
        return 1

    @property
    def stochastic(self) -> bool:
        return False

    def activation_bytes_per_pixel(self) -> int:
        """Float32 bytes alive at once in inference per pixel: the taps, two feature maps and the kernels."""
        return 4 * (TAPS * self.channels + 3 * self.width + 3 * TAPS)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IterativeConfig:
        return cls(**data)


ITERATIVE_SIZES: dict[str, IterativeConfig] = {
    "dynamic": IterativeConfig(),
    "dynamic-partial": IterativeConfig(partial=True),
    "dynamic-correlation": IterativeConfig(similarity="correlation"),
    "dynamic-tiny": IterativeConfig(width=8, iterations=2),
}
"""Named iterative filters: `dynamic` (IDF's size: 64 features, ten iterations, about 54K parameters), the same
for masked training (`dynamic-partial`), with bounded patch correlations as its tap features
(`dynamic-correlation`), and `dynamic-tiny` for smoke tests."""


def patch_correlation(image: Tensor, dilation: int, eps: float = 1e-6) -> Tensor:
    """(B, C, H, W) -> (B, 9, H, W): for each tap at `dilation`, the normalised cross-correlation of the 3x3
    patch (all channels) around it with the one around the centre, in [-1, 1]; flat patches give about 0."""

    def box(x: Tensor) -> Tensor:
        return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)

    mean = box(image.mean(dim=1, keepdim=True))
    variance = (box(image.square().mean(dim=1, keepdim=True)) - mean.square()).clamp(min=0)
    cross = box((image[:, :, None] * neighbours(image, dilation)).mean(dim=1))
    covariance = cross - mean * neighbours(mean, dilation)[:, 0]
    correlation = covariance / (variance * neighbours(variance, dilation)[:, 0] + eps).sqrt()
    return correlation.clamp(-1, 1)  # at the borders the replicated patches' supports differ


class ResidualGate(nn.Module):
    """Features (B, F, H, W) scaled per channel by a gate in (0, 1) read from the mean and spread of the last
    iteration's residual per image channel, relative to the picture's brightness."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(2 * channels, width), nn.ReLU(inplace=True), nn.Linear(width, width))

    def forward(self, features: Tensor, residual: Tensor, scale: Tensor) -> Tensor:
        spread, mean = torch.std_mean(residual / scale, dim=(2, 3))
        gate = torch.sigmoid(self.mlp(torch.cat([mean, spread], dim=1)))
        return features * gate[:, :, None, None]


class IterativeFilterNet(nn.Module):
    """(B, C, H, W) noisy image in [0, 1] -> its estimate after `config.iterations` dynamic-filter passes."""

    def __init__(self, config: IterativeConfig) -> None:
        super().__init__()
        self.config = config
        inputs = config.channels + TAPS + (1 if config.partial else 0)
        self.features = nn.Sequential(
            nn.Conv2d(inputs, config.width, 3, padding=1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(config.width, config.width, 3, padding=1, bias=False),
            nn.ReLU(inplace=True),
        )
        self.gate = ResidualGate(config.channels, config.width)
        self.kernels = nn.Conv2d(config.width, TAPS, 3, padding=1)

    def forward(self, x: Tensor, generator: Generators = None, attention_mask: bool = True) -> Tensor:
        """`generator` draws the training mix shares; `attention_mask` is accepted for the engine and unused."""
        visible = visible_pixels(x) if self.config.partial else None
        image = x * visible if visible is not None else x
        residual = torch.zeros_like(image)
        for step in range(self.config.iterations):
            out, visible = self.step(image, residual, 2 if step % 2 == 0 else 1, visible, generator)
            residual = image - out if visible is None else (image - out) * visible
            image = out
        return image

    def step(
        self, image: Tensor, residual: Tensor, dilation: int, visible: Tensor | None, generator: Generators
    ) -> tuple[Tensor, Tensor | None]:
        """One iteration: the kernels from `image` and the last `residual`, the filtered image and, with hidden
        pixels, which pixels are shown after it (those with a shown tap)."""
        taps = neighbours(image, dilation)
        scale = rms(image)
        if self.config.similarity == "correlation":
            similarity = patch_correlation(image / scale, dilation)
        else:
            similarity = (taps - taps[:, :, TAPS // 2 : TAPS // 2 + 1]).abs().mean(dim=1) / scale
        if visible is not None:
            shown = neighbours(visible, dilation)[:, 0]  # (B, 9, H, W)
            inputs = [image / scale, similarity * shown * visible, visible]
        else:
            inputs = [image / scale, similarity]
        features = self.gate(self.features(torch.cat(inputs, dim=1)), residual, scale)
        weights = self.kernels(features).abs().pow(self.config.power).add(FLOOR)
        if visible is not None:
            weights = weights * shown
        weights = weights / weights.sum(dim=1, keepdim=True).clamp(min=FLOOR)  # sums to 1 wherever a tap is shown
        filtered = (taps * weights[:, None]).sum(dim=2)
        now_visible = None if visible is None else shown.amax(dim=1, keepdim=True)
        if not self.training:
            return filtered, now_visible

        def draw(x: Tensor, generator: torch.Generator | None) -> Tensor:
            return torch.rand(x.shape[0], 1, 1, 1, generator=generator, device=x.device, dtype=x.dtype)

        share = per_sample(draw, image, generator)
        if visible is not None:
            share = share * visible  # a pixel shown for the first time takes the filtered value whole
        return share * image + (1 - share) * filtered, now_visible
