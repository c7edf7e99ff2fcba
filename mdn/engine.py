"""Tiled inference: any image size through a network in bounded memory, with seamless blending.

Each plane is split into overlapping tiles (multiples of the network's window), tiles run in batches, and
overlaps are blended with weights that fade out towards each tile's inner edges, so no seam shows. Grey
planes run through 3-channel networks replicated and are averaged back. On out-of-memory the tile is halved
and the plane retried. The caller fits normalisation or tone mapping once per image before this.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mdn.errors import MdnError
from mdn.nets.swinir import input_mask

ProgressCallback = Callable[[int, int], None]
"""Called with (tiles done, tiles in total)."""

MIN_TILE = 64

PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
"""Compute types by option name; "auto" (see `pick_dtype`) chooses between fp32 and bf16."""


@dataclass(frozen=True)
class EngineOptions:
    """How to run a network over an image. `passes` stochastic passes are averaged; `input_mask` hides that
    share of the input pixels in every pass, drawn afresh, the way masked training showed them to the net."""

    tile: int = 0
    overlap: int = 32
    batch: int = 0
    device: str = "auto"
    precision: str = "fp32"
    passes: int = 1
    seed: int = 0
    attention_mask: bool = True
    input_mask: float = 0.0
    max_memory: int = 2 << 30


def parse_size(text: str) -> int:
    """'512M', '4G', '2GiB' or a number of bytes -> bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text.lower())
    if not match:
        raise MdnError(f"not a memory size: {text!r} (e.g. 512M, 4G)")
    number, unit = match.groups()
    return int(float(number) * 1024 ** "kmgt".find(unit) * 1024) if unit else int(float(number))


