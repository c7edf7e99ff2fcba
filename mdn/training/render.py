"""Learning Monte Carlo render noise from mdn's own render sets (`mdn.renders.dataset`).

Each training image is a low-sample render beside its reference, both through the tone map fitted on the noisy
render alone, as `mdn denoise` fits it on an EXR (`tonemap.RenderTransform`): the network learns in the display
range it will run in, where the tone map does for HDR what OIDN's transfer function does. L1 to the reference.
With `aux_share`, the network also takes the render's albedo and normal (`mdn.io.buffers`), and a share of
the crops sees them as absent (zeros), so that one card serves renders with and without them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mdn import metrics, registry
from mdn.errors import MdnError
from mdn.inference.engine import Engine, EngineOptions
from mdn.io import buffers
from mdn.io.tonemap import ToneMap
from mdn.nets.unet import UNET_SIZES, UNet
from mdn.renders import dataset
from mdn.training.objectives import CardFineTuning
from mdn.training.options import OBJECTIVE_DEFAULTS, TrainOptions

VALIDATION_SPPS = (4, 16)
"""Sample counts validation scores, as the issue's and the bench's render rows do."""


def scene_folders(sources: list[str]) -> list[Path]:
    """The complete scenes of render sets (folders of scene folders) or single scene folders."""
    found: list[Path] = []
    for source in map(Path, sources):
        found += [source] if (source / dataset.REFERENCE).is_file() else dataset.scenes(source)
    return found


class Example(NamedTuple):
    """One low-sample render of a scene: its beauty pass and reference (H, W, 3) through the tone map fitted on
    that render, and its albedo and normal as the network takes them (H, W, 6, `buffers.network_input`)."""

    spp: int
    noisy: np.ndarray
    reference: np.ndarray
    aux: np.ndarray


def examples(scene: Path, spps: tuple[int, ...] | None = None) -> list[Example]:
    """A scene's renders (at `spps`, default all), each with its reference and auxiliary buffers."""
    reference = dataset.reference(scene).beauty
    found = []
    for spp, noisy in dataset.noisy_renders(scene, spps):
        display = ToneMap.fit(noisy.beauty)
        inputs = buffers.network_input(noisy.albedo, noisy.normal)
        found.append(Example(spp, display.forward(noisy.beauty), display.forward(reference), inputs))
    return found


RENDER_PASSES = 4
"""Passes a render card averages (`EngineOptions.passes`: the render flipped and turned): on 14 held-out scenes
+0.15 dB at 4 spp and +0.18 at 16 for `unet-render`, +0.22 and +0.19 for `unet-render-aux`, for 4 times the
network's time (docs/renders.md)."""


