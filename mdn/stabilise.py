"""Poisson-Gaussian noise of a camera, fitted from its noisy images alone, and the variance-stabilising transform
that makes it Gaussian of unit spread (the generalised Anscombe transform, with Makitalo and Foi's closed-form
unbiased inverse).

A photon-counting camera (sCMOS, CCD, EMCCD at fixed gain) records a pixel of mean m with variance
`gain * m + offset`: shot noise grows with the signal, read noise and the camera's pedestal set the offset. The
fit reads that line from the images themselves: each pixel's response to Immerkaer's operator (blind to smooth
signal) is binned by its neighbourhood's brightness, a robust variance is taken per bin, and a straight line is
fitted through the bins. Values are in the image's own units (`images.read`'s [0, 1] scale for 16-bit files).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mdn.errors import MdnError

IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)
"""Difference of two Laplacians: zero on constant, linear and quadratic signal; on white noise of variance v its
response has variance 36 v."""

FIT_PIXELS = 4_000_000
"""Pixels sampled for the fit and for the transform's range, about: a bin of 80,000 pixels gives its variance
to about 0.5 %, and a stack of any size is fitted in bounded memory."""
LARGE_PLANE = 4 * FIT_PIXELS
"""A plane past this many pixels is fitted from crops of it (`_crops`): the fit's float64 temporaries of a whole
67 MP plane took 2.6 GB."""
CROPS = 4
"""Crops along each side of a large plane."""
RANGE_PERCENTILES = (0.01, 99.99)
"""The percentiles of a sample of the planes' values a range is taken between: a hot pixel or a dead one (a
camera's few) lies outside it, where the full range had put all the rest in a twentieth of it."""


@dataclass(frozen=True)
class PoissonGaussian:
    """Noise of variance `gain * mean + offset` (offset may be negative: a pedestal above zero)."""

    gain: float
    offset: float

    @classmethod
    def fit(cls, planes: Sequence[np.ndarray], bins: int = 48, seed: int = 0) -> PoissonGaussian:
        """The line through the binned noise variances of grey (H, W) planes, all from one camera."""
        rng = np.random.default_rng(seed)
        share = min(1.0, FIT_PIXELS / max(sum(p.size for p in planes), 1))
        clip = _clip_level(planes)
        brightness, response = [], []
        for plane in planes:
            if plane.ndim != 2 or min(plane.shape) < 8:
                raise MdnError(f"a noise fit needs grey planes of at least 8x8 pixels, got shape {plane.shape}")
            b, r = (a.ravel() for a in _local_statistics(plane.astype(np.float64)))
            unclipped = np.ones(b.size, bool) if clip is None else (_box5(plane == clip) == 0).ravel()
            keep = unclipped & (rng.random(b.size) < share) if share < 1 else unclipped
            brightness.append(b[keep])
            response.append(r[keep])
        if not sum(b.size for b in brightness):
            raise MdnError("the images are saturated everywhere: no noise fit")
        means, variances = binned_variances(np.concatenate(brightness), np.concatenate(response), bins, least=64)
        gain, offset = _robust_line(means, variances)
        if gain <= 0:
            raise MdnError(
                "the noise does not grow with the signal: no Poisson-Gaussian fit (is this a photon-counting "
                "camera's raw data?)"
            )
        return cls(float(gain), float(offset))

    def without_pedestal(self) -> PoissonGaussian:
        """The fit with a negative offset (a pedestal) taken as none, so that the transform keeps every value of
        the planes apart, the darkest included."""
        return PoissonGaussian(self.gain, max(self.offset, 0.0))

    def sample(self, signal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A noisy recording of `signal` (Poisson counts at this gain plus Gaussian read noise)."""
        photons = rng.poisson(np.maximum(signal, 0) / self.gain) * self.gain
        return photons + rng.normal(0.0, math.sqrt(max(self.offset, 0.0)), signal.shape)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    def in_units(self, dtype: np.dtype) -> dict[str, float]:
        """Gain and offset in the stored units of `dtype` samples (counts for integers), rounded for a report."""
        scale = float(np.iinfo(dtype).max) if np.dtype(dtype).kind in "ui" else 1.0
        return {"gain": float(f"{self.gain * scale:.4g}"), "offset": float(f"{self.offset * scale**2:.4g}")}


CLIPPED_SHARE = 1e-3
"""The share of all pixels at the planes' very highest value past which that value is a clip (a saturated
detector), not a sample of the noise."""


def _clip_level(planes: Sequence[np.ndarray]) -> float | None:
    """The planes' highest value where it is a clip (`CLIPPED_SHARE`), else None: saturated pixels have no noise,
    and a fit through them found the noise growing half as fast (5 % of pixels clipped: gain 13.6 for 29.4), or not
    at all (one saturated plane of four). The lowest value is not taken as one: a photon counter's zeros are counts."""
    top = max(float(p.max()) for p in planes)
    at_top = sum(int(np.count_nonzero(p == top)) for p in planes)
    return top if at_top > CLIPPED_SHARE * sum(p.size for p in planes) else None


