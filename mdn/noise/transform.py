"""The display transform noise is added through: plain and invertible, so that what the noise leaves alone comes
back as it was (the denoiser's render transform, `tonemap.RenderTransform`, restores local means and caps pixels
at their neighbours' brightest: it changed every pixel of a render and darkened one with a light in view)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mdn.io import tonemap
from mdn.io.picture import Image


@dataclass(frozen=True)
class Kept:
    """`inner` whose inverse gives back the fitted pixels themselves wherever the work left them as `forward` gave
    them: a round trip through a tone map or a stretch is exact only to float rounding."""

    inner: tonemap.DisplayTransform
    pixels: np.ndarray = field(repr=False, compare=False)
    shown: np.ndarray = field(repr=False, compare=False)
    """`inner.forward(pixels)`."""

    @classmethod
    def around(cls, inner: tonemap.DisplayTransform, pixels: np.ndarray) -> Kept:
        """`inner` keeping the (..., C) `pixels` it was fitted on."""
        return cls(inner, pixels, inner.forward(pixels))

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.inner.forward(x)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        out = self.inner.inverse(y)
        if y.shape != self.shown.shape:  # a noise that resizes the picture (aliased)
            return out
        untouched = np.all(y == self.shown, axis=-1, keepdims=True)
        return np.where(untouched, self.pixels, out).astype(out.dtype, copy=False)


def display_transform(image: Image) -> tonemap.DisplayTransform:
    """How noise is added to an image: a render (HDR) through the plain tone map (`tonemap.ToneMap`: hue kept,
    its inverse exact but for a cap at the render's own peak), any other image through `tonemap.fit`'s (identity
    or a stretch of its range); each pixel the noise leaves alone comes back exactly (`Kept`)."""
    inner = tonemap.ToneMap.fit(image.pixels) if image.hdr else tonemap.fit(image)
    return inner if isinstance(inner, tonemap.Identity) else Kept.around(inner, image.pixels)
