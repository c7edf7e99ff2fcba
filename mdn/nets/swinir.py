"""SwinIR with the masked-training changes (Chen et al., CVPR 2023).

Changes from SwinIR, as in the paper's released code: a 1x1 embedding conv (pixels never mix before the
input mask), no global residual (the network predicts the clean image), "3conv" residual convolutions, and
an attention mask that zeroes a random share of window tokens before the q/k/v projection in every block,
kept on at inference. The input mask is applied to training batches by `input_mask`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mdn.errors import MdnError

try:
    from torch.nn.attention.flex_attention import flex_attention
except ImportError:  # torch < 2.5
    flex_attention = None

RGB_MEAN = (0.4488, 0.4371, 0.4040)
"""Subtracted before the network and added back after it, as in SwinIR."""

MASK_VALUE = -0.1
"""What input-masked pixels are set to, in [0, 1] pixel units (the released code's value)."""

SHIFT_PENALTY = -100.0
"""Added to the attention scores between tokens of a shifted window that come from different image regions."""

ATTENTION_KERNELS = ("auto", "explicit", "sdpa", "flex")
"""How window attention is computed. `explicit`: two matmuls and a softmax (CPU training's fastest); `sdpa`:
torch's scaled_dot_product_attention, recomputing only the wrap-around windows with the shift mask (CPU
inference's fastest); `flex`: FlexAttention (torch >= 2.5) with the position bias and the shift regions as a score
modification and the head dim zero-padded to a kernel-friendly 16, compiled on GPUs, so no dense mask is ever
built (forward only on CPU); `auto`: explicit under autograd on CPU, else sdpa."""


@dataclass(frozen=True)
class SwinIRConfig:
    """Sizes of a masked SwinIR; the paper's configuration is the default (~0.82 M parameters)."""

    embed_dim: int = 60
    depths: tuple[int, ...] = (6, 6, 6, 6)
    heads: int = 6
    window: int = 8
    mlp_ratio: float = 2.0
    channels: int = 3
    attention_mask_ratio: float = 0.75
    drop_path: float = 0.1

    def activation_bytes_per_pixel(self) -> int:
        """Float32 bytes of the activations alive at once in inference, per image pixel: the token stream and
        its MLP, and one layer's attention scores."""
        return 4 * (16 * self.embed_dim + 2 * self.heads * self.window**2)

    def to_dict(self) -> dict:
        return {**asdict(self), "depths": list(self.depths)}

    @classmethod
    def from_dict(cls, data: dict) -> SwinIRConfig:
        return cls(**{**data, "depths": tuple(data["depths"])})


SIZES: dict[str, SwinIRConfig] = {
    "tiny": SwinIRConfig(embed_dim=12, depths=(2,), heads=2),
    "small": SwinIRConfig(embed_dim=24, depths=(4, 4), heads=2),
    "medium": SwinIRConfig(embed_dim=48, depths=(4, 4, 4), heads=6),
    "paper": SwinIRConfig(),
}
"""Named network sizes: `tiny` for smoke tests, `small` for the default card on a laptop CPU, `paper` for the
masked-training paper's configuration (~0.82 M parameters)."""


Generators = torch.Generator | Sequence[torch.Generator] | None
"""Where random masks come from: one generator for the whole batch, one per sample, or torch's global one."""


def per_sample(draw: Callable[[Tensor, torch.Generator | None], Tensor], x: Tensor, generator: Generators) -> Tensor:
    """`draw(x, generator)` for the batch, or, given one generator per sample, for each sample with its own and
    concatenated: a sample's draws then do not depend on the batch it runs in."""
    if generator is None or isinstance(generator, torch.Generator):
        return draw(x, generator)
    return torch.cat([draw(x[i : i + 1], g) for i, g in enumerate(generator)])


def input_mask(x: Tensor, ratio: tuple[float, float], generator: Generators = None) -> Tensor:
    """Set a random share of pixels to MASK_VALUE: one Bernoulli draw per pixel shared by the channels, the
    ratio drawn per sample uniformly from `ratio` (low, high)."""

    def draw(x: Tensor, generator: torch.Generator | None) -> Tensor:
        b, _, h, w = x.shape
        low, high = ratio
        rates = low + (high - low) * torch.rand(b, 1, 1, 1, generator=generator, device=x.device)
        masked = torch.rand(b, 1, h, w, generator=generator, device=x.device) < rates
        return torch.where(masked, torch.full_like(x, MASK_VALUE), x)

    return per_sample(draw, x, generator)


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch of a sample during training."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = torch.rand(x.shape[0], *([1] * (x.ndim - 1)), device=x.device) >= self.rate
        return x * keep.to(x.dtype) / (1.0 - self.rate)


def _relative_position_index(window: int) -> Tensor:
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return relative[..., 0] * (2 * window - 1) + relative[..., 1]


class WindowAttention(nn.Module):
    """Multi-head self-attention within windows, with a learned relative position bias."""

    def __init__(self, dim: int, window: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        self.register_buffer("bias_index", _relative_position_index(window), persistent=False)
        self.kernel = "auto"

    def position_bias(self) -> Tensor:
        """(heads, N, N) additive bias."""
        n = self.bias_index.shape[0]
        return self.bias_table[self.bias_index.view(-1)].view(n, n, self.heads).permute(2, 0, 1)

    def forward(self, windows: Tensor, shift_mask: ShiftMask | None) -> Tensor:
        """windows: (B, nW, N, C); shift_mask: the mask of shifted windows, or None."""
        b, nw, n, c = windows.shape
        heads, dim = self.heads, c // self.heads
        # Strided q/k/v views straight off the projection: the fused CPU kernel reads them without a copy,
        # and its output is laid out so that merging the heads back is free. Masks must be 4-D: a 3-D one
        # sends torch down its slow reference path.
        qkv = self.qkv(windows).view(b * nw, n, 3, heads, dim).permute(2, 0, 3, 1, 4)
        bias = self.position_bias()
        kernel = resolve_kernel(self.kernel, windows.device)
        if kernel == "explicit":
            return self._explicit(qkv, bias, shift_mask, b, nw)
        if kernel == "flex":
            return self._flex(qkv, bias, shift_mask, b, nw)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=bias[None].to(qkv.dtype))
        if shift_mask is not None:
            # Only windows on the wrap-around border mix regions: redo just those with the region mask.
            border = qkv.unflatten(1, (b, nw))[:, :, shift_mask.windows].reshape(3, b, -1, n, dim)
            mask = (shift_mask.mask[:, None] + bias).flatten(0, 1)[None].to(qkv.dtype)
            fixed = F.scaled_dot_product_attention(border[0], border[1], border[2], attn_mask=mask)
            out = out.unflatten(0, (b, nw))
            out[:, shift_mask.windows] = fixed.view(b, -1, heads, n, dim)
        return self.proj(out.reshape(b, nw, heads, n, dim).transpose(2, 3).reshape(b, nw, n, c))

    def _explicit(self, qkv: Tensor, bias: Tensor, shift_mask: ShiftMask | None, b: int, nw: int) -> Tensor:
        """Attention as two matmuls and a softmax, with the shift mask added to every window (see
        `resolve_kernel`)."""
        q, k, v = qkv.unbind(0)
        _, heads, n, dim = q.shape
        scores = (q * dim**-0.5) @ k.transpose(-2, -1) + bias
        if shift_mask is not None:
            scores = (scores.view(b, nw, heads, n, n) + shift_mask.dense[:, None]).view(b * nw, heads, n, n)
        out = scores.softmax(-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, nw, n, heads * dim))

    def _flex(self, qkv: Tensor, bias: Tensor, shift_mask: ShiftMask | None, b: int, nw: int) -> Tensor:
        """FlexAttention over every window at once: the bias and the shift regions are looked up per score
        inside the kernel (see `ATTENTION_KERNELS`)."""
        _, _, heads, n, dim = qkv.shape
        padded = F.pad(qkv, (0, _flex_head_dim(dim) - dim))
        regions = shift_mask.regions if shift_mask is not None else None

        def score_mod(score: Tensor, batch: Tensor, head: Tensor, q: Tensor, k: Tensor) -> Tensor:
            score = score + bias[head, q, k]
            if regions is None:
                return score
            window = batch % nw
            return torch.where(regions[window, q] == regions[window, k], score, score + SHIFT_PENALTY)

        out = _flex_for(qkv.device)(padded[0], padded[1], padded[2], score_mod=score_mod, scale=dim**-0.5)[..., :dim]
        return self.proj(out.reshape(b, nw, heads, n, dim).transpose(2, 3).reshape(b, nw, n, heads * dim))


