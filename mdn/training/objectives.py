"""What a training run learns, behind one protocol: masked denoising (the masked-training paper) and MPI's fill
pre-training, each with its network, optimiser, loss, inference settings and validation (the third, learning from
noisy data alone, is `mdn.training.self_supervised`; `mdn.training.recipes.OBJECTIVES` names them all).

`mdn.training.loop.Trainer` owns everything else of a run (data, schedule, EMA, checkpoints, devices, distribution) and
talks to its objective only through `Objective`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

from mdn import metrics, noise, registry
from mdn.errors import MdnError
from mdn.inference.engine import Engine, EngineOptions
from mdn.nets import swinir
from mdn.nets.iterative import ITERATIVE_SIZES
from mdn.nets.skip import SIZES as SKIP_SIZES
from mdn.nets.swinir import SIZES, SwinIRConfig
from mdn.nets.unet import UNET_SIZES, UNetConfig
from mdn.noise import degrade
from mdn.training.data import clean_images, procedural_count, validation_references
from mdn.training.options import FINE_TUNING, OBJECTIVE_DEFAULTS, TrainOptions

Validation = TypeVar("Validation")


class Objective(Protocol[Validation]):
    """What a run learns: made from the run's `TrainOptions` and the compute type of its forward pass."""

    name: str
    """Its name in `OBJECTIVES` (`mdn train --objective`)."""
    task: str
    """The task of the cards it makes (`denoise`, `fill`)."""
    architecture: str
    """The registry architecture of its network."""
    score_name: str
    """The key of its validation scores in the card."""
    defaults: ClassVar[dict[str, Any]]
    """`TrainOptions` defaults of its own (config, crop, learning rate, schedule, input mask)."""
    card_from_data: ClassVar[str]
    """What of its card it computes from its data, in words ('' for nothing): a card written from a checkpoint
    that does not record it (`--finish`) needs the data for it."""

    def describe(self) -> str:
        """One line for the card: the network and what it was trained on."""
        ...

    def build(self) -> nn.Module:
        """A fresh network, on the CPU."""
        ...

    def images(self, warn: Callable[[str], None]) -> list[np.ndarray]:
        """The (H, W, C) images that training crops are drawn from."""
        ...

    def procedural(self) -> int:
        """How many of `images` are drawn, not read (dead leaves, stripes, textiles: `data.clean_images`)."""
        ...

    def optimizer(self, parameters: Iterator[nn.Parameter]) -> torch.optim.Optimizer:
        """The optimiser over `parameters` at the peak learning rate (the trainer schedules it)."""
        ...

    def clip(self, parameters: Iterator[nn.Parameter]) -> None:
        """Clip the gradients of `parameters` before the optimiser steps, if the recipe says so."""
        ...

    def source_crop(self, crop: int) -> int:
        """The side of the clean crops `loss` takes for training crops of side `crop`."""
        ...

    def loss(self, model: nn.Module, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The loss of one batch of clean crops (B, C, H, W); every random draw comes from `generator`."""
        ...

    def inference(self) -> dict[str, Any]:
        """The card's inference settings (`EngineOptions` fields), how its network is meant to run."""
        ...

    def validation(self, warn: Callable[[str], None]) -> Validation | None:
        """The fixed validation data, from the run's `validation` files or its own data (None: nothing to
        validate on)."""
        ...

    def score(self, validation: Validation, model: nn.Module) -> dict[str, float]:
        """Scores of `model` on `validation` (`psnr` among them where it can be estimated), the same on every
        call."""
        ...

    def card_fields(self) -> dict[str, Any]:
        """What its cards hold besides the common record: `transform` and a `training` record of their data."""
        ...


def fused_where_supported(
    kind: type[torch.optim.Optimizer], parameters: Iterator[nn.Parameter], **settings: Any
) -> torch.optim.Optimizer:
    """An Adam-family optimiser with torch's fused kernel where torch has one for the parameters' device (CPU,
    CUDA, MPS, ...: one kernel per step instead of a dozen small operators per tensor), else torch's own default
    (foreach kernels on GPUs)."""
    parameters = list(parameters)
    fused = all(p.device.type in _get_fused_kernels_supported_devices() for p in parameters)
    return kind(parameters, fused=fused or None, **settings)


def refuse_unused(options: TrainOptions, keys: tuple[str, ...], where: str) -> None:
    """An MdnError naming the options among the fields `keys` given other values than their defaults, which the
    run never reads `where` (e.g. "by objective fill"): accepted, they would be recorded in the card's command
    and recipe as if the run had trained with them."""
    given = options.given(keys)
    if given:
        them = "it" if len(given) == 1 else "them"
        raise MdnError(f"{', '.join(given)}: not used {where}; leave {them} out")


NOISE_OPTIONS = ("noise", "level", "level_range", "grey_share", "thumbnail_share")
"""The fields that set the synthetic noise of denoising on clean crops."""
MASK_OPTIONS = ("input_mask", "attention_mask")
"""The fields that set masked training's masks."""
RENDER_OPTIONS = ("aux_share", "headroom", "headroom_percentile")
"""The fields of render training alone."""
DRAWN_OPTIONS = ("dead_leaves", "stripes", "textiles")
"""The fields that add drawn images to clean training data."""


class CardFineTuning:
    """What objectives that fine-tune a trained U-Net card (`init`) share: the card, its network's defaults
    (no masks, batch 16, cosine decay), Adam without clipping, and the card's own inference settings."""

    task = "denoise"
    architecture = "unet"
    purpose: ClassVar[str] = "fine-tuning"
    """What the objective does, for its error messages."""
    defaults: ClassVar[dict[str, Any]] = FINE_TUNING
    card_from_data: ClassVar[str] = ""
    unused: ClassVar[tuple[str, ...]] = (*NOISE_OPTIONS, "mask", *MASK_OPTIONS, *DRAWN_OPTIONS)
    """The options it never reads (`refuse_unused`): its data is its own, neither noised nor masked nor drawn."""

    def __init__(self, options: TrainOptions, dtype: torch.dtype, card: registry.ModelCard | None = None) -> None:
        """`card`: the --init card as a resumed run's checkpoint recorded it (None: found by its name), so that
        the run resumes once that card is gone."""
        refuse_unused(options, self.unused, f"by {self.purpose}")
        if not options.init:
            raise MdnError(f"{self.purpose} starts from a trained denoiser: give --init (e.g. unet)")
        self.options, self.dtype = options, dtype
        self.card = card or registry.find(options.init)
        if self.card.architecture != self.architecture:
            raise MdnError(f"--init {options.init}: a {self.card.architecture} card; {self.purpose} needs a U-Net")

    def procedural(self) -> int:
        """None: a fine-tuning reads its data (a camera's files, render sets) alone."""
        return 0

    def optimizer(self, parameters: Iterator[nn.Parameter]) -> torch.optim.Optimizer:
        return fused_where_supported(torch.optim.Adam, parameters, lr=self.options.lr, betas=(0.9, 0.99))

    def clip(self, parameters: Iterator[nn.Parameter]) -> None:
        """No gradient clipping."""

    def source_crop(self, crop: int) -> int:
        return crop

    def inference(self) -> dict[str, Any]:
        return dict(self.card.inference)


UNSEEN_NOISES: tuple[tuple[str, float], ...] = (
    ("speckle", 0.024),
    ("poisson", 2.5),
    ("correlated", 50.0),
    ("mixture", 3.0),
)
"""Noises a Gaussian-trained denoiser never saw, at mid-range paper levels: validation tracks their mean PSNR."""


@dataclass(frozen=True)
class ValidationSet:
    """Held-back clean crops with fixed-seed noise: Gaussian at the training level, then each unseen noise."""

    clean: list[np.ndarray]
    noisy: dict[str, list[np.ndarray]]

    @classmethod
    def make(cls, pool: list[np.ndarray], level: float, size: int = 192) -> ValidationSet:
        clean = [_centre_crop(p, size) for p in pool]
        noises = [("gaussian", level), *UNSEEN_NOISES]
        noisy = {
            name: [noise.make_noise(name, lv)(c, np.random.default_rng(i)) for i, c in enumerate(clean)]
            for name, lv in noises
        }
        return cls(clean, noisy)

    def score(self, model: nn.Module, options: EngineOptions) -> dict[str, float]:
        """PSNR (dB) of the model and of the input on Gaussian noise, the mean brightness offset (out - clean, in
        8-bit levels) there, and the same PSNRs per unseen noise with their mean (`unseen_psnr`); the model runs
        through the inference engine with the card's own settings, as `mdn denoise` will run it."""
        engine = Engine(model, options)
        result: dict[str, float] = {}
        for name, inputs in self.noisy.items():
            psnrs, offsets = [], []
            for clean, noisy in zip(self.clean, inputs, strict=True):
                out = engine(noisy[None])[0]
                psnrs.append(metrics.psnr(out, clean))
                offsets.append(float((out.mean() - clean.mean()) * 255))
            noisy_psnr = float(np.mean([metrics.psnr(n, c) for n, c in zip(inputs, self.clean, strict=True)]))
            if name == "gaussian":
                result.update(psnr=float(np.mean(psnrs)), noisy_psnr=noisy_psnr, offset=float(np.mean(offsets)))
            else:
                result.update({f"{name}_psnr": float(np.mean(psnrs)), f"{name}_noisy_psnr": noisy_psnr})
        unseen = [result[f"{name}_psnr"] for name, _ in UNSEEN_NOISES]
        result["unseen_psnr"] = float(np.mean(unseen))
        return result


def _centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    size = min(size, h, w) // 8 * 8
    y, x = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(image[y : y + size, x : x + size])


UNET_PASSES = 4
"""Passes averaged by a U-Net with feature masks. Estimated, not measured on a trained card: one pass of the plain
U-Net runs at 2.4-2.7x OIDN's speed and feature masks cost about 1.5x, so 4 passes stay near half OIDN's."""


ARCHITECTURE_OF = {**dict.fromkeys(UNET_SIZES, "unet"), **dict.fromkeys(ITERATIVE_SIZES, "dynamic-filter")}
"""Denoising config name -> its architecture (the rest are SwinIR sizes)."""

NETWORK_NAMES = {"unet": "U-Net", "dynamic-filter": "iterative dynamic filter", "masked-swinir": "SwinIR"}

ITERATIVE_CLIP = 0.1
"""Gradient norm clip of an iterative dynamic filter (IDF's recipe: ten passes of one block compound a step)."""


class MaskedDenoising:
    """The masked-training objective: noisy crops, input mask, attention mask, L1 to the clean crop; the
    network's forward pass autocasts to `dtype` (float32: none). A U-Net config trains the same way without the
    masks: it has no tokens to hide."""

    name = task = "denoise"
    score_name = "validation_gaussian"
    defaults: ClassVar[dict[str, Any]] = OBJECTIVE_DEFAULTS[name]
    card_from_data: ClassVar[str] = ""

    def __init__(self, options: TrainOptions, dtype: torch.dtype) -> None:
        if options.config not in SIZES and options.config not in ARCHITECTURE_OF:
            known = ", ".join([*SIZES, *UNET_SIZES, *ITERATIVE_SIZES])
            raise MdnError(f"objective denoise needs --config one of {known}, got {options.config!r}")
        self.options, self.dtype = options, dtype
        self.architecture = ARCHITECTURE_OF.get(options.config, "masked-swinir")
        unet = UNET_SIZES.get(options.config)
        if unet and options.mask and not (unet.partial or unet.feature_mask):
            raise MdnError(
                f"config {options.config} has no in-network mask, and the input mask alone does not pay on a U-Net: "
                "train it unmasked, or choose unet-partial or unet-feature-mask"
            )
        iterative = ITERATIVE_SIZES.get(options.config)
        if iterative and options.mask and not iterative.partial:
            raise MdnError(
                f"config {options.config} cannot see masked pixels: train it unmasked, or choose dynamic-partial"
            )
        self.practical = options.noise == noise.PracticalNoise.name
        self._refuse_unused(options)
        if not self.practical:
            self.noise = noise.make_noise(options.noise, options.level)
        for level in options.level_range:
            noise.make_noise(options.noise, level)  # refuses a level outside the type's limits

    def _refuse_unused(self, options: TrainOptions) -> None:
        """Refuse the options this run never reads: render training's, the masks' without masks, the attention
        mask's ratio for a network with neither attention nor feature masks, the thumbnail share but with
        practical noise, and --level with practical noise, whose strength comes from --level-range, where no
        --val is validated at that level."""
        refuse_unused(options, RENDER_OPTIONS, "by objective denoise (they are --objective render's)")
        if not options.mask:
            refuse_unused(options, MASK_OPTIONS, "with --no-mask, which trains without masks")
        elif not self._attention_masked(options.config):
            which = f"by --config {options.config}, which has no attention or feature masks (its input mask alone)"
            refuse_unused(options, ("attention_mask",), which)
        if options.thumbnail_share and not self.practical:
            raise MdnError(f"--thumbnail-share needs the practical noise, got --noise {options.noise}")
        if self.practical and not options.validation:
            refuse_unused(options, ("level",), "by practical noise (its strengths are --level-range) without --val")

    def _attention_masked(self, config: str) -> bool:
        """Whether a network of `config` reads the attention-mask ratio: a SwinIR's attention mask, a U-Net's
        feature masks."""
        if self.architecture == "unet":
            return UNET_SIZES[config].feature_mask > 0
        return self.architecture == "masked-swinir"

    def describe(self) -> str:
        o = self.options
        levels = "levels {:g}-{:g}".format(*o.level_range) if o.level_range else f"level {o.level:g}"
        if self.practical:
            levels = "strengths {:g}-{:g}, web-resized".format(*(o.level_range or (1, 1)))
        network = NETWORK_NAMES[self.architecture]
        kind = f"Masked {network}" if o.mask else f"Plain (no-mask baseline) {network}"
        grey = f", {o.grey_share:.0%} of crops grey" if o.grey_share else ""
        thumbnails = f", {o.thumbnail_share:.0%} web thumbnails" if o.thumbnail_share else ""
        return f"{kind}, {o.config} size, trained on {o.noise} noise at {levels}{grey}{thumbnails}"

    def source_crop(self, crop: int) -> int:
        """Practical training shrinks twice larger crops the way the web does (`degrade.web_resize`)."""
        return 2 * crop if self.practical else crop

    def pairs(self, clean: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Training targets and their noisy inputs from clean (B, C, S, S) crops, S = `source_crop(crop)`; grey
        crops (equal channels) get the first channel's noise in every channel."""
        clean = self.greyed(clean, generator)
        if self.practical:
            low, high = self.options.level_range or (1.0, 1.0)
            strength = low + (high - low) * float(torch.rand((), generator=generator, device=generator.device))
            thumbnails = self.options.thumbnail_share
            clean, noisy = degrade.practical_pair(clean, self.options.crop, generator, strength, thumbnails)
        else:
            clean, noisy = self.noise.reference_on_device(clean), self.noisy(clean, generator)
        if not self.options.grey_share:
            return clean, noisy
        grey = (clean == clean[:, :1]).flatten(1).all(dim=1)
        return clean, torch.where(grey[:, None, None, None], noisy[:, :1].expand_as(noisy), noisy)

    def noisy(self, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Noisy copies of clean (B, C, H, W) crops: at the run's level, or each at its own level drawn uniformly
        from the level range."""
        if not self.options.level_range:
            return self.noise.on_device(clean, generator)
        low, high = self.options.level_range
        levels = low + (high - low) * torch.rand(len(clean), generator=generator, device=clean.device)
        return torch.cat([
            noise.make_noise(self.options.noise, level).on_device(crop[None], generator)
            for level, crop in zip(levels.tolist(), clean, strict=True)
        ])  # fmt: skip

    def greyed(self, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Clean crops with `grey_share` of them (drawn from `generator`) replaced by their channel mean in every
        channel: grey images run through a colour network replicated, their noise the same in each channel."""
        if not self.options.grey_share:
            return clean
        grey = torch.rand(len(clean), generator=generator, device=clean.device) < self.options.grey_share
        return torch.where(grey[:, None, None, None], clean.mean(dim=1, keepdim=True).expand_as(clean), clean)

    def build(self) -> nn.Module:
        o = self.options
        if self.architecture == "unet":
            return registry.ARCHITECTURES[self.architecture](self._unet_config().to_dict())
        if self.architecture == "dynamic-filter":
            iterative = ITERATIVE_SIZES[o.config]
            return registry.ARCHITECTURES[self.architecture](replace(iterative, partial=o.mask).to_dict())
        config = SIZES[o.config]
        config = SwinIRConfig(**{**asdict(config), "attention_mask_ratio": o.attention_mask if o.mask else 0.0})
        return registry.ARCHITECTURES[self.architecture](config.to_dict()).use_attention(o.attention_kernel)

    def _unet_config(self) -> UNetConfig:
        """The named U-Net with the run's masks: feature masks at the attention-mask ratio and a partial first
        convolution only when the run masks (its unmasked twin is the same network without them)."""
        o, config = self.options, UNET_SIZES[self.options.config]
        feature_mask = o.attention_mask if o.mask and config.feature_mask else 0.0
        partial = config.partial and o.mask
        return replace(config, feature_mask=feature_mask, partial=partial, own_pixel=config.own_pixel and partial)

    def optimizer(self, parameters: Iterator[nn.Parameter]) -> torch.optim.Optimizer:
        return fused_where_supported(torch.optim.Adam, parameters, lr=self.options.lr, betas=(0.9, 0.99))

    def clip(self, parameters: Iterator[nn.Parameter]) -> None:
        """No gradient clipping in the paper's recipe; an iterative dynamic filter's norm clipped to ITERATIVE_CLIP."""
        if self.architecture == "dynamic-filter":
            torch.nn.utils.clip_grad_norm_(list(parameters), ITERATIVE_CLIP)

    def loss(self, model: nn.Module, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """L1 between the clean crops (B, C, H, W) and the network's output on their noisy, masked copies; noise
        and masks are drawn on the crops' device from `generator`."""
        o = self.options
        clean, noisy = self.pairs(clean, generator)
        if o.mask:
            noisy = swinir.input_mask(noisy, o.input_mask, generator)
        with torch.autocast(clean.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            out = model(noisy, generator=generator, attention_mask=o.mask)
        return F.l1_loss(out.float(), clean)

    def inference(self) -> dict[str, Any]:
        """How the card runs. A masked U-Net sees its input whole, as the paper's test does, with its feature
        masks on and UNET_PASSES passes averaged when they make it random. A masked SwinIR sees its inputs masked
        as in training (the mean ratio), and 8 such passes are averaged: unmasked inputs left it far from its
        training conditions (on the bench this lifted the unseen-noise mean of the 6000-iteration small card
        from 21.6 to 25.0 dB)."""
        if not self.options.mask or self.architecture == "dynamic-filter":
            return {}
        if self.architecture == "unet":
            return {"passes": UNET_PASSES} if self._unet_config().stochastic else {}
        low, high = self.options.input_mask
        return {"input_mask": round((low + high) / 2, 4), "passes": 8}

    def images(self, warn: Callable[[str], None]) -> list[np.ndarray]:
        return clean_images(self.options, self.source_crop(self.options.crop), warn)

    def procedural(self) -> int:
        return procedural_count(self.options)

    def validation(self, warn: Callable[[str], None]) -> ValidationSet | None:
        references = validation_references(self.options, warn)
        return ValidationSet.make(references, self.options.level) if references else None

    def score(self, validation: ValidationSet, model: nn.Module) -> dict[str, float]:
        device = str(next(model.parameters()).device)
        options = EngineOptions(device=device, attention_mask=self.options.mask, **self.inference())
        return validation.score(model, options)

    def card_fields(self) -> dict[str, Any]:
        return {}


class MaskedFill:
    """MPI's masked pre-training: hide random pixels of clean crops, predict them from the rest and the mask.

    Loss: PSNR loss (10/ln 10 * log MSE) on the hidden pixels, per image; AdamW (0.9, 0.9), cosine decay (to
    1e-5 from the default 2e-3), gradient norm clipped to 0.01. The mask law follows the network: one mask
    shared by all channels when it takes one mask channel ("real", microscopy), else independent per channel
    ("syn"); the ratio is drawn per step from `input_mask` (30 % for syn, 80-95 % for real in MPI). It trains in
    float32 whatever the run's precision.
    """

    name = task = "fill"
    architecture = "skip"
    score_name = "validation_hidden_pixels"
    defaults: ClassVar[dict[str, Any]] = OBJECTIVE_DEFAULTS[name]
    card_from_data: ClassVar[str] = ""

    def __init__(self, options: TrainOptions, dtype: torch.dtype) -> None:
        self.options = options
        if options.config not in SKIP_SIZES:
            raise MdnError(f"objective fill needs --config one of {', '.join(SKIP_SIZES)}, got {options.config!r}")
        if options.attention_kernel != "auto":
            raise MdnError("--attention-kernel is for objective denoise: the fill network has no attention")
        unused = (*NOISE_OPTIONS, "mask", "attention_mask", *RENDER_OPTIONS, "precision")
        refuse_unused(options, unused, "by objective fill, which hides pixels of clean crops and trains in float32")
        self.config = SKIP_SIZES[options.config]

    def describe(self) -> str:
        low, high = self.options.input_mask
        law = "one shared mask" if self.config.mask_channels == 1 else "per-channel masks"
        ratio = f"{low:.0%}" if low == high else f"{low:.0%}-{high:.0%}"
        return f"MPI fill network ({self.options.config}), pre-trained on {ratio} {law}"

    def build(self) -> nn.Module:
        """The network in channels-last layout, which runs its convolutions 1.5-1.9x faster on CPU."""
        return registry.ARCHITECTURES[self.architecture](self.config.to_dict()).to(memory_format=torch.channels_last)

    def optimizer(self, parameters: Iterator[nn.Parameter]) -> torch.optim.Optimizer:
        settings = {"lr": self.options.lr, "betas": (0.9, 0.9), "weight_decay": 0.0}
        return fused_where_supported(torch.optim.AdamW, parameters, **settings)

    def clip(self, parameters: Iterator[nn.Parameter]) -> None:
        nn.utils.clip_grad_norm_(list(parameters), 0.01)

    def source_crop(self, crop: int) -> int:
        return crop

    def _mask(self, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        low, high = self.options.input_mask
        ratio = low + (high - low) * torch.rand(1, generator=generator, device=clean.device)  # no host sync
        b, c, h, w = clean.shape
        shape = (b, self.config.mask_channels if self.config.mask_channels == 1 else c, h, w)
        return (torch.rand(shape, generator=generator, device=clean.device) < ratio).to(clean.dtype)

    def loss(self, model: nn.Module, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """PSNR loss on the hidden pixels of grey or colour crops (colour crops are averaged for grey nets)."""
        if self.config.channels == 1:
            clean = clean.mean(dim=1, keepdim=True)
        clean = clean.contiguous(memory_format=torch.channels_last)
        hidden = self._mask(clean, generator)
        out = model(clean * (1 - hidden), hidden.expand(-1, self.config.mask_channels, -1, -1))
        mse = ((out - clean) * hidden).pow(2).flatten(1).mean(1)
        return (10 / math.log(10)) * torch.log(mse + 1e-8).mean()

    def inference(self) -> dict[str, Any]:
        return {}

    def images(self, warn: Callable[[str], None]) -> list[np.ndarray]:
        return clean_images(self.options, self.options.crop, warn)

    def procedural(self) -> int:
        return procedural_count(self.options)

    def validation(self, warn: Callable[[str], None]) -> list[np.ndarray] | None:
        references = validation_references(self.options, warn)
        return [_centre_crop(r, 192) for r in references] if references else None

    def score(self, validation: list[np.ndarray], model: nn.Module) -> dict[str, float]:
        """PSNR (dB) of the predictions at hidden pixels, with a fixed mask per image (drawn on the CPU, so that
        every device scores the same pixels); BatchNorm uses the image's own statistics, as in zero-shot use."""
        device = next(model.parameters()).device
        model.train()
        errors = []
        with torch.no_grad():
            for i, image in enumerate(validation):
                clean = torch.from_numpy(image).permute(2, 0, 1)[None]
                if self.config.channels == 1:
                    clean = clean.mean(dim=1, keepdim=True)
                hidden = self._mask(clean, torch.Generator().manual_seed(i)).to(device)
                clean = clean.to(device)
                out = model(clean * (1 - hidden), hidden.expand(-1, self.config.mask_channels, -1, -1))
                errors.append(float(((out - clean) * hidden).pow(2).sum() / hidden.sum().clamp(min=1)))
        model.eval()
        return {"psnr": float(10 * np.log10(1 / max(np.mean(errors), 1e-12)))}

    def card_fields(self) -> dict[str, Any]:
        return {}
