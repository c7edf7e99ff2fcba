"""A convolutional U-Net denoiser for CPUs, in the spirit of Intel Open Image Denoise's network, with the
masked-training paper's masks carried over to convolutions.

Plain 3x3 convolutions with ReLU, max-pooling down and nearest-neighbour upsampling with skip concatenations
up, as in OIDN, which makes the network fast wherever oneDNN, AMX or cuDNN run convolutions; thinner than OIDN's,
so that a few hours of CPU training suffice.

Masked training hides most input pixels (set to `MASK_VALUE`, as the masked SwinIR's are) and, inside the
network, the SwinIR hides tokens before every attention layer, at test time too. A U-Net has no tokens; the
in-network masks that stand in for that here are chosen by the configuration (each measured in docs/training.md):

- `feature_mask`: every convolution but the last sees a position's own features whole and a random share of its
  neighbours hidden, drawn afresh per call and kept at test, where a few passes are averaged. It is the
  attention mask's counterpart: the SwinIR hides tokens from each other's attention while each token's own
  features pass on through the block's shortcut;
- `partial`: the first convolution is a partial convolution (Liu et al. 2018) that sees only the visible pixels
  and rescales by their count, so a fully visible test image gives its features the statistics that a masked
  training crop gave them;
- `own_pixel`: with `partial`, each visible pixel's own value also enters unscaled, as a SwinIR token carries its
  own pixel;
- `dropout`: channel dropout before the last convolution in training only ("Reflash Dropout", Kong et al. 2022),
  the cheap reference.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mdn.nets.dct import DctShrink
from mdn.nets.dynamic_filter import DynamicFilter
from mdn.nets.self_similarity import WindowSelfSimilarity
from mdn.nets.swinir import MASK_VALUE, Generators, per_sample


@dataclass(frozen=True)
class UNetConfig:
    """Sizes of a U-Net: `widths[i]` channels at 1/2^i of the image's resolution, and its masks."""

    widths: tuple[int, ...] = (32, 48, 64, 80, 96)
    channels: int = 3
    residual: bool = True
    """Add the input to the output (the network predicts the noise); masked networks predict the image."""
    feature_mask: float = 0.0
    """The share of positions hidden from their neighbours' convolutions, in training and at test."""
    partial: bool = False
    """A partial first convolution: input pixels at `MASK_VALUE` are treated as missing."""
    own_pixel: bool = False
    """With `partial`: each visible pixel's own value also enters through a 1x1 convolution, unscaled, so that
    a test image's pixels enter as a training crop's visible ones did (a SwinIR token carries its own pixel)."""
    dropout: float = 0.0
    """Channel dropout before the last convolution, in training only."""
    aux: int = 0
    """Auxiliary input channels after the image's (a render's albedo and normal); the output has `channels`."""
    aux_encoder: int = 0
    """Width of the auxiliary channels' own encoder (`AuxEncoder`), whose features join the first two levels'
    through projections that start at zero; 0: the auxiliary channels enter with the image alone."""
    self_similarity: int = 0
    """Window side (in half-resolution positions) of two non-local blocks after the decoder's half-resolution
    level (`WindowSelfSimilarity`, plain and shifted windows); 0: none."""
    dct_sigmas: tuple[float, ...] = ()
    """Noise levels (0-255) of a `DctShrink` stage before the network: the input's overlapping 8x8 DCT
    coefficients shrunk by learned gains at these levels' thresholds, the residual taken from its output; ():
    none."""
    dct_blend: float = 0.5
    """The stage's starting shrinkage: the input blended with hard thresholding at its levels by this share."""
    kernel: int = 0
    """Side of the per-pixel kernels of a kernel-predicting output (`KernelFilter`): the network predicts
    weights and the output is a weighted average of input pixels, as IDF's (Kim et al. 2025) and KPCN's; 0: the
    network predicts pixels."""
    kernel_passes: int = 1
    """With `kernel`: how many kernels are applied one after the other, each to the last one's output."""
    refine: int = 0
    """Iterations of a `DynamicFilter` on the output: 3x3 kernels predicted from the estimate itself, the same
    small network each time (IDF's iteration); 0: none."""
    refine_width: int = 32
    """With `refine`: the dynamic filter's feature channels."""

    @property
    def window(self) -> int:
        """Image sides must be a multiple of this: the coarsest level's downscaling."""
        return 2 ** (len(self.widths) - 1)

    @property
    def stochastic(self) -> bool:
        """Whether its outputs at test time are random (averaged over passes)."""
        return self.feature_mask > 0

    def activation_bytes_per_pixel(self) -> int:
        """Float32 bytes of the largest activations alive at once in inference, per image pixel: the first
        level's skip, its decoder's concatenation and the convolution's output."""
        return 4 * 5 * self.widths[0] + self.self_similarity**2  # attention weights: n² floats per 4 pixels

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "widths": list(self.widths), "dct_sigmas": list(self.dct_sigmas)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UNetConfig:
        return cls(**{**data, "widths": tuple(data["widths"]), "dct_sigmas": tuple(data.get("dct_sigmas", ()))})


