"""A denoised picture refined by collaborative Wiener filtering of the noisy one: BM3D's second stage (Dabov et al.
2007) with the denoised picture as its pilot.

Patches similar to each other (found in the pilot, which has no noise to mislead the search) are stacked into a
group; in the group's 3D transform (an 8x8 DCT per patch, a Haar transform across the patches) the noisy
coefficients are weighted by the pilot's share of signal, `pilot² / (pilot² + noise²)`, and the groups' estimates
are averaged back into pixels. Repetition across a picture (cloth, brick, a thumbnail's aliased stripes) is where a
network of a few hundred thousand weights falls short of the noise's floor and where grouping wins it back.

The noise is measured as the detail stage measures it (`detail.Noise`): per DCT frequency and per brightness, in
what the pilot removed, so nobody gives a sigma and JPEG-shaped, correlated or signal-dependent noise gets its own
weights; a group whose own residual is noisier than that (noise that follows the light, not the brightness, as in
Monte Carlo renders) takes its own level. A grey pilot that kept part of a light noise (a stabilised specimen's)
shows it: the noisy plane's finest frequencies then hold more than the residual says (`kept_noise`). Each patch's 2D
DC stays the pilot's (the mean of noise clipped at black, which the network rightly took out). Colour pictures are
filtered in the opponent space (luminance and two chroma axes), all with the luminance's groups.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mdn import allocator
from mdn.nets.dct import dct_basis, opponent
from mdn.stages.detail import MAD, ROWS, SIZE, STRIDE, Noise, padded, patch_sums, row_medians


@dataclass(frozen=True)
class Search:
    """Where a picture's groups come from: a reference patch every `step` pixels each way, its similar patches
    searched within `radius` pixels each way of it."""

    step: int
    radius: int


QUALITY = {"balanced": Search(step=6, radius=6), "high": Search(step=5, radius=8)}
"""The searches of `mdn denoise --quality` (`fast` filters nothing): `high`, and `balanced`, the default, 0.04 dB
below it on the bench's mean of nine noises in 0.66x its time (docs/performance.md). A reference every 4 pixels
gained 0.016 dB over every 5 for 1.4x the time, every 3 (BM3D's) 0.03 for 5.7x."""
GREY_QUALITY = {"balanced": Search(step=4, radius=12), "high": Search(step=3, radius=12)}
"""The searches for a grey picture, whose groups filter one plane instead of three: a reference every 4 pixels
within 12 (every 3 at `high`): 1.6 s a grey megapixel on 2 cores (0.56 with the colour search; a colour
megapixel's stage takes 1.3). Against the colour searches on grey: +0.02 to +0.10 dB on every noise type of the
bench's grey set, +0.06 to +0.09 on a validation set of other crops of its photos, +0.06 to +0.12 on a held-out
set (docs/bench.md)."""


def search_for(quality: str, channels: int) -> Search | None:
    """The search of `mdn denoise --quality` for a picture of `channels` channels (GREY_QUALITY for one), None
    for `fast` (no filtering)."""
    return (GREY_QUALITY if channels == 1 else QUALITY).get(quality)


GROUP = 16
"""Patches per group: the reference and its 15 nearest in the pilot."""
NOISE_SCALE = 1.2
"""The measured noise is taken 1.2 times as strong in colour pictures: what the pilot removed holds a little
texture, and weights from a pilot are optimistic (against 1.0 on thumbnails at sigma 15 and 25 and Gaussian sigma
15: +0.01, +0.01 and +0.13 dB, and the worst image 0.04 dB above its pilot instead of 0.16 below)."""
GREY_NOISE_SCALE = (0.95, 0.7, 1.5)
"""A grey picture's scale: 0.95 plus 0.7 per unit of the noise's growth with the signal (`Noise.dependence`), at
most 1.5. Its own network leaves a better pilot, so noise that ignores the signal wants less than colour's 1.2
(Gaussian, JPEG, aliasing), and noise that grows with it more (Poisson at 1.2-1.3, speckle at 1.5): the pilot's
brightness, by which the noise is looked up, misleads most where the noise follows it (docs/bench.md)."""
KEPT_FREQUENCIES = tuple(u * SIZE + v for u in range(SIZE // 2, SIZE) for v in range(SIZE // 2, SIZE))
"""The finest DCT frequencies (both indices 4 to 7), where a picture holds little but its noise."""
KEPT_FROM = 1.25
"""A grey picture whose noisy plane holds this many times or more the residual's noise at the finest frequencies
(the median ratio over them) had part of its noise kept by the pilot, which the residual then understates: its
scale is at least that ratio (at most GREY_NOISE_SCALE's). Stabilised specimens read 1.32 to 1.69, every
Gaussian, JPEG, thumbnail and correlated case of the photo validation set 1.0 to 1.26 (docs/microscopy.md)."""
KEPT_IMPULSES = 5e-4
"""Nor where this share or more of the plane's values were impulses filled before the network: the filled plane
holds little noise, and the ratio reads its texture (salt and pepper 1.6 to 2.0; a share of at least 1.7e-3, where
no other noise of the bench fills more than 1.3e-4)."""
OWN_MEMBERS = 1
"""A group's own noise is measured in its reference patch alone (63 AC coefficients of the residual): on the
bench's nine noises +0.26 dB on salt and pepper against its first 4 patches, the rest unchanged, and less work."""
GREY_OWN_ABOVE = 2.0
"""A grey picture's group takes its own noise only where that is more than twice what its brightness says (an
impulse, as the detail stage's `IMPULSE`); colour's wherever it is more. A median over 63 coefficients scatters,
so taking the larger of the two wherever it is larger overstates the noise of most groups, and more where the
pilot smoothed texture into the residual: on grey +0.04 dB over the validation set's fifteen cases, salt and
pepper within 0.04 (docs/bench.md)."""
TRIM_PIXELS = 1 << 22
"""From 4 MP on, the stage hands its freed temporaries back to the kernel between its phases (a 24 MP photo
through the default: 1.54 GB at peak instead of 1.82); below, the page faults that follow cost more than the
memory is worth (10 % of the stage's time at 1 MP)."""
BAND_REFERENCES = 1 << 11
"""Reference patches per band: a band's spectra take 8 MB each (2^13 took as long, with 0.3 GB more at 24 MP)."""


def collaborative_wiener(
    noisy: np.ndarray,
    pilot: np.ndarray,
    device: torch.device | str = "cpu",
    out: np.ndarray | None = None,
    search: Search = QUALITY["balanced"],
    noises: PlaneNoise | None = None,
    impulses_filled: float = 0.0,
) -> np.ndarray:
    """The (H, W, C) float32 `pilot` refined from `noisy` (its first C channels) by collaborative Wiener filtering
    of the groups `search` finds, computed on `device`, into `out` (which may be `pilot` itself) or a new array;
    values kept within [0, 1] unless the pilot's pixel was outside.

    The opponent planes are refined one at a time and their corrections added into `out` straight away: the axes
    are orthonormal, so a plane's correction leaves the others' projections as the pilot's, and no picture-sized
    buffer is added (a 24 MP photo's planes take 96 MB each). Each plane's noise is measured in it, or given
    (`noises`: measured over a whole plane of which this is a window); `impulses_filled` is the share of the noisy
    plane's values that were impulses filled before the network."""
    height, width, channels = pilot.shape
    out = np.empty_like(pilot) if out is None else out
    if out is not pilot:
        out[...] = pilot
    if min(height, width) < SIZE + search.radius:
        return out
    bounds = _Bounds(out)
    axes = opponent(channels)
    kept = noises.kept if noises else (None if channels == 1 and impulses_filled < KEPT_IMPULSES else 1.0)
    with torch.inference_mode():
        to_plane = _Planes(height, width, search.step, device)
        luminance = to_plane(out, axes[0])
        groups = _Groups(luminance, to_plane.padded_shape, search)
        brightness = patch_sums(padded(luminance, device), STRIDE)
        _trim(height * width)  # the search's temporaries, before the planes' buffers come
        guide: Tensor | None = luminance
        del luminance
        for a, axis in enumerate(axes):  # one opponent plane at a time: the memory of one
            guide = to_plane(out, axis) if guide is None else guide
            noise = noises.axes[a] if noises else None
            estimate = _estimate(
                to_plane(noisy[..., :channels], axis), guide, groups, brightness, noise, channels, kept
            )
            correction = estimate[:height, :width].sub_(guide[:height, :width]).cpu().numpy()
            guide = estimate = None
            for rows in range(0, height, ROWS):  # row blocks: the products' temporaries stay a block's
                block = slice(rows, rows + ROWS)
                out[block] += correction[block, :, None] * axis.numpy()
            del correction
            _trim(height * width)
    bounds.clip(out)
    return out


def _trim(pixels: int) -> None:
    """The heap's free pages back to the kernel for a picture of TRIM_PIXELS or more."""
    if pixels >= TRIM_PIXELS:
        allocator.release_freed_memory()


class _Bounds:
    """What the refined picture is clipped to: [0, 1], or as far as the pilot's own pixel lies outside it (the
    few such pixels' values kept, not a picture of bounds)."""

    BLOCK = ROWS << 12
    """Values at a time: no picture-sized temporaries."""

    def __init__(self, pilot: np.ndarray) -> None:
        flat = pilot.reshape(-1)
        outside = [start + np.flatnonzero((part < 0) | (part > 1)) for start, part in _blocks(flat)]
        self.outside = np.concatenate(outside)
        self.values = flat[self.outside]

    def clip(self, picture: np.ndarray) -> None:
        """Clip the (contiguous) `picture` in place."""
        flat = picture.reshape(-1)
        refined = flat[self.outside]
        for _, part in _blocks(flat):
            np.clip(part, 0, 1, out=part)
        flat[self.outside] = np.clip(refined, np.minimum(self.values, 0), np.maximum(self.values, 1))


def _blocks(flat: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(start, view) of a flat array's blocks of `_Bounds.BLOCK` values."""
    for start in range(0, flat.size, _Bounds.BLOCK):
        yield start, flat[start : start + _Bounds.BLOCK]


class _Planes:
    """(H, W, C) pictures as (H', W') opponent planes, reflected at the bottom and right to whole reference `step`s:
    every pixel is in some reference patch."""

    def __init__(self, height: int, width: int, step: int, device: torch.device | str) -> None:
        self.extra = [(-(n - SIZE)) % step for n in (height, width)]
        self.padded_shape = (height + self.extra[0], width + self.extra[1])
        self.device = device

    def __call__(self, picture: np.ndarray, axis: Tensor) -> Tensor:
        """(H', W'): the picture's plane along one opponent `axis` (C,)."""
        plane = torch.from_numpy(np.asarray(picture, dtype=np.float32) @ axis.numpy()).to(self.device)
        return F.pad(plane[None, None], (0, self.extra[1], 0, self.extra[0]), mode="reflect")[0, 0]


class _Groups:
    """The GROUP patches nearest each reference patch in a (H, W) guide plane (squared distance over the patch,
    within the search's radius), as the flat indices of their top-left pixels: `corners` (N, GROUP), references in
    row-major order on the search's grid (`rows` x `cols`), each group's first member its reference (where other
    patches are as near, flat or clipped ground, the reference still counts: its own noise is measured in it, and
    the references cover every pixel)."""

    def __init__(self, guide: Tensor, shape: tuple[int, int], search: Search) -> None:
        height, width = shape
        step, radius = search.step, search.radius
        index = torch.int32 if height * width < 2**31 else torch.int64  # flat indices: half the memory of int64
        self.rows, self.cols = (height - SIZE) // step + 1, (width - SIZE) // step + 1
        far = max(float(guide.max()), -float(guide.min())) * 4 + 1  # outside: never nearer than a patch inside
        wide = F.pad(guide[None, None], (radius,) * 4, value=far)[0, 0]
        span = 2 * radius + 1
        band = max(1, BAND_REFERENCES // self.cols)
        self.corners = torch.empty(self.rows * self.cols, GROUP, dtype=index, device=guide.device)
        for first in range(0, self.rows, band):
            last = min(first + band, self.rows)
            top, bottom = step * first, step * (last - 1) + SIZE
            centre = guide[top:bottom]
            distances = []
            for dy in range(span):
                rows = wide[top + dy : bottom + dy]  # (h, W + 2R)
                shifted = rows.unfold(1, width, 1).permute(1, 0, 2)  # (span, h, W): every dx
                square = (shifted - centre).square_()
                distances.append(F.avg_pool2d(square[:, None], SIZE, step)[:, 0])  # (span, rows, cols)
            distances = torch.cat(distances).flatten(1).T  # (n, span²), offsets dy-major
            distances[:, radius * span + radius] = -1.0  # the reference first, before any patch as near as it
            nearest = distances.topk(GROUP, dim=1, largest=False, sorted=True).indices
            dy, dx = nearest // span - radius, nearest % span - radius
            ref_y = step * torch.arange(first, last, device=guide.device).repeat_interleave(self.cols)
            ref_x = step * torch.arange(self.cols, device=guide.device).repeat(last - first)
            self.corners[first * self.cols : last * self.cols] = (ref_y[:, None] + dy) * width + ref_x[:, None] + dx
        del wide
        sums = F.avg_pool2d(guide[None, None], SIZE, 1)[0, 0].mul_(SIZE).flatten()  # rows of width - SIZE + 1
        self.brightness = torch.empty(self.corners.shape, device=guide.device)
        """(N, GROUP): each member patch's DC in the guide, its brightness."""
        for start in range(0, len(self.corners), BAND_REFERENCES):  # bands: no picture-sized index temporaries
            corners = self.corners[start : start + BAND_REFERENCES]
            at = (corners - (SIZE - 1) * (corners // width)).flatten()  # the corner's place in `sums`
            self.brightness[start : start + BAND_REFERENCES] = sums.index_select(0, at).view_as(corners)
        pixel = torch.arange(SIZE, device=guide.device, dtype=index)
        self.pixels = (pixel[:, None] * width + pixel).flatten()  # a patch's pixels from its corner


@dataclass(frozen=True)
class PlaneNoise:
    """A picture's noise as the stage weighs it, measured over a whole plane: per opponent axis (`axes`), and how
    much of it a grey pilot kept (`kept_noise`; 1.0 where none, or for colour)."""

    axes: list[Noise]
    kept: float = 1.0


def kept_noise(noisy: Noise, residual: Noise) -> float:
    """How many times the residual's noise the noisy plane holds at the finest frequencies (the median ratio over
    KEPT_FREQUENCIES, each measured as `Noise` measures it): about 1 where the pilot kept none of it."""
    frequencies = list(KEPT_FREQUENCIES)
    return float((noisy.sigma[frequencies] / residual.sigma[frequencies]).median())


def noise_scale(noise: Noise, channels: int, kept: float = 1.0) -> float:
    """How much stronger than measured the noise of a picture of `channels` channels is taken, `kept` times the
    residual's noise standing in its noisy plane (`kept_noise`)."""
    if channels != 1:
        return NOISE_SCALE
    base, per_dependence, most = GREY_NOISE_SCALE
    scale = max(base + per_dependence * noise.dependence, base)
    if kept >= KEPT_FROM:
        scale = max(scale, kept)
    return min(scale, most)


def own_above(channels: int) -> float:
    """How many times its brightness's noise a group's own must be to be taken, in a picture of `channels`."""
    return GREY_OWN_ABOVE if channels == 1 else 1.0


def _estimate(
    observed: Tensor,
    guide: Tensor,
    groups: _Groups,
    brightness: Tensor,
    noise: Noise | None,
    channels: int,
    kept: float | None,
) -> Tensor:
    """(H', W'): an opponent plane's collaborative Wiener estimate from its noisy and pilot planes (of a picture of
    `channels` channels), band by band of reference patches; `brightness` is the luminance's patch sums on the
    detail stage's grid (`detail.Noise`); the residual's noise and the noise the pilot `kept` measured unless
    given."""
    device = observed.device
    if noise is None:
        noise = Noise.measure(padded(observed - guide, device), brightness)
    if kept is None:
        kept = kept_noise(Noise.measure(padded(observed, device), brightness), noise)
    scale, own_ratio = noise_scale(noise, channels, kept), own_above(channels)
    _trim(observed.numel())  # the residual's pages, before the sums' come
    basis = dct_basis(SIZE).to(device).reshape(SIZE * SIZE, SIZE * SIZE)  # (frequencies, pixels)
    across = _haar(GROUP).to(device)
    numerator = torch.zeros(observed.numel(), device=device)
    weights = torch.zeros_like(numerator)  # the group weights at each patch's corner
    planes = observed.flatten(), guide.flatten()
    for first in range(0, len(groups.corners), BAND_REFERENCES):
        band = slice(first, first + BAND_REFERENCES)
        corners = groups.corners[band].T.contiguous()  # (GROUP, n): member-major
        where = (corners[..., None] + groups.pixels).flatten()
        noisy, pilot = (  # index_select: int32 indices gathered as they are (indexing widens them to int64 first)
            (plane.index_select(0, where).view(-1, SIZE * SIZE) @ basis.T).view(GROUP, -1, SIZE * SIZE)
            for plane in planes
        )
        weight, values = _group_estimates(noisy, pilot, noise, scale, groups.brightness[band].T, across, own_ratio)
        numerator.index_add_(0, where, (values.view(-1, SIZE * SIZE) @ basis).flatten())
        weights.index_add_(0, corners.flatten(), weight.repeat(GROUP))
    shape = observed.shape
    del observed, planes  # the caller's noisy plane goes before the covering's temporaries come
    numerator, weights = numerator.view(shape), weights.view(shape)
    for top in range(0, shape[0], ROWS):  # row blocks: the covering's temporaries stay a block's
        above = min(top, SIZE - 1)  # rows of corners above the block whose patches reach into it
        corners_before = F.pad(weights[None, None, top - above : top + ROWS], (SIZE - 1, 0, SIZE - 1 - above, 0))
        covering = F.avg_pool2d(corners_before, SIZE, 1)[0, 0]  # the mean weight of a pixel's patches
        numerator[top : top + ROWS].div_(covering).div_(SIZE * SIZE)
    return numerator


def _group_estimates(
    noisy: Tensor, pilot: Tensor, noise: Noise, scale: float, brightness: Tensor, across: Tensor, above: float
) -> tuple[Tensor, Tensor]:
    """From (GROUP, n, 64) patch spectra of the noisy and pilot planes: each group's weight (n,) and its
    estimate's patch spectra, weighted (GROUP, n, 64), the noise taken `scale` times as measured and a group's
    own where it is more than `above` times its patches'."""
    magnitudes = (noisy - pilot).abs_().div_(noise.sigma)
    magnitudes[..., 0] = 0.0  # the DC is no evidence of noise (the detail stage's scores leave it out too)
    factors = noise.factors(magnitudes, brightness)  # (GROUP, n, 1): a patch's own on impulses
    own = MAD * row_medians(magnitudes[:OWN_MEMBERS, :, 1:].transpose(0, 1).flatten(1))  # (n,)
    del magnitudes
    # the group's noise: its patches' mean square factor, or what its own residual says where that is more
    group_square, own_square = factors.square_().mean(dim=0), own.square_()[:, None]  # (n, 1)
    group_square = torch.where(own_square > above**2 * group_square, own_square, group_square)
    variance = (noise.sigma * scale).square() * group_square  # (n, 64)
    noisy, pilot = ((across @ spectra.view(GROUP, -1)).view_as(spectra) for spectra in (noisy, pilot))
    means = pilot[..., 0].clone()
    gain = pilot.square_()
    gain.div_(gain + variance)
    estimate = noisy.mul_(gain)
    estimate[..., 0] = means  # each patch's DC stays the pilot's
    gain[..., 0] = 1.0
    weight = gain.square_().mul_(variance).sum(dim=(0, 2)).clamp_min_(1e-20).reciprocal_()  # BM3D's (n,)
    values = (across.T @ estimate.view(GROUP, -1)).view_as(estimate)
    return weight, values.mul_(weight[:, None])


def _haar(size: int) -> Tensor:
    """(size, size) orthonormal Haar transform, `size` a power of 2; row 0 the mean."""
    matrix = torch.ones(1, 1)
    step = torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0, -1.0]])
    while matrix.shape[0] < size:
        n = matrix.shape[0]
        matrix = torch.cat([torch.kron(matrix, step[0]), torch.kron(torch.eye(n), step[1])]) / math.sqrt(2)
    return matrix
