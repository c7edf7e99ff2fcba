"""Peers for the bench: the noise estimate BM3D is given, and OIDN when installed."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from mdn import bench, metrics, peers
from mdn.errors import MdnError


@pytest.mark.parametrize("sigma", [5, 15, 30])
def test_noise_estimate_is_within_15_percent(sigma: float) -> None:
    clean = data.astronaut()[:256, :256] / 255.0
    noisy = clean + np.random.default_rng(0).normal(0, sigma / 255, clean.shape)
    assert abs(peers.estimate_sigma(noisy) * 255 - sigma) < 0.15 * sigma + 1.0


@pytest.mark.parametrize("peer", ["oidn", "bm3d"])
@pytest.mark.parametrize("channels", [3, 1])
def test_installed_peer_denoises_colour_and_grey(peer: str, channels: int) -> None:
    if peer not in peers.available():
        pytest.skip(f"{peers.PEERS[peer][0]} is not installed")
    colour = (data.astronaut()[:128, :128] / 255.0).astype(np.float32)
    clean = colour if channels == 3 else colour.mean(axis=-1, keepdims=True)
    noisy = bench.noisy_input(clean, f"astronaut-{channels}", "gaussian", 25, seed=0)
    out = bench.denoisers([peer])[peer](noisy)
    assert out.shape == clean.shape
    assert metrics.psnr(out, clean) > metrics.psnr(noisy, clean) + 3


def test_missing_peer_package_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setattr(peers, "available", lambda: [])
    with pytest.raises(MdnError, match="pip install bm3d"):
        bench.denoisers(["bm3d"])
