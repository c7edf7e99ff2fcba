"""Zero-shot denoising of one image: MPI's fine-tuning with iterative fill, and ZS-N2N.

MPI (Ma et al., NeurIPS 2024) fine-tunes a copy of a mask-pre-trained skip network on the noisy image
itself: every iteration hides a random share of pixels, predicts them from the rest, blends the prediction
into the running output at the hidden pixels only (an exponential moving average) and takes one Adam step on
the hidden pixels' error. ZS-N2N (Mansour & Heckel, CVPR 2023) trains a tiny network from scratch on the two
diagonal half-resolution sub-images of the noisy image, each the target of the other.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mdn.device import autocast
from mdn.errors import MdnError
from mdn.inference.engine import MIN_TILE, ProgressCallback
from mdn.inference.tiling import TileGrid
from mdn.nets.skip import SkipNet
from mdn.stabilise import IMMERKAER, binned_variances
from mdn.stages.noise_level import input_share


@dataclass(frozen=True)
class Preset:
    """One MPI configuration: mask law, number of iterations, EMA weight of the fill and learning rate."""

    mask_ratio: float
    shared_mask: bool
    iters: int
    beta: float
    lr: float = 2e-3
    unshuffle: int = 1


PRESETS: dict[str, Preset] = {
    "full": Preset(mask_ratio=0.30, shared_mask=False, iters=1000, beta=0.99),
    "fast": Preset(mask_ratio=0.30, shared_mask=False, iters=150, beta=0.9),
    "real": Preset(mask_ratio=0.90, shared_mask=True, iters=800, beta=0.99, unshuffle=2),
    "microscopy": Preset(mask_ratio=0.30, shared_mask=True, iters=1000, beta=0.99),
}
"""MPI's configs: `full` and `fast` (Fill_m_syn, Fill_s_syn) for synthetic noise with the per-channel-mask net,
`real` (Fill_m_sidd) for camera noise with the shared-mask net: the image is pixel-unshuffled by 2 and its four
sub-images (one per sub-pixel phase, all channels) are filled as a batch, which breaks the spatial correlation
that demosaicking and filtering leave and that a fill from neighbouring pixels would otherwise reproduce.
`microscopy` departs from MPI, which ran FMD with its PolyU config (85 %, no unshuffle): photon noise is
independent per pixel, and on grey micrographs hiding 30 % of the pixels beat hiding 85 % by 1.6-3.1 dB, at low
and high photon counts alike."""


FILL_CARDS: dict[str, str] = {"full": "fill-syn", "fast": "fill-syn", "real": "fill-grey", "microscopy": "fill-grey"}
"""The pre-trained fill card each preset uses on colour images; grey images use "fill-grey", and the grey card
denoises colour channel by channel. `real` takes the grey card until a card pre-trained as MPI's SIDD net is
(80-95 % masks shared by the channels): with one channel, a shared mask is the only kind."""


def fill_card(preset: str, grey: bool) -> str:
    """The default fill card for a preset and an image kind."""
    return "fill-grey" if grey else FILL_CARDS[preset]


HOLDOUT = (0.02, 2000, 0.1)
"""Pixels MPI never shows the network and never trains on: 2 % of an image, at least 2000 but at most 10 %.
Its predictions there are independent of those pixels' noise, which is what lets the self-check measure the
result without a clean image."""

ERROR_MARGIN = 1.0
"""The self-check takes the fill's error this many standard errors above its estimate: small images and
heavy noise leave the estimate uncertain, and the margin then blends a little more of the input back."""


SMALL_GAIN_DB = 1.0
"""An estimated gain below this is reported as a preset that cannot improve the image much."""

NOISE_VAR_LOW = 0.85
"""The self-check's range takes the true noise variance between this share of `noise_variance`'s estimate and
the estimate itself: on the grey zero-shot grid the estimate read 0.99-1.19 times the truth (texture leaks in,
most at light noise), and `scripts/selfcheck_grid.py` found every measured gain inside the range."""


@dataclass(frozen=True)
class SelfCheck:
    """What MPI's result is worth, estimated from the noisy image alone, and how it was made safe.

    For pixel-independent, zero-mean noise of variance s (from `noise_variance`), a prediction that never saw a
    pixel's noise differs from the noisy value by (error a) + s in the mean square: that is what the held-out
    pixels measure. Where the net trained, its fill also reproduces a share k of the pixel's own noise
    (memorisation), so there the mean square difference is a + (1 - k)^2 s, smaller by (2k - k^2) s: the two
    residuals give a and k. The output is the blend with the input, `weight` of the input, that minimises the
    expected squared error (1 - w)^2 a + (w + (1 - w) k)^2 s; a fill estimated worse than the input gives way
    to the input entirely (weight 1). Held-out pixels, which the fill never memorised, take k = 0.
    The held-out and trained mean squares, and the standard error of the first, give the gain's range.
    """

    noise_var: float
    fill_error_var: float
    memorised: float
    weight: float
    held_residual: float = 0.0
    held_error: float = 0.0
    trained_residual: float = 0.0

    @property
    def fill_gain_db(self) -> float:
        """Estimated PSNR gain of the fine-tuned fill alone over the input (negative: worse than the input)."""
        return 10 * math.log10(self.noise_var / (self.fill_error_var + self.memorised**2 * self.noise_var))

    @property
    def gain_db(self) -> float:
        """Estimated PSNR gain of the blended output over the input."""
        return 10 * math.log10(
            self.noise_var / blend_error(self.fill_error_var, self.memorised, self.noise_var, self.weight)
        )

    @property
    def gain_range_db(self) -> tuple[float, float]:
        """A low and a high estimate of `gain_db`: the held-out mean square one standard error above and below its
        value, the noise variance at NOISE_VAR_LOW of its estimate and at the estimate, the fill's error at
        least one standard error (finer it cannot be told). A result equal to the input has gained exactly 0."""
        if self.weight == 1.0:
            return 0.0, 0.0
        floor = max(self.held_error, 1e-12)
        low = _gain(self.noise_var * NOISE_VAR_LOW, self.held_residual + self.held_error, self.trained_residual,
                    self.weight, floor)  # fmt: skip
        high = _gain(self.noise_var, self.held_residual - self.held_error, self.trained_residual, self.weight, floor)
        return min(low, self.gain_db), max(high, self.gain_db)

    def to_json(self) -> dict[str, float]:
        low, high = self.gain_range_db
        return {
            "estimated_gain_db": round(self.gain_db, 2),
            "estimated_gain_db_low": round(low, 2),
            "estimated_gain_db_high": round(high, 2),
            "fill_gain_db": round(self.fill_gain_db, 2),
            "input_weight": round(self.weight, 3),
            "memorised_noise": round(self.memorised, 3),
            "noise_sigma": round(math.sqrt(self.noise_var) * 255, 2),
        }


def blend_error(error_var: float, memorised: float, noise_var: float, weight: float) -> float:
    """Expected squared error of w * input + (1 - w) * fill, for a fill with independent error `error_var` that
    reproduces a share `memorised` of the pixel's noise of variance `noise_var`."""
    return (1 - weight) ** 2 * error_var + (weight + (1 - weight) * memorised) ** 2 * noise_var


