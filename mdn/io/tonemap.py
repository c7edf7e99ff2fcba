"""Invertible maps between stored pixel values and the [0, 1] display range the networks expect.

Each transform is fitted once on the whole image (never per tile), applied with `forward` before the
work and undone with `inverse` after it:
- `Identity` for 8-bit and other display-referred images already in [0, 1];
- `Stretch` for 16-bit and float data that use part of their range (microscopy): an affine map of the
  image's own range onto [0, 1];
- `RenderTransform` for scene-linear HDR renders (EXR): `ToneMap` (exposure, Reinhard's x / (1 + x) on each
  pixel's largest channel, keeping its hue, and a 2.2 gamma), whose inverse restores local means and keeps each
  pixel within the brightest of the render's own pixels around it.

A card fitted to one camera's noisy images (`mdn train --noisy`) fixes its own transform instead, the same for
every image (`mdn.stabilise.Stabiliser`); `fitter` gives the one a card asks for. Any other card denoises a grey
16-bit or float file through the stabilising transform fitted to that file where its noise grows with the
signal (`fit_noisy`), and through `fit`'s otherwise. Zero-shot fitting works in `fit_robust`'s: the range without
its outliers.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from mdn.errors import MdnError
from mdn.io.images import ARRAY
from mdn.io.picture import Image
from mdn.stabilise import RANGE_PERCENTILES, Stabiliser, noise_spread, sample, stabiliser_for, thinned


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
        """The image's own range (`of_range`)."""
        return cls.of_range(float(x.min()), float(x.max()))

    @classmethod
    def robust(cls, planes: Sequence[Any]) -> Stretch:
        """The range of a recording's planes ((H, W) or (H, W, C) each, arrays or read when used) without its
        outliers: `stabilise.RANGE_PERCENTILES` of a sample of them (`stabilise.sample`), where the stabiliser takes
        its range, each a sampled value (not one between two: at least the darkest and the brightest are left out
        of a small image), widened by ROBUST_MARGIN of it on each side but never past the sample's own extremes
        (data without outliers keeps its full range); the sample's full range where the percentiles meet. One hot
        pixel of a 16-bit stack had put the rest of it in a twentieth of the full range, where zero-shot fitting
        gained nothing."""
        values = thinned(sample(planes))
        low = np.percentile(values, RANGE_PERCENTILES[0], method="higher")
        high = np.percentile(values, RANGE_PERCENTILES[1], method="lower")
        if high <= low:
            return cls.of_range(float(values.min()), float(values.max()))
        margin = ROBUST_MARGIN * (high - low)
        return cls(float(max(values.min(), low - margin)), float(min(values.max(), high + margin)))

    @classmethod
    def of_range(cls, low: float, high: float) -> Stretch:
        """[low, high] onto [0, 1]; a flat image's one value kept where it lies in [0, 1], else put at 0.5: noise
        added to a flat field is then zero-mean (at 0 its lower half was clipped away)."""
        if high > low:
            return cls(low, high)
        return cls(0.0, 1.0) if 0.0 <= low <= 1.0 else cls(low - 0.5, low + 0.5)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return ((x - x.dtype.type(self.low)) / x.dtype.type(self.high - self.low)).astype(x.dtype)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        return (y * y.dtype.type(self.high - self.low) + y.dtype.type(self.low)).astype(y.dtype)


ROBUST_MARGIN = 0.25
"""How far past its percentiles `Stretch.robust` reaches, as a share of their span: the noise's own tails, which
the percentiles cut, stay in range. On six 256² specimens (seeds 9201-9206), zero-shot (`fast`) at no margin came
out 0.12 dB below the full range at 64 counts a photon (the tails given back noisy); at 5 %, level there but short
on a second set at 128 counts (-0.11 ± 0.02 dB); at 25 % every one of the first set's stacks at 8, 64 and 128
counts kept its full range, and three hot pixels cost 0.03-0.17 dB against no hot pixel (15 %: 0.01-0.12)."""

