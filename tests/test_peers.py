"""Peers for the bench: the noise estimate BM3D is given, and OIDN when installed."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from mdn import bench, peers
from mdn.errors import MdnError


@pytest.mark.parametrize("sigma", [5, 15, 30])
def test_noise_estimate_is_within_15_percent(sigma: float) -> None:
    clean = data.astronaut()[:256, :256] / 255.0
    noisy = clean + np.random.default_rng(0).normal(0, sigma / 255, clean.shape)
    assert abs(peers.estimate_sigma(noisy) * 255 - sigma) < 0.15 * sigma + 1.0


def test_oidn_denoises_when_installed() -> None:
    if "oidn" not in peers.available():
        pytest.skip("pyoidn is not installed")
    clean = (data.astronaut()[:128, :128] / 255.0).astype(np.float32)
    noisy = bench.noisy_input(clean, "astronaut", "gaussian", 25, seed=0)
    out = bench.denoisers(["oidn"])["oidn"](noisy)
    assert bench.metrics.psnr(out, clean) > bench.metrics.psnr(noisy, clean) + 3


def test_missing_peer_package_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setattr(peers, "available", lambda: [])
    with pytest.raises(MdnError, match="pip install bm3d"):
        bench.denoisers(["bm3d"])