def _gain(noise_var: float, held: float, trained: float, weight: float, floor: float) -> float:
    """Estimated PSNR gain of the blend at `weight`, from held-out and trained mean squares `held` and `trained`
    and a noise variance, the fill's error taken at least `floor`."""
    memorised = 1 - math.sqrt(min(max(1 - (held - trained) / noise_var, 0.0), 1.0))
    error = blend_error(max(held - noise_var, floor), memorised, noise_var, weight)
    return 10 * math.log10(noise_var / error)


def noise_variance(image: np.ndarray, bins: int = 16) -> float:
    """Mean variance of pixel-independent noise in (H, W, C), signal-dependent noise included: each channel's
    response to Immerkaer's operator (1996, `stabilise.IMMERKAER`) is sorted by local (3x3) brightness into
    equal-count bins, each bin's variance is the robust (median |response| / 0.6745 / 6)^2
    (`stabilise.binned_variances`), and the bins' variances are averaged. Texture leaks in less than through the
    finest Haar band: 3-10 % high on the textured samples, against 11-14 %."""
    x = np.pad(image.astype(np.float64), ((1, 1), (1, 1), (0, 0)), mode="reflect")
    height, width = image.shape[:2]
    windows = [x[i : i + height, j : j + width] for i in range(3) for j in range(3)]
    response = sum(k * w for k, w in zip(IMMERKAER.ravel(), windows, strict=True))
    brightness = sum(windows)
    variances = [
        binned_variances(brightness[..., c].ravel(), response[..., c].ravel(), bins)[1] for c in range(image.shape[-1])
    ]
    return float(np.mean(np.concatenate(variances)))