UNET_SIZES: dict[str, UNetConfig] = {
    "unet-tiny": UNetConfig(widths=(8, 16)),
    "unet": UNetConfig(),
    "unet-feature-mask": UNetConfig(residual=False, feature_mask=0.75),
    "unet-partial": UNetConfig(residual=False, partial=True),
    "unet-own-pixel": UNetConfig(residual=False, partial=True, own_pixel=True),
    "unet-dropout": UNetConfig(dropout=0.5),
    "unet-nonlocal": UNetConfig(self_similarity=16),
    "unet-aux-encoder": UNetConfig(aux=6, aux_encoder=32),
    "unet-dct": UNetConfig(dct_sigmas=(10.0, 18.0, 32.0)),
    "unet-kpn": UNetConfig(residual=False, partial=True, kernel=5, kernel_passes=2),
    "unet-dct-kpn": UNetConfig(residual=False, dct_sigmas=(10.0, 18.0, 32.0), kernel=5, kernel_passes=2),
    "unet-kpn-refine": UNetConfig(residual=False, partial=True, kernel=5, kernel_passes=1, refine=6),
}
"""Named U-Nets: `unet-tiny` for smoke tests, `unet` for the CPU default, the masked designs and `unet-nonlocal`
(with self-similarity blocks), `unet-aux-encoder` (a render card's albedo and normal through their own encoder),
`unet-dct` (the input blended with sliding-DCT hard-thresholding estimates at three noise levels first),
`unet-kpn` (the masked U-Net predicting two 5x5 kernels per pixel, applied in turn to the input) and
`unet-dct-kpn` (the default's network with that output), `unet-kpn-refine` (one 5x5 kernel pass, then six
iterations of a small dynamic filter on the result)."""


def _conv(inputs: int, outputs: int) -> nn.Conv2d:
    return nn.Conv2d(inputs, outputs, 3, padding=1)


def visible_pixels(x: Tensor) -> Tensor:
    """(B, 1, H, W) float: 1 where a pixel is shown, 0 where the input mask set every channel to MASK_VALUE (a
    value clipped images never hold)."""
    return (x != MASK_VALUE).any(dim=1, keepdim=True).to(x.dtype)


class PartialConv(nn.Conv2d):
    """A 3x3 convolution over the visible pixels only, rescaled by 9 / (visible pixels in the window); windows
    with none give 0. On a fully visible image it is a plain convolution. With `own_pixel`, a 1x1 convolution of
    each visible pixel's own value is added, unscaled."""

    def __init__(self, inputs: int, outputs: int, own_pixel: bool = False) -> None:
        super().__init__(inputs, outputs, 3, padding=1)
        self.own = nn.Conv2d(inputs, outputs, 1, bias=False) if own_pixel else None

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        visible = visible_pixels(x)
        count = F.conv2d(visible, torch.ones(1, 1, 3, 3, dtype=x.dtype, device=x.device), padding=1)
        seen = x * visible
        summed = F.conv2d(seen, self.weight, None, padding=1)
        scale = (9.0 / count.clamp(min=1.0)) * (count > 0).to(x.dtype)
        out = summed * scale.to(summed.dtype) + self.bias.to(summed.dtype)[None, :, None, None] * (count > 0)
        return out + self.own(seen) if self.own is not None else out