def pick_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise MdnError(f"unknown device {name!r} (auto, cpu, cuda, cuda:N, mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MdnError("--device cuda asked for, but no CUDA GPU is available")
    return device


def pick_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The autocast type for a --precision name; 'auto' is bfloat16 where the device computes it natively
    (a CUDA GPU with bf16, a CPU with AVX-512 BF16 or AMX), else float32."""
    if precision != "auto":
        if precision not in PRECISIONS:
            raise MdnError(f"unknown precision {precision!r} (auto, {', '.join(PRECISIONS)})")
        return PRECISIONS[precision]
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported()
    else:
        native = device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return torch.bfloat16 if native else torch.float32


def autocast(device: torch.device, dtype: torch.dtype) -> torch.autocast:
    """Autocast to `dtype` on `device`; a no-op for float32."""
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)


def check_tiling(tile: int, overlap: int, window: int) -> None:
    """Refuse a tile that is not a multiple of the network's window of at least MIN_TILE, or an overlap outside
    [0, tile / 2]."""
    if tile % window or tile < MIN_TILE:
        raise MdnError(f"--tile must be a multiple of {window} and at least {MIN_TILE}, got {tile}")
    if not 0 <= overlap <= tile // 2:
        raise MdnError(f"--overlap must be in [0, {tile // 2}], got {overlap}")


def tile_positions(length: int, tile: int, overlap: int, align: int = 1) -> list[int]:
    """Start offsets (multiples of `align`) of tiles of size `tile` covering [0, length), sharing at least
    `overlap` pixels; `length` and `tile` are multiples of `align`."""
    if length <= tile:
        return [0]
    stride = max(align, (tile - overlap) // align * align)
    count = math.ceil((length - tile) / stride) + 1
    return [min(i * stride, length - tile) for i in range(count)]


def balanced_tile(length: int, tile: int, overlap: int, align: int = 1) -> int:
    """The smallest tile side (a multiple of `align`, at most `tile`) that covers `length` with as few tiles as
    `tile` needs, so that the last tile does not redo most of its neighbour: 6000 px in 512-px tiles with a
    32-px overlap become 13 tiles of 496 px instead of 13 of 512."""
    if length <= tile:
        return length
    count = math.ceil((length - overlap) / (tile - overlap))
    side = math.ceil((length + (count - 1) * overlap) / count)
    return min(tile, -(-side // align) * align)


def edge_ramp(length: int, overlap: int, fade_start: bool, fade_end: bool) -> np.ndarray:
    """1-D blending weight of a tile side: 0 over the outer quarter of the overlap (where a tile lacks
    context), then rising linearly to 1; sides on the image border keep full weight."""
    margin = overlap // 4
    distance = np.arange(length, dtype=np.float32)
    weight = np.ones(length, np.float32)
    if overlap:
        ramp = np.clip((distance - margin + 1) / (overlap - 2 * margin + 1), 0.0, 1.0)
        if fade_start:
            weight = np.minimum(weight, ramp)
        if fade_end:
            weight = np.minimum(weight, ramp[::-1])
    return weight


class Engine:
    """Runs a denoising network over (N, H, W, C) planes in [0, 1] display range."""

    def __init__(self, model: nn.Module, options: EngineOptions | None = None) -> None:
        self.options = options = options or EngineOptions()
        self.device = pick_device(options.device)
        self.model = model.to(self.device).eval()
        self.channels: int = model.config.channels
        self.window: int = model.config.window
        self.dtype = pick_dtype(options.precision, self.device)
        self.batch = options.batch or (4 if self.device.type != "cpu" else 1)
        self.tile = options.tile or self._tile_for_budget(options.max_memory)
        check_tiling(self.tile, options.overlap, self.window)
        self.tiles_run = 0

    def _tile_for_budget(self, budget: int) -> int:
        """The largest tile (multiple of the window, at most 512) whose activations fit the memory budget."""
        config = self.model.config
        bytes_per_pixel = 4 * (16 * config.embed_dim + 2 * config.heads * config.window**2)
        side = int(math.sqrt(budget / (bytes_per_pixel * self.batch)))
        return max(MIN_TILE, min(512, side // self.window * self.window))

    def count_tiles(self, shape: tuple[int, ...]) -> int:
        """Tiles needed for planes of this (N, H, W, C) shape, over all passes."""
        n, h, w = shape[:3]
        h, w = h + (-h) % self.window, w + (-w) % self.window
        return n * self.options.passes * len(list(self._tiles(h, w)))

    def __call__(self, planes: np.ndarray, progress: ProgressCallback | None = None) -> np.ndarray:
        """Denoise every plane; returns float32 planes of the same shape. `progress` gets (tiles done, in all)."""
        total = self.count_tiles(planes.shape)
        done = 0

        def advance(count: int) -> None:
            nonlocal done
            done += count
            if progress:
                progress(done, total)

        result = np.empty_like(planes, dtype=np.float32)
        for index, plane in enumerate(planes):
            result[index] = self._plane(plane, index, advance)
        return result

    @torch.inference_mode()
    def _plane(self, plane: np.ndarray, index: int, advance: Callable[[int], None]) -> np.ndarray:
        """One (H, W, C) plane, padded to the window multiple so that every tile sits on the whole image's window
        grid, copied to the device once; every pass is blended and averaged there, and copied back once."""
        height, width = plane.shape[:2]
        pad_h, pad_w = (-height) % self.window, (-width) % self.window
        padded = np.pad(plane, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect") if pad_h or pad_w else plane
        image = torch.from_numpy(np.asarray(padded, dtype=np.float32)).to(self.device)
        grey = image.shape[-1] == 1 and self.channels == 3
        if grey:
            image = image.expand(-1, -1, 3)
        out = torch.zeros(image.shape, device=self.device)
        for k in range(self.options.passes):
            generator = torch.Generator(self.device).manual_seed(self.options.seed * 1_000_003 + index * 1009 + k)
            out += self._run_with_retry(image, generator, advance)
        if self.options.passes > 1:
            out /= self.options.passes
        if grey:
            out = out.mean(dim=-1, keepdim=True)
        return out[:height, :width].cpu().numpy()

    def _run_with_retry(
        self, image: torch.Tensor, generator: torch.Generator, advance: Callable[[int], None]
    ) -> torch.Tensor:
        state = generator.get_state()
        while True:
            try:
                return self._tiled(image, generator, advance)
            except (torch.OutOfMemoryError, MemoryError, RuntimeError) as exc:
                if "out of memory" not in str(exc).lower() and not isinstance(exc, MemoryError):
                    raise
                if self.tile // 2 < MIN_TILE:
                    raise MdnError(f"out of memory even with {self.tile}px tiles") from None
                self.tile = self.tile // 2 // self.window * self.window
                self.batch = max(1, self.batch // 2)
                generator.set_state(state)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()

    def _tiles(self, height: int, width: int) -> Iterator[tuple[int, int, int, int]]:
        overlap = self.options.overlap
        th, tw = (balanced_tile(n, self.tile, overlap, self.window) for n in (height, width))
        for y in tile_positions(height, th, overlap, self.window):
            for x in tile_positions(width, tw, overlap, self.window):
                yield y, x, th, tw

    def _tiled(self, image: torch.Tensor, generator: torch.Generator, advance: Callable[[int], None]) -> torch.Tensor:
        """One pass over a padded (H, W, C) image on the device, in batches of tiles; the blended sums and their
        weights stay on the device."""
        height, width = image.shape[:2]
        total = torch.zeros(image.shape, device=self.device)
        weights = torch.zeros((height, width, 1), device=self.device)
        blends: dict[tuple[int, int, bool, bool, bool, bool], torch.Tensor] = {}
        tiles = list(self._tiles(height, width))
        for start in range(0, len(tiles), self.batch):
            group = tiles[start : start + self.batch]
            outputs = self._forward(torch.stack([image[y : y + th, x : x + tw] for y, x, th, tw in group]), generator)
            for (y, x, th, tw), out in zip(group, outputs, strict=True):
                sides = (th, tw, y > 0, y + th < height, x > 0, x + tw < width)
                if sides not in blends:
                    blends[sides] = self._blend_weight(*sides)
                total[y : y + th, x : x + tw] += out * blends[sides]
                weights[y : y + th, x : x + tw] += blends[sides]
            self.tiles_run += len(group)
            advance(len(group))
        return total.div_(weights)

    def _blend_weight(self, th: int, tw: int, top: bool, bottom: bool, left: bool, right: bool) -> torch.Tensor:
        """The (th, tw, 1) blending weight of a tile that has neighbours on the given sides, on the device."""
        overlap = self.options.overlap
        ramp_y, ramp_x = edge_ramp(th, overlap, top, bottom), edge_ramp(tw, overlap, left, right)
        return torch.from_numpy((ramp_y[:, None] * ramp_x[None, :])[..., None]).to(self.device)

    def _forward(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The network on a (B, h, w, C) batch of tiles on the device; float32 (B, h, w, C) out."""
        x = batch.permute(0, 3, 1, 2)
        if self.options.input_mask:
            x = input_mask(x, (self.options.input_mask,) * 2, generator)
        with autocast(self.device, self.dtype):
            y = self.model(x, generator=generator, attention_mask=self.options.attention_mask)
        return y.float().permute(0, 2, 3, 1)
