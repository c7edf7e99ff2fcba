"""Camera noise after Brooks et al. 2019: a camera's image pipeline unprocessed, shot and read noise added, and
processed back (`IspNoise`), on the CPU (`Camera`) and batched on a device (`Cameras`)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from mdn.errors import MdnError
from mdn.noise.base import NoiseModel, normal, per_image, uniform

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
    limits = (0.0, 10.0)  # 10: a noise std of about the whole range at white
    smallest: ClassVar[int] = 2
    """The least height and width the Bayer mosaic takes."""

    @classmethod
    def fits(cls, h: int, w: int) -> bool:
        """Whether an image of h x w pixels is large enough for the camera's mosaic."""
        return min(h, w) >= cls.smallest

    @classmethod
    def check_size(cls, h: int, w: int) -> None:
        """MdnError for an image too small for the camera's mosaic."""
        if not cls.fits(h, w):
            raise MdnError(f"isp noise needs images of at least {cls.smallest}x{cls.smallest} pixels, got {h}x{w}")

    def _apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        self.check_size(*x.shape[-3:-1])
        return per_image(x, lambda image: self._one(image, rng))

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
        IspNoise.check_size(h, w)
        cameras = Cameras.random(b, generator, x.device)
        log_shot = math.log(1e-4) + (math.log(0.012) - math.log(1e-4)) * uniform(x, generator, (b, 1, 1, 1))
        read = torch.exp(2.18 * log_shot + 1.20 + 0.26 * normal(x, generator, (b, 1, 1, 1)))
        raw = cameras.unprocess(x.expand(b, 3, h, w) if c == 1 else x)
        std = level * torch.sqrt(raw * log_shot.exp() + read)
        rgb = cameras.process(raw + std * normal(raw, generator))
        return rgb[:, 1:2] if c == 1 else rgb