def hidden_positions(x: Tensor, ratio: float, generator: Generators) -> Tensor:
    """(B, 1, H, W) in x's dtype: 1 at a random `ratio` of positions (one Bernoulli draw per position, per sample
    from its own generator when given a sequence)."""

    def draw(x: Tensor, generator: torch.Generator | None) -> Tensor:
        b, _, h, w = x.shape
        return (torch.rand(b, 1, h, w, generator=generator, device=x.device) < ratio).to(x.dtype)

    return per_sample(draw, x, generator)


def neighbour_masked(conv: nn.Conv2d, x: Tensor, hidden: Tensor) -> Tensor:
    """`conv(x)` where positions marked in `hidden` are invisible to their neighbours but not to themselves: the
    convolution of the visible positions plus its centre tap at the hidden ones."""
    centre = conv.weight[:, :, 1:2, 1:2]
    return conv(x * (1 - hidden)) + F.conv2d(x * hidden, centre)


class KernelFilter(nn.Module):
    """Per-pixel kernels applied in turn: (B, C, H, W) image and (B, passes * k², H, W) logits (as many passes as
    the logits hold) -> the image filtered by each pass's softmax-normalised k x k kernel (shared by the
    channels), so every output pixel is a convex combination of input pixels. The first pass weighs only the
    visible pixels (`visible_pixels`), so a masked training crop is averaged over what it shows and a test image
    over all of it."""

    def __init__(self, side: int) -> None:
        super().__init__()
        self.side = side

    def forward(self, image: Tensor, logits: Tensor) -> Tensor:
        k, r = self.side, self.side // 2
        h, w = image.shape[-2:]
        shown = visible_pixels(image)
        image = image * shown
        for pass_logits in logits.float().contiguous().split(k * k, dim=1):  # a plane per tap, not channels-last
            weights = torch.exp(pass_logits - pass_logits.amax(dim=1, keepdim=True))
            source = F.pad(torch.cat([image, shown], dim=1), (r, r, r, r))  # outside the image: not shown
            total = source.new_zeros(source.shape[0], source.shape[1], h, w)
            for tap in range(k * k):  # in place: 2.4x faster than summing new tensors, and than unfold
                dy, dx = divmod(tap, k)
                total.addcmul_(weights[:, tap : tap + 1], source[..., dy : dy + h, dx : dx + w])
            image, shown = total[:, :-1] / total[:, -1:].clamp(min=1e-12), torch.ones_like(shown)
        return image


class AuxEncoder(nn.Module):
    """A render's auxiliary channels (albedo, normal) through convolutions of their own, to features added to a
    U-Net's full- and half-resolution levels by 1x1 projections that start at zero (so a card without it starts
    a network with it as it was). Where they enter the first convolution alone they share its 32 filters with the
    noisy image, and their weights, started at zero, stay small (in `unet-render` after 22,000 steps, an eighth
    of the image's for albedo and a thirty-fifth for normal)."""

    def __init__(self, aux: int, width: int, levels: tuple[int, int]) -> None:
        super().__init__()
        self.full = nn.ModuleList([_conv(aux, width), _conv(width, width)])
        self.coarse = _conv(width, width)
        self.into = nn.ModuleList(nn.Conv2d(width, channels, 1) for channels in levels)
        for projection in self.into:
            nn.init.zeros_(projection.weight)
            nn.init.zeros_(projection.bias)

    def forward(self, aux: Tensor) -> tuple[Tensor, Tensor]:
        full = F.relu(self.full[1](F.relu(self.full[0](aux))))
        coarse = F.relu(self.coarse(F.max_pool2d(full, 2)))
        return self.into[0](full), self.into[1](coarse)


