"""Photos as cameras and the web deliver them: a seeded degradation model for training and benchmarking.

The model follows SCUNet's "practical blind denoising" data synthesis (Zhang et al. 2023) and BSRGAN's
degradation model: the clean picture is first resized the way the web resizes (several kernels, including plain
decimation, whose aliasing then belongs to the picture, not to the noise), then a random subset of noise steps
is applied in random order (Gaussian with independent, grey or channel-correlated colour; Poisson shot noise;
speckle; a simulated camera pipeline; spatially correlated noise; salt and pepper), and most images end as a
JPEG at a random quality, so that the noise is compressed with the picture.

Each step is a small class acting on a (B, C, H, W) batch in [0, 1] on any device, with every random number
drawn from the `torch.Generator` passed in, per image. JPEG is real libjpeg (through imagecodecs), run on the
host. `models.py` wraps these steps as noise types for `mdn noise` and `mdn bench`; `mdn train --noise practical`
trains on `practical_pair`, which also returns the resized clean target.
"""

from __future__ import annotations

import io
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

from mdn.noise.camera import IspNoise

Tensor = torch.Tensor


def _uniform(x: Tensor, generator: torch.Generator, low: float = 0.0, high: float = 1.0) -> Tensor:
    """(B, 1, 1, 1) draws from U(low, high), one per image of x."""
    u = torch.rand((x.shape[0], 1, 1, 1), generator=generator, device=x.device, dtype=x.dtype)
    return low + (high - low) * u


def _normal_like(x: Tensor, generator: torch.Generator) -> Tensor:
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def _chance(x: Tensor, generator: torch.Generator, p: float) -> Tensor:
    """(B, 1, 1, 1) bool: True for each image with probability p."""
    return _uniform(x, generator) < p


class Step(ABC):
    """One degradation step: `__call__` maps a (B, C, H, W) batch in [0, 1] to a degraded batch, clipped."""

    @abstractmethod
    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor: ...


@dataclass(frozen=True)
class ColourGaussian(Step):
    """Additive Gaussian noise, std U(low, high)/255 per image, its colour per image: independent per channel,
    the same in every channel (grey), or correlated across channels by a random covariance (SCUNet's general
    Gaussian), with odds 2 : 1 : 2."""

    low: float = 1.0
    high: float = 50.0
    coloured: bool = True
    """False: independent in every channel always (plain white noise)."""

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        b, c = x.shape[:2]
        sigma = _uniform(x, generator, self.low, self.high) / 255
        white = _normal_like(x, generator)
        mode = _uniform(x, generator)
        if c == 3 and self.coloured:
            q = torch.linalg.qr(torch.randn((b, 3, 3), generator=generator, device=x.device)).Q
            spread = torch.rand((b, 3), generator=generator, device=x.device) + 0.05
            mixing = q @ torch.diag_embed(torch.sqrt(3 * spread / spread.sum(1, keepdim=True))) @ q.transpose(1, 2)
            mixed = torch.einsum("bij,bjhw->bihw", mixing.to(x.dtype), white)
            white = torch.where(mode < 0.4, white, torch.where(mode < 0.6, white[:, :1].expand_as(white), mixed))
        return (x + sigma * white).clamp(0, 1)


@dataclass(frozen=True)
class ShotNoise(Step):
    """Poisson photon noise at a peak of 10^U(low, high) photons at white, per image; half the images get it on
    their luminance only (the same in every channel), as SCUNet does."""

    low: float = 1.5
    high: float = 3.5

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        peak = 10 ** _uniform(x, generator, self.low, self.high)
        coloured = torch.poisson(x * peak, generator=generator) / peak
        luma = x.mean(dim=1, keepdim=True)
        grey = x + (torch.poisson(luma * peak, generator=generator) / peak - luma)
        return torch.where(_chance(x, generator, 0.5), grey, coloured).clamp(0, 1)


@dataclass(frozen=True)
class Speckle(Step):
    """Multiplicative noise x + x n, n Gaussian with variance U(low, high) per image."""

    low: float = 0.002
    high: float = 0.04

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        std = torch.sqrt(_uniform(x, generator, self.low, self.high))
        return (x + x * std * _normal_like(x, generator)).clamp(0, 1)


@dataclass(frozen=True)
class Camera(Step):
    """A simulated camera: Brooks et al.'s unprocess, shot and read noise, process (`noise.IspNoise`), its noise
    std times U(low, high) per image, the batch at once. Images smaller than its mosaic (`IspNoise.smallest`)
    pass unchanged, drawing nothing."""

    low: float = 0.5
    high: float = 3.0

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        if not IspNoise.fits(*x.shape[-2:]):
            return x.clone()
        return IspNoise.at_levels(x, generator, _uniform(x, generator, self.low, self.high)).clamp_(0.0, 1.0)


