"""ZS-N2N (Mansour & Heckel, CVPR 2023): a tiny network trained from scratch on the two diagonal half-resolution
sub-images of the noisy image, each the target of the other."""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mdn.device import autocast
from mdn.errors import MdnError
from mdn.inference.engine import ProgressCallback
from mdn.nets.noise_net import NoiseNet
from mdn.zeroshot.mpi import Progress, as_image, end_time


def pair_downsample(x: Tensor) -> tuple[Tensor, Tensor]:
    """ZS-N2N's pair downsampler: the means of the two diagonals of every 2x2 block, (B, C, H/2, W/2) each."""
    channels = x.shape[1]
    main = torch.tensor([[0.5, 0.0], [0.0, 0.5]], dtype=x.dtype, device=x.device)
    kernels = torch.stack([main, main.flip(-1)])[:, None, None].repeat(1, channels, 1, 1, 1)
    return F.conv2d(x, kernels[0], stride=2, groups=channels), F.conv2d(x, kernels[1], stride=2, groups=channels)


def zs_n2n_loss(net: NoiseNet, noisy: Tensor) -> Tensor:
    """Residual loss (each sub-image denoised towards the other) plus consistency loss (denoise-then-downsample
    equals downsample-then-denoise), each the mean of its two squared-error terms."""
    d1, d2 = pair_downsample(noisy)
    f1, f2 = net.denoise(d1), net.denoise(d2)
    g1, g2 = pair_downsample(net.denoise(noisy))
    residual = (F.mse_loss(f2, d1) + F.mse_loss(f1, d2)) / 2
    consistency = (F.mse_loss(f1, g1) + F.mse_loss(f2, g2)) / 2
    return residual + consistency


def zs_n2n(
    noisy: np.ndarray,
    *,
    iters: int = 2000,
    lr: float = 1e-3,
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    time_budget: float | None = None,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Denoise noisy (H, W, C) float32 in [0, 1] with ZS-N2N: a fresh network seeded by `seed`, Adam with the
    learning rate halved every 1000 iterations, the network autocast to `dtype`; stops early once `time_budget`
    seconds are spent (the input itself when no step fitted). Returns (H, W, C) float32 clipped to [0, 1]."""
    image = as_image(noisy)
    device = torch.device(device)
    y = torch.from_numpy(image).permute(2, 0, 1)[None].to(device).contiguous(memory_format=torch.channels_last)
    net = NoiseNet(image.shape[-1], torch.Generator().manual_seed(seed)).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1000, gamma=0.5)
    counter = Progress(iters, progress)
    end = end_time(time_budget)
    for _ in range(iters):
        if end is not None and time.monotonic() >= end:
            break
        with autocast(device, dtype):
            loss = zs_n2n_loss(net, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        counter.advance()
    if not counter.done:
        return np.clip(image, 0.0, 1.0)
    with torch.no_grad(), autocast(device, dtype):
        out = net.denoise(y).float()
    if not torch.isfinite(out).all():  # a fit that diverged: nothing to write
        raise MdnError("zero-shot fitting diverged (its output is not finite); try a lower --lr or --precision fp32")
    result = np.clip(out[0].permute(1, 2, 0).cpu().numpy(), 0.0, 1.0)
    if collapsed(result, image):
        raise MdnError("zero-shot fitting collapsed (its output is all black or all white); try a lower --lr")
    return result


COLLAPSED_SHARE = 0.98
"""The share of a fit's output at the range's ends (black or white) past which it collapsed, where its input's is
under half."""


def collapsed(result: np.ndarray, image: np.ndarray) -> bool:
    """Whether a fit's output sits at the range's ends (black, white or both) almost everywhere where its input
    does not (a learning rate too high drives ZS-N2N's small network there: an all-black image written as a
    result)."""
    at_ends = float(np.mean((result <= 0) | (result >= 1)))
    return at_ends > COLLAPSED_SHARE and float(np.mean((image <= 0) | (image >= 1))) < 0.5
