"""Training data: clean images from files, procedural dead-leaves and stripe images, the pool on the training
device, and random crops drawn from it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from mdn.errors import MdnError
from mdn.io import images, picture, tonemap
from mdn.io.batch import expand_inputs
from mdn.training.options import TrainOptions


def load_images(
    sources: list[str], min_size: int, warn: Callable[[str], None], size_from: str = ""
) -> list[np.ndarray]:
    """Clean RGB training images (H, W, 3) in [0, 1] from files and folders (searched recursively); those smaller
    than `min_size` are skipped with a warning that says `size_from`, the option that sets it."""
    found = []
    for path in expand_inputs(sources, recursive=True):
        try:
            image = images.read(path)
        except MdnError as exc:
            warn(f"skipped: {exc}")
            continue
        if min(image.height, image.width) < min_size:
            warn(f"skipped: {path}: smaller than {min_size}x{min_size} pixels{f' ({size_from})' if size_from else ''}")
            continue
        if image.nonfinite:  # as `mdn denoise` says it: the zeros that replace them are no clean content
            warn(f"{path}: {picture.replaced(image.nonfinite)}")
        if image.missing is not None:  # filled smooth: no clean content either
            warn(f"{path}: {int(image.missing.sum())} NaN values (no data) filled from their neighbours")
        pixels = tonemap.fit(image).forward(image.pixels)
        for plane in pixels:
            rgb = np.repeat(plane, 3, axis=-1) if plane.shape[-1] == 1 else plane
            found.append(np.clip(rgb, 0, 1))
    return found


Paint = Callable[[np.random.Generator, np.ndarray, np.ndarray], np.ndarray]
"""A leaf's pixels: (rng, its (N,) y and (N,) x offsets from the disc's centre) -> (N, 3) colours."""


def _leaves(
    count: int, size: int, rng: np.random.Generator, radii: tuple[float, float], paint: Paint
) -> list[np.ndarray]:
    """Images of overlapping discs (the first on top) with power-law radii between `radii` times `size`, until
    99.5 % is covered; each disc painted by `paint`."""
    smallest, largest = radii
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    result = []
    for _ in range(count):
        image = np.zeros((size, size, 3), np.float32)
        covered = np.zeros((size, size), bool)
        while covered.mean() < 0.995:
            radius = size * smallest / (1 - rng.random() * (1 - (smallest / largest) ** 2)) ** 0.5
            cy, cx = rng.random(2) * size
            disc = ((yy - cy) ** 2 + (xx - cx) ** 2 < radius**2) & ~covered
            image[disc] = paint(rng, yy[disc] - cy, xx[disc] - cx)
            covered |= disc
        result.append(image)
    return result


def dead_leaves(count: int, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Procedural images of overlapping discs with power-law radii (Lee, Mumford and Huang 2001)."""
    return _leaves(count, size, rng, (0.02, 0.5), lambda rng, y, x: rng.random(3))


