"""Invertible maps between stored pixel values and the [0, 1] display range the networks expect.

Each transform is fitted once on the whole image (never per tile), applied with `forward` before the
work and undone with `inverse` after it:
- `Identity` for 8-bit and other display-referred images already in [0, 1];
- `Stretch` for 16-bit and float data that use part of their range (microscopy): an affine map of the
  image's own range onto [0, 1];
- `ToneMap` for scene-linear HDR renders (EXR): exposure, Reinhard's x / (1 + x) and a 2.2 gamma.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from mdn.images import Image


class DisplayTransform(Protocol):
    """An invertible per-image pixel map; `inverse(forward(x))` returns x in x's dtype."""

    def forward(self, x: np.ndarray) -> np.ndarray: ...

    def inverse(self, y: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Identity:
    """Leaves display-referred pixels as they are."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x

    def inverse(self, y: np.ndarray) -> np.ndarray:
        return y


@dataclass(frozen=True)
class Stretch:
    """Affine map of [low, high] onto [0, 1]."""

    low: float
    high: float

    @classmethod
    def fit(cls, x: np.ndarray) -> Stretch:
        """The image's own range; a flat image maps its value to 0."""
        low, high = float(x.min()), float(x.max())
        return cls(low, high if high > low else low + 1.0)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return ((x - x.dtype.type(self.low)) / x.dtype.type(self.high - self.low)).astype(x.dtype)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        return (y * y.dtype.type(self.high - self.low) + y.dtype.type(self.low)).astype(y.dtype)


@dataclass(frozen=True)
class ToneMap:
    """Scene-linear HDR -> display: y = sign(e x) (|e x| / (1 + |e x|)) ** (1 / gamma).

    The exposure e puts the log-average luminance at `key` (Reinhard et al. 2002). The map is odd and
    strictly monotonic, so negative values from reconstruction filters survive the round trip. `inverse`
    caps magnitudes at the image's own peak, so a network's overshoot near white cannot become a firefly.
    """

    exposure: float
    peak: float = np.inf
    gamma: float = 2.2

    @classmethod
    def fit(cls, x: np.ndarray, key: float = 0.18) -> ToneMap:
        """Exposure from the whole image's log-average luminance; peak from its largest magnitude."""
        magnitude = np.abs(x.astype(np.float64))
        log_average = float(np.exp(np.mean(np.log(magnitude.mean(axis=-1) + 1e-6))))
        return cls(key / max(log_average, 1e-6), float(magnitude.max()))

    def forward(self, x: np.ndarray) -> np.ndarray:
        scaled = np.abs(x.astype(np.float64)) * self.exposure
        display = (scaled / (1.0 + scaled)) ** (1.0 / self.gamma)
        return (np.sign(x) * display).astype(x.dtype)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        linear = np.minimum(np.abs(y.astype(np.float64)), 1.0 - 1e-7) ** self.gamma
        magnitude = np.minimum(linear / (1.0 - linear) / self.exposure, self.peak)
        return (np.sign(y) * magnitude).astype(y.dtype)


def fit(image: Image) -> DisplayTransform:
    """The transform for an image: ToneMap for HDR, Stretch for 16-bit or float, else Identity."""
    if image.hdr:
        return ToneMap.fit(image.pixels)
    dtype = image.source.layout.dtype
    if dtype.kind == "f" or dtype.itemsize > 1:
        return Stretch.fit(image.pixels)
    return Identity()