@dataclass(frozen=True)
class CorrelatedGaussian(Step):
    """Spatially correlated noise: white Gaussian noise blurred by a Gaussian of std U(0.5, 2) pixels, rescaled
    to a final std of U(low, high)/255, as demosaicking and in-camera filtering leave it."""

    low: float = 2.0
    high: float = 30.0

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        b, c, h, w = x.shape
        radius = 4
        width = _uniform(x, generator, 0.5, 2.0).view(b, 1, 1)
        offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
        taps = torch.exp(-(offsets**2) / (2 * width**2)).view(b, -1)
        taps = taps / taps.norm(dim=1, keepdim=True)  # unit energy: the blurred noise keeps unit std
        white = torch.randn((b, c, h + 2 * radius, w + 2 * radius), generator=generator, device=x.device)
        white = white.to(x.dtype)
        kernels = taps.repeat_interleave(c, dim=0)
        rows = F.conv2d(white.reshape(1, b * c, *white.shape[-2:]), kernels.view(b * c, 1, -1, 1), groups=b * c)
        blurred = F.conv2d(rows, kernels.view(b * c, 1, 1, -1), groups=b * c).view(b, c, h, w)
        return (x + _uniform(x, generator, self.low, self.high) / 255 * blurred).clamp(0, 1)


@dataclass(frozen=True)
class SaltPepper(Step):
    """Impulse noise: a share U(low, high) of the elements set to 0 or 1."""

    low: float = 0.0005
    high: float = 0.02

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        density = _uniform(x, generator, self.low, self.high)
        u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return torch.where(u < density / 2, 0.0, torch.where(u < density, 1.0, x))


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """An (H, W, C) image in [0, 1] through a baseline JPEG at `quality` (libjpeg, 4:2:0 chroma for colour), back
    in [0, 1] as float32: the 8-bit rounding and the compression a camera or a website applies. Through Pillow,
    which every machine with imageio has (imagecodecs' libjpeg gives the same pixels; a test holds them equal)."""
    pixels = np.ascontiguousarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
    encoded = io.BytesIO()
    PIL.Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(
        encoded, "JPEG", quality=int(quality), subsampling=2
    )
    decoded = np.asarray(PIL.Image.open(encoded)).reshape(pixels.shape)
    return decoded.astype(np.float32) / 255


@dataclass(frozen=True)
class Jpeg(Step):
    """JPEG compression at a quality drawn per image from U(low, high), rounded; real libjpeg on the host."""

    low: float = 30.0
    high: float = 95.0

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        qualities = _uniform(x, generator, self.low, self.high).flatten().round().int().tolist()
        host = x.detach().float().permute(0, 2, 3, 1).cpu().numpy()
        out = np.stack([jpeg(image, q) for image, q in zip(host, qualities, strict=True)])
        return torch.from_numpy(out).permute(0, 3, 1, 2).to(device=x.device, dtype=x.dtype)


@dataclass(frozen=True)
class Sometimes:
    """A step applied to each image with probability p."""

    step: Step
    p: float


def _strength(step: Step, strength: float) -> Step:
    """The step with its noise amplitude scaled by `strength` (variances by its square); JPEG unchanged."""
    if isinstance(step, Jpeg):
        return step
    if isinstance(step, ColourGaussian):
        return ColourGaussian(step.low * strength, step.high * strength, step.coloured)
    if isinstance(step, ShotNoise):  # peak photons scale with 1 / strength^2
        shift = -2 * math.log10(strength)
        return ShotNoise(step.low + shift, step.high + shift)
    if isinstance(step, Speckle | SaltPepper):
        factor = strength**2 if isinstance(step, Speckle) else strength
        return type(step)(step.low * factor, min(step.high * factor, 0.5))
    return type(step)(step.low * strength, step.high * strength)


PRACTICAL_NOISES: tuple[Sometimes, ...] = (
    Sometimes(ColourGaussian(), 0.6),
    Sometimes(ShotNoise(), 0.3),
    Sometimes(Speckle(), 0.15),
    Sometimes(Camera(), 0.3),
    Sometimes(CorrelatedGaussian(), 0.25),
    Sometimes(SaltPepper(), 0.1),
)
"""The noise steps of the practical model and the probability of each, per image; applied in random order."""

PRACTICAL_JPEG = Sometimes(Jpeg(), 0.6)
"""The last step: most pictures people have are JPEGs."""