class RenderDenoising(CardFineTuning):
    """Fine-tune a denoiser card (`init`, `unet` by default) on renders beside their references."""

    name = "render"
    score_name = "validation_renders"
    purpose = "render training"
    defaults: ClassVar[dict[str, Any]] = OBJECTIVE_DEFAULTS[name]

    def __init__(self, options: TrainOptions, dtype: torch.dtype) -> None:
        super().__init__(options, dtype)
        self.scenes: list[Path] = []

    @property
    def aux_channels(self) -> int:
        return buffers.CHANNELS if self.options.aux_share else 0

    def inference(self) -> dict[str, Any]:
        return {**super().inference(), "passes": RENDER_PASSES}

    def describe(self) -> str:
        share = self.options.aux_share
        inputs = ", albedo and normal always given" if share >= 1 else ", albedo and normal optional" if share else ""
        scenes = f"{len(self.scenes)} procedural Monte Carlo render scenes"
        return f"U-Net for renders{inputs}, fine-tuned from {self.card.name} on {scenes}"

    def build(self) -> nn.Module:
        """The init card's network, or `--config`'s U-Net (the card's widths, with added blocks), channels-last
        (its convolutions run 1.5x faster on CPU), taking the auxiliary inputs when the run has them
        (`checkpoint.start_weights` starts their weights and added blocks as the card was)."""
        config = registry.network_config(self.card)
        if config.aux and not self.aux_channels:
            raise MdnError(f"init {self.card.name} takes albedo and normal: train it with --aux-share")
        if self.options.config:
            if self.options.config not in UNET_SIZES:
                raise MdnError(f"objective render needs a U-Net config ({', '.join(UNET_SIZES)})")
            config = UNET_SIZES[self.options.config]
        if config.aux_encoder and not self.aux_channels:
            raise MdnError(f"--config {self.options.config} encodes albedo and normal: train it with --aux-share")
        return UNet(replace(config, aux=self.aux_channels)).to(memory_format=torch.channels_last)

    def images(self, warn: Callable[[str], None]) -> list[np.ndarray]:
        """Every render of the render sets as one (H, W, 6) image (noisy, reference), or (H, W, 12) (noisy,
        albedo and normal, reference) with auxiliary inputs, so that crops keep them aligned."""
        self.scenes = scene_folders(self.options.data)
        if not self.scenes:
            raise MdnError(f"no render scenes in {', '.join(self.options.data)} (scripts/render_data.py makes them)")
        return [
            np.concatenate([e.noisy, *([e.aux] if self.aux_channels else []), e.reference], axis=-1)
            for scene in self.scenes
            for e in examples(scene)
        ]

    def loss(self, model: nn.Module, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """L1 between the network's output on the inputs of (B, 6 or 12, H, W) crops and their reference (the last
        three channels); each crop sees its auxiliary inputs with probability `aux_share`, else zeros."""
        noisy, reference = clean[:, :-3], clean[:, -3:]
        if self.aux_channels:
            seen = torch.rand(len(clean), generator=generator, device=clean.device) < self.options.aux_share
            noisy = torch.cat([noisy[:, :3], noisy[:, 3:] * seen[:, None, None, None]], dim=1)
        with torch.autocast(clean.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            out = model(noisy.contiguous(memory_format=torch.channels_last))
        return F.l1_loss(out.float(), reference)

    def validation(self, warn: Callable[[str], None]) -> list[Example] | None:
        """Held-back scenes (`--val`, render sets) at VALIDATION_SPPS."""
        scenes = scene_folders(self.options.validation)
        if self.options.validation and not scenes:
            raise MdnError(f"no render scenes in {', '.join(self.options.validation)}")
        return [example for scene in scenes for example in examples(scene, VALIDATION_SPPS)] or None

    def score(self, validation: list[Example], model: nn.Module) -> dict[str, float]:
        """Mean PSNR (dB) of the tone-mapped output (beauty alone; `aux_psnr_*` with albedo and normal) and of
        the input, per sample count and over all of them."""
        engine = Engine(model, EngineOptions(device=str(next(model.parameters()).device), **self.inference()))
        found: dict[str, list[float]] = {}
        for e in validation:
            found.setdefault(f"psnr_{e.spp}spp", []).append(metrics.psnr(engine(e.noisy[None])[0], e.reference))
            found.setdefault(f"noisy_psnr_{e.spp}spp", []).append(metrics.psnr(e.noisy, e.reference))
            if self.aux_channels:
                out = engine(np.concatenate([e.noisy, e.aux], axis=-1)[None])[0]
                found.setdefault(f"aux_psnr_{e.spp}spp", []).append(metrics.psnr(out, e.reference))
        scores = {key: float(np.mean(values)) for key, values in found.items()}
        scores["psnr"] = float(np.mean([v for k, v in scores.items() if k.startswith("psnr_")]))
        scores["noisy_psnr"] = float(np.mean([v for k, v in scores.items() if k.startswith("noisy_psnr_")]))
        if self.aux_channels:
            scores["aux_psnr"] = float(np.mean([v for k, v in scores.items() if k.startswith("aux_psnr_")]))
        return scores

    def card_fields(self) -> dict[str, Any]:
        return {"training": {"render_scenes": len(self.scenes), "render_sets": self.options.data}}