HEADROOM_PERCENTILE = 95.0
"""The brightness percentile a headroom bounds. The exposure at the log-average puts the lit surfaces of a render
with black surroundings (a box seen from outside, a night scene) near white, where a network has no room left to
tell them apart: on 24 held-out scenes, a third to a half of the pixels of three of them. The 95th percentile
finds those and lets a visible light (about 1 % of a Cornell box's frame) pass: bounding the 99.5th darkened
every box with its light in view 15-fold and cost 0.3 dB on the bench's Cornell boxes (docs/renders.md)."""


@dataclass(frozen=True)
class ToneMap:
    """Scene-linear HDR -> display, keeping each pixel's hue: the pixel's largest magnitude m goes through
    Reinhard's e m / (1 + e m) and every channel is scaled by the same factor e / (1 + e m), then 1 / gamma is
    applied per channel (as a display encoding). The inverse scales each pixel back by one factor too, so that a
    network's colour error is not stretched channel by channel: Reinhard per channel had turned bright whites
    pink, and taken a render's relative MSE from 0.066 to 1.18 where this map takes it to 0.041.

    The exposure e puts the log-average luminance at `key` (Reinhard et al. 2002), or lower where `fit` is given a
    headroom (`HEADROOM_PERCENTILE`). The map is odd and strictly
    monotonic, so negative values from reconstruction filters survive the round trip. `inverse` caps each
    pixel's largest magnitude at the image's own peak, so a network's overshoot near white cannot become a
    firefly.
    """

    exposure: float
    peak: float = np.inf
    gamma: float = 2.2

    @classmethod
    def fit(
        cls, x: np.ndarray, key: float = 0.18, headroom: float = 0.0, percentile: float = HEADROOM_PERCENTILE
    ) -> ToneMap:
        """Exposure from the whole image's log-average luminance, lowered where needed so that the brightness at
        `percentile` maps to at most `headroom` before compression (0: no such bound); peak from the largest
        magnitude."""
        magnitude = np.abs(x.astype(np.float64))
        log_average = float(np.exp(np.mean(np.log(magnitude.mean(axis=-1) + 1e-6))))
        exposure = key / max(log_average, 1e-6)
        if headroom > 0:
            bright = float(np.percentile(magnitude.max(axis=-1), percentile))
            exposure = min(exposure, headroom / bright) if bright > 0 else exposure
        return cls(exposure, float(magnitude.max()))

    def forward(self, x: np.ndarray) -> np.ndarray:
        linear = x.astype(np.float64)
        compressed = linear * (self.exposure / (1.0 + self.exposure * np.abs(linear).max(axis=-1, keepdims=True)))
        return (np.sign(compressed) * np.abs(compressed) ** (1.0 / self.gamma)).astype(x.dtype)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        compressed = np.sign(y) * np.abs(y.astype(np.float64)) ** self.gamma
        largest = np.minimum(np.abs(compressed).max(axis=-1, keepdims=True), 1.0 - 1e-7)
        return cap(compressed / (self.exposure * (1.0 - largest)), self.peak).astype(y.dtype)


def cap(x: np.ndarray, peak: float) -> np.ndarray:
    """Scale down each pixel (last axis: channels) whose largest magnitude exceeds `peak`, keeping its hue."""
    largest = np.abs(x).max(axis=-1, keepdims=True)
    return np.clip(x * np.minimum(1.0, peak / np.maximum(largest, 1e-30)), -peak, peak)  # clip: rounding


MEAN_RADIUS = 10
"""Half-width of the box, applied twice (about a Gaussian of 8.6 px), over which `RenderTransform` restores means."""

MEAN_LIMIT = 1.25
"""The most `RenderTransform` scales a neighbourhood up (or 1 / this down) to restore its mean."""

BRIGHTEST_RADIUS = 2
"""Half-width of the square (5 x 5) whose brightest input pixel bounds each output pixel of `RenderTransform`."""


