"""The coarse band taken from the network run on the picture halved, where the noise is correlated."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import mdn
from mdn import bench, metrics, registry
from mdn.stages import coarse


def test_halving_takes_2x2_means_and_repeats_an_odd_edge() -> None:
    plane = np.arange(15, dtype=np.float32).reshape(3, 5, 1)
    half = coarse.halved(plane)
    assert half.shape == (2, 3, 1)
    assert half[0, 0, 0] == pytest.approx((0 + 1 + 5 + 6) / 4)
    assert half[1, 2, 0] == pytest.approx(14.0)  # the corner pixel, its row and column repeated


@pytest.mark.parametrize("shape", [(64, 48, 3), (33, 47, 1)])
def test_the_pictures_own_halving_leaves_it_unchanged(shape: tuple[int, int, int]) -> None:
    out = np.random.default_rng(0).random(shape, dtype=np.float32)
    before = out.copy()
    coarse.with_coarse_band(out, coarse.halved(out))
    np.testing.assert_allclose(out, before, atol=1e-6)


def test_the_coarse_band_comes_from_the_halved_run_and_the_fine_band_stays() -> None:
    rng = np.random.default_rng(1)
    fine = rng.standard_normal((64, 64, 1)).astype(np.float32)
    out = fine + 0.5
    coarse.with_coarse_band(out, coarse.halved(fine) + 0.2)  # the halved run says the level is 0.2, not 0.5
    np.testing.assert_allclose(out, fine + 0.2, atol=1e-5)


def test_the_kernel_card_takes_correlated_noise_from_the_picture_halved() -> None:
    """On box-filtered noise the kernel card (sigma 15 alone) gains more than 0.5 dB from its halved run
    (1.51 dB on kodim23 when it shipped); white noise is not taken for correlated, and nothing runs."""
    card = registry.find("unet-kpn-s15")
    assert card.inference["coarse"]
    without = dataclasses.replace(card, inference={**card.inference, "coarse": False})
    clean = bench.load_references(None)["kodim23"]
    correlated = bench.noisy_input(clean, "kodim23", "correlated", 50.0, seed=0)
    info: dict = {}
    halved_too = mdn.denoise(correlated, card, info=info)
    assert info["coarse"] == [True]
    assert metrics.psnr(halved_too, clean) > metrics.psnr(mdn.denoise(correlated, without), clean) + 0.5
    white = bench.noisy_input(clean, "kodim23", "gaussian", 15.0, seed=0)
    mdn.denoise(white, card, info=info)
    assert info["coarse"] == [False]
