"""The image's own noise level, and the self-check that keeps a card from making an image worse."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

import mdn
from mdn import bench
from mdn.metrics import psnr
from mdn.noise import make_noise
from mdn.stages import noise_level


def sample(name: str) -> np.ndarray:
    return bench.load_references([str(bench.SAMPLES / f"{name}.png")])[name]


def rms(noisy: np.ndarray, clean: np.ndarray) -> float:
    """The noise's root mean square on the 0-255 scale."""
    return float(np.sqrt(np.mean((noisy - clean) ** 2)) * 255)


def measured(noisy: np.ndarray) -> float:
    return float(np.sqrt(noise_level.noise_variance(noisy)) * 255)


@pytest.mark.parametrize(
    ("kind", "level"), [("gaussian", 2), ("gaussian", 25), ("poisson", 3.0), ("saltpepper", 0.01), ("speckle", 0.03)]
)
def test_pixel_independent_noise_is_measured_within_a_sixth(kind: str, level: float) -> None:
    clean = sample("kodim23")
    noisy = make_noise(kind, level)(clean, np.random.default_rng(0))
    assert measured(noisy) == pytest.approx(rms(noisy, clean), rel=0.16)


@pytest.mark.parametrize(("kind", "level"), [("correlated", 40), ("correlated", 60), ("isp", 1.0)])
def test_correlated_noise_is_measured_within_a_tenth(kind: str, level: float) -> None:
    """On every other and every third pixel: every other pixel alone found 12.2 of box-filtered noise's 16.7."""
    clean = sample("sail")
    noisy = make_noise(kind, level)(clean, np.random.default_rng(0))
    assert noise_level.correlated(noisy)
    assert measured(noisy) == pytest.approx(rms(noisy, clean), rel=0.1)


@pytest.mark.parametrize(("kind", "level"), [("gaussian", 2), ("gaussian", 15), ("poisson", 3.0), ("jpeg", 25)])
def test_pixel_independent_noise_and_clean_texture_are_not_taken_for_correlated(kind: str, level: float) -> None:
    for name in ("sail", "barbara"):
        clean = sample(name)
        assert not noise_level.correlated(clean)
        assert not noise_level.correlated(make_noise(kind, level)(clean, np.random.default_rng(0)))


def test_grey_is_never_taken_for_correlated() -> None:
    """Every other pixel of clean grey texture finds as much as correlated noise would."""
    grey = sample("barbara")[..., :1]
    assert not noise_level.correlated(make_noise("correlated", 50)(grey, np.random.default_rng(0)))


def test_texture_is_not_taken_for_noise() -> None:
    """barbara's fine stripes and a clean photo measure under 2/255."""
    assert measured(sample("barbara")) < 2.0 and measured(sample("kodim23")) < 2.0


def test_noise_a_jpeg_left_in_luminance_alone_is_measured_low() -> None:
    """The measure errs towards the input where it cannot see the noise."""
    clean = sample("kodim23")
    noisy = make_noise("jpeg", 25)(clean, np.random.default_rng(0))
    assert measured(noisy) < rms(noisy, clean)


def test_grey_noise_is_measured() -> None:
    clean = (data.camera()[:384, :384, None] / 255).astype(np.float32)
    noisy = make_noise("gaussian", 15)(clean, np.random.default_rng(0))
    assert measured(noisy) == pytest.approx(15, rel=0.1)


def test_kept_share_is_the_wiener_weight() -> None:
    assert noise_level.kept_share(1e-3, 1e-3) == 1.0  # a change made of noise alone is all kept
    assert noise_level.kept_share(1e-3, 2e-3) == pytest.approx(0.5)  # its error equals the noise: half
    assert noise_level.kept_share(0.0, 1e-3) == 0.0  # a clean image keeps its input


def test_self_check_keeps_a_near_clean_photo_above_its_input() -> None:
    """The sigma-15 masked card smooths barbara's stripes: with the self-check it gains on light impulses."""
    clean = sample("barbara")
    noisy = make_noise("saltpepper", 0.002)(clean, np.random.default_rng(0))
    plain = mdn.denoise(noisy, "unet-masked-s15", self_check=False, device="cpu")
    checked = mdn.denoise(noisy, "unet-masked-s15", device="cpu")
    assert psnr(plain, clean) < psnr(noisy, clean) - 1.0
    assert psnr(checked, clean) > psnr(noisy, clean) + 0.5


def test_self_check_keeps_the_cards_gain_on_noise() -> None:
    clean = sample("kodim23")
    noisy = make_noise("gaussian", 25)(clean, np.random.default_rng(0))
    info: dict = {}
    plain = mdn.denoise(noisy, "unet-masked-s15", self_check=False, device="cpu")
    checked = mdn.denoise(noisy, "unet-masked-s15", device="cpu", info=info)
    assert psnr(checked, clean) > psnr(plain, clean) - 0.05 > psnr(noisy, clean) + 5
    assert info["kept_share"][0] > 0.9