def holdout_mask(height: int, width: int, seed: int) -> np.ndarray:
    """The (H, W) held-out pixels of an image (HOLDOUT), drawn from their own seeded generator."""
    share, least, most = HOLDOUT
    ratio = min(most, max(share, least / (height * width)))
    return np.random.default_rng([seed, 1]).random((height, width)) < ratio


def self_checked(noisy: np.ndarray, filled: np.ndarray, holdout: np.ndarray) -> tuple[np.ndarray, SelfCheck]:
    """Blend the fill (H, W, C) with the noisy input by the self-check's estimate; both in [0, 1] out."""
    noise_var = max(noise_variance(noisy), 1e-10)
    squares = (filled - noisy) ** 2
    held, trained = squares[holdout], squares[~holdout]
    residual = float(np.mean(held)) if held.size else 2 * noise_var
    margin = ERROR_MARGIN * residual * math.sqrt(2 / max(held.size, 1))
    error_var = max(residual - noise_var, 0.0) + margin
    trained_residual = float(np.mean(trained)) if trained.size else residual
    shortfall = (residual - trained_residual) / noise_var
    memorised = 1 - math.sqrt(min(max(1 - shortfall, 0.0), 1.0))
    spread = float(np.std(held)) / math.sqrt(held.size) if held.size > 1 else residual
    check = SelfCheck(noise_var, error_var, memorised, 1.0, residual, spread, trained_residual)
    if check.fill_gain_db > 0:
        check = dataclasses.replace(check, weight=input_share(error_var, noise_var, memorised))
    held_weight = 1.0 if check.weight == 1.0 else input_share(error_var, noise_var)
    weight = np.where(holdout[..., None], np.float32(held_weight), np.float32(check.weight))
    blended = (1 - weight) * filled + weight * np.clip(noisy, 0.0, 1.0)
    return blended.astype(np.float32), check


class Filled(NamedTuple):
    """MPI's output (H, W, C) in [0, 1] and its self-check (None when switched off)."""

    image: np.ndarray
    check: SelfCheck | None


ZS_N2N_PRESET = Preset(mask_ratio=0.0, shared_mask=False, iters=2000, beta=0.0, lr=1e-3)
"""ZS-N2N's own settings (iterations and learning rate; it uses no mask)."""


def _as_image(noisy: np.ndarray, channels: int | None = None) -> np.ndarray:
    """Check that noisy is (H, W, C) with C = channels (any C when None) and at least 2x2; float32 copy."""
    image = np.asarray(noisy, dtype=np.float32)
    if image.ndim != 3 or (channels is not None and image.shape[-1] != channels) or min(image.shape[:2]) < 2:
        wanted = f"(H, W, {channels})" if channels is not None else "(H, W, C)"
        raise MdnError(f"zero-shot denoising needs an {wanted} image of at least 2x2 pixels, got shape {image.shape}")
    return image


def _deadline(time_budget: float | None) -> float | None:
    return None if time_budget is None else time.monotonic() + time_budget


