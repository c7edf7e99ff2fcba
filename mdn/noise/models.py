"""The noise types by name: the synthetic test noises of the masked-training paper (method notes A.7), camera
noise, their mixture, and the photos people have (web thumbnails, camera JPEGs, the practical degradation model
of `mdn.noise.degrade`)."""

from __future__ import annotations

import difflib
import math
import os
import zlib
from typing import ClassVar

import numpy as np
import torch

from mdn.errors import MdnError
from mdn.noise import degrade
from mdn.noise.base import NoiseModel, ThroughTorch, normal, per_image, uniform
from mdn.noise.camera import IspNoise


class GaussianNoise(NoiseModel):
    """Additive white Gaussian noise: y = x + N(0, (sigma/255)^2), independent per element."""

    name = "gaussian"
    parameter = "sigma on the 0-255 scale"
    levels = (15.0, 25.0, 50.0)
    default_level = 15.0
    limits = (0.0, 255.0)

    def _apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return x + (self.level / 255) * rng.standard_normal(x.shape, dtype=np.float32)

    def _apply_on_device(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return x + (self.level / 255) * normal(x, generator)


class SpeckleNoise(NoiseModel):
    """MATLAB imnoise(x, 'speckle', v): y = x + n*x, n uniform with mean 0 and variance v, per element."""

    name = "speckle"
    parameter = "variance v of the uniform multiplicative noise"
    levels = (0.018, 0.024, 0.03, 0.036, 0.04)
    default_level = 0.024
    limits = (0.0, 1.0)

    def _apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n = math.sqrt(12 * self.level) * (rng.random(x.shape, dtype=np.float32) - 0.5)
        return x + n * x

    def _apply_on_device(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = math.sqrt(12 * self.level) * (uniform(x, generator) - 0.5)
        return x + n * x


class PoissonNoise(NoiseModel):
    """The paper's scaled shot noise.

    The paper quantises x to 8 bit, q = round(255 x)/255, and returns q + alpha*n, n = Poisson(256 q)/256 - q per
    element. Here the same n is added to x itself: the same numbers for 8-bit data (where q = x) and the same
    draws for any data, but 16-bit and float images are not posterised to 8 bits under the noise.
    The paper's scale is 2^ceil(log2(#distinct values)), which is 256 for any image with >128 distinct values;
    256 is used always, so the noise does not depend on image content.
    """

    name = "poisson"
    parameter = "alpha (scale of 8-bit shot noise)"
    levels = (2.0, 2.5, 3.0, 3.5)
    default_level = 2.0
    limits = (0.0, 16.0)  # 16: noise std 1 (the whole range) at white

    def _apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        q = np.round(x * 255) / 255
        n = rng.poisson(256 * q).astype(np.float32) / 256 - q
        return x + self.level * n

    def _apply_on_device(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        q = torch.round(x * 255) / 255
        n = torch.poisson(256 * q, generator=generator) / 256 - q
        return x + self.level * n


class PhotonNoise(NoiseModel):
    """Photon counting: y = Poisson(peak*x)/peak, so mean x and variance x/peak."""

    name = "photon"
    parameter = "peak (photons at white)"
    levels = (10.0, 25.0, 50.0)
    default_level = 25.0
    limits = (1e-3, 1e6)  # a real sensor's full well holds about 1e5 photons; below 1e-3, float32 underflows

    def _apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return rng.poisson(self.level * x).astype(np.float32) / self.level

    def _apply_on_device(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return torch.poisson(self.level * x, generator=generator) / self.level


class CorrelatedNoise(NoiseModel):
    """White Gaussian noise of std sigma/255 filtered by a 3x3 box (mean) kernel over H and W, then added.

    The white field is drawn 2 pixels larger than the image in H and W and filtered without padding, so there
    is no border rule: every pixel has std sigma/255/3, and neighbours at lag 1 correlate by 2/3, at lag 2 by
    1/3, further by 0. Channels and images are independent.
    """

    name = "correlated"
    parameter = "sigma on the 0-255 scale, before the 3x3 box filter"
    levels = (40.0, 45.0, 50.0, 55.0, 60.0)
    default_level = 50.0
    limits = (0.0, 255.0)

    def _apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        *lead, h, w, c = x.shape
        white = rng.standard_normal((*lead, h + 2, w + 2, c), dtype=np.float32)
        rows = white[..., :-2, :, :] + white[..., 1:-1, :, :] + white[..., 2:, :, :]
        box = rows[..., :-2, :] + rows[..., 1:-1, :] + rows[..., 2:, :]
        return x + (self.level / 255 / 9) * box

    def _apply_on_device(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        *lead, h, w = x.shape
        white = normal(x, generator, (*lead, h + 2, w + 2))
        rows = white[..., :-2, :] + white[..., 1:-1, :] + white[..., 2:, :]
        box = rows[..., :-2] + rows[..., 1:-1] + rows[..., 2:]
        return x + (self.level / 255 / 9) * box


class SaltPepperNoise(NoiseModel):
    """MATLAB imnoise(x, 'salt & pepper', d): per element, u ~ U(0, 1); u < d/2 -> 0, d/2 <= u < d -> 1.

    Elements are chosen independently per channel, so colour images get coloured dots.
    """

    name = "saltpepper"
    parameter = "density d (fraction of elements set to 0 or 1)"
    levels = (0.002, 0.01, 0.02, 0.05)
    default_level = 0.02
    limits = (0.0, 1.0)

    def _apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u = rng.random(x.shape, dtype=np.float32)
        return np.where(u < self.level / 2, 0.0, np.where(u < self.level, 1.0, x))

    def _apply_on_device(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        u = uniform(x, generator)
        return torch.where(u < self.level / 2, 0.0, torch.where(u < self.level, 1.0, x))


class MixtureNoise(NoiseModel):
    """A random composition of the other types, SCUNet-style (the paper gives no recipe; this is mdn's).

    Level L in (0, 5] (the paper's levels are 1..5) sets every component at the point L/5 along its range:
    gaussian sigma 15..50, speckle v 0.018..0.04, poisson alpha 2..3.5, correlated sigma 40..60 and
    saltpepper d 0.002..0.01 (low density). Per image, 2 or 3 distinct components (equal odds) are drawn at
    random and applied in random order, each clipping to [0, 1].
    """

    name = "mixture"
    parameter = "mixture strength (1 = mild .. 5 = strong)"
    levels = (1.0, 2.0, 3.0, 4.0, 5.0)
    default_level = 3.0
    limits = (0.0, 5.0)
    ranges: ClassVar[tuple[tuple[type[NoiseModel], float, float], ...]] = (
        (GaussianNoise, 15.0, 50.0),
        (SpeckleNoise, 0.018, 0.04),
        (PoissonNoise, 2.0, 3.5),
        (CorrelatedNoise, 40.0, 60.0),
        (SaltPepperNoise, 0.002, 0.01),
    )

    def __init__(self, level: float | None = None) -> None:
        super().__init__(level)
        t = self.level / 5
        self.components = tuple(kind(low + t * (high - low)) for kind, low, high in self.ranges)

    def _apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return per_image(x, lambda image: self._one(image, rng))

    def _one(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        count = int(rng.integers(2, 4))
        for i in rng.permutation(len(self.components))[:count]:
            image = self.components[i](image, rng)
        return image

    def _apply_on_device(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Per image, a random order of the components (argsort of uniforms) and a count of 2 or 3, all drawn on
        the device: each of the 3 steps runs every component on the whole batch and keeps, per image, the one
        its order names there (or the image itself past its count), so nothing waits for the host."""
        b = x.shape[0]
        order = uniform(x, generator, (b, len(self.components))).argsort(dim=1).view(b, -1, 1, 1, 1)
        count = 2 + (uniform(x, generator, (b, 1, 1, 1)) < 0.5).long()
        for step in range(3):
            noisy = x
            for i, component in enumerate(self.components):
                chosen = (order[:, step] == i) & (count > step)
                noisy = torch.where(chosen, component.on_device(x, generator), noisy)
            x = noisy
        return x


class AliasedNoise(NoiseModel):
    """A web thumbnail: the picture decimated by 2 without a low-pass filter (every other row and column, so it
    aliases), then Gaussian noise of std sigma/255. Its clean reference is the decimated picture: the aliasing
    belongs to the picture, only the noise is to go."""

    name = "aliased"
    parameter = "sigma on the 0-255 scale, on the picture decimated by 2"
    shrink = 2
    levels = (15.0, 25.0)
    default_level = 15.0
    limits = (0.0, 255.0)

    def reference(self, x: np.ndarray) -> np.ndarray:
        return x[..., ::2, ::2, :]

    def reference_on_device(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., ::2, ::2]

    def _apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        small = self.reference(x)
        return small + (self.level / 255) * rng.standard_normal(small.shape, dtype=np.float32)

    def _apply_on_device(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        small = self.reference_on_device(x)
        return small + (self.level / 255) * normal(small, generator)


class CameraJpegNoise(NoiseModel):
    """A camera's JPEG: Gaussian noise of std sigma/255, then baseline JPEG at quality 85 (libjpeg, 4:2:0 chroma),
    so that the noise is compressed with the picture and comes out blocky and smeared."""

    name = "jpeg"
    parameter = "sigma on the 0-255 scale, before JPEG quality 85"
    levels = (15.0, 25.0)
    default_level = 25.0
    limits = (0.0, 255.0)
    quality: ClassVar[int] = 85

    def _apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noisy = np.clip(x + (self.level / 255) * rng.standard_normal(x.shape, dtype=np.float32), 0, 1)
        return per_image(noisy, lambda image: degrade.jpeg(image, self.quality))

    def _apply_on_device(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noisy = (x + (self.level / 255) * normal(x, generator)).clamp(0, 1)
        return degrade.Jpeg(self.quality, self.quality)(noisy, generator)


class PracticalNoise(ThroughTorch):
    """What cameras and the web do to pictures (`mdn.noise.degrade`, after SCUNet's practical data synthesis): a random
    subset of Gaussian (independent, grey or channel-correlated), shot, speckle, camera-pipeline, spatially
    correlated and salt-and-pepper noise in random order, then most often JPEG at a random quality. The level
    scales every noise amplitude (1: the training mix). Training adds the web's resizing of the clean picture."""

    name = "practical"
    parameter = "strength (noise amplitudes relative to the training mix)"
    levels = (0.5, 1.0, 1.5)
    default_level = 1.0
    limits = (0.0, 3.0)

    redraws: ClassVar[int] = 8
    """How many times a picture that drew no step at all (about one draw in five) draws again: a noisy copy equal
    to its clean picture is no test (training keeps such pairs, as its recipe has them)."""

    def _apply_on_device(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noisy = degrade.practical_noise(x, generator, self.level)
        for _ in range(self.redraws):
            same = (noisy == x).flatten(1).all(1)
            if not same.any():
                break
            noisy[same] = degrade.practical_noise(x[same], generator, self.level)
        return noisy


NOISE_TYPES: dict[str, type[NoiseModel]] = {
    kind.name: kind
    for kind in (
        GaussianNoise,
        SpeckleNoise,
        PoissonNoise,
        PhotonNoise,
        CorrelatedNoise,
        SaltPepperNoise,
        IspNoise,
        MixtureNoise,
        AliasedNoise,
        CameraJpegNoise,
        PracticalNoise,
    )
}


def make_noise(name: str, level: float | None = None) -> NoiseModel:
    """The noise model called `name` (case-insensitive) at `level` (None: its default)."""
    kind = NOISE_TYPES.get(name.strip().lower())
    if kind is None:
        close = difflib.get_close_matches(name.strip().lower(), NOISE_TYPES, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(close)}?" if close else f"known: {', '.join(NOISE_TYPES)}"
        raise MdnError(f"unknown noise type {name!r}; {hint}")
    return kind(level)


def file_seed(seed: int, name: str, pixels: np.ndarray | None = None) -> list[int]:
    """The seed of one file's noise in a batch: the batch's seed, the file's name and its pixels, so that files
    of a batch get different noise (two IMG_0001.png of two folders too) and each file the same noise whatever else
    the batch holds. The name's bytes are the file system's (`os.fsencode`), so that a name no text encoding holds
    still has its own seed; the pixels are read one in 16 (every 4th row and column) for speed."""
    seeds = [seed, zlib.crc32(os.fsencode(name))]
    if pixels is not None:
        seeds.append(zlib.crc32(np.ascontiguousarray(pixels[..., ::4, ::4, :]).tobytes()))
    return seeds