def _box5(values: np.ndarray) -> np.ndarray:
    """The 5x5 box sums of `values` (H, W) over the interior pixels where the box fits: (H - 4, W - 4)."""
    sums = np.cumsum(np.cumsum(np.pad(values.astype(np.float64, copy=False), ((1, 0), (1, 0))), axis=0), axis=1)
    return sums[5:, 5:] - sums[:-5, 5:] - sums[5:, :-5] + sums[:-5, :-5]


def _local_statistics(plane: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each interior pixel's 5x5 mean and its Immerkaer response, over the pixels where both are defined."""
    return _box5(plane) / 25, _immerkaer(plane)


def _immerkaer(plane: np.ndarray) -> np.ndarray:
    """The `IMMERKAER` response of the (H, W) plane's pixels at least 2 from its left and top edges and 3 from its
    right and bottom ones (where a 5x5 box around them fits too)."""
    h, w = plane.shape
    return sum(IMMERKAER[i, j] * plane[i + 1 : h - 3 + i, j + 1 : w - 3 + j] for i in range(3) for j in range(3))


def noise_spread(planes: Sequence[np.ndarray]) -> float:
    """The spread of the planes' white noise, taken as even: the median Immerkaer response / 0.6745 / 6 over their
    (H, W) arrays (robust to edges and texture, which raise few responses)."""
    responses = np.concatenate([np.abs(_immerkaer(np.asarray(p, np.float64))).ravel() for p in planes])
    return float(np.median(responses) / 0.6745 / 6) if responses.size else 0.0


def binned_variances(
    brightness: np.ndarray, response: np.ndarray, bins: int, least: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Mean brightness and robust noise variance, (median |response| / 0.6745 / 6)^2, of up to `bins` equal-count
    brightness bins of at least `least` pixels, from pixels' brightness and `IMMERKAER` responses."""
    order = np.argsort(brightness, kind="stable")
    means, variances = [], []
    for group in np.array_split(order, min(bins, max(order.size // least, 1))):
        means.append(float(brightness[group].mean()))
        variances.append(float((np.median(np.abs(response[group])) / 0.6745 / 6) ** 2))
    return np.array(means), np.array(variances)


def _robust_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Slope and intercept through (x, y), refitted without the points far above the line: bins where texture
    leaks into the noise operator (edges, puncta) only ever raise the variance."""
    if np.ptp(x) <= 0:
        raise MdnError("the images are flat: no noise fit")
    keep = np.ones(x.size, bool)
    for _ in range(3):
        slope, intercept = np.polyfit(x[keep], y[keep], 1)
        residual = y - (slope * x + intercept)
        scale = 1.4826 * np.median(np.abs(residual[keep])) + 1e-30
        keep = residual < 2.5 * scale
        if keep.sum() < 3:
            break
    return float(slope), float(intercept)


SQRT_3_2 = math.sqrt(1.5)


@dataclass(frozen=True)
class Stabiliser:
    """The generalised Anscombe transform of a `PoissonGaussian` noise, mapped affinely so that [low, high] in
    its domain becomes [0, 1]: the noise comes out Gaussian with spread `sigma` = 1 / (high - low), the same at
    every brightness. A `tonemap.DisplayTransform`, fitted once per camera (not per image) and kept in a card."""

    noise: PoissonGaussian
    low: float
    high: float
    camera: bool = field(default=False, compare=False)
    """Kept in a card for one camera (`mdn train --noisy`), not fitted to the input it transforms."""

    @classmethod
    def fit(cls, noise: PoissonGaussian, planes: Sequence[np.ndarray]) -> Stabiliser:
        """The transform whose [0, 1] spans the planes' values (`RANGE_PERCENTILES` of a sample)."""
        low, high = np.percentile(_anscombe(noise, thinned(planes)), RANGE_PERCENTILES)
        return cls(noise, float(low), float(max(high, low + 1.0)))

    @property
    def sigma(self) -> float:
        """The spread of the stabilised noise in the [0, 1] range."""
        return 1.0 / (self.high - self.low)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return ((_anscombe(self.noise, x) - self.low) / (self.high - self.low)).astype(x.dtype)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        d = np.maximum(y.astype(np.float64) * (self.high - self.low) + self.low, 2 * math.sqrt(3 / 8))
        unbiased = d**2 / 4 + SQRT_3_2 / (4 * d) - 11 / (8 * d**2) + 5 * SQRT_3_2 / (8 * d**3) - 1 / 8
        g = self.noise
        return (g.gain * (unbiased - g.offset / g.gain**2)).astype(y.dtype)

    def to_dict(self) -> dict[str, Any]:
        return {"noise": self.noise.to_dict(), "low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stabiliser:
        return cls(PoissonGaussian(**data["noise"]), float(data["low"]), float(data["high"]))


def stabiliser_for(planes: Sequence[Any]) -> Stabiliser | None:
    """The transform that evens out the noise of one recording's grey (H, W) planes where it grows with the
    signal (a photon-counting camera's raw data), fitted from the planes themselves (evenly spaced ones holding
    FIT_PIXELS or more: `_spread`; crops of a large one: `_crops`); None where no line with a positive gain
    fits. A negative offset (a pedestal) is taken as none, so that the transform keeps every value of the planes
    apart, the darkest included. On held-out 16-bit micrographs the default gained 3.3 dB with it and nothing was
    lost on Gaussian noise (docs/microscopy.md)."""
    chosen = sample(planes)
    try:
        noise = PoissonGaussian.fit(chosen)
    except MdnError:
        return None
    return Stabiliser.fit(noise.without_pedestal(), chosen)


def sample(planes: Sequence[Any]) -> list[np.ndarray]:
    """What a fit reads of a recording's planes: evenly spaced ones (`_spread`), crops of a large one (`_crops`);
    the same pixels whether the planes come from a file or, read one at a time, from a volume."""
    return [crop for plane in _spread(planes) for crop in _crops(plane)]


def thinned(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """About FIT_PIXELS values of `arrays`, evenly strided, as one flat array."""
    step = max(1, round(sum(a.size for a in arrays) / FIT_PIXELS))
    return np.concatenate([a.ravel()[::step] for a in arrays])


def _spread(planes: Sequence[Any]) -> list[Any]:
    """Evenly spaced planes (the first and last among them) holding at least FIT_PIXELS pixels, or all of them:
    each read once, so that a large volume's fit reads a few planes, not the volume."""
    first = planes[0]
    wanted = min(len(planes), max(1, math.ceil(FIT_PIXELS / max(first.size, 1))))
    indices = np.linspace(0, len(planes) - 1, wanted).round().astype(int)
    return [first if i == 0 else planes[int(i)] for i in indices]


def _crops(plane: Any) -> list[np.ndarray]:
    """A plane as an array, or, past LARGE_PLANE pixels, as CROPS x CROPS evenly spread crops of FIT_PIXELS in
    all: a slide scan's fit holds a few megapixels, not its plane (`plane` an array, or any object that reads a
    region when indexed by rows and columns and has a `shape`)."""
    height, width = plane.shape[:2]
    if height * width <= LARGE_PLANE:
        return [np.asarray(plane)]
    side = math.isqrt(FIT_PIXELS // CROPS**2)
    tops, lefts = ([round((n - side) * (k + 0.5) / CROPS) for k in range(CROPS)] for n in (height, width))
    return [np.asarray(plane[y : y + side, x : x + side]) for y in tops for x in lefts]


def _anscombe(noise: PoissonGaussian, x: np.ndarray) -> np.ndarray:
    """2 sqrt(x / gain + 3/8 + offset / gain^2): unit-variance noise in the units of photons."""
    g = noise
    return 2 * np.sqrt(np.maximum(x.astype(np.float64) / g.gain + 3 / 8 + g.offset / g.gain**2, 0.0))
