"""Learning Monte Carlo render noise from mdn's own render sets (`mdn.renders.dataset`).

Each training image is a low-sample render beside its reference, both through the tone map fitted on the noisy
render alone, with the run's headroom, as `mdn denoise` fits it on an EXR for the card (`tonemap.RenderTransform`,
the card's `transform`): the network learns in the display range it will run in, where the tone map does for HDR
what OIDN's transfer function does. L1 to the reference. Validation scores the render as `mdn denoise` writes it,
through the tone map without headroom, as the bench does (`mdn.bench.renders`).
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
from mdn.io.tonemap import HEADROOM_PERCENTILE, RenderTransform, ToneMap
from mdn.nets.unet import UNET_SIZES, UNet
from mdn.renders import dataset
from mdn.renders.backend import Buffers
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


class Case(NamedTuple):
    """One low-sample render of a scene: its beauty pass and reference (H, W, 3), linear or through a tone map,
    and its albedo and normal as the network takes them (H, W, 6, `buffers.network_input`; None for a beauty-only
    render)."""

    spp: int
    noisy: np.ndarray
    reference: np.ndarray
    aux: np.ndarray | None


def cases(scene: Path, spps: tuple[int, ...] | None = None, warn: dataset.Warn | None = None) -> list[Case]:
    """A scene's renders (at `spps`, default all), linear, each with its reference and auxiliary buffers."""
    reference = dataset.reference(scene, warn).beauty
    return [Case(spp, noisy.beauty, reference, _aux(noisy)) for spp, noisy in dataset.noisy_renders(scene, spps, warn)]


def _aux(render: Buffers) -> np.ndarray | None:
    """A render's albedo and normal as the network takes them; None for a beauty-only render."""
    if render.albedo is None or render.normal is None:
        return None
    return buffers.network_input(render.albedo, render.normal)


def examples(
    scene: Path, headroom: float, percentile: float = HEADROOM_PERCENTILE, warn: dataset.Warn | None = None
) -> list[Case]:
    """A scene's renders as training sees them: each render and its reference through the tone map fitted on
    that render with `headroom` at `percentile`."""
    found = []
    for case in cases(scene, warn=warn):
        display = ToneMap.fit(case.noisy, headroom=headroom, percentile=percentile)
        found.append(case._replace(noisy=display.forward(case.noisy), reference=display.forward(case.reference)))
    return found


def _need_aux(aux: np.ndarray | None, scene: Path) -> np.ndarray:
    """A render's auxiliary inputs, which a run with --aux-share needs: an MdnError naming a beauty-only scene."""
    if aux is None:
        raise MdnError("its renders hold no albedo and normal layers: train on them with --aux-share 0", scene)
    return aux


RENDER_PASSES = 4
"""Passes a render card averages (`EngineOptions.passes`: the render flipped and turned): on 14 held-out scenes
+0.15 dB at 4 spp and +0.18 at 16 for `unet-render`, +0.22 and +0.19 for `unet-render-aux`, for 4 times the
network's time (docs/renders.md)."""


def written_psnr(engine: Engine, case: Case, headroom: float, aux: bool = False) -> float:
    """PSNR (dB) of a render as `mdn denoise` writes it for a card trained with `headroom` (with its albedo and
    normal if `aux`), against the reference, both through the tone map fitted on the noisy render alone."""
    written = RenderTransform.fit(case.noisy, headroom)
    shown = written.forward(case.noisy)
    out = engine((np.concatenate([shown, case.aux], axis=-1) if aux else shown)[None])[0]
    display = ToneMap.fit(case.noisy)
    return metrics.psnr(display.forward(written.inverse(out)), display.forward(case.reference))


class RenderDenoising(CardFineTuning):
    """Fine-tune a denoiser card (`init`, `unet` by default) on renders beside their references."""

    name = "render"
    score_name = "validation_renders"
    purpose = "render training"
    defaults: ClassVar[dict[str, Any]] = OBJECTIVE_DEFAULTS[name]
    card_from_data: ClassVar[str] = "its count of render scenes"

    def __init__(self, options: TrainOptions, dtype: torch.dtype, card: registry.ModelCard | None = None) -> None:
        super().__init__(options, dtype, card)
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
            raise MdnError(f"--init {self.card.name} takes albedo and normal: train it with --aux-share")
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
            np.concatenate([e.noisy, *([_need_aux(e.aux, scene)] if self.aux_channels else []), e.reference], axis=-1)
            for scene in self.scenes
            for e in examples(scene, self.options.headroom, self.options.headroom_percentile, warn)
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

    def validation(self, warn: Callable[[str], None]) -> list[Case] | None:
        """Held-back scenes (`--val`, render sets) at VALIDATION_SPPS."""
        scenes = scene_folders(self.options.validation)
        if self.options.validation and not scenes:
            raise MdnError(f"no render scenes in {', '.join(self.options.validation)}")
        found = [(scene, case) for scene in scenes for case in cases(scene, VALIDATION_SPPS, warn)]
        if self.aux_channels:  # scored with their albedo and normal too
            for scene, case in found:
                _need_aux(case.aux, scene)
        return [case for _, case in found] or None

    def score(self, validation: list[Case], model: nn.Module) -> dict[str, float]:
        """Mean PSNR (dB) of the render as `mdn denoise` writes it (beauty alone; `aux_psnr_*` with albedo and
        normal) and of the input, both through the tone map fitted on the noisy render without headroom, per
        sample count and over all of them."""
        engine = Engine(model, EngineOptions(device=str(next(model.parameters()).device), **self.inference()))
        found: dict[str, list[float]] = {}
        for case in validation:
            display = ToneMap.fit(case.noisy)
            noisy_psnr = metrics.psnr(display.forward(case.noisy), display.forward(case.reference))
            found.setdefault(f"psnr_{case.spp}spp", []).append(written_psnr(engine, case, self.options.headroom))
            found.setdefault(f"noisy_psnr_{case.spp}spp", []).append(noisy_psnr)
            if self.aux_channels:
                aux_psnr = written_psnr(engine, case, self.options.headroom, aux=True)
                found.setdefault(f"aux_psnr_{case.spp}spp", []).append(aux_psnr)
        scores = {key: float(np.mean(values)) for key, values in found.items()}
        scores["psnr"] = float(np.mean([v for k, v in scores.items() if k.startswith("psnr_")]))
        scores["noisy_psnr"] = float(np.mean([v for k, v in scores.items() if k.startswith("noisy_psnr_")]))
        if self.aux_channels:
            scores["aux_psnr"] = float(np.mean([v for k, v in scores.items() if k.startswith("aux_psnr_")]))
        return scores

    def card_fields(self) -> dict[str, Any]:
        """The tone map's headroom the card was trained with, as its `transform` (`tonemap.fitter`)."""
        headroom = self.options.headroom
        return {
            "transform": {"headroom": headroom} if headroom else {},
            "training": {"render_scenes": len(self.scenes), "render_sets": self.options.data},
        }