def _grating(rng: np.random.Generator, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Stripes between two random colours at a random orientation, phase, slight bend and frequency (log-uniform
    from 0.03 cycles per pixel to near the Nyquist limit), from sine to nearly square; a quarter plain."""
    low, high = rng.random(3), rng.random(3)
    if rng.random() < 0.25:
        return np.broadcast_to(low, (len(y), 3))
    angle, bend = rng.random() * np.pi, rng.normal(0, 0.3) / 256
    frequency = np.exp(rng.uniform(np.log(0.03), np.log(0.48)))
    along, across = x * np.cos(angle) + y * np.sin(angle), y * np.cos(angle) - x * np.sin(angle)
    phase = 2 * np.pi * frequency * (along + bend * across**2) + rng.random() * 2 * np.pi
    sharpness = rng.uniform(0.5, 4)
    wave = 0.5 + 0.5 * np.tanh(sharpness * np.sin(phase)) / np.tanh(sharpness)
    return low + (high - low) * wave[:, None]


def stripes(count: int, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Dead-leaves images whose leaves are striped (`_grating`): fine periodic texture (cloth, blinds, brickwork,
    and what decimation leaves of them) that photos hold too little of for a network to learn to keep it under
    noise."""
    return _leaves(count, size, rng, (0.05, 0.6), _grating)


def _weave(rng: np.random.Generator, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Cloth: one grating (stripes) or two crossing ones (plaid, check), each thread colour a random contrast
    (log-uniform, 3-100 %) away from the ground, frequencies log-uniform from 0.03 cycles per pixel to near the
    Nyquist limit, warped by a fold and shaded along it."""
    ground = rng.random(3)
    contrast = np.exp(rng.uniform(np.log(0.03), 0.0, size=3))[:, None]
    threads = ground + contrast * (rng.random((3, 3)) - ground)
    angle = rng.random() * np.pi
    fold_frequency, fold_phase = rng.uniform(0.005, 0.05), rng.random() * 2 * np.pi
    across = y * np.cos(angle) - x * np.sin(angle)
    fold = np.sin(2 * np.pi * fold_frequency * across + fold_phase)
    warp = rng.uniform(0, 4) * fold
    waves = []
    for turn in (0.0, np.pi / 2 + rng.normal(0, 0.05))[: 1 + (rng.random() < 0.5)]:
        a = angle + turn
        along = x * np.cos(a) + y * np.sin(a) + warp
        frequency = np.exp(rng.uniform(np.log(0.03), np.log(0.48)))
        sharpness = rng.uniform(0.5, 4)
        phase = 2 * np.pi * frequency * along + rng.random() * 2 * np.pi
        waves.append(0.5 + 0.5 * np.tanh(sharpness * np.sin(phase)) / np.tanh(sharpness))
    first, second = waves[0][:, None], (waves[1] if len(waves) > 1 else np.zeros_like(waves[0]))[:, None]
    colour = ground + first * (threads[0] - ground) + second * (threads[1] - ground)
    colour = colour + first * second * (threads[2] - threads[0] - threads[1] + ground)
    shade = 1 - rng.uniform(0, 0.4) * (0.5 + 0.5 * fold)[:, None]
    return np.clip(colour * shade, 0, 1)


def textiles(count: int, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Dead-leaves images whose leaves are cloth (`_weave`): stripes and plaids of any contrast, folded and
    shaded, the fine repeated texture (barbara's tablecloth and scarf) that a network trained on photos smooths
    away under noise."""
    return _leaves(count, size, rng, (0.08, 0.6), _weave)


def sample_batch(pool: list[torch.Tensor], batch: int, crop: int, generator: torch.Generator) -> torch.Tensor:
    """Random crops, area-weighted over the pool of (C, H, W) tensors, each in one of the 8 flips/rotations:
    (B, C, crop, crop) on the pool's device. Positions come from the CPU `generator`; pixels never leave the
    device."""
    areas = torch.tensor([p.shape[1] * p.shape[2] for p in pool], dtype=torch.float64)
    picks = torch.multinomial(areas, batch, replacement=True, generator=generator).tolist()
    crops = []
    for i in picks:
        image = pool[i]
        y, x = (int(torch.randint(n - crop + 1, (1,), generator=generator)) for n in image.shape[1:])
        turns, flip = torch.randint(4, (2,), generator=generator).tolist()
        patch = torch.rot90(image[:, y : y + crop, x : x + crop], turns, dims=(1, 2))
        crops.append(patch.flip(2) if flip % 2 else patch)
    return torch.stack(crops)


def clean_images(options: TrainOptions, crop: int, warn: Callable[[str], None]) -> list[np.ndarray]:
    """A run's clean training images (its data, dead-leaves, stripe and textile images), all at least `crop` on
    a side (twice --crop where the objective shrinks its crops, which the warnings say)."""
    o = options
    factor = crop // o.crop
    size_from = f"{factor} x --crop {o.crop}: crops are drawn {factor}x larger, then shrunk" if factor > 1 else "--crop"
    pool = load_images(o.data, crop, warn, size_from) if o.data else []
    pool += dead_leaves(o.dead_leaves, 256, np.random.default_rng([o.seed, 7]))
    pool += stripes(o.stripes, 256, np.random.default_rng([o.seed, 11]))
    pool += textiles(o.textiles, 256, np.random.default_rng([o.seed, 13]))
    if not pool:
        raise MdnError(f"no usable training images in {', '.join(o.data)}")
    return pool


def procedural_count(options: TrainOptions) -> int:
    """How many drawn images (dead leaves, stripes, textiles) `clean_images` adds to a run's data."""
    return options.dead_leaves + options.stripes + options.textiles


def training_pool(pool: list[np.ndarray], device: torch.device) -> list[torch.Tensor]:
    """(H, W, C) training images as (C, H, W) tensors on `device`."""
    return [torch.from_numpy(image).permute(2, 0, 1).contiguous().to(device) for image in pool]


def validation_references(options: TrainOptions, warn: Callable[[str], None]) -> list[np.ndarray]:
    """The run's clean validation images (H, W, 3), none without `validation` files."""
    if not options.validation:
        return []
    references = load_images(options.validation, min(options.crop, 64), warn)  # any size the run trains on
    if not references:
        raise MdnError(f"no usable validation images in {', '.join(options.validation)}")
    return references
