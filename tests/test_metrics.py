"""PSNR and SSIM agree with scikit-image's reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from mdn import metrics


@pytest.mark.parametrize("sigma", [0.02, 0.1, 0.3])
@pytest.mark.parametrize("grey", [False, True])
def test_psnr_and_ssim_match_scikit_image(sigma: float, grey: bool) -> None:
    clean = data.astronaut()[:120, :150] / 255.0
    if grey:
        clean = clean.mean(axis=-1)
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, sigma, clean.shape), 0, 1)
    a, b = metrics.to_uint8(noisy), metrics.to_uint8(clean)
    expected_psnr = peak_signal_noise_ratio(b, a, data_range=255)
    expected_ssim = structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255,
        channel_axis=None if grey else -1,
    )  # fmt: skip
    assert abs(metrics.psnr(noisy, clean, border=0) - expected_psnr) < 1e-3
    assert abs(metrics.ssim(noisy, clean, border=0) - expected_ssim) < 1e-3


def test_identical_images_score_the_psnr_cap() -> None:
    image = data.coffee()[:40, :40] / 255.0
    assert metrics.psnr(image, image) == metrics.PSNR_MAX == 100.0
    assert metrics.ssim(image, image) == pytest.approx(1.0)


def test_the_psnr_cap_binds_only_past_100_db() -> None:
    """One value off by one: 10 log10(255² N) over N values, below the cap for small images, capped for large."""
    for side, expected in ((40, 10 * np.log10(255.0**2 * 38 * 38 * 3)), (400, 100.0)):
        image = data.coffee()[:side, :side] / 255.0
        changed = image.copy()
        changed[10, 10, 0] += 1 / 255 if changed[10, 10, 0] < 1 else -1 / 255
        assert metrics.psnr(changed, image) == pytest.approx(expected)
    assert 10 * np.log10(255.0**2 * 398 * 398 * 3) > 100  # what it would have been
