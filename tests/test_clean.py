"""A clean picture given back as it came, but for impulses (`stages.clean`), and noisy ones left to the stages."""

from __future__ import annotations

import numpy as np
import pytest

import mdn
from mdn import bench, registry
from mdn.inference import cards
from mdn.inference.engine import Engine
from mdn.metrics import psnr
from mdn.noise import make_noise
from mdn.stages import clean, light, windows


@pytest.fixture(scope="module")
def kodim23() -> np.ndarray:
    """A 192² crop of a bundled photo, a picture the bench holds as clean."""
    return bench.load_references(None)["kodim23"][32:224, 32:224].copy()


def noisy(image: np.ndarray, kind: str, level: float) -> np.ndarray:
    return make_noise(kind, level)(image, np.random.default_rng(7)).astype(np.float32)


def test_only_what_stands_out_is_taken_from_the_output() -> None:
    image = np.full((300, 4, 3), 0.5, np.float32)
    out = image + np.float32(0.05)
    out[7, 1, 2] = 0.9  # an impulse's fill, far from the input
    out[290, 3, 0] = 0.0
    clean.keep_input(image, out)
    expected = image.copy()
    expected[7, 1, 2], expected[290, 3, 0] = 0.9, 0.0
    np.testing.assert_array_equal(out, expected)


def test_only_a_clean_colour_picture_with_impulses_counts() -> None:
    quiet, changed = (0.9 * clean.CLEAN_BELOW / 255) ** 2, (0.9 * clean.CHANGED / 255) ** 2
    loud = (1.1 * clean.CLEAN_BELOW / 255) ** 2

    def never() -> float:
        raise AssertionError("measured after a test failed")

    assert clean.is_clean(2e-3, lambda: quiet, lambda: changed)
    assert not clean.is_clean(2e-3, lambda: loud, never)
    assert not clean.is_clean(2e-3, lambda: quiet, lambda: (1.1 * clean.CHANGED / 255) ** 2)
    assert not clean.is_clean(1e-5, never, never)  # no impulses: a clean photo or a light JPEG, not told apart
    assert not clean.is_clean(light.FILLED_FROM, never, never)  # dense impulses: their fills are no clean picture


def test_a_clean_photo_with_salt_and_pepper_keeps_its_pixels(kodim23: np.ndarray) -> None:
    dotted = noisy(kodim23, "saltpepper", 0.004)
    info: dict = {}
    kept = mdn.denoise(dotted, threads=2, info=info)
    smoothed = mdn.denoise(dotted, keep_clean=False, threads=2)
    assert info["clean"] == [True]
    untouched = np.all(dotted == kodim23, axis=-1)
    np.testing.assert_array_equal(kept[untouched], kodim23[untouched])  # no pixel the noise spared is changed
    assert psnr(kept, kodim23) > psnr(smoothed, kodim23) + 5
    assert psnr(kept, kodim23) > psnr(dotted, kodim23) + 15


def test_a_clean_grey_photo_with_salt_and_pepper_keeps_its_pixels() -> None:
    """Grey has no chroma to measure: its weak-texture patches tell the clean picture (not a film scan's grain,
    as kodim23's) from a noisy one."""
    ladybird = bench.load_references(None)["ladybird"][32:224, 32:224]
    grey = np.ascontiguousarray(ladybird.mean(axis=-1, keepdims=True))
    dotted = noisy(grey, "saltpepper", 0.004)
    info: dict = {}
    kept = mdn.denoise(dotted, threads=2, info=info)
    assert info["clean"] == [True]
    untouched = dotted[..., 0] == grey[..., 0]
    np.testing.assert_array_equal(kept[untouched], grey[untouched])
    assert psnr(kept, grey) > psnr(mdn.denoise(dotted, keep_clean=False, threads=2), grey) + 3
    lightly_noisy = noisy(noisy(grey, "gaussian", 3), "saltpepper", 0.004)  # not clean but for the impulses
    info = {}
    np.testing.assert_array_equal(
        mdn.denoise(lightly_noisy, threads=2, info=info), mdn.denoise(lightly_noisy, keep_clean=False, threads=2)
    )
    assert info["clean"] == [False]


@pytest.mark.parametrize(("kind", "level"), [("clean", 0), ("gaussian", 15), ("isp", 1), ("saltpepper", 0.05)])
def test_other_photos_run_the_stages_as_before(kodim23: np.ndarray, kind: str, level: float) -> None:
    """A clean photo without impulses, Gaussian noise, a camera's light demosaicked noise and dense salt and
    pepper (whose filled picture measures above the floor): the output is the stages' to the byte."""
    image = kodim23 if kind == "clean" else noisy(kodim23, kind, level)
    info: dict = {}
    out = mdn.denoise(image, threads=2, info=info)
    assert info["clean"] == [False]
    np.testing.assert_array_equal(out, mdn.denoise(image, keep_clean=False, threads=2))


def test_a_large_plane_run_by_windows_keeps_its_pixels_too(kodim23: np.ndarray, monkeypatch) -> None:
    """A plane whose stages run window by window is measured on its sample boxes and kept the same way."""
    dotted = noisy(kodim23, "saltpepper", 0.004)
    model = registry.load_model("unet-dct-practical")
    options = cards.options(model.card, tile=128)
    monkeypatch.setattr(windows, "BYTES_PER_PIXEL", 1 << 20)
    monkeypatch.setattr(windows, "window_for", lambda budget: 128)
    assert options.windowed(dotted.shape)
    engine = Engine(model.net, options)
    out = engine(dotted[None])[0]
    assert engine.clean == [True]
    untouched = np.all(dotted == kodim23, axis=-1)
    np.testing.assert_array_equal(out[untouched], kodim23[untouched])
    assert psnr(out, kodim23) > psnr(dotted, kodim23) + 15