class _Progress:
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

    def step(self, noisy: Tensor, output: Tensor, holdout: Tensor | None = None) -> Tensor:
        """One iteration on noisy (N, C, H, W): predict hidden pixels (a mask of its own for each of the N),
        fill them into output (returned updated) with the prediction from before this step's update, then
        fine-tune on the hidden pixels. Held-out pixels (N, 1, H, W) are always hidden and never trained on."""
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
        loss = F.mse_loss(prediction * trained, noisy * trained)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return output

    def run(
        self, noisy: np.ndarray, deadline: float | None, progress: _Progress, holdout: np.ndarray | None = None
    ) -> np.ndarray:
        """All iterations on one (H, W, C) image, or as many as fit before `deadline` (time.monotonic()), with
        the (H, W) `holdout` pixels never trained on; returns the running output, initialised to the noisy
        image, unclipped."""
        height, width = noisy.shape[:2]
        x = _unshuffled(torch.from_numpy(np.ascontiguousarray(noisy)).permute(2, 0, 1)[None], self.preset.unshuffle)
        x = x.to(self.device).contiguous(memory_format=torch.channels_last)
        held = None
        if holdout is not None:
            held = _unshuffled(torch.from_numpy(holdout).to(x.dtype)[None, None], self.preset.unshuffle).to(self.device)
        output = x.clone()
        steps = 0
        for _ in range(self.preset.iters):
            if deadline is not None and time.monotonic() >= deadline:
                break
            output = self.step(x, output, held)
            progress.advance()
            steps += 1
        start_weight = self.preset.beta**steps
        if held is not None and steps and 0 < start_weight < 1:
            # held-out pixels were filled at every step: remove the noisy start from their average
            debiased = (output - start_weight * x) / (1 - start_weight)
            output = torch.where(held.bool(), debiased, output)
        output = _shuffled(output, self.preset.unshuffle)[..., :height, :width]
        return output[0].permute(1, 2, 0).cpu().numpy()


def _unshuffled(image: Tensor, factor: int) -> Tensor:
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


