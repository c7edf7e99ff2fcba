"""The sliding-DCT hard-thresholding stage: its transform, its overlap-add, what it keeps of texture, and the
U-Net that denoises a blend of its input and the stage's estimates."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mdn import registry
from mdn.engine import Engine, EngineOptions
from mdn.metrics import psnr
from mdn.nets.dct import THRESHOLD, DctShrinkage, dct_basis
from mdn.nets.unet import UNET_SIZES, UNet

TINY_DCT = replace(UNET_SIZES["unet-tiny"], dct_sigmas=(10.0, 30.0))


def _overlap_add(x: torch.Tensor, sigma: float, stride: int, size: int = 8) -> torch.Tensor:
    """The stage written the plain way (transposed convolutions), one grey channel, for comparison."""
    basis, pad = dct_basis(size), size - stride
    h, w = x.shape[-2:]
    y = F.pad(x, (pad, pad + (-w) % stride, pad, pad + (-h) % stride), mode="reflect")
    coefficients = F.conv2d(y, basis, stride=stride)
    kept = coefficients.abs() > THRESHOLD * sigma / 255
    kept[:, 0] = True
    weight = 1 / kept.sum(dim=1, keepdim=True).float()
    summed = F.conv_transpose2d(coefficients * kept * weight, basis, stride=stride)
    norm = F.conv_transpose2d(weight, torch.ones(1, 1, size, size), stride=stride)
    return (summed / norm)[..., pad : pad + h, pad : pad + w]


def test_the_basis_is_orthonormal() -> None:
    basis = dct_basis(8).flatten(1)
    torch.testing.assert_close(basis @ basis.T, torch.eye(64), atol=1e-5, rtol=0)


@pytest.mark.parametrize("stride", [1, 2, 4])
def test_the_overlap_add_as_a_convolution_is_the_plain_one(stride: int) -> None:
    x = torch.rand(1, 1, 37, 45, generator=torch.Generator().manual_seed(stride))
    estimates = DctShrinkage((12.0, 40.0), channels=1, stride=stride)(x)
    for i, sigma in enumerate((12.0, 40.0)):
        torch.testing.assert_close(estimates[:, i : i + 1], _overlap_add(x, sigma, stride), atol=1e-5, rtol=0)


def test_it_keeps_a_fine_grating_that_noise_buries_and_returns_a_flat_image_as_it_was() -> None:
    rows = np.arange(96)[:, None]
    grating = 0.5 + 0.15 * np.cos(2 * np.pi * rows / 3.2) * np.ones((1, 128))  # cloth-fine stripes
    clean = np.repeat(grating[..., None], 3, -1).astype(np.float32)
    noisy = clean + np.random.default_rng(0).normal(0, 15 / 255, clean.shape).astype(np.float32)
    stage = DctShrinkage((15.0,))
    estimate = stage(torch.from_numpy(noisy).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    assert psnr(estimate, clean) > psnr(noisy, clean) + 8  # 24.6 dB in, 34.2 out
    kept = np.abs(np.fft.rfft(estimate[:, 64, 0] - 0.5)).max() / np.abs(np.fft.rfft(grating[:, 64] - 0.5)).max()
    assert kept > 0.95  # the stripes' amplitude survives
    flat = torch.full((1, 3, 20, 30), 0.25)
    torch.testing.assert_close(stage(flat), flat, atol=1e-6, rtol=0)


def test_a_card_without_the_stage_starts_on_the_blend_of_its_input_and_the_estimates(plain_tiny_unet) -> None:
    plain, start = plain_tiny_unet
    staged = start(UNet(TINY_DCT))
    x = torch.rand(1, 3, 32, 48)
    estimates = DctShrinkage(TINY_DCT.dct_sigmas)(x)
    blend = 0.5 * x + 0.25 * (estimates[:, :3] + estimates[:, 3:])
    torch.testing.assert_close(staged(x), plain(blend))
    staged(x).square().mean().backward()
    assert staged.dct_blend.grad.abs().min() > 0  # the shares learn


def test_the_config_survives_its_card(tmp_path: Path) -> None:
    card = registry.save(UNet(TINY_DCT), registry.ModelCard("dct", "unet", TINY_DCT.to_dict(), "", ""), tmp_path)
    assert registry.load(registry.find(str(card.path))).config == TINY_DCT


def test_tiled_equals_untiled_at_the_default_overlap() -> None:
    torch.manual_seed(0)
    net = UNet(TINY_DCT)
    planes = np.random.default_rng(0).random((1, 200, 300, 3), dtype=np.float32)
    whole = Engine(net, EngineOptions(device="cpu", tile=512))(planes)
    tiled = Engine(net, EngineOptions(device="cpu", tile=96))(planes)  # the stage reflects 6 pixels at tile edges
    assert np.abs(tiled - whole).max() <= 1e-4