@dataclass(frozen=True)
class RenderTransform:
    """`ToneMap` for a render, whose inverse restores each neighbourhood's mean, per channel, to that of the
    linear image it was fitted on, and keeps each pixel's largest channel within the brightest input pixel around
    it (`BRIGHTEST_RADIUS`).

    The bound: near white the tone map's inverse magnifies a display error without limit, up to the image's peak
    (a firefly's value), so a network's overshoot there came back as blown pixels, worst in dark renders and in
    boxes seen from black, whose exposure puts lit surfaces near white. A denoised Monte Carlo pixel averages the
    samples around it, so it has no business above the brightest of them.

    The means: Monte Carlo noise is heavy where the tone map bends most: a denoiser's estimate of the mean in
    display range is the mean of the compressed values, lower than the compressed mean (Jensen), and lower still
    in the weaker channels, which left bright areas 5-16 % dark and pink. The local mean of the noisy render is
    unbiased, and over a box of about 400 pixels nearly free of its noise."""

    tonemap: ToneMap
    local_mean: np.ndarray = field(repr=False, compare=False)
    brightest: np.ndarray = field(repr=False, compare=False)
    """Each pixel's bound: the largest channel magnitude of the fitted image around it."""

    @classmethod
    def fit(cls, x: np.ndarray, headroom: float = 0.0) -> RenderTransform:
        """The transform of a render `x` (H, W, C), its tone map with `headroom` (`ToneMap.fit`)."""
        return cls(ToneMap.fit(x, headroom=headroom), local_mean(x), local_max(np.abs(x).max(axis=-1)))

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.tonemap.forward(x)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        """The tone map's inverse, the local means restored and pixels bounded; a result of another size than the
        render (a noise that decimates it) gets the tone map's inverse alone."""
        x = self.tonemap.inverse(y).astype(np.float64)
        if x.shape[-3:-1] != self.local_mean.shape[-3:-1]:
            return cap(x, self.tonemap.peak).astype(y.dtype)
        found = local_mean(x)
        ratio = np.ones_like(found)
        np.divide(self.local_mean, found, out=ratio, where=(found > 0) & (self.local_mean > 0))
        x *= np.clip(ratio, 1 / MEAN_LIMIT, MEAN_LIMIT)
        largest = np.abs(x).max(axis=-1, keepdims=True)
        x *= np.minimum(1.0, self.brightest[..., None] / np.maximum(largest, 1e-30))
        return cap(x, self.tonemap.peak).astype(y.dtype)


def local_max(x: np.ndarray, radius: int = BRIGHTEST_RADIUS) -> np.ndarray:
    """Each pixel's largest value over planes (..., H, W) within a square of 2 radius + 1 pixels a side (the
    pixels inside the image)."""
    out = x.copy()
    for axis in (-2, -1):
        source, size = out.copy(), out.shape[axis]
        for shift in range(1, radius + 1):
            ahead = [slice(None)] * out.ndim
            behind = [slice(None)] * out.ndim
            ahead[axis], behind[axis] = slice(shift, None), slice(None, size - shift)
            np.maximum(out[tuple(behind)], source[tuple(ahead)], out=out[tuple(behind)])
            np.maximum(out[tuple(ahead)], source[tuple(behind)], out=out[tuple(ahead)])
    return out


def local_mean(x: np.ndarray, radius: int = MEAN_RADIUS) -> np.ndarray:
    """Each pixel's neighbourhood mean over planes (..., H, W, C): a box of 2 radius + 1 pixels a side, applied
    twice, that counts only the pixels inside the image."""
    mean = x.astype(np.float64)
    for _ in range(2):
        for axis in (-3, -2):
            size = mean.shape[axis]
            sums = np.cumsum(mean, axis=axis)
            sums = np.concatenate([np.zeros_like(np.take(sums, [0], axis=axis)), sums], axis=axis)
            high = np.minimum(np.arange(size) + radius + 1, size)
            low = np.maximum(np.arange(size) - radius, 0)
            counts = (high - low).reshape([-1] + [1] * (-axis - 1))
            mean = (np.take(sums, high, axis=axis) - np.take(sums, low, axis=axis)) / counts
    return mean


def fit(image: Image, headroom: float = 0.0) -> DisplayTransform:
    """The transform for an image: RenderTransform for HDR (its tone map with `headroom`), Stretch for 16-bit or
    float files, else Identity (a float array within [0, 1] is display-referred: its values are taken as they are;
    one with values outside is stretched from its own range as a float file is); each channel of a stack's C axis
    its own (`PerChannel`)."""
    return PerChannel.around(image, functools.partial(_fit, headroom=headroom))


