"""Seeded noise models: the synthetic test noises of the masked-training paper (method notes A.7), and the
photos people have (web thumbnails, camera JPEGs, the practical degradation model of `mdn.degrade`).

A model maps a clean float32 image in [0, 1], shaped (H, W, C) or (N, H, W, C) with C = 1 or 3, to a noisy
float32 image of the same shape, clipped to [0, 1] as the paper's 8-bit test sets are. All randomness comes
from the `numpy.random.Generator` passed in: the same generator state gives the same bytes.

Every model also has a torch twin, `on_device`, for training: it maps a (B, C, H, W) tensor on any device to a
noisy copy with the same distribution, drawn there from a `torch.Generator` on that device, so that training
batches never leave it. Same generator state, same tensor; but not the numpy twin's numbers.
"""

from __future__ import annotations

import difflib
import functools
import math
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from mdn import degrade
from mdn.errors import MdnError


class NoiseModel(ABC):
    """One noise type at one level; calling it returns a noisy copy of an image."""

    name: ClassVar[str]
    parameter: ClassVar[str]
    levels: ClassVar[tuple[float, ...]]
    default_level: ClassVar[float]
    limits: ClassVar[tuple[float, float]] = (0.0, math.inf)  # a valid level lies in (low, high]

    def __init__(self, level: float | None = None) -> None:
        self.level = float(self.default_level) if level is None else self._checked(level)

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return a noisy float32 copy of `x`, clipped to [0, 1]; `x` is left untouched."""
        return np.clip(self._apply(_checked_image(x), rng), 0.0, 1.0).astype(np.float32, copy=False)

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
            allowed = f"> {low:g}" if math.isinf(high) else f"in ({low:g}, {high:g}]"
            raise MdnError(f"{self.name} noise level must be {allowed} ({self.parameter}), got {level!r}")
        return value


def _checked_image(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim not in (3, 4) or x.shape[-1] not in (1, 3) or x.size == 0:
        raise MdnError(f"noise needs a non-empty (H, W, C) or (N, H, W, C) image, C = 1 or 3; got {x.shape}")
    return x


def _uniform(x: torch.Tensor, generator: torch.Generator, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """U(0, 1) samples shaped like `x` (or `shape`), on its device and in its dtype."""
    return torch.rand(shape or x.shape, generator=generator, device=x.device, dtype=x.dtype)


def _normal(x: torch.Tensor, generator: torch.Generator, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """N(0, 1) samples shaped like `x` (or `shape`), on its device and in its dtype."""
    return torch.randn(shape or x.shape, generator=generator, device=x.device, dtype=x.dtype)


def _per_image(x: np.ndarray, one: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply `one` to each (H, W, C) image of `x`, in order."""
    return one(x) if x.ndim == 3 else np.stack([one(image) for image in x])