def resolve_kernel(kernel: str, device: torch.device) -> str:
    """The attention kernel that `kernel` (one of ATTENTION_KERNELS) means on `device`: `auto` is two matmuls
    and a softmax on CPU under autograd, where this trains 1.3x faster than scaled_dot_product_attention (whose
    fused kernel has no backward there and whose fallback is slower), and scaled_dot_product_attention
    elsewhere."""
    if kernel not in ATTENTION_KERNELS:
        raise MdnError(f"unknown attention kernel {kernel!r} (one of {', '.join(ATTENTION_KERNELS)})")
    if kernel == "flex" and flex_attention is None:
        raise MdnError(f"the flex attention kernel needs torch >= 2.5, this is {torch.__version__}")
    if kernel != "auto":
        return kernel
    return "explicit" if torch.is_grad_enabled() and device.type == "cpu" else "sdpa"


def _flex_head_dim(dim: int) -> int:
    """The head dim FlexAttention's GPU kernel runs well on: a power of two, at least 16 (its matrix tiles)."""
    return max(16, 1 << (dim - 1).bit_length())


def _flex_for(device: torch.device) -> Callable[..., Tensor]:
    """FlexAttention as it runs on `device`: compiled on GPUs (as its own graph, or inside the network's when
    that is being compiled); eager elsewhere, where it is a reference that materialises every score (compiled on
    CPU it runs, but slower than sdpa)."""
    if device.type != "cuda" or torch.compiler.is_compiling():
        return flex_attention
    return _compiled_flex()