def _fit(image: Image, headroom: float = 0.0) -> DisplayTransform:
    if image.hdr:
        return RenderTransform.fit(image.pixels, headroom)
    dtype = image.source.layout.dtype
    if image.source.format == ARRAY and dtype.kind == "f" and image.pixels.min() >= 0 and image.pixels.max() <= 1:
        return Identity()
    if dtype.kind == "f" or dtype.itemsize > 1:
        return Stretch.fit(image.pixels)
    return Identity()


def fit_robust(image: Image) -> DisplayTransform:
    """`fit`'s transform, but a 16-bit or float file's range without its outliers (`Stretch.robust`): what zero-shot
    fitting works in, which takes the pixels left outside [0, 1] through clipped and gives them back as they came
    (`zeroshot.run.run`)."""
    return PerChannel.around(image, _fit_robust)


def _fit_robust(image: Image) -> DisplayTransform:
    transform = _fit(image)
    return Stretch.robust(list(image.pixels)) if isinstance(transform, Stretch) else transform


def fit_noisy(image: Image, headroom: float = 0.0) -> DisplayTransform:
    """The transform for a noisy image on its way to a denoiser: `fit`'s, but for a grey 16-bit or float file
    whose noise grows with the signal (a photon-counting camera's), which gets the stabilising transform fitted
    to its own planes (`stabilise.stabiliser_for`): its noise then comes out Gaussian and even. Each channel of a
    stack's C axis gets its own (`PerChannel`): two detectors' gains and ranges differ."""
    return PerChannel.around(image, functools.partial(_fit_noisy, headroom=headroom))


def _fit_noisy(image: Image, headroom: float = 0.0) -> DisplayTransform:
    transform = _fit(image, headroom)
    if isinstance(transform, Stretch) and image.pixels.shape[-1] == 1:
        return stabiliser_for(list(image.pixels[..., 0])) or transform
    return transform


@dataclass(frozen=True)
class PerChannel:
    """A transform fitted to each channel of a stack's C axis (an ImageJ hyperstack's or an OME image's: one
    detector each, its own gain and range), applied to that channel's planes: one fit over all of them made a dim
    channel's noise look like a bright one's, and its output worse than its input."""

    transforms: tuple[DisplayTransform, ...]
    channel: np.ndarray = field(repr=False, compare=False)
    """Each plane's channel index (`Layout.channel_of_planes`)."""

    @classmethod
    def around(cls, image: Image, fit_one: Callable[[Image], DisplayTransform]) -> DisplayTransform:
        """`fit_one` of the image, or of each channel's planes where the image's layout has channels."""
        channel = None if image.hdr else image.source.layout.channel_of_planes()
        if channel is None or len(channel) != len(image.pixels):
            return fit_one(image)
        channels = [image.pixels[channel == c] for c in range(channel.max() + 1)]
        flat = [flat_values(planes) is not None for planes in channels]
        whole = fit_one(image) if any(flat) else None  # an empty channel has no range of its own: the stack's
        parts = tuple(
            whole if empty else fit_one(dataclasses.replace(image, pixels=planes))
            for planes, empty in zip(channels, flat, strict=True)
        )
        return Identity() if all(isinstance(part, Identity) for part in parts) else cls(parts, channel)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self._each(x, "forward")

    def inverse(self, y: np.ndarray) -> np.ndarray:
        return self._each(y, "inverse")

    def _each(self, x: np.ndarray, way: str) -> np.ndarray:
        out: np.ndarray | None = None
        for index, transform in enumerate(self.transforms):
            planes = np.flatnonzero(self.channel == index)
            part = getattr(transform, way)(x[planes])
            if out is None:
                out = np.empty(x.shape, part.dtype)
            out[planes] = part
        assert out is not None
        return out


def flat_values(plane: np.ndarray) -> np.ndarray | None:
    """The (C,) values of an (H, W, C) plane each of whose channels holds one value, else None."""
    channels = plane.reshape(-1, plane.shape[-1])
    low = channels.min(axis=0)
    return low if (low == channels.max(axis=0)).all() else None