class UNet(nn.Module):
    """(B, C + aux, H, W) noisy images in [0, 1] and their auxiliary channels -> (B, C, H, W) denoised, H and W
    multiples of `config.window`."""

    starts_as_identity = ("aux_encoder.", "similar.", "dct.")
    """Blocks a card without them can start with their own first values (`training.checkpoint.start_weights`):
    they leave the network as it was until trained, but for the DCT blend, which starts the card on a blend of
    its input and the estimates (neutral to +0.2 dB untrained: docs/training.md)."""

    fresh_when_reshaped = ("last.",)
    """Layers that start afresh where a card's differ in shape (`training.checkpoint.start_weights`): the output
    convolution, which predicts kernels (50 channels) where the card predicted pixels (3)."""

    reuses_freed_memory = False
    """Its large feature maps leave holes in a heap that keeps freed blocks (`mdn.allocator`), so the engine
    hands free pages back every few tiles: a 24 MP image peaked at 3.05 GB without that and 1.21 GB with it
    every 8 tiles, at 2.85 MP/s against 3.07 every 16 (2 cores)."""

    @property
    def side_multiple(self) -> int:
        """Its input's height and width must be multiples of this (it pads nothing: the engine's tiles are)."""
        return self.config.window

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        w = config.widths
        self.dct = DctShrink(config.dct_sigmas, config.channels, config.dct_blend) if config.dct_sigmas else None
        inputs = config.channels + config.aux
        first = PartialConv(inputs, w[0], config.own_pixel) if config.partial else _conv(inputs, w[0])
        self.first = nn.ModuleList([first, _conv(w[0], w[0])])
        self.down = nn.ModuleList(_conv(w[i - 1], w[i]) for i in range(1, len(w)))
        self.bottom = _conv(w[-1], w[-1])
        self.up = nn.ModuleList(
            nn.ModuleList([_conv(w[i + 1] + w[i], w[i]), _conv(w[i], w[i])]) for i in range(len(w) - 1)
        )
        self.aux_encoder = AuxEncoder(config.aux, config.aux_encoder, (w[0], w[1])) if config.aux_encoder else None
        n = config.self_similarity
        self.similar = (
            nn.Sequential(WindowSelfSimilarity(w[1], n), WindowSelfSimilarity(w[1], n, shifted=True)) if n else None
        )
        self.kernels = KernelFilter(config.kernel) if config.kernel else None
        self.refine = DynamicFilter(config.channels, config.refine_width, config.refine) if config.refine else None
        self.last = _conv(w[0], config.kernel**2 * config.kernel_passes if config.kernel else config.channels)
        self.to(memory_format=torch.channels_last)  # oneDNN's and cuDNN's fast layout for convolutions

    def forward(self, x: Tensor, generator: Generators = None, attention_mask: bool = True) -> Tensor:
        """`generator` draws the feature masks, which `attention_mask` False switches off (the masked SwinIR's
        names for its in-network masks)."""
        ratio = self.config.feature_mask if attention_mask else 0.0

        def conv(layer: nn.Conv2d, y: Tensor) -> Tensor:
            y = neighbour_masked(layer, y, hidden_positions(y, ratio, generator)) if ratio else layer(y)
            return F.relu(y, inplace=True)

        skips = []
        first, second = self.first
        c = self.config.channels
        if self.dct is not None:
            x = torch.cat([self.dct(x[:, :c]), x[:, c:]], dim=1)
        y = conv(second, conv(first, x) if not self.config.partial else F.relu(first(x), inplace=True))
        guides = self.aux_encoder(x[:, c:]) if self.aux_encoder is not None else None
        if guides is not None:
            y = y + guides[0]
        for level, layer in enumerate(self.down):
            skips.append(y)
            y = conv(layer, F.max_pool2d(y, 2))
            if level == 0 and guides is not None:
                y = y + guides[1]
        y = conv(self.bottom, y)
        for level in reversed(range(len(self.up))):
            merge, refine = self.up[level]
            y = torch.cat([F.interpolate(y, scale_factor=2.0, mode="nearest"), skips[level]], dim=1)
            y = conv(refine, conv(merge, y))
            if level == 1 and self.similar is not None:
                y = self.similar(y)
        if self.config.dropout:
            y = F.dropout2d(y, self.config.dropout, self.training)
        with torch.autocast(x.device.type, enabled=False):  # float32 out: bf16 would round pixels to 1/256
            out = self.last(y.float())
            if self.kernels is not None:
                out = self.kernels(x[:, :c].float(), out)
            elif self.config.residual:
                out = x[:, :c] + out
            return self.refine(out, generator) if self.refine is not None else out
