"""Texture put back from what the network removed: gained where it was smoothed, nothing added where it was not."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

import mdn
from mdn import bench, detail
from mdn.metrics import psnr
from mdn.noise import make_noise


def sample(name: str) -> np.ndarray:
    return bench.load_references([str(bench.SAMPLES / f"{name}.png")])[name]


def stripes(size: int = 128) -> np.ndarray:
    """A patch of fine diagonal stripes (period 4 pixels, a quarter of the picture) on a smooth ramp: texture a
    blur flattens, sparse in space as in a photo (the noise is measured where it is not)."""
    y, x = np.mgrid[:size, :size].astype(np.float32)
    inside = (np.abs(x - size / 2) < size / 4) & (np.abs(y - size / 2) < size / 4)
    grey = 0.5 + 0.15 * np.sin(2 * np.pi * (x + y) / 4) * inside + 0.2 * (x / size - 0.5)
    return np.repeat(grey[..., None], 3, axis=-1)


def gaussian(clean: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    return make_noise("gaussian", sigma)(clean, np.random.default_rng(seed))


def test_texture_a_blur_flattened_comes_back() -> None:
    clean = stripes()
    noisy = gaussian(clean, 15)
    blurred = gaussian_filter(noisy, sigma=(1.5, 1.5, 0))
    restored = detail.restore_detail(noisy, blurred)
    assert psnr(restored, clean) > psnr(blurred, clean) + 3.0


def test_a_perfect_output_gets_almost_nothing_of_the_noise_back() -> None:
    clean = sample("kodim23")
    noisy = gaussian(clean, 25)
    restored = detail.restore_detail(noisy, clean)
    assert np.sqrt(np.mean((restored - clean) ** 2)) < 0.05 * np.sqrt(np.mean((noisy - clean) ** 2))


def test_impulses_the_network_removed_stay_out() -> None:
    clean = sample("ladybird")
    noisy = make_noise("saltpepper", 0.01)(clean, np.random.default_rng(0))
    restored = detail.restore_detail(noisy, clean)
    assert np.mean((restored - clean) ** 2) < 0.01 * np.mean((noisy - clean) ** 2)


def test_bands_give_the_whole_image_result(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    clean = rng.random((75, 90, 3), dtype=np.float32)
    noisy = gaussian(clean, 20)
    smoothed = gaussian_filter(noisy, sigma=(1, 1, 0))
    whole = detail.restore_detail(noisy, smoothed)
    monkeypatch.setattr(detail, "BAND_PATCHES", 1)  # bands of 8 patch rows
    assert np.abs(detail.restore_detail(noisy, smoothed) - whole).max() < 1e-5
    assert np.abs(whole - smoothed).max() > 0.01


@pytest.mark.parametrize("shape", [(5, 40, 3), (40, 7, 1)])
def test_images_smaller_than_a_patch_pass_unchanged(shape: tuple[int, int, int]) -> None:
    denoised = np.full(shape, 0.5, dtype=np.float32)
    assert np.array_equal(detail.restore_detail(denoised + 0.1, denoised), denoised)


def test_grey_planes_get_their_texture_back() -> None:
    clean = stripes()[..., :1]
    noisy = gaussian(clean, 15)
    blurred = gaussian_filter(noisy, sigma=(1.5, 1.5, 0))
    restored = detail.restore_detail(noisy, blurred)
    assert restored.shape == clean.shape and psnr(restored, clean) > psnr(blurred, clean) + 3.0


def test_output_stays_in_range() -> None:
    clean = np.clip(stripes() * 2 - 0.5, 0, 1)
    noisy = gaussian(clean, 25)
    restored = detail.restore_detail(noisy, gaussian_filter(noisy, sigma=(1.5, 1.5, 0)).clip(0, 1))
    assert restored.min() >= 0 and restored.max() <= 1


def test_the_default_card_puts_barbaras_stripes_back() -> None:
    """The default runs with `detail`: barbara's woven stripes at sigma 15 gain over the network alone."""
    clean = sample("barbara")
    noisy = gaussian(clean, 15)
    reports: list[dict] = [{}, {}]
    plain = mdn.denoise(noisy, detail=False, device="cpu", info=reports[0])
    default = mdn.denoise(noisy, device="cpu", info=reports[1])
    assert [report["detail"] for report in reports] == [False, True]
    assert np.array_equal(default, detail.restore_detail(noisy, plain))
    assert psnr(default, clean) > psnr(plain, clean) + 2.0