PLAIN = Sometimes(ColourGaussian(5.0, 50.0, coloured=False), 0.35)
"""The share of images that get plain white Gaussian noise alone, at any strength: the blind-Gaussian recipe the
default card was trained on, kept so that raw sensor-like noise is not given up for the rest."""


def practical_noise(x: Tensor, generator: torch.Generator, strength: float = 1.0) -> Tensor:
    """The practical model's noise on a (B, C, H, W) batch: for `PLAIN`'s share of the images plain white noise,
    for the rest each noise step with its probability, in a random order per batch, then JPEG; amplitudes scaled
    by `strength`. Each step runs on the images that draw it alone (the camera and JPEG go image by image)."""
    plain = _chance(x, generator, PLAIN.p)
    white = PLAIN.step(x, generator)
    order = torch.randperm(len(PRACTICAL_NOISES), generator=generator, device=generator.device).tolist()
    for i in order:
        step = PRACTICAL_NOISES[i]
        x = _on_chosen(_strength(step.step, strength), x, _chance(x, generator, step.p) & ~plain, generator)
    x = _on_chosen(PRACTICAL_JPEG.step, x, _chance(x, generator, PRACTICAL_JPEG.p) & ~plain, generator)
    return torch.where(plain, white, x)


def _on_chosen(step: Step, x: Tensor, chosen: Tensor, generator: torch.Generator) -> Tensor:
    """x with `step` applied to the images where `chosen` (B, 1, 1, 1) holds, the others as they are."""
    index = chosen.flatten().nonzero().flatten()
    if not len(index):
        return x
    out = x.clone()
    out[index] = step(x[index], generator)
    return out


RESIZE_MODES = ("nearest", "bilinear", "bicubic", "area")
"""How pictures are made smaller: decimation (nearest), bilinear and bicubic without a low-pass filter (both alias),
and area averaging (none)."""


def web_resize(x: Tensor, size: int, generator: torch.Generator) -> Tensor:
    """(B, C, S, S) crops, S >= 2 size -> (B, C, size, size) clean targets as the web shrinks pictures: 40 % kept
    at full resolution (a central `size` crop), 30 % decimated by exactly 2 in a random kernel, 30 % shrunk by a
    factor in U(1, 2) in a random kernel."""
    b, _, s, _ = x.shape
    if s < 2 * size:
        raise ValueError(f"web_resize needs crops of at least {2 * size}, got {s}")
    draws = torch.rand((b, 3), generator=generator, device=generator.device).tolist()
    out = []
    for image, (kind, factor, mode) in zip(x, draws, strict=True):
        source = size if kind < 0.4 else 2 * size if kind < 0.7 else round(size * (1 + factor))
        top = (s - source) // 2
        region = image[None, :, top : top + source, top : top + source]
        if source == size:
            out.append(region)
            continue
        name = RESIZE_MODES[min(int(mode * len(RESIZE_MODES)), len(RESIZE_MODES) - 1)]
        resized = F.interpolate(region, size=(size, size), mode=name, **({} if name in ("nearest", "area") else {
            "align_corners": False, "antialias": False}))  # fmt: skip
        out.append(resized.clamp(0, 1))
    return torch.cat(out)


def practical_pair(
    x: Tensor, size: int, generator: torch.Generator, strength: float = 1.0, thumbnails: float = 0.0
) -> tuple[Tensor, Tensor]:
    """Training pairs from (B, C, S, S) clean crops, S >= 2 size: the web-resized clean target and its practical
    noisy copy, each (B, C, size, size). A share `thumbnails` of the pairs are web thumbnails instead: the crop's
    centre decimated by 2 (every other row and column, so it aliases) under `PLAIN`'s white noise, the case the
    rest of the mix holds only a few percent of."""
    if thumbnails <= 0:
        clean = web_resize(x, size, generator)
        return clean, practical_noise(clean, generator, strength)
    top = (x.shape[-1] - 2 * size) // 2
    clean = x[..., top : top + 2 * size : 2, top : top + 2 * size : 2].clone()
    noisy = torch.empty_like(clean)
    chosen = _chance(x, generator, thumbnails).flatten()
    thumbs, rest = chosen.nonzero().flatten(), (~chosen).nonzero().flatten()
    if len(rest):
        clean[rest] = web_resize(x[rest], size, generator)
        noisy[rest] = practical_noise(clean[rest], generator, strength)
    if len(thumbs):
        noisy[thumbs] = PLAIN.step(clean[thumbs], generator)
    return clean, noisy