class GaussianNoise(NoiseModel):
    """Additive white Gaussian noise: y = x + N(0, (sigma/255)^2), independent per element."""

    name = "gaussian"
    parameter = "sigma on the 0-255 scale"
    levels = (15.0, 25.0, 50.0)
    default_level = 15.0

    def _apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return x + (self.level / 255) * rng.standard_normal(x.shape, dtype=np.float32)

    def _apply_on_device(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return x + (self.level / 255) * _normal(x, generator)


class SpeckleNoise(NoiseModel):
    """MATLAB imnoise(x, 'speckle', v): y = x + n*x, n uniform with mean 0 and variance v, per element."""

    name = "speckle"
    parameter = "variance v of the uniform multiplicative noise"
    levels = (0.018, 0.024, 0.03, 0.036, 0.04)
    default_level = 0.024

    def _apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n = math.sqrt(12 * self.level) * (rng.random(x.shape, dtype=np.float32) - 0.5)
        return x + n * x

    def _apply_on_device(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = math.sqrt(12 * self.level) * (_uniform(x, generator) - 0.5)
        return x + n * x


class PoissonNoise(NoiseModel):
    """The paper's scaled shot noise.

    x is quantised to 8 bit, q = round(255 x)/255; n = Poisson(256 q)/256 - q per element; y = q + alpha*n.
    The paper's scale is 2^ceil(log2(#distinct values)), which is 256 for any image with >128 distinct values;
    256 is used always, so the noise does not depend on image content.
    """

    name = "poisson"
    parameter = "alpha (scale of 8-bit shot noise)"
    levels = (2.0, 2.5, 3.0, 3.5)
    default_level = 2.0

    def _apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        q = np.round(x * 255) / 255
        n = rng.poisson(256 * q).astype(np.float32) / 256 - q
        return q + self.level * n

    def _apply_on_device(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        q = torch.round(x * 255) / 255
        n = torch.poisson(256 * q, generator=generator) / 256 - q
        return q + self.level * n


class PhotonNoise(NoiseModel):
    """Photon counting: y = Poisson(peak*x)/peak, so mean x and variance x/peak."""

    name = "photon"
    parameter = "peak (photons at white)"
    levels = (10.0, 25.0, 50.0)
    default_level = 25.0

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

    def _apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        *lead, h, w, c = x.shape
        white = rng.standard_normal((*lead, h + 2, w + 2, c), dtype=np.float32)
        rows = white[..., :-2, :, :] + white[..., 1:-1, :, :] + white[..., 2:, :, :]
        box = rows[..., :-2, :] + rows[..., 1:-1, :] + rows[..., 2:, :]
        return x + (self.level / 255 / 9) * box

    def _apply_on_device(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        *lead, h, w = x.shape
        white = _normal(x, generator, (*lead, h + 2, w + 2))
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
        u = _uniform(x, generator)
        return torch.where(u < self.level / 2, 0.0, torch.where(u < self.level, 1.0, x))


# Published constants of Brooks et al. 2019 (google-research/unprocessing): four XYZ -> camera matrices and
# linear sRGB -> XYZ (D65).
_XYZ_TO_CAMS = np.array(
    [
        [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
        [[0.4913, -0.0541, -0.0202], [-0.613, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
        [[0.838, -0.263, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
        [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.097, 0.1581, 0.5181]],
    ]
)
_SRGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
# Bilinear demosaic kernels, used as normalised convolutions (so borders need no special case).
_GREEN_KERNEL = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], dtype=np.float32)
_RED_BLUE_KERNEL = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=np.float32)


def _bayer(h: int, w: int) -> np.ndarray:
    """Channel index (0 R, 1 G, 2 B) of each site of an RGGB mosaic."""
    return np.add.outer(np.arange(h) % 2, np.arange(w) % 2)


def _conv3(a: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """3x3 correlation of a 2-D array with zero padding."""
    h, w = a.shape
    padded = np.pad(a, 1)
    out = np.zeros_like(a)
    for (i, j), k in np.ndenumerate(kernel):
        if k:
            out += k * padded[i : i + h, j : j + w]
    return out


def _demosaic(raw: np.ndarray) -> np.ndarray:
    """Bilinear demosaic of an (H, W) RGGB mosaic to (H, W, 3)."""
    bayer = _bayer(*raw.shape)
    out = np.empty((*raw.shape, 3), dtype=np.float32)
    for c, kernel in enumerate((_RED_BLUE_KERNEL, _GREEN_KERNEL, _RED_BLUE_KERNEL)):
        sites = (bayer == c).astype(np.float32)
        out[..., c] = _conv3(raw * sites, kernel) / _conv3(sites, kernel)
    return out


@dataclass(frozen=True)
class Camera:
    """A random camera of Brooks et al. 2019: colour matrix and gains, with its unprocess and process steps.

    `unprocess` maps sRGB to a linear RGGB raw mosaic (H, W): inverse smoothstep, gamma 2.2, RGB -> camera,
    inverse white balance and brightening (softened near white so highlights stay saturated), clip, mosaic.
    `process` maps raw back: white balance and brightening gains, clip, bilinear demosaic, camera -> RGB,
    clip, gamma 1/2.2, smoothstep. Brooks's own process step re-applies neither the brightening gain nor the
    smoothstep, so its round trip darkens and flattens the image; here both are re-applied, so that a
    noise-free round trip returns the input up to demosaic blur, out-of-gamut clipping and highlights, and the
    clean input is a fair reference for the noisy output.
    """

    rgb_to_cam: np.ndarray  # (3, 3), rows sum to 1
    rgb_gain: float  # brightening
    red_gain: float  # white balance
    blue_gain: float

    @classmethod
    def random(cls, rng: np.random.Generator) -> Camera:
        """Draw a camera with the paper's defaults: a random convex mix of 4 CCMs, random gains."""
        weights = rng.uniform(1e-8, 1e8, size=(len(_XYZ_TO_CAMS), 1, 1))
        xyz_to_cam = (weights * _XYZ_TO_CAMS).sum(axis=0) / weights.sum()
        rgb_to_cam = xyz_to_cam @ _SRGB_TO_XYZ
        rgb_to_cam /= rgb_to_cam.sum(axis=1, keepdims=True)
        rgb_gain = 1 / rng.normal(0.8, 0.1)
        return cls(rgb_to_cam, rgb_gain, rng.uniform(1.9, 2.4), rng.uniform(1.5, 1.9))

    def unprocess(self, rgb: np.ndarray) -> np.ndarray:
        """sRGB (H, W, 3) in [0, 1] -> linear raw RGGB mosaic (H, W) in [0, 1]."""
        tone = 0.5 - np.sin(np.arcsin(1 - 2 * np.clip(rgb, 0, 1)) / 3)
        cam = np.maximum(tone, 1e-8) ** 2.2 @ self.rgb_to_cam.T.astype(np.float32)
        gains = np.array([1 / self.red_gain, 1, 1 / self.blue_gain], dtype=np.float32) / self.rgb_gain
        white = (np.maximum(cam.mean(axis=-1, keepdims=True) - 0.9, 0) / 0.1) ** 2
        cam = np.clip(cam * np.maximum(white + (1 - white) * gains, gains), 0, 1)
        return np.take_along_axis(cam, _bayer(*cam.shape[:2])[..., None], axis=-1)[..., 0]

    def process(self, raw: np.ndarray) -> np.ndarray:
        """Linear raw RGGB mosaic (H, W) -> sRGB (H, W, 3) in [0, 1]."""
        gains = np.array([self.red_gain, 1, self.blue_gain], dtype=np.float32) * self.rgb_gain
        cam = _demosaic(np.clip(raw * gains[_bayer(*raw.shape)], 0, 1))
        cam_to_rgb = np.linalg.inv(self.rgb_to_cam).T.astype(np.float32)
        tone = np.maximum(np.clip(cam @ cam_to_rgb, 0, 1), 1e-8) ** (1 / 2.2)
        return tone * tone * (3 - 2 * tone)


@functools.cache
def _camera_constants(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`Camera`'s constants as float32 tensors on `device`, copied there once: the four XYZ -> camera matrices
    (4, 3, 3), sRGB -> XYZ (3, 3) and the demosaic kernels (3, 1, 3, 3) for R, G and B."""
    kernels = np.stack([_RED_BLUE_KERNEL, _GREEN_KERNEL, _RED_BLUE_KERNEL])[:, None]
    return tuple(torch.as_tensor(a, dtype=torch.float32, device=device) for a in (_XYZ_TO_CAMS, _SRGB_TO_XYZ, kernels))


def _bayer_on_device(h: int, w: int, device: torch.device) -> torch.Tensor:
    """`_bayer` as an (H, W) int64 tensor made on `device`."""
    return (torch.arange(h, device=device) % 2)[:, None] + (torch.arange(w, device=device) % 2)[None, :]


@dataclass(frozen=True)
class Cameras:
    """A batch of random cameras as tensors on one device: `Camera`'s torch twin, one camera per image of a
    (B, 3, H, W) batch, with the same laws and the same unprocess and process steps."""

    rgb_to_cam: torch.Tensor  # (B, 3, 3), rows sum to 1
    rgb_gain: torch.Tensor  # (B, 1), brightening
    white_balance: torch.Tensor  # (B, 3): red gain, 1, blue gain

    @classmethod
    def random(cls, count: int, generator: torch.Generator, device: torch.device) -> Cameras:
        """Draw `count` cameras from `generator` (on `device`), as `Camera.random` draws one."""
        xyz_to_cams, srgb_to_xyz, _ = _camera_constants(device)
        u = torch.rand((count, 6), generator=generator, device=device)
        weights = (1e-8 + (1e8 - 1e-8) * u[:, :4])[..., None, None]
        xyz_to_cam = (weights * xyz_to_cams).sum(1) / weights.sum(1)
        rgb_to_cam = xyz_to_cam @ srgb_to_xyz
        rgb_to_cam = rgb_to_cam / rgb_to_cam.sum(-1, keepdim=True)
        rgb_gain = 1 / (0.8 + 0.1 * torch.randn((count, 1), generator=generator, device=device))
        red, blue = 1.9 + 0.5 * u[:, 4:5], 1.5 + 0.4 * u[:, 5:6]
        return cls(rgb_to_cam, rgb_gain, torch.cat([red, torch.ones_like(red), blue], dim=1))

    def unprocess(self, rgb: torch.Tensor) -> torch.Tensor:
        """sRGB (B, 3, H, W) in [0, 1] -> linear raw RGGB mosaic (B, 1, H, W) in [0, 1]."""
        tone = 0.5 - torch.sin(torch.asin(1 - 2 * rgb.clamp(0, 1)) / 3)
        cam = torch.einsum("bij,bjhw->bihw", self.rgb_to_cam, tone.clamp_min(1e-8) ** 2.2)
        gains = (1 / (self.white_balance * self.rgb_gain))[..., None, None]
        white = ((cam.mean(dim=1, keepdim=True) - 0.9).clamp_min(0) / 0.1) ** 2
        cam = (cam * torch.maximum(white + (1 - white) * gains, gains)).clamp(0, 1)
        bayer = _bayer_on_device(*cam.shape[-2:], cam.device)
        return cam.gather(1, bayer.expand(cam.shape[0], 1, -1, -1))

    def process(self, raw: torch.Tensor) -> torch.Tensor:
        """Linear raw RGGB mosaic (B, 1, H, W) -> sRGB (B, 3, H, W) in [0, 1]."""
        bayer = _bayer_on_device(*raw.shape[-2:], raw.device)
        gains = (self.white_balance * self.rgb_gain)[:, bayer]
        cam = _demosaic_on_device((raw * gains[:, None]).clamp(0, 1), bayer)
        cam_to_rgb = torch.linalg.inv_ex(self.rgb_to_cam).inverse  # inv_ex: no error check, no device sync
        tone = torch.einsum("bij,bjhw->bihw", cam_to_rgb, cam).clamp(1e-8, 1) ** (1 / 2.2)
        return tone * tone * (3 - 2 * tone)


def _demosaic_on_device(raw: torch.Tensor, bayer: torch.Tensor) -> torch.Tensor:
    """`_demosaic` of a (B, 1, H, W) RGGB mosaic to (B, 3, H, W), as normalised grouped convolutions."""
    *_, kernels = _camera_constants(raw.device)
    sites = (bayer == torch.arange(3, device=raw.device)[:, None, None]).to(raw.dtype)[None]
    return F.conv2d(raw * sites, kernels, padding=1, groups=3) / F.conv2d(sites, kernels, padding=1, groups=3)


class IspNoise(NoiseModel):
    """Camera noise of Brooks et al. 2019: unprocess with a random camera, add shot/read noise, process back.

    Per image: a random `Camera`; log shot ~ U(log 1e-4, log 0.012), log read = 2.18 log shot + 1.20 +
    N(0, 0.26^2); raw noise is Gaussian with variance raw*shot + read, its std times the level. See `Camera`
    for the round trip, which here is close to identity without noise. Grey images are replicated to RGB and
    the green channel is returned. Images must be at least 2x2.
    """

    name = "isp"
    parameter = "multiplier on the raw noise std (1 = the paper's defaults)"
    levels = (1.0, 2.0)
    default_level = 1.0

    def _apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if min(x.shape[-3:-1]) < 2:
            raise MdnError(f"isp noise needs images of at least 2x2 pixels, got {x.shape}")
        return _per_image(x, lambda image: self._one(image, rng))

    def _one(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        grey = image.shape[-1] == 1
        camera = Camera.random(rng)
        log_shot = rng.uniform(math.log(1e-4), math.log(0.012))
        read = math.exp(2.18 * log_shot + 1.20 + rng.normal(0, 0.26))
        raw = camera.unprocess(np.repeat(image, 3, axis=-1) if grey else image)
        std = self.level * np.sqrt(raw * math.exp(log_shot) + read)
        rgb = camera.process(raw + std * rng.standard_normal(raw.shape, dtype=np.float32))
        return rgb[..., 1:2] if grey else rgb

    def _apply_on_device(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.at_levels(x, generator, self.level)

    @staticmethod
    def at_levels(x: torch.Tensor, generator: torch.Generator, level: float | torch.Tensor) -> torch.Tensor:
        """`on_device` before clipping, at a level per image: a number, or a (B, 1, 1, 1) tensor (the practical
        mix draws one per image), the whole batch in one pass."""
        b, c, h, w = x.shape
        if min(h, w) < 2:
            raise MdnError(f"isp noise needs images of at least 2x2 pixels, got {tuple(x.shape)}")
        cameras = Cameras.random(b, generator, x.device)
        log_shot = math.log(1e-4) + (math.log(0.012) - math.log(1e-4)) * _uniform(x, generator, (b, 1, 1, 1))
        read = torch.exp(2.18 * log_shot + 1.20 + 0.26 * _normal(x, generator, (b, 1, 1, 1)))
        raw = cameras.unprocess(x.expand(b, 3, h, w) if c == 1 else x)
        std = level * torch.sqrt(raw * log_shot.exp() + read)
        rgb = cameras.process(raw + std * _normal(raw, generator))
        return rgb[:, 1:2] if c == 1 else rgb


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
        return _per_image(x, lambda image: self._one(image, rng))

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
        order = _uniform(x, generator, (b, len(self.components))).argsort(dim=1).view(b, -1, 1, 1, 1)
        count = 2 + (_uniform(x, generator, (b, 1, 1, 1)) < 0.5).long()
        for step in range(3):
            noisy = x
            for i, component in enumerate(self.components):
                chosen = (order[:, step] == i) & (count > step)
                noisy = torch.where(chosen, component.on_device(x, generator), noisy)
            x = noisy
        return x


class _ThroughTorch(NoiseModel):
    """A noise model written once, in torch: its numpy call runs the torch twin on the CPU from a generator seeded
    by the numpy one, so that the same numpy generator state still gives the same bytes."""

    def _apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        generator = torch.Generator().manual_seed(int(rng.integers(2**63)))
        batch = torch.from_numpy(np.ascontiguousarray(x.reshape(-1, *x.shape[-3:]))).permute(0, 3, 1, 2)
        out = self._apply_on_device(batch, generator).permute(0, 2, 3, 1).numpy()
        return out.reshape(*x.shape[:-3], *out.shape[-3:])


class AliasedNoise(NoiseModel):
    """A web thumbnail: the picture decimated by 2 without a low-pass filter (every other row and column, so it
    aliases), then Gaussian noise of std sigma/255. Its clean reference is the decimated picture: the aliasing
    belongs to the picture, only the noise is to go."""

    name = "aliased"
    parameter = "sigma on the 0-255 scale, on the picture decimated by 2"
    levels = (15.0, 25.0)
    default_level = 15.0

    def reference(self, x: np.ndarray) -> np.ndarray:
        return x[..., ::2, ::2, :]

    def reference_on_device(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., ::2, ::2]

    def _apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        small = self.reference(x)
        return small + (self.level / 255) * rng.standard_normal(small.shape, dtype=np.float32)

    def _apply_on_device(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        small = self.reference_on_device(x)
        return small + (self.level / 255) * _normal(small, generator)


class CameraJpegNoise(NoiseModel):
    """A camera's JPEG: Gaussian noise of std sigma/255, then baseline JPEG at quality 85 (libjpeg, 4:2:0 chroma),
    so that the noise is compressed with the picture and comes out blocky and smeared."""

    name = "jpeg"
    parameter = "sigma on the 0-255 scale, before JPEG quality 85"
    levels = (15.0, 25.0)
    default_level = 25.0
    quality: ClassVar[int] = 85

    def _apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noisy = np.clip(x + (self.level / 255) * rng.standard_normal(x.shape, dtype=np.float32), 0, 1)
        return _per_image(noisy, lambda image: degrade.jpeg(image, self.quality))

    def _apply_on_device(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noisy = (x + (self.level / 255) * _normal(x, generator)).clamp(0, 1)
        return degrade.Jpeg(self.quality, self.quality)(noisy, generator)


class PracticalNoise(_ThroughTorch):
    """What cameras and the web do to pictures (`mdn.degrade`, after SCUNet's practical data synthesis): a random
    subset of Gaussian (independent, grey or channel-correlated), shot, speckle, camera-pipeline, spatially
    correlated and salt-and-pepper noise in random order, then most often JPEG at a random quality. The level
    scales every noise amplitude (1: the training mix). Training adds the web's resizing of the clean picture."""

    name = "practical"
    parameter = "strength (noise amplitudes relative to the training mix)"
    levels = (0.5, 1.0, 1.5)
    default_level = 1.0
    limits = (0.0, 3.0)

    def _apply_on_device(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return degrade.practical_noise(x, generator, self.level)


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


def file_seed(seed: int, name: str) -> list[int]:
    """The seed of one file's noise in a batch: the batch's seed and the file's name, so that files of a batch get
    different noise and each file the same noise whatever else the batch holds."""
    return [seed, zlib.crc32(name.encode())]
