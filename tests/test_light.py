"""`--strength`: a share of the default's change kept, fixed or, with auto, the light-noise check's
(`stages.light`): a colour picture with little noise keeps the share of the change that its noise explains; noisy,
grey and impulse-struck pictures run as without it."""

from __future__ import annotations

import numpy as np
import pytest

import mdn
from mdn import bench, registry
from mdn.errors import MdnError
from mdn.inference import cards
from mdn.inference.engine import Engine
from mdn.metrics import psnr
from mdn.nets.dct import OPPONENT
from mdn.noise import make_noise
from mdn.stages import light, noise_level, windows


@pytest.fixture(scope="module")
def ladybird() -> np.ndarray:
    """A 192² crop of a bundled photo, a picture the bench holds as clean (and, unlike film scans, without grain)."""
    return bench.load_references(None)["ladybird"][32:224, 32:224].copy()


def noisy(image: np.ndarray, kind: str, level: float) -> np.ndarray:
    return make_noise(kind, level)(image, np.random.default_rng(7)).astype(np.float32)


def luminance(image: np.ndarray) -> np.ndarray:
    return image @ OPPONENT[0]


def test_weak_texture_patches_measure_the_noise_and_not_the_texture() -> None:
    """All patches' eigenvalue tail (Chen et al.) takes a clean photo's texture for noise of sigma above 6 (8.2);
    its weak-texture patches find less than 1, and the sigma of white noise added to it."""
    astronaut = bench.load_references(None)["astronaut"]
    clean = noise_level.sampled_patches(luminance(astronaut)[..., None])
    assert np.sqrt(light.weak_texture_variance(clean)) * 255 < 1 < np.sqrt(noise_level.tail_variance(clean)) * 255 / 6
    for sigma, within in ((2.0, 0.4), (4.0, 0.15), (8.0, 0.1)):  # light noise lets mild texture in
        patches = noise_level.sampled_patches(luminance(noisy(astronaut, "gaussian", sigma))[..., None])
        assert np.sqrt(light.weak_texture_variance(patches)) * 255 == pytest.approx(sigma, rel=within)


def test_noise_coarser_than_a_pixel_is_measured_on_every_other_pixel() -> None:
    """White noise held over 2x2 pixels (as a JPEG's or a demosaicker's is coarser than a pixel) hides from
    full-resolution patches' smallest eigenvalues; every other pixel shows it whole."""
    coarse = np.random.default_rng(0).normal(0.5, 3 / 255, (128, 128, 3)).astype(np.float32)
    image = np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1)
    assert max(light.brightness_variances(luminance(image))) < (2 / 255) ** 2
    assert np.sqrt(light.noise_variance(image)) * 255 == pytest.approx(3.0, rel=0.15)


def test_the_share_kept() -> None:
    light_change, variance = (0.5 * light.LIGHT_BELOW / 255) ** 2, (1 / 255) ** 2

    def never() -> float:
        raise AssertionError("measured after a test failed")

    share = light.kept_share(3, lambda: light_change, lambda: variance, 0.0)
    assert share == pytest.approx(light.KEPT_FACTOR * variance / light_change)
    assert light.kept_share(3, lambda: light_change, lambda: 1.0, 0.0) == 1.0  # noise explains all of it
    assert light.kept_share(3, lambda: (1.01 * light.LIGHT_BELOW / 255) ** 2, never, 0.0) == 1.0
    assert light.kept_share(3, never, never, light.FILLED_FROM) == 1.0  # dense impulses: their fills' errors hide
    assert light.kept_share(1, never, never, 0.0) == 1.0  # grey: a camera's light noise hides from its measures


@pytest.mark.parametrize(("kind", "level", "gain"), [("clean", 0, 4.0), ("gaussian", 1, 2.0)])
def test_a_clean_or_lightly_noisy_photo_keeps_most_of_itself(
    ladybird: np.ndarray, kind: str, level: float, gain: float
) -> None:
    image = ladybird if kind == "clean" else noisy(ladybird, kind, level)
    info: dict = {}
    out = mdn.denoise(image, strength="auto", threads=2, info=info)
    full = mdn.denoise(image, threads=2)
    assert 0 < info["kept_change"][0] < 1
    share = info["kept_change"][0]  # rounded to 3 places
    np.testing.assert_allclose(out, image + np.float32(share) * (full - image), atol=1e-4)
    assert psnr(out, ladybird) > psnr(full, ladybird) + gain


@pytest.mark.parametrize(("kind", "level"), [("gaussian", 15), ("isp", 1), ("saltpepper", 0.05)])
def test_noisy_photos_and_grey_ones_keep_the_whole_change(ladybird: np.ndarray, kind: str, level: float) -> None:
    image = noisy(ladybird, kind, level)
    info: dict = {}
    out = mdn.denoise(image, strength="auto", threads=2, info=info)
    assert info["kept_change"] == [1.0]
    np.testing.assert_array_equal(out, mdn.denoise(image, threads=2))
    grey = image[..., :1]
    np.testing.assert_array_equal(mdn.denoise(grey, strength="auto", threads=2), mdn.denoise(grey, threads=2))


def test_a_large_plane_run_by_windows_is_checked_on_its_sample_boxes(ladybird: np.ndarray, monkeypatch) -> None:
    model = registry.load_model("unet-dct-practical")
    options = cards.options(model.card, tile=128, strength="auto")
    monkeypatch.setattr(windows, "BYTES_PER_PIXEL", 1 << 20)
    monkeypatch.setattr(windows, "window_for", lambda budget: 128)
    assert options.windowed(ladybird.shape)
    engine = Engine(model.net, options)
    out = engine(ladybird[None])[0]
    assert 0 < engine.light_shares[0] < 1
    full = Engine(model.net, cards.options(model.card, tile=128))(ladybird[None])[0]
    assert psnr(out, ladybird) > psnr(full, ladybird) + 4


def test_a_fixed_strength_keeps_that_share_of_the_change(ladybird: np.ndarray) -> None:
    image = noisy(ladybird, "gaussian", 15)
    full = mdn.denoise(image, threads=2)
    np.testing.assert_allclose(mdn.denoise(image, strength=0.25, threads=2), image + 0.25 * (full - image), atol=2e-6)
    np.testing.assert_array_equal(mdn.denoise(image, strength=0, threads=2), image)
    np.testing.assert_array_equal(mdn.denoise(image, strength="1", threads=2), full)


@pytest.mark.parametrize("strength", [1.5, -0.1, "strong", float("nan")])
def test_a_strength_out_of_range_is_refused(strength: object) -> None:
    with pytest.raises(MdnError, match="--strength must be auto or a number from 0 to 1"):
        cards.strength_settings(strength)