@functools.cache
def _compiled_flex() -> Callable[..., Tensor]:
    """FlexAttention compiled once per process, for fixed shapes."""
    return torch.compile(flex_attention, dynamic=False)


def _partition(x: Tensor, window: int) -> Tensor:
    """(B, H, W, C) -> (B, nW, window*window, C)."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // window) * (w // window), window * window, c)


def _merge(windows: Tensor, window: int, h: int, w: int) -> Tensor:
    """(B, nW, window*window, C) -> (B, H, W, C)."""
    b, _, _, c = windows.shape
    x = windows.view(b, h // window, w // window, window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


@dataclass(frozen=True)
class ShiftMask:
    """Which windows of a shifted layout straddle the wrap-around, their (n, N, N) additive masks, and the image
    region of every window token, (nW, N)."""

    windows: Tensor
    mask: Tensor
    regions: Tensor

    @property
    def count(self) -> int:
        return self.regions.shape[0]

    @functools.cached_property
    def dense(self) -> Tensor:
        """The (nW, N, N) additive mask of every window, zero for those inside one region."""
        dense = self.mask.new_zeros(self.count, *self.mask.shape[1:])
        dense[self.windows] = self.mask
        return dense


@functools.lru_cache(maxsize=16)
def _shift_mask(h: int, w: int, window: int, shift: int, device: torch.device) -> ShiftMask:
    """The mask for one image size, computed once and shared by every shifted block (built outside inference
    mode, so that a mask cached while denoising can serve training too)."""
    with torch.inference_mode(False):
        region = torch.zeros(1, h, w, 1, device=device)
        cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
        for label, (hs, ws) in enumerate((hs, ws) for hs in cuts for ws in cuts):
            region[:, hs, ws, :] = label
        labels = _partition(region, window).squeeze(-1)[0]
        different = labels[:, None, :] != labels[:, :, None]
        windows = different.flatten(1).any(1).nonzero().squeeze(1)
        mask = torch.zeros(different[windows].shape, device=device).masked_fill(different[windows], SHIFT_PENALTY)
    return ShiftMask(windows, mask, labels.to(torch.uint8))


class SwinBlock(nn.Module):
    """A Swin transformer block whose attention input has a random share of tokens zeroed."""

    def __init__(self, config: SwinIRConfig, shift: int, drop_path: float) -> None:
        super().__init__()
        dim = config.embed_dim
        self.window, self.shift = config.window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, config.window, config.heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * config.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor, keep: Tensor | None, shift_mask: ShiftMask | None) -> Tensor:
        """x: (B, H, W, C); keep: (B, nW, N), the window tokens the attention sees (None: all); shift_mask: the
        image's mask of shifted windows, used by shifted blocks."""
        h, w = x.shape[1:3]
        y = self.norm1(x)
        if self.shift:
            y = torch.roll(y, (-self.shift, -self.shift), dims=(1, 2))
        windows = _partition(y, self.window)
        if keep is not None:
            windows = windows * keep.unsqueeze(-1).to(windows.dtype)
        y = _merge(self.attn(windows, shift_mask if self.shift else None), self.window, h, w)
        if self.shift:
            y = torch.roll(y, (self.shift, self.shift), dims=(1, 2))
        x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(self.norm2(x)))


