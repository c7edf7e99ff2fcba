"""Array in, array out: the path `batch.py` gives a file (read, display transform, work, inverse), for one numpy
array or file, ending in an array laid out and typed as the input was stored."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable

import numpy as np

from mdn.errors import MdnError
from mdn.io import images, picture, tonemap
from mdn.units import KIND_WORDS, is_kind

ImageLike = np.ndarray | str | os.PathLike[str]
"""A numpy array, or the path of an image file."""


def load(
    image: ImageLike | picture.Image, axes: str | None = None, hdr: bool = False, layer: str | None = None
) -> picture.Image:
    """An array as `images.from_array` lays it out, or a file as `images.read` reads it (an `Image` as it is)."""
    if isinstance(image, picture.Image):
        return image
    if not is_kind(hdr, bool):
        raise MdnError(f"hdr must be {KIND_WORDS[bool]}, got {hdr!r}")
    if isinstance(image, str | os.PathLike):
        if axes is not None or hdr:
            raise MdnError("axes and hdr describe arrays; a file says its own", image)
        return images.read(image, layer)
    if layer is not None:
        raise MdnError("layer picks an EXR layer; an array has none")
    if axes is not None and not isinstance(axes, str):
        raise MdnError(f"axes are letters such as 'ZYX', got {axes!r}")
    if callable(getattr(image, "detach", None)):  # a torch tensor, on any device, with or without its graph
        tensor = image.detach().cpu()
        image = (tensor.float() if str(tensor.dtype) == "torch.bfloat16" else tensor).numpy()  # numpy has no bf16
    return images.from_array(image, axes, hdr)


def apply(
    image: ImageLike | picture.Image,
    work: Callable[[np.ndarray], np.ndarray],
    *,
    axes: str | None = None,
    hdr: bool = False,
    layer: str | None = None,
    fit: Callable[[picture.Image], tonemap.DisplayTransform] = tonemap.fit,
    fill_hidden: bool = False,
) -> np.ndarray:
    """`work` on the image's display-range (N, H, W, C) planes (`fit` gives the transform); the result in the
    input's stored layout and sample type (integers rounded and clipped), alpha untouched. Inf (and a render's NaN)
    is replaced first, with a warning; other NaN is filled for the work and NaN again in the result. `fill_hidden`:
    the colour under full transparency filled before the work and given back after, as `batch.run` does it for a
    denoiser."""
    loaded = load(image, axes, hdr, layer)
    if loaded.nonfinite:
        warnings.warn(f"{loaded.path}: {picture.replaced(loaded.nonfinite)}", stacklevel=4)
    shown, hidden = images.with_hidden_filled(loaded) if fill_hidden else (loaded, None)
    transform = fit(shown)
    pixels = images.with_hidden_restored(transform.inverse(work(transform.forward(shown.pixels))), loaded, hidden)
    return images.to_array(loaded.with_pixels(pixels))
