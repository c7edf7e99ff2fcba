"""The noise models' base: `NoiseModel` (a numpy call and its torch twin `on_device`, both seeded), and the
helpers every model draws with.

A model maps a clean float32 image in [0, 1], shaped (H, W, C) or (N, H, W, C) with C = 1 or 3, to a noisy
float32 image of the same shape, clipped to [0, 1] as the paper's 8-bit test sets are. All randomness comes
from the `numpy.random.Generator` passed in: the same generator state gives the same bytes.

Every model also has a torch twin, `on_device`, for training: it maps a (B, C, H, W) tensor on any device to a
noisy copy with the same distribution, drawn there from a `torch.Generator` on that device, so that training
batches never leave it. Same generator state, same tensor; but not the numpy twin's numbers.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

import numpy as np
import torch

from mdn.errors import MdnError


class NoiseModel(ABC):
    """One noise type at one level; calling it returns a noisy copy of an image."""

    name: ClassVar[str]
    parameter: ClassVar[str]
    levels: ClassVar[tuple[float, ...]]
    default_level: ClassVar[float]
    limits: ClassVar[tuple[float, float]]
    """A valid level lies in (low, high]; every type bounds it, so that no level overflows its draws."""
    shrink: ClassVar[int] = 1
    """How many times smaller a side of the noisy picture is than the clean one's (`aliased`: 2)."""

    def __init__(self, level: float | None = None) -> None:
        self.level = float(self.default_level) if level is None else self._checked(level)

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return a noisy float32 copy of `x`, clipped to [0, 1]; `x` is left untouched."""
        return np.clip(self._apply(checked_image(x), rng), 0.0, 1.0).astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(level={self.level:g})"

    def reference(self, x: np.ndarray) -> np.ndarray:
        """The clean image the noisy output is to be compared with: `x` itself, but for a noise that also resizes
        the picture (`aliased`)."""
        return x

    def reference_on_device(self, x: torch.Tensor) -> torch.Tensor:
        """`reference` for a (B, C, H, W) tensor."""
        return x

    @abstractmethod
    def _apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return the noisy image before clipping, as a new array."""

    def on_device(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A noisy copy of a (B, C, H, W) tensor in [0, 1], drawn on its own device from `generator` (a generator
        on that device) and clipped as `__call__` clips; `x` is left untouched."""
        return self._apply_on_device(x, generator).clamp_(0.0, 1.0)

    @abstractmethod
    def _apply_on_device(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The torch twin of `_apply`: the noisy (B, C, H, W) tensor before clipping, as a new tensor."""

    def _checked(self, level: float) -> float:
        low, high = self.limits
        try:
            value = float(level)
        except (TypeError, ValueError):
            raise MdnError(f"{self.name} noise level must be a number, got {level!r}") from None
        if not (math.isfinite(value) and low < value <= high):
            allowed = f"({low:g}, {high:.15g}]"
            raise MdnError(f"{self.name} noise level must be in {allowed} ({self.parameter}), got {level!r}")
        return value


def checked_image(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim not in (3, 4) or x.shape[-1] not in (1, 3) or x.size == 0:
        raise MdnError(f"noise needs a non-empty (H, W, C) or (N, H, W, C) image, C = 1 or 3; got {x.shape}")
    return x


def uniform(x: torch.Tensor, generator: torch.Generator, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """U(0, 1) samples shaped like `x` (or `shape`), on its device and in its dtype."""
    return torch.rand(shape or x.shape, generator=generator, device=x.device, dtype=x.dtype)


def normal(x: torch.Tensor, generator: torch.Generator, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """N(0, 1) samples shaped like `x` (or `shape`), on its device and in its dtype."""
    return torch.randn(shape or x.shape, generator=generator, device=x.device, dtype=x.dtype)


def per_image(x: np.ndarray, one: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply `one` to each (H, W, C) image of `x`, in order."""
    return one(x) if x.ndim == 3 else np.stack([one(image) for image in x])


class ThroughTorch(NoiseModel):
    """A noise model written once, in torch: its numpy call runs the torch twin on the CPU from a generator seeded
    by the numpy one, so that the same numpy generator state still gives the same bytes."""

    def _apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        generator = torch.Generator().manual_seed(int(rng.integers(2**63)))
        batch = torch.from_numpy(np.ascontiguousarray(x.reshape(-1, *x.shape[-3:]))).permute(0, 3, 1, 2)
        out = self._apply_on_device(batch, generator).permute(0, 2, 3, 1).numpy()
        return out.reshape(*x.shape[:-3], *out.shape[-3:])