def _three_conv(dim: int) -> nn.Sequential:
    """SwinIR's "3conv" residual: 3x3 to dim/4, 1x1, 3x3 back, with LeakyReLU(0.2)."""
    quarter = dim // 4
    return nn.Sequential(
        nn.Conv2d(dim, quarter, 3, padding=1),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(quarter, quarter, 1),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(quarter, dim, 3, padding=1),
    )


class ResidualSwinGroup(nn.Module):
    """Swin blocks (alternately shifted), a 3conv and a skip around the group (SwinIR's RSTB)."""

    def __init__(self, config: SwinIRConfig, depth: int, drop_paths: list[float]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(config, shift=(config.window // 2) * (i % 2), drop_path=drop_paths[i]) for i in range(depth)
        )
        self.conv = _three_conv(config.embed_dim)

    def forward(self, x: Tensor, keeps: list[Tensor | None], shift_mask: ShiftMask | None) -> Tensor:
        """x: (B, H, W, C); keeps: each block's attention keep mask."""
        y = x
        for block, keep in zip(self.blocks, keeps, strict=True):
            y = block(y, keep, shift_mask)
        y = self.conv(y.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x + y


class MaskedSwinIR(nn.Module):
    """The masked-training denoiser: noisy (B, C, H, W) in [0, 1] -> clean estimate, same shape.

    The attention mask is on in training and inference alike; `attention_mask=False` in `forward` turns it off
    for ablations. Pass a `generator` for reproducible masks.
    """

    reuses_freed_memory = True
    """Its token tensors reuse the freed blocks the engine's heap keeps (`mdn.allocator`): a 6 MP image with the
    small card took 16.8 s with them kept and 20.7 s without, at the same peak memory (2 cores)."""

    def __init__(self, config: SwinIRConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or SwinIRConfig()
        dim = config.embed_dim
        mean = RGB_MEAN if config.channels == 3 else (0.5,) * config.channels
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.embed = nn.Conv2d(config.channels, dim, 1)
        self.embed_norm = nn.LayerNorm(dim)
        rates = torch.linspace(0, config.drop_path, sum(config.depths)).tolist()
        starts = [sum(config.depths[:i]) for i in range(len(config.depths))]
        self.groups = nn.ModuleList(
            ResidualSwinGroup(config, depth, rates[start : start + depth])
            for depth, start in zip(config.depths, starts, strict=True)
        )
        self.norm = nn.LayerNorm(dim)
        self.conv_after_body = _three_conv(dim)
        self.head = nn.Conv2d(dim, config.channels, 3, padding=1)
        self.apply(self._init_weights)

    @property
    def attention_kernel(self) -> str:
        """The kernel every block's window attention uses (see `use_attention`)."""
        return self.groups[0].blocks[0].attn.kernel

    def use_attention(self, kernel: str) -> MaskedSwinIR:
        """Compute window attention with `kernel` (one of ATTENTION_KERNELS) in every block; outputs and weights
        stay the same."""
        resolve_kernel(kernel, torch.device("cpu"))  # refuses an unknown or unavailable kernel before any change
        for module in self.modules():
            if isinstance(module, WindowAttention):
                module.kernel = kernel
        return self

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(self, x: Tensor, generator: Generators = None, attention_mask: bool = True) -> Tensor:
        """Denoise x (B, C, H, W); H and W are reflect-padded to the window size and cropped back. Masks come
        from `generator`, or from one generator per sample."""
        h, w = x.shape[-2:]
        window = self.config.window
        pad_h, pad_w = (-h) % window, (-w) % window
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        return self.network(x, *self._masks(x, generator, attention_mask))[..., :h, :w]

    def network(self, x: Tensor, keeps: list[Tensor | None], shift_mask: ShiftMask | None) -> Tensor:
        """The network on a padded batch, given its masks (see `_masks`): no random draw, no cache lookup."""
        features = self.embed(x - self.mean).permute(0, 2, 3, 1).float()
        features = self.embed_norm(features)
        for group in self.groups:
            features = group(features, keeps[: len(group.blocks)], shift_mask)
            keeps = keeps[len(group.blocks) :]
        features = self.norm(features).permute(0, 3, 1, 2)
        with torch.autocast(x.device.type, enabled=False):  # pixels out in float32: bf16 would round them to 1/256
            return self.head(self.conv_after_body(features)) + self.mean

    def compile(self, **options: Any) -> None:
        """Compile `network` in place with torch.compile (its masks are drawn eagerly before it, so it compiles
        to one graph); the weights and state dict stay as they are."""
        self.network = torch.compile(self.network, **options)

    def _masks(
        self, x: Tensor, generator: Generators, attention_mask: bool
    ) -> tuple[list[Tensor | None], ShiftMask | None]:
        """Every block's attention keep mask, drawn in block order from `generator` (None: the attention sees
        every token), and the mask of shifted windows at this (padded) size, with its dense form when the
        attention will need it (made once per size and cached)."""
        _, _, h, w = x.shape
        window, blocks = self.config.window, sum(self.config.depths)
        keep_ratio = 1.0 - self.config.attention_mask_ratio if attention_mask else 1.0
        keeps: list[Tensor | None] = [None] * blocks
        if keep_ratio < 1.0:
            tokens = ((h // window) * (w // window), window * window)

            def draw(x: Tensor, generator: torch.Generator | None) -> Tensor:
                """(B, blocks, nW, N) uniform draws, block after block."""
                size = (x.shape[0], *tokens)
                return torch.stack([torch.rand(size, generator=generator, device=x.device) for _ in range(blocks)], 1)

            keeps = list((per_sample(draw, x, generator) < keep_ratio).unbind(1))
        if not any(block.shift for group in self.groups for block in group.blocks):
            return keeps, None
        shift_mask = _shift_mask(h, w, window, window // 2, x.device)
        if resolve_kernel(self.attention_kernel, x.device) == "explicit":
            _ = shift_mask.dense  # made here, so that a compiled `network` finds it cached
        return keeps, shift_mask
