"""Texture a denoiser smoothed, put back from what it removed.

A network that trades detail against noise flattens fine texture it cannot tell from noise (woven cloth, a web
thumbnail's aliased stripes). What it removed, the residual `noisy - denoised`, is then the noise plus that
texture; texture is sparse in an 8x8 DCT (a few large coefficients) and the noise is not, so the coefficients
that stand well above the noise are texture, and go back. This is BM3D's two stages (hard thresholding, then an
empirical Wiener step with the first estimate as pilot; Dabov et al. 2007) applied to the residual, the "method
noise" of Buades et al. (2005), in luminance only (chroma residuals of camera noise are coloured blotches, not
texture).

The noise's strength is measured in the residual itself, so nobody has to give it: per DCT frequency (the median
absolute coefficient; correlated and JPEG-shaped noise differ per frequency), times a factor per brightness of
the denoised picture (the median over frequencies, in 16 brightness bins: Poisson, speckle and camera noise grow
with the signal). A patch whose own factor is twice its brightness's is taken as it is (an impulse spreads over
every frequency of the patches that hold it), so salt and pepper stays out. The DC coefficients stay out too:
noise clipped at black or white has a mean the network rightly removed. Texture that covers most of a picture at
one frequency raises that frequency's measured noise and stays smoothed; noise that varies with the light rather
than with brightness (Monte Carlo renders) is partly put back (docs/training.md, "Texture put back after the
network"). The engine then refines the result by collaborative Wiener filtering with it as pilot (`wiener`), which
measures its noise with `Noise` too.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mdn.nets.dct import aggregation_kernel, analysis_kernel, dct_basis

SIZE, STRIDE = 8, 2
"""Patches of 8x8, one every 2 pixels each way."""
THRESHOLD = 3.5
"""A coefficient is texture where it stands this many noise standard deviations above zero."""
IMPULSE = 2.0
"""A patch whose noise factor is this many times its brightness bin's is taken at its own factor."""
BINS = 16
"""Brightness bins (equal counts of patches) of the noise's strength."""
SAMPLES = 1 << 16
"""Patches at most (on a regular grid) from which the noise is measured."""
BAND_PATCHES = 1 << 16
"""Patches per band (of at least 8 patch rows): a band's scores stay in cache whatever the image's width (a
6000-pixel-wide picture: 0.47 s per megapixel in bands of 16 rows, 0.81 in bands of 64)."""
HALO = 4
"""Patch rows beyond a band's that its first estimate needs (every patch overlapping the band's patches)."""
ROWS = 256
"""Rows at a time when the texture is added back."""
MAD = 1.4826
"""Standard deviation over the median absolute value, for Gaussian noise."""
DARK = 0.4
"""Brightness (a patch's sum, 8 times its mean) below which a bin says nothing of how the noise grows with the
signal: there the noise is clipped at black."""


def restore_detail(
    noisy: np.ndarray,
    denoised: np.ndarray,
    device: torch.device | str = "cpu",
    out: np.ndarray | None = None,
    noise: Noise | None = None,
) -> np.ndarray:
    """The (H, W, C) float32 `denoised` image with the texture it removed from `noisy` (its first C channels) put
    back along the channels' mean axis (luminance), computed on `device`, into `out` (which may be `denoised`
    itself) or a new array; values kept within [0, 1] unless the denoised pixel was outside. The residual's noise
    is measured in it, or given (`noise`: measured over a whole plane of which this is a window)."""
    height, width, channels = denoised.shape
    out = np.empty_like(denoised) if out is None else out
    if min(height, width) < SIZE:
        out[...] = denoised
        return out
    axis = luminance_axis(channels)
    level = np.asarray(denoised, dtype=np.float32) @ axis
    with torch.inference_mode():
        brightness = patch_sums(padded(level, device), STRIDE)
        residual = np.subtract(np.asarray(noisy[..., :channels], dtype=np.float32) @ axis, level, out=level)
        detail = _restore(padded(residual, device), brightness, noise)
    del level, residual
    pad = SIZE - STRIDE
    detail = detail[pad : pad + height, pad : pad + width].cpu().numpy()
    for rows in range(0, height, ROWS):  # row blocks: temporaries stay a block's
        block = slice(rows, rows + ROWS)
        before = denoised[block]
        after = before + detail[block, :, None] * axis
        out[block] = np.clip(after, np.minimum(before, 0), np.maximum(before, 1), out=after)
    return out


def luminance_axis(channels: int) -> np.ndarray:
    """(C,): the channels' mean axis, unit length: where the texture is measured and put back."""
    return np.full(channels, 1 / math.sqrt(channels), dtype=np.float32)


