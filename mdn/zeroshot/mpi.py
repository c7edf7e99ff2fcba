"""MPI (Ma et al., NeurIPS 2024): a copy of a mask-pre-trained skip network fine-tuned on the noisy image itself,
its predictions for hidden pixels blended into the running output (iterative fill), tile by tile for large
images."""

from __future__ import annotations

import copy
import time
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mdn.device import autocast
from mdn.errors import MdnError
from mdn.inference.engine import MIN_TILE, ProgressCallback
from mdn.inference.tiling import TileGrid
from mdn.nets.skip import SkipNet
from mdn.stages.wiener import collaborative_wiener, search_for
from mdn.zeroshot.presets import Preset
from mdn.zeroshot.self_check import SelfCheck, holdout_mask, self_checked


class Filled(NamedTuple):
    """MPI's output (H, W, C) in [0, 1] and its self-check (None when switched off)."""

    image: np.ndarray
    check: SelfCheck | None


MIN_SIDE = 4
"""The fewest pixels a side of an image MPI fine-tunes on: with both sides at most 3 its network's weights turned
NaN within three steps (every such size tried, colour and grey), and there is nothing to learn from either."""


def as_image(noisy: np.ndarray, channels: int | None = None) -> np.ndarray:
    """Check that noisy is (H, W, C) with C = channels (any C when None) and at least MIN_SIDE a side; float32
    copy."""
    image = np.asarray(noisy, dtype=np.float32)
    if image.ndim != 3 or (channels is not None and image.shape[-1] != channels) or min(image.shape[:2]) < MIN_SIDE:
        wanted = f"(H, W, {channels})" if channels is not None else "(H, W, C)"
        raise MdnError(
            f"zero-shot denoising needs an {wanted} image of at least {MIN_SIDE}x{MIN_SIDE} pixels, got shape "
            f"{image.shape}"
        )
    return image


def end_time(time_budget: float | None) -> float | None:
    return None if time_budget is None else time.monotonic() + time_budget


class Progress:
    """Counts iterations and reports (done, total) to an optional callback."""

    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total, self.callback, self.done = total, callback, 0

    def advance(self) -> None:
        self.done += 1
        if self.callback:
            self.callback(self.done, self.total)


class IterativeFill:
    """MPI's zero-shot loop on a private copy of a pre-trained net and one Adam optimiser; several images
    (tiles) may run in turn, continuing the same network and optimiser. BatchNorm stays in train mode."""

    def __init__(self, net: SkipNet, preset: Preset, seed: int, dtype: torch.dtype = torch.float32) -> None:
        config = net.config
        mask_layers = 1 if preset.shared_mask else config.channels
        if config.mask_channels not in (mask_layers, config.channels):
            raise MdnError(
                f"a {'shared' if preset.shared_mask else 'per-channel'} mask does not fit a network that takes "
                f"{config.mask_channels} mask channels for {config.channels} image channels"
            )
        # channels-last runs the convolutions 1.5-1.9x faster on CPU (oneDNN) than the default layout
        self.net = copy.deepcopy(net).train().to(memory_format=torch.channels_last)
        self.preset = preset
        self.device = next(self.net.parameters()).device
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=preset.lr)
        self.generator = torch.Generator(self.device).manual_seed(seed)
        self.dtype = dtype

    def step(self, noisy: Tensor, output: Tensor, start: Tensor, holdout: Tensor | None = None) -> Tensor:
        """One iteration on noisy (N, C, H, W): predict hidden pixels (a mask of its own for each of the N),
        fill them into output (returned updated) with the prediction from before this step's update, then
        fine-tune on the hidden pixels. `start` (N, C or 1, H, W), each pixel's weight of the noisy image output
        started from, is updated in place. Held-out pixels (N, 1, H, W) are always hidden and never trained on."""
        batch, channels, height, width = noisy.shape
        shape = (batch, 1 if self.preset.shared_mask else channels, height, width)
        draw = torch.rand(shape, generator=self.generator, device=self.device)
        hidden = (draw < self.preset.mask_ratio).to(noisy.dtype)
        trained = hidden
        if holdout is not None:
            hidden = torch.maximum(hidden, holdout)
            trained = hidden * (1 - holdout)
        with autocast(self.device, self.dtype):
            prediction = self.net(noisy * (1 - hidden), hidden.expand(-1, self.net.config.mask_channels, -1, -1))
        prediction = prediction.float()
        beta = self.preset.beta
        output = torch.where(hidden.bool(), beta * output + (1 - beta) * prediction.detach(), output)
        start.mul_(1 - (1 - beta) * hidden)
        loss = F.mse_loss(prediction * trained, noisy * trained)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return output

    def run(
        self,
        noisy: np.ndarray,
        deadline: float | None,
        progress: Progress,
        holdout: np.ndarray | None = None,
        iters: int | None = None,
    ) -> np.ndarray:
        """`iters` iterations (default: the preset's) on one (H, W, C) image, or as many as fit before `deadline`
        (time.monotonic()), with the (H, W) `holdout` pixels never trained on; returns the running output,
        unclipped. The running output starts as the noisy image, of which a pixel filled n times still holds
        beta^n: that start is taken out of every pixel's average (Adam's bias correction), so that a short run, a
        continued stack's slice, averages its predictions alone (a quarter of `microscopy`'s iterations kept
        about half of the noisy image: 33.4 dB against 38.5 with the correction, docs/zeroshot.md)."""
        height, width = noisy.shape[:2]
        x = unshuffled(torch.from_numpy(np.ascontiguousarray(noisy)).permute(2, 0, 1)[None], self.preset.unshuffle)
        x = x.to(self.device).contiguous(memory_format=torch.channels_last)
        held = None
        if holdout is not None:
            held = unshuffled(torch.from_numpy(holdout).to(x.dtype)[None, None], self.preset.unshuffle).to(self.device)
        output = x.clone()
        start = torch.ones((x.shape[0], 1 if self.preset.shared_mask else x.shape[1], *x.shape[2:]), device=x.device)
        for _ in range(self.preset.iters if iters is None else iters):
            if deadline is not None and time.monotonic() >= deadline:
                break
            output = self.step(x, output, start, held)
            progress.advance()
        filled = start < 1
        output = torch.where(filled, (output - start * x) / (1 - start).clamp_min(1e-12), output)
        output = shuffled(output, self.preset.unshuffle)[..., :height, :width]
        return output[0].permute(1, 2, 0).cpu().numpy()


