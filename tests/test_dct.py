"""The sliding-DCT shrinkage stage: its transform, its overlap-add, what it keeps of texture, and the U-Net that
denoises what the stage leaves."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mdn import registry
from mdn.inference.engine import Engine, EngineOptions
from mdn.metrics import psnr
from mdn.nets.dct import THRESHOLD, DctShrink, dct_basis, opponent
from mdn.nets.unet import UNET_SIZES, UNet

TINY_DCT = replace(UNET_SIZES["unet-tiny"], dct_sigmas=(10.0, 30.0))


def _hard_threshold(x: torch.Tensor, sigma: float, stride: int, size: int = 8) -> torch.Tensor:
    """Sliding-DCT hard thresholding written the plain way (transposed convolutions, patches averaged)."""
    b, c, h, w = x.shape
    colour, basis, pad = opponent(c), dct_basis(size), size - stride
    y = torch.einsum("dc,bchw->bdhw", colour, x).reshape(b * c, 1, h, w)
    coefficients = F.conv2d(
        F.pad(y, (pad, pad + (-w) % stride, pad, pad + (-h) % stride), mode="reflect"), basis, stride=stride
    )
    kept = coefficients.abs() > THRESHOLD * sigma / 255
    kept[:, 0] = True
    out = F.conv_transpose2d(coefficients * kept, basis, stride=stride) / (size // stride) ** 2
    return torch.einsum("dc,bdhw->bchw", colour, out[..., pad : pad + h, pad : pad + w].reshape(b, c, h, w))


def test_the_basis_is_orthonormal() -> None:
    basis = dct_basis(8).flatten(1)
    torch.testing.assert_close(basis @ basis.T, torch.eye(64), atol=1e-5, rtol=0)


@pytest.mark.parametrize("stride", [1, 2, 4])
def test_it_starts_as_the_input_blended_with_hard_thresholding_at_each_level(stride: int) -> None:
    x = torch.rand(1, 3, 37, 45, generator=torch.Generator().manual_seed(stride))  # 37 rows: two bands
    stage = DctShrink((12.0, 40.0), share=0.6, stride=stride)
    blend = 0.4 * x + 0.3 * (_hard_threshold(x, 12.0, stride) + _hard_threshold(x, 40.0, stride))
    torch.testing.assert_close(stage(x), blend, atol=1e-5, rtol=0)
    torch.testing.assert_close(DctShrink((12.0,), share=0.0, stride=stride)(x), x, atol=1e-5, rtol=0)


def test_it_keeps_a_fine_grating_that_noise_buries_and_returns_a_flat_image_as_it_was() -> None:
    rows = np.arange(96)[:, None]
    grating = 0.5 + 0.15 * np.cos(2 * np.pi * rows / 3.2) * np.ones((1, 128))  # cloth-fine stripes
    clean = np.repeat(grating[..., None], 3, -1).astype(np.float32)
    noisy = clean + np.random.default_rng(0).normal(0, 15 / 255, clean.shape).astype(np.float32)
    stage = DctShrink((15.0,), share=1.0)  # hard thresholding alone
    estimate = stage(torch.from_numpy(noisy).permute(2, 0, 1)[None])[0].detach().permute(1, 2, 0).numpy()
    assert psnr(estimate, clean) > psnr(noisy, clean) + 8  # 24.6 dB in, 34.3 out
    kept = np.abs(np.fft.rfft(estimate[:, 64, 0] - 0.5)).max() / np.abs(np.fft.rfft(grating[:, 64] - 0.5)).max()
    assert kept > 0.95  # the stripes' amplitude survives
    flat = torch.full((1, 3, 20, 30), 0.25)
    torch.testing.assert_close(stage(flat), flat, atol=1e-6, rtol=0)


def test_a_card_without_the_stage_starts_a_network_that_denoises_what_the_stage_leaves(plain_tiny_unet) -> None:
    plain, start = plain_tiny_unet
    staged = start(UNet(TINY_DCT))
    x = torch.rand(1, 3, 32, 48)
    torch.testing.assert_close(staged(x), plain(DctShrink(TINY_DCT.dct_sigmas)(x)))
    staged(x).square().mean().backward()
    gradient = staged.dct.shares.grad
    assert gradient[:, :, 1:].abs().amin() > 0 and not gradient[:, :, 0].any()  # every gain learns but the mean's


def test_the_config_survives_its_card(tmp_path) -> None:
    card = registry.save(UNet(TINY_DCT), registry.ModelCard("dct", "unet", TINY_DCT.to_dict(), "", ""), tmp_path)
    assert registry.load(registry.find(str(card.path))).config == TINY_DCT


def test_tiled_equals_untiled_at_the_default_overlap() -> None:
    torch.manual_seed(0)
    net = UNet(TINY_DCT)
    planes = np.random.default_rng(0).random((1, 200, 300, 3), dtype=np.float32)
    whole = Engine(net, EngineOptions(device="cpu", tile=512))(planes)
    tiled = Engine(net, EngineOptions(device="cpu", tile=96))(planes)  # the stage reflects 6 pixels at tile edges
    assert np.abs(tiled - whole).max() <= 1e-4
