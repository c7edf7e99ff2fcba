"""Procedural fluorescence specimens and the camera that records them: held-out stacks for tests and benchmarks.

A specimen is a field of cells (a dim, textured cytoplasm with a brighter membrane, a granular nucleus and
filaments inside), puncta scattered over it and a faint background gradient, blurred by a Gaussian point spread
function. A time-lapse moves every object a little from frame to frame, so frames share content without being
copies. `Microscope` records a clean stack the way an sCMOS camera does: photon shot noise at a gain of
`counts_per_photon`, Gaussian read noise and an offset, in unsigned 16-bit counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mdn.stabilise import PoissonGaussian


def _smooth_field(shape: tuple[int, int], scale: float, rng: np.random.Generator) -> np.ndarray:
    """White noise low-passed by a Gaussian of `scale` pixels, normalised to zero mean and unit spread."""
    field = _blur(rng.standard_normal(shape), scale)
    return (field - field.mean()) / (field.std() + 1e-12)


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with periodic borders (FFT), the point spread function of the microscope."""
    h, w = image.shape
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
    transfer = np.exp(-2 * (np.pi * sigma) ** 2 * (fy**2 + fx**2))
    return np.fft.irfft2(np.fft.rfft2(image) * transfer, s=image.shape)


@dataclass(frozen=True)
class _Cell:
    centre: np.ndarray  # (y, x)
    radii: np.ndarray  # (ry, rx)
    angle: float
    velocity: np.ndarray  # pixels per frame
    spin: float  # radians per frame
    body: float
    membrane: float
    nucleus: float
    filaments: np.ndarray  # (F, 2, 3): per filament, y and x coefficients of a curve in the cell's frame


def _random_cell(size: int, rng: np.random.Generator) -> _Cell:
    radius = rng.uniform(0.06, 0.16) * size
    return _Cell(
        centre=rng.uniform(0, size, 2),
        radii=radius * rng.uniform([0.7, 1.0], [1.0, 1.4]),
        angle=rng.uniform(0, np.pi),
        velocity=rng.normal(0, 0.6, 2),
        spin=rng.normal(0, 0.01),
        body=rng.uniform(0.12, 0.3),
        membrane=rng.uniform(0.1, 0.35),
        nucleus=rng.uniform(0.35, 0.75),
        filaments=rng.uniform(-0.8, 0.8, (int(rng.integers(2, 7)), 2, 3)),
    )


def _splat(points: np.ndarray, weights: np.ndarray | float, size: int) -> np.ndarray:
    """Point sources at sub-pixel (y, x) positions, spread bilinearly onto a periodic size x size grid."""
    image = np.zeros((size, size))
    base = np.floor(points).astype(int)
    frac = points - base
    for dy in (0, 1):
        for dx in (0, 1):
            share = (frac[:, 0] if dy else 1 - frac[:, 0]) * (frac[:, 1] if dx else 1 - frac[:, 1])
            np.add.at(image, ((base[:, 0] + dy) % size, (base[:, 1] + dx) % size), share * weights)
    return image


def _draw_cell(cell: _Cell, frame: int, grid: tuple[np.ndarray, np.ndarray], textures: np.ndarray) -> np.ndarray:
    """One cell's body, membrane, nucleus and filaments at `frame` over the whole (periodic) field."""
    yy, xx = grid
    size = yy.shape[0]
    centre = cell.centre + frame * cell.velocity
    angle = cell.angle + frame * cell.spin
    cos, sin = np.cos(angle), np.sin(angle)
    dy = (yy - centre[0] + size / 2) % size - size / 2
    dx = (xx - centre[1] + size / 2) % size - size / 2
    u = (cos * dx + sin * dy) / cell.radii[1]
    v = (-sin * dx + cos * dy) / cell.radii[0]
    r = np.sqrt(u**2 + v**2)
    inside = 1 / (1 + np.exp((r - 1) * 12))
    image = inside * cell.body * (1 + 0.35 * textures[0])
    image += cell.membrane * np.exp(-(((r - 1) * 10) ** 2))
    image += cell.nucleus * (1 + 0.3 * textures[1]) / (1 + np.exp((r - 0.42) * 30))
    t = np.linspace(-1, 1, int(8 * cell.radii.mean()))
    curves = []
    for (a, b, c), (d, e, f) in cell.filaments:
        fu, fv = a + b * t + 0.3 * c * np.sin(3 * t), d + e * t + 0.3 * f * np.cos(3 * t)
        keep = fu**2 + fv**2 < 0.8
        fu, fv = fu[keep] * cell.radii[1], fv[keep] * cell.radii[0]
        curves.append(np.stack([centre[0] + sin * fu + cos * fv, centre[1] + cos * fu - sin * fv], axis=1))
    points = np.concatenate(curves)
    return image + _blur(_splat(points, 1.2 / 8, size), 0.7)


def fluorescence_stack(frames: int, size: int, seed: int) -> np.ndarray:
    """A clean (frames, size, size) float32 time-lapse in [0, 1]: the same specimen moving from frame to frame."""
    rng = np.random.default_rng(seed)
    cells = [_random_cell(size, rng) for _ in range(int(rng.integers(6, 12)))]
    textures = [np.stack([_smooth_field((size, size), 3.0, rng), _smooth_field((size, size), 1.2, rng)])
                for _ in cells]  # fmt: skip
    puncta = rng.uniform(0, size, (int(rng.integers(60, 160)), 2))
    brightness = rng.uniform(0.3, 1.0, len(puncta))
    background = 0.03 + 0.03 * _smooth_field((size, size), size / 6, rng)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    stack = np.empty((frames, size, size), np.float32)
    for frame in range(frames):
        image = background.copy()
        for cell, texture in zip(cells, textures, strict=True):
            image += _draw_cell(cell, frame, (yy, xx), texture)
        positions = puncta + rng.normal(0, 0.7, puncta.shape) * frame**0.5
        image += 6 * _blur(_splat(positions, brightness, size), 1.3)
        stack[frame] = _blur(image, 1.0)
    low, high = stack.min(), np.percentile(stack, 99.9)
    return np.clip((stack - low) / (high - low), 0, 1).astype(np.float32)


@dataclass(frozen=True)
class Microscope:
    """An sCMOS-like camera: clean signal spanning `low`..`high` counts, photon noise at `counts_per_photon`,
    Gaussian read noise of `read_noise` counts, recorded as uint16."""

    low: float = 200.0
    high: float = 3200.0
    counts_per_photon: float = 64.0
    read_noise: float = 20.0

    def signal(self, clean: np.ndarray) -> np.ndarray:
        """The noise-free counts of a clean stack in [0, 1], as float32."""
        return (self.low + clean * (self.high - self.low)).astype(np.float32)

    def record(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A noisy uint16 recording of a clean stack in [0, 1]."""
        camera = PoissonGaussian(gain=self.counts_per_photon, offset=self.read_noise**2)
        counts = camera.sample(self.signal(clean), rng)
        return np.clip(np.round(counts), 0, 65535).astype(np.uint16)