def unshuffled(image: Tensor, factor: int) -> Tensor:
    """(1, C, H, W) -> (factor², C, H', W'): the sub-images of each sub-pixel phase, every channel of a phase
    together (not MPI code's mix of channels and phases), after reflecting the bottom and right edges up to a
    multiple of `factor`."""
    if factor == 1:
        return image
    height, width = image.shape[-2:]
    padded = F.pad(image, (0, (-width) % factor, 0, (-height) % factor), mode="reflect")
    channels = image.shape[1]
    phases = F.pixel_unshuffle(padded, factor)  # channel c * factor² + phase
    return phases.reshape(channels, factor * factor, *phases.shape[-2:]).transpose(0, 1).contiguous()


def shuffled(images: Tensor, factor: int) -> Tensor:
    """The inverse of `unshuffled`, before its crop: (factor², C, H', W') -> (1, C, factor H', factor W')."""
    if factor == 1:
        return images
    phases = images.transpose(0, 1).reshape(1, -1, *images.shape[-2:])
    return F.pixel_shuffle(phases, factor)


def mpi_tiled(
    noisy: np.ndarray,
    net: SkipNet,
    preset: Preset,
    *,
    tile: int = 512,
    overlap: int = 32,
    seed: int = 0,
    time_budget: float | None = None,
    progress: ProgressCallback | None = None,
    fill: IterativeFill | None = None,
    self_check: bool = True,
) -> Filled:
    """Denoise noisy (H, W, C) float32 in [0, 1], C = the net's channels, by MPI's zero-shot fine-tuning of a
    copy of the pre-trained `net` (left untouched), stopping early once `time_budget` seconds are spent; progress
    gets (iteration, iterations). With `self_check`, HOLDOUT of the pixels are held out and the output is
    blended with the input by what they tell (`SelfCheck`). Returns (H, W, C) float32 clipped to [0, 1] and the
    self-check. Large images: tiles of at most `tile` pixels a side, sharing at least `overlap`, are
    fine-tuned in turn continuing one network and optimiser (as MPI's eval_real.py) and blended with fading
    edges. The time budget is shared evenly by the
    tiles still to run; progress counts iterations over all tiles. Pass `fill` to continue its network and
    optimiser (the previous slice of a stack) instead of starting from `net`, for `preset`'s iterations. The
    self-check holds out the same pixels in every tile and blends the whole image at once."""
    image = as_image(noisy, net.config.channels)
    if tile < MIN_TILE or not 0 <= overlap <= tile // 2:
        raise MdnError(f"tiles need at least {MIN_TILE} pixels and an overlap in [0, tile/2], got {tile}, {overlap}")
    height, width = image.shape[:2]
    grid = TileGrid.cover(height, width, tile, overlap)
    (th, tw), tiles = grid.size, grid.corners()
    fill = fill or IterativeFill(net, preset, seed)
    holdout = holdout_mask(height, width, seed) if self_check else None
    counter = Progress(preset.iters * len(tiles), progress)
    end = end_time(time_budget)
    total = np.zeros(image.shape, np.float32)
    for index, (y, x) in enumerate(tiles):
        now = time.monotonic()
        deadline = None if end is None else now + (end - now) / (len(tiles) - index)
        held = None if holdout is None else holdout[y : y + th, x : x + tw]
        out = fill.run(image[y : y + th, x : x + tw], deadline, counter, held, preset.iters)
        total[y : y + th, x : x + tw] += out * grid.weight(y, x)
    rows, columns = grid.coverage()
    out = total / rows[:, None, None] / columns[None, :, None]
    if not np.isfinite(out).all():  # a fit that diverged: nothing to write
        raise MdnError(
            "zero-shot fitting diverged (its output is not finite); try a lower --lr, another --seed or "
            "--precision fp32"
        )
    np.clip(out, 0.0, 1.0, out=out)
    return refined(image, out, holdout) if holdout is not None and counter.done else Filled(out, None)


REFINE_SEARCH = "balanced"
"""The default's Wiener search (`mdn denoise`'s `--quality`) that refines a self-checked fill."""


def refined(noisy: np.ndarray, filled: np.ndarray, holdout: np.ndarray) -> Filled:
    """The fill (H, W, C) blended with the noisy image pixel by pixel by the self-check (`self_checked`), then, as
    BM3D's second stage refines its first, the pilot of the default's collaborative Wiener stage: the fill's own
    error floor (a fill from neighbours smooths fine texture) is where grouping similar patches wins back detail.
    An image the self-check gives back as it came is left so."""
    blended, check = self_checked(noisy, filled, holdout)
    search = search_for(REFINE_SEARCH, blended.shape[-1])
    if check.weight < 1.0 and search is not None:
        blended = collaborative_wiener(noisy, blended, out=blended, search=search)
    return Filled(blended, check)
