"""Display transforms are invertible and fitted once on the whole image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import OpenEXR
import tifffile

from mdn import images, tonemap

RNG = np.random.default_rng(3)


def _render(shape=(64, 64, 3)) -> np.ndarray:
    """Linear HDR values spanning six decades, some negative, as a path tracer's film may hold."""
    return (10.0 ** RNG.uniform(-3, 3, size=shape) * RNG.choice([1, 1, 1, -1], size=shape)).astype(np.float64)


def test_tonemap_inverse_recovers_linear_values() -> None:
    x = _render()
    transform = tonemap.ToneMap.fit(x)
    np.testing.assert_allclose(transform.inverse(transform.forward(x)), x, rtol=1e-5)


def test_tonemap_float32_roundtrip_within_display_precision() -> None:
    x = _render().astype(np.float32) / 100
    transform = tonemap.ToneMap.fit(x)
    np.testing.assert_allclose(transform.inverse(transform.forward(x)), x, rtol=1e-4, atol=1e-9)


def test_tonemap_maps_into_display_range_monotonically() -> None:
    x = np.abs(_render())
    y = tonemap.ToneMap.fit(x).forward(x)
    assert y.min() >= 0 and y.max() < 1
    order = np.argsort(x, axis=None)
    assert np.all(np.diff(y.ravel()[order]) >= 0)


def test_tonemap_exposure_is_fitted_on_the_whole_image() -> None:
    x = np.abs(_render())
    whole = tonemap.ToneMap.fit(x)
    assert tonemap.ToneMap.fit(x[:8]).exposure != whole.exposure
    key = np.exp(np.mean(np.log(whole.exposure * x.mean(axis=-1) + 1e-6 * whole.exposure)))
    assert abs(key - 0.18) < 1e-3


def test_stretch_maps_image_range_onto_unit_interval_and_back() -> None:
    x = RNG.uniform(0.01, 0.07, size=(32, 32, 1)).astype(np.float32)
    transform = tonemap.Stretch.fit(x)
    y = transform.forward(x)
    assert y.min() == 0.0 and abs(y.max() - 1.0) < 1e-6
    np.testing.assert_allclose(transform.inverse(y), x, rtol=1e-6)


def test_fit_chooses_by_image_kind(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "cells.tif", RNG.integers(100, 4000, size=(16, 16)).astype(np.uint16))
    tifffile.imwrite(tmp_path / "photo.tif", RNG.integers(0, 255, size=(16, 16, 3)).astype(np.uint8))
    channels = {c: RNG.random((8, 8)).astype(np.float16) for c in "RGB"}
    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION}, channels).write(str(tmp_path / "render.exr"))
    assert isinstance(tonemap.fit(images.read(tmp_path / "cells.tif")), tonemap.Stretch)
    assert isinstance(tonemap.fit(images.read(tmp_path / "photo.tif")), tonemap.Identity)
    assert isinstance(tonemap.fit(images.read(tmp_path / "render.exr")), tonemap.ToneMap)


def test_uint16_stretch_roundtrip_is_exact_after_rounding(tmp_path: Path) -> None:
    raw = RNG.integers(200, 3000, size=(20, 20)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "in.tif", raw)
    image = images.read(tmp_path / "in.tif")
    transform = tonemap.fit(image)
    restored = image.with_pixels(transform.inverse(transform.forward(image.pixels)))
    images.write(restored, tmp_path / "out.tif")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), raw)


def test_tonemap_inverse_never_exceeds_the_images_peak() -> None:
    x = np.abs(_render())
    transform = tonemap.ToneMap.fit(x)
    overshoot = transform.forward(x) * 1.05
    assert transform.inverse(overshoot).max() <= x.max()
    assert np.isfinite(transform.inverse(np.full(3, 1.5))).all()
