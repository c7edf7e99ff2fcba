"""Learning Monte Carlo render noise from mdn's own render sets (`mdn.renders.dataset`).

Each training image is a low-sample render beside its reference, both through the tone map fitted on the noisy
render alone, as `mdn denoise` fits it on an EXR (`tonemap.RenderTransform`): the network learns in the display
range it will run in, where the tone map does for HDR what OIDN's transfer function does. L1 to the reference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mdn import metrics, registry
from mdn.engine import Engine, EngineOptions
from mdn.errors import MdnError
from mdn.renders import dataset
from mdn.tonemap import ToneMap
from mdn.training.objectives import fused_where_supported

if TYPE_CHECKING:
    from mdn.training.options import TrainOptions

VALIDATION_SPPS = (4, 16)
"""Sample counts validation scores, as the issue's and the bench's render rows do."""


def scene_folders(sources: list[str]) -> list[Path]:
    """The complete scenes of render sets (folders of scene folders) or single scene folders."""
    found: list[Path] = []
    for source in map(Path, sources):
        found += [source] if (source / "reference.exr").is_file() else dataset.scenes(source)
    return found


def displayed_pairs(scene: Path, spps: tuple[int, ...] | None = None) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(spp, noisy, reference) of a scene, each (H, W, 3) through the tone map fitted on that noisy render."""
    reference = dataset.read_buffers(scene / "reference.exr").beauty
    pairs = []
    for path in sorted(scene.glob("spp-*.exr")):
        spp = int(path.stem.removeprefix("spp-"))
        if spps is not None and spp not in spps:
            continue
        noisy = dataset.read_buffers(path).beauty
        display = ToneMap.fit(noisy)
        pairs.append((spp, display.forward(noisy), display.forward(reference)))
    return pairs


class RenderDenoising:
    """Fine-tune a denoiser card (`init`, `unet` by default) on renders beside their references."""

    name = "render"
    task = "denoise"
    architecture = "unet"
    score_name = "validation_renders"
    defaults: ClassVar[dict[str, Any]] = {
        "config": "",
        "init": "unet",
        "mask": False,
        "iters": 4000,
        "batch": 16,
        "lr": 2e-4,
        "warmup": 100,
        "schedule": "cosine",
        "validate_every": 500,
    }

    def __init__(self, options: TrainOptions, dtype: torch.dtype) -> None:
        if not options.init:
            raise MdnError("render training starts from a trained denoiser: give --init (e.g. unet)")
        self.options, self.dtype = options, dtype
        self.card = registry.find(options.init)
        if self.card.architecture != self.architecture:
            raise MdnError(f"init {options.init}: a {self.card.architecture} card; render training needs a U-Net")
        self.scenes: list[Path] = []

    def describe(self) -> str:
        return f"U-Net fine-tuned from {self.card.name} on {len(self.scenes)} procedural Monte Carlo render scenes"

    def build(self) -> nn.Module:
        """The init card's network, in channels-last layout (its convolutions run 1.5x faster on CPU)."""
        return registry.build(self.card).to(memory_format=torch.channels_last)

    def images(self, warn: Callable[[str], None]) -> list[np.ndarray]:
        """Every (noisy, reference) pair of the render sets as one (H, W, 6) image, so that crops keep them aligned."""
        self.scenes = scene_folders(self.options.data)
        if not self.scenes:
            raise MdnError(f"no render scenes in {', '.join(self.options.data)} (scripts/render_data.py makes them)")
        return [
            np.concatenate([noisy, reference], axis=-1).astype(np.float32)
            for scene in self.scenes
            for _, noisy, reference in displayed_pairs(scene)
        ]

    def optimizer(self, parameters: Iterator[nn.Parameter]) -> torch.optim.Optimizer:
        return fused_where_supported(torch.optim.Adam, parameters, lr=self.options.lr, betas=(0.9, 0.99))

    def clip(self, parameters: Iterator[nn.Parameter]) -> None:
        """No gradient clipping."""

    def source_crop(self, crop: int) -> int:
        return crop

    def loss(self, model: nn.Module, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """L1 between the network's output on the noisy half of (B, 6, H, W) crops and their reference half."""
        noisy, reference = clean[:, :3], clean[:, 3:]
        with torch.autocast(clean.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            out = model(noisy.contiguous(memory_format=torch.channels_last))
        return F.l1_loss(out.float(), reference)

    def inference(self) -> dict[str, Any]:
        return dict(self.card.inference)

    def validation(self, warn: Callable[[str], None]) -> list[tuple[int, np.ndarray, np.ndarray]] | None:
        """Held-back scenes (`--val`, render sets) at VALIDATION_SPPS."""
        scenes = scene_folders(self.options.validation)
        if self.options.validation and not scenes:
            raise MdnError(f"no render scenes in {', '.join(self.options.validation)}")
        return [pair for scene in scenes for pair in displayed_pairs(scene, VALIDATION_SPPS)] or None

    def score(self, validation: list[tuple[int, np.ndarray, np.ndarray]], model: nn.Module) -> dict[str, float]:
        """Mean PSNR (dB) of the tone-mapped output and of the input, per sample count and over all of them."""
        engine = Engine(model, EngineOptions(device=str(next(model.parameters()).device), **self.inference()))
        found: dict[str, list[float]] = {}
        for spp, noisy, reference in validation:
            found.setdefault(f"psnr_{spp}spp", []).append(metrics.psnr(engine(noisy[None])[0], reference))
            found.setdefault(f"noisy_psnr_{spp}spp", []).append(metrics.psnr(noisy, reference))
        scores = {key: float(np.mean(values)) for key, values in found.items()}
        scores["psnr"] = float(np.mean([v for k, v in scores.items() if k.startswith("psnr_")]))
        scores["noisy_psnr"] = float(np.mean([v for k, v in scores.items() if k.startswith("noisy_psnr_")]))
        return scores

    def card_fields(self) -> dict[str, Any]:
        return {"training": {"render_scenes": len(self.scenes), "render_sets": self.options.data}}