@dataclass(frozen=True)
class FlatKept:
    """A denoiser's transform that gives the planes of the image each of whose channels held one value (a blank
    or saturated frame: no noise to take) back as they came, as `inverse` of `inner` alone need not (the
    stabiliser's unbiased inverse lifts a constant: 1000 came back as 1035)."""

    inner: DisplayTransform
    values: dict[int, np.ndarray]
    """Plane index -> its channels' values."""

    @classmethod
    def around(cls, transform: DisplayTransform, pixels: np.ndarray) -> DisplayTransform:
        """`transform` itself where no (H, W, C) plane of the (N, H, W, C) `pixels` is flat."""
        values = {index: value for index, plane in enumerate(pixels) if (value := flat_values(plane)) is not None}
        return cls(transform, values) if values else transform

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.inner.forward(x)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        out = self.inner.inverse(y)
        for index, value in self.values.items():
            out[index] = value
        return out


def photon_noise(transform: DisplayTransform, dtype: np.dtype) -> dict[str, float] | list[Any] | None:
    """The photon noise a transform was stabilised for, in the units of `dtype`: one fit's, or a list with each
    channel's (None for a channel not stabilised: `PerChannel`); None where it stabilises nothing."""
    inner = transform.inner if isinstance(transform, FlatKept) else transform
    if isinstance(inner, PerChannel):
        noises = [part.noise.in_units(dtype) if isinstance(part, Stabiliser) else None for part in inner.transforms]
        return noises if any(noises) else None
    return inner.noise.in_units(dtype) if isinstance(inner, Stabiliser) else None


def fitter(transform: dict[str, Any]) -> Callable[[Image], DisplayTransform]:
    """How a card's images are fitted: `fit_noisy` (with the render tone map's `headroom` the card keeps in
    `transform`, if any), or the camera's `Stabiliser` it keeps there, which refuses images of another sample
    type than the camera's."""
    if is_camera(transform):
        return lambda image: camera_transform(transform, "HDR" if image.hdr else image.source.layout.dtype, image.path)
    headroom = float(transform.get("headroom", 0.0))
    return functools.partial(fit_noisy, headroom=headroom) if headroom else fit_noisy


def is_camera(transform: dict[str, Any]) -> bool:
    """Whether a card's `transform` is a camera's fixed one (`mdn train --noisy`), not fitted per image."""
    return "stabiliser" in transform


def camera_transform(transform: dict[str, Any], dtype: object, path: object) -> Stabiliser:
    """The camera's `Stabiliser` a card keeps in `transform` (marked `camera`), for data of sample type `dtype`
    from `path` (a file or a volume); MdnError when the camera recorded another type."""
    if str(dtype) != transform["dtype"]:
        raise MdnError(f"the model was fitted to a camera's {transform['dtype']} images; this one holds {dtype}", path)
    return dataclasses.replace(Stabiliser.from_dict(transform["stabiliser"]), camera=True)


OTHER_CAMERA = 1.5
"""How many times its camera's stabilised noise an input's may be, or 1 / this of it, before a card fitted to that
camera is said to be used on another one's data (a gain 2.25 times or 1 / 2.25 of it). Through a gain-32 card: the
same camera's stacks of other scenes 0.98 to 1.06, its read noise tripled 1.20; gains of 16, 64 and 128 counts
a photon 0.69, 1.35 and 1.95."""


def camera_noise(transform: DisplayTransform, planes: Sequence[Any]) -> float | None:
    """How many times its camera's the noise of grey (H, W) `planes` is once they went through a camera card's
    transform (`camera_transform`), measured on the pixels a fit reads (`stabilise.sample`); None for any other
    transform. About 1 on the camera's own data; a gain-1024 camera's stack through a gain-32 card's: 5."""
    transform = transform.inner if isinstance(transform, FlatKept) else transform
    if not (isinstance(transform, Stabiliser) and transform.camera):
        return None
    return noise_spread([transform.forward(np.asarray(crop)) for crop in sample(planes)]) / transform.sigma


def other_camera(ratio: float | None) -> str | None:
    """The warning for an input whose noise is `ratio` times its card's camera's (`camera_noise`), where that is
    past OTHER_CAMERA either way."""
    if ratio is None or 1 / OTHER_CAMERA <= ratio <= OTHER_CAMERA:
        return None
    return (
        f"its noise is {ratio:.2g} times the noise of the camera the model was fitted to: another camera or "
        "setting? Fit a card to it (mdn train --noisy) or use the default model"
    )