def padded(plane: np.ndarray | Tensor, device: torch.device | str) -> Tensor:
    """(1, 1, H', W'): the (H, W) plane (an array, or a tensor already on `device`) reflected by SIZE - STRIDE on
    every side, and on the bottom and right to a whole number of strides, so that patches every STRIDE pixels
    cover every pixel SIZE / STRIDE squared times."""
    pad = SIZE - STRIDE
    extra = [(-(n + 2 * pad - SIZE)) % STRIDE for n in plane.shape]
    tensor = plane if isinstance(plane, Tensor) else torch.from_numpy(np.ascontiguousarray(plane))
    tensor = tensor[None, None].to(device)
    return F.pad(tensor, (pad, pad + extra[1], pad, pad + extra[0]), mode="reflect")


class _Transform:
    """The 8x8 DCT of every patch on the stride grid in units of the noise's standard deviation per frequency
    (`sigma`, the DC left out), and its overlap-add back to pixels, as convolutions of channels-last blocks
    (`nets.dct`): (1, 1, H, W) even-sized planes <-> (gh, gw, 64) scores, frequencies innermost."""

    def __init__(self, sigma: Tensor) -> None:
        basis = dct_basis(SIZE).to(sigma.device)
        scale = 1 / sigma
        scale[0] = 0.0
        self.analyse = analysis_kernel(basis * scale[:, None, None, None], STRIDE)
        self.aggregate = aggregation_kernel(basis * sigma[:, None, None, None], STRIDE)

    def __call__(self, plane: Tensor) -> Tensor:
        blocks = F.pixel_unshuffle(plane, STRIDE).contiguous(memory_format=torch.channels_last)
        return F.conv2d(blocks, self.analyse)[0].permute(1, 2, 0)

    def inverse(self, scores: Tensor) -> Tensor:
        grid = scores.permute(2, 0, 1)[None]  # a channels-last view
        return F.pixel_shuffle(F.conv2d(grid, self.aggregate, padding=SIZE // STRIDE - 1), STRIDE)


class Noise:
    """A residual's noise: a standard deviation per frequency (`sigma`, (64,)) times a factor per brightness bin
    (`edges` between bins, `factor` per bin), from (n, 64) DCT coefficients of the residual's patches (the DC's
    place included) and the (n,) brightness of the same patches (`measure` samples a residual plane); how it grows
    with the signal is `dependence`: the slope of log factor over log brightness (about 0 for Gaussian, JPEG and
    aliasing noise, 0.5 for Poisson, 1 for speckle)."""

    def __init__(self, coefficients: Tensor, brightness: Tensor) -> None:
        self.sigma = (MAD * coefficients.abs().median(dim=0).values).clamp_min(1e-8)
        own = _own_factor(coefficients.abs() / self.sigma)
        quantiles = torch.linspace(0, 1, BINS + 1, device=brightness.device)[1:-1]
        self.edges = torch.quantile(brightness, quantiles)
        which = torch.bucketize(brightness, self.edges)
        bins = [which == b for b in range(BINS)]
        overall = own.median()
        factors = [own[inside].median() if inside.any() else overall for inside in bins]
        self.factor = torch.stack(factors).clamp_min(1e-8)
        self.dependence = _dependence([brightness[inside] for inside in bins], self.factor)

    @classmethod
    def measure(cls, residual: Tensor, brightness: Tensor) -> Noise:
        """The noise of a padded (1, 1, H', W') residual plane whose patches on the stride grid have brightness
        (gh, gw), measured on at most SAMPLES of them (a regular grid)."""
        return cls(*noise_samples(residual, brightness, max(1, math.ceil(math.sqrt(brightness.numel() / SAMPLES)))))

    def factors(self, magnitudes: Tensor, brightness: Tensor) -> Tensor:
        """(gh, gw, 1): the noise factor of each patch from its (gh, gw, 64) score magnitudes: its brightness's,
        or where most AC scores stand above IMPULSE times that, the patch's own (an impulse's patch)."""
        factor = self.factor[torch.bucketize(brightness.contiguous(), self.edges)][..., None]
        above = _steps(magnitudes, (IMPULSE / MAD) * factor).sum(dim=-1, keepdim=True)  # the DC scores 0
        impulse = (2 * above > SIZE * SIZE - 1)[..., 0]
        if impulse.any():
            factor[impulse] = _own_factor(magnitudes[impulse])[:, None]
        return factor


def _dependence(brightness: list[Tensor], factor: Tensor) -> float:
    """The least-squares slope of log `factor` over the log of each bin's median brightness (`brightness`: the
    patches' of each bin), over the bins above DARK holding at least 20 patches; 0 where fewer than three bins do."""
    points = [
        (float(inside.median().log()), float(factor[b].log()))
        for b, inside in enumerate(brightness)
        if len(inside) >= 20 and float(inside.median()) > DARK
    ]
    if len(points) < 3:
        return 0.0
    x, y = np.array(points).T
    x = x - x.mean()
    return float((x * (y - y.mean())).sum() / max(float((x * x).sum()), 1e-12))


def noise_samples(residual: Tensor, brightness: Tensor, every: int) -> tuple[Tensor, Tensor]:
    """(n, 64) DCT coefficients and (n,) brightness of every `every`-th patch each way of a padded (1, 1, H', W')
    residual plane's stride grid, whose patches have brightness (gh, gw)."""
    basis = dct_basis(SIZE).to(residual.device)
    coefficients = F.conv2d(residual, basis, stride=STRIDE * every)[0].flatten(1).T
    return coefficients, brightness[::every, ::every].flatten()


def _steps(values: Tensor, thresholds: Tensor) -> Tensor:
    """1.0 where a value stands above its threshold, else 0.0 (float steps: boolean masks take a slow path)."""
    return torch.sign(values - thresholds).clamp_(min=0)


def _own_factor(magnitudes: Tensor) -> Tensor:
    """(n,): the noise factor of each of (n, 64) patches' score magnitudes alone, their median over the AC."""
    return MAD * row_medians(magnitudes[:, 1:])


def row_medians(values: Tensor) -> Tensor:
    """(n,): the median of each row of (n, m) values (the lower of the middle two where m is even, as torch's); on
    the CPU by introselect (numpy's partition: the same values as torch's sort-based median, in under half its
    time for rows of 63)."""
    if values.device.type != "cpu" or values.dtype not in (torch.float32, torch.float64):
        return values.median(dim=1).values
    middle = (values.shape[1] - 1) // 2
    return torch.from_numpy(np.partition(values.numpy(), middle, axis=1)[:, middle])


def patch_sums(plane: Tensor, stride: int) -> Tensor:
    """(gh, gw): each patch's DC coefficient (its sum over SIZE), as brightness."""
    return F.avg_pool2d(plane, SIZE, stride)[0, 0] * SIZE


def _restore(residual: Tensor, brightness: Tensor, noise: Noise | None) -> Tensor:
    """(H', W'): the texture in the padded residual, given each patch's brightness (gh, gw), estimated band by
    band of patch rows: scores above THRESHOLD times their patch's noise factor kept, then each score weighted by
    the kept estimate's share of signal (the empirical Wiener step)."""
    noise = Noise.measure(residual, brightness) if noise is None else noise
    transform = _Transform(noise.sigma)
    rows, cols = brightness.shape
    row_count, col_count = (_coverage(n, residual.device) for n in (rows, cols))
    detail = torch.zeros_like(residual)
    band = max(8, BAND_PATCHES // cols)
    for first in range(0, rows, band):
        last = min(first + band, rows)
        low, high = max(first - HALO, 0), min(last + HALO, rows)  # patch rows of the first estimate
        span = slice(STRIDE * low, STRIDE * (high - 1) + SIZE)
        scores = transform(residual[..., span, :])
        magnitudes = scores.abs()
        factor = noise.factors(magnitudes, brightness[low:high])
        kept = _steps(magnitudes, THRESHOLD * factor).mul_(scores)
        del magnitudes
        first_estimate = transform.inverse(kept) / (row_count[span, None] * col_count)
        inner = slice(first - low, last - low)  # the band's own patches, whose pixels the first estimate covers whole
        start = STRIDE * (first - low)
        weight = transform(first_estimate[..., start : start + STRIDE * (last - first - 1) + SIZE, :]).square_()
        weight.div_(weight + factor[inner].square()).mul_(scores[inner])
        detail[..., STRIDE * first : STRIDE * (last - 1) + SIZE, :] += transform.inverse(weight)
    return detail[0, 0].div_(row_count[:, None]).div_(col_count)


def _coverage(patches: int, device: torch.device) -> Tensor:
    """(STRIDE * (patches - 1) + SIZE,): how many of `patches` patches on the stride grid cover each pixel of a
    row or column; a pixel's patches are the product of its row's and its column's."""
    ones = torch.ones(1, 1, patches, device=device)
    return F.conv_transpose1d(ones, torch.ones(1, 1, SIZE, device=device), stride=STRIDE)[0, 0]