def _shuffled(images: Tensor, factor: int) -> Tensor:
    """The inverse of `_unshuffled`, before its crop: (factor², C, H', W') -> (1, C, factor H', factor W')."""
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
    optimiser (the previous slice of a stack) instead of starting from `net`. The self-check holds out the
    same pixels in every tile and blends the whole image at once."""
    image = _as_image(noisy, net.config.channels)
    if tile < MIN_TILE or not 0 <= overlap <= tile // 2:
        raise MdnError(f"tiles need at least {MIN_TILE} pixels and an overlap in [0, tile/2], got {tile}, {overlap}")
    height, width = image.shape[:2]
    grid = TileGrid.cover(height, width, tile, overlap)
    (th, tw), tiles = grid.size, grid.corners()
    fill = fill or IterativeFill(net, preset, seed)
    holdout = holdout_mask(height, width, seed) if self_check else None
    counter = _Progress(preset.iters * len(tiles), progress)
    end = _deadline(time_budget)
    total = np.zeros(image.shape, np.float32)
    for index, (y, x) in enumerate(tiles):
        now = time.monotonic()
        deadline = None if end is None else now + (end - now) / (len(tiles) - index)
        held = None if holdout is None else holdout[y : y + th, x : x + tw]
        out = fill.run(image[y : y + th, x : x + tw], deadline, counter, held)
        total[y : y + th, x : x + tw] += out * grid.weight(y, x)
    rows, columns = grid.coverage()
    out = np.clip(total / rows[:, None, None] / columns[None, :, None], 0.0, 1.0)
    return Filled(*self_checked(image, out, holdout)) if holdout is not None and counter.done else Filled(out, None)


class NoiseNet(nn.Module):
    """ZS-N2N's network: two 3x3 convolutions to `width` channels with LeakyReLU(0.2), then a 1x1 back; it
    predicts the noise, so the denoiser is `denoise(x) = x - net(x)`. Initialised from `generator` like torch's
    default convolution initialisation."""

    def __init__(self, channels: int, generator: torch.Generator, width: int = 48) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, width, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, channels, 1),
        )
        for conv in self.layers[::2]:
            nn.init.kaiming_uniform_(conv.weight, a=math.sqrt(5), generator=generator)
            bound = 1 / math.sqrt(conv.weight[0].numel())
            nn.init.uniform_(conv.bias, -bound, bound, generator=generator)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)

    def denoise(self, x: Tensor) -> Tensor:
        return x - self(x)


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
    image = _as_image(noisy)
    device = torch.device(device)
    y = torch.from_numpy(image).permute(2, 0, 1)[None].to(device).contiguous(memory_format=torch.channels_last)
    net = NoiseNet(image.shape[-1], torch.Generator().manual_seed(seed)).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1000, gamma=0.5)
    counter = _Progress(iters, progress)
    end = _deadline(time_budget)
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
    return np.clip(out[0].permute(1, 2, 0).cpu().numpy(), 0.0, 1.0)


class ZeroShot:
    """Runs MPI or ZS-N2N over (N, H, W, C) planes in [0, 1]: slice by slice, fitting channels to the net.

    A grey net denoises colour planes channel by channel; a colour net with one shared mask sees grey planes
    replicated and averaged back. With `share`, each slice of a stack continues the previous slice's
    fine-tuned network and optimiser instead of starting again from the pre-trained weights. MPI's
    self-check of every plane (and channel group) of the last call is in `checks`.
    """

    def __init__(
        self,
        preset: Preset,
        net: SkipNet | None = None,
        *,
        seed: int = 0,
        tile: int = 512,
        overlap: int = 32,
        share: bool = False,
        time_budget: float | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        progress: ProgressCallback | None = None,
        self_check: bool = True,
    ) -> None:
        self.preset, self.seed, self.tile, self.overlap, self.share = preset, seed, tile, overlap, share
        self.time_budget, self.device, self.dtype, self.progress = time_budget, torch.device(device), dtype, progress
        self.net = net.to(self.device) if net is not None else None
        self.self_check = self_check
        self.checks: list[SelfCheck] = []

    def __call__(self, planes: np.ndarray) -> np.ndarray:
        runs = [(i, c) for i in range(planes.shape[0]) for c in self._channel_groups(planes.shape[-1])]
        end = _deadline(self.time_budget)
        done, fill, result = 0, None, np.empty_like(planes)
        self.checks = []
        for index, (plane, channels) in enumerate(runs):
            budget = None if end is None else max(0.0, (end - time.monotonic()) / (len(runs) - index))

            def report(step: int, total: int, base: int = done) -> None:
                if self.progress:
                    self.progress(base + step, total * len(runs))

            image = planes[plane][..., channels]
            if self.net is None:
                iters = self.preset.iters
                out = zs_n2n(
                    image, iters=iters, lr=self.preset.lr, seed=self.seed, device=self.device, dtype=self.dtype,
                    time_budget=budget, progress=report,
                )  # fmt: skip
            else:
                net_channels = self.net.config.channels
                fitted = np.repeat(image, net_channels, axis=-1) if image.shape[-1] < net_channels else image
                if not self.share or fill is None:
                    fill = IterativeFill(self.net, self.preset, self.seed, self.dtype)
                out, check = mpi_tiled(
                    fitted, self.net, self.preset, tile=self.tile, overlap=self.overlap, time_budget=budget,
                    progress=report, fill=fill, self_check=self.self_check,
                )  # fmt: skip
                self.checks += [check] if check else []
                out = out.mean(axis=-1, keepdims=True) if out.shape[-1] > image.shape[-1] else out
            result[plane][..., channels] = out
            done += self.preset.iters * self._tiles(image.shape)
        return result

    def _channel_groups(self, channels: int) -> list[list[int]]:
        if self.net is not None and self.net.config.channels == 1 and channels > 1:
            return [[c] for c in range(channels)]
        if self.net is not None and channels == 1 and self.net.config.mask_channels != 1:
            raise MdnError("a grey image needs a grey or shared-mask fill network (see mdn models)")
        return [list(range(channels))]

    def _tiles(self, shape: tuple[int, ...]) -> int:
        if self.net is None:
            return 1
        return len(TileGrid.cover(shape[0], shape[1], self.tile, self.overlap))
