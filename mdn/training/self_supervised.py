"""Learning from one camera's noisy images alone (`mdn train --noisy`): no clean data, as microscopists have it.

The images' Poisson-Gaussian noise is fitted and stabilised (`mdn.stabilise`): after the transform it is
Gaussian with a known spread s, the same at every brightness. A shipped denoiser, pre-trained on photos, is then
fine-tuned in that domain with Recorrupted-to-Recorrupted (Pang et al., CVPR 2021): each noisy crop y gets fresh
noise z of spread s, the network sees y + a z and is trained towards y - z / a, whose noise is independent of
its input's, so the squared loss is the clean-target loss plus a constant. The card keeps the fitted transform:
`mdn denoise --model NAME` runs new acquisitions of that camera through it.

Validation needs no clean image either: Stein's unbiased risk estimate (Monte-Carlo SURE, Ramani et al. 2008)
of the mean squared error on fixed crops, given as an estimated PSNR in the stabilised range.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mdn import registry
from mdn.errors import MdnError
from mdn.io import images, picture, tonemap
from mdn.io.batch import expand_inputs
from mdn.stabilise import PoissonGaussian, Stabiliser, stabiliser_for
from mdn.training.objectives import RENDER_OPTIONS, CardFineTuning
from mdn.training.options import OBJECTIVE_DEFAULTS, TrainOptions

RECORRUPTION = 0.5
"""a: the share of the noise spread added to the input (Pang et al.'s choice); the target carries 1 / a."""

VALIDATION_CROPS = 8
VALIDATION_SIZE = 128
SURE_STEP = 1e-3
"""The finite-difference step of the Monte-Carlo divergence, in the [0, 1] range."""


class SelfSupervised(CardFineTuning):
    """Fine-tune a denoiser card (`init`, the default card by default) on noisy images stabilised by their fitted
    noise."""

    name = "self-supervised"
    score_name = "validation_self_supervised"
    purpose = "learning from noisy data"
    defaults: ClassVar[dict[str, Any]] = OBJECTIVE_DEFAULTS[name]
    card_from_data: ClassVar[str] = "the camera's noise fit (its transform)"
    unused: ClassVar[tuple[str, ...]] = (*CardFineTuning.unused, *RENDER_OPTIONS)
    """Besides a fine-tuning's, render training's options: a camera's pictures have no tone map nor buffers."""

    def __init__(self, options: TrainOptions, dtype: torch.dtype, card: registry.ModelCard | None = None) -> None:
        super().__init__(options, dtype, card)
        if options.validation:
            raise MdnError("learning from noisy data validates on its own data (SURE): --val takes no files here")
        self.stabiliser: Stabiliser | None = None
        self.files: list[dict[str, Any]] = []
        self.pool: list[np.ndarray] = []

    def describe(self) -> str:
        return f"U-Net fine-tuned from {self.card.name} on one camera's noisy images (Recorrupted-to-Recorrupted)"

    def build(self) -> nn.Module:
        """The init card's network, in channels-last layout (its convolutions run 1.5x faster on CPU)."""
        return registry.build(self.card).to(memory_format=torch.channels_last)

    def images(self, warn: Callable[[str], None]) -> list[np.ndarray]:
        """The noisy planes (H, W, C) of every file, stabilised by the noise fitted to all of them (grey planes
        stay grey: they run through a colour network replicated, as `mdn denoise` runs them)."""
        planes, channels = self._read(warn)
        grey = [p[..., c] for p in planes for c in range(p.shape[-1])]
        try:
            noise = PoissonGaussian.fit(grey, seed=self.options.seed)
        except MdnError as exc:  # named by the data it was fitted to
            data = self.options.data
            if len(data) == 1:
                raise MdnError(str(exc), Path(data[0])) from None
            raise MdnError(f"{exc}, fitted to the {len(self.files)} files of {', '.join(data)}") from None
        self.stabiliser = Stabiliser.fit(noise.without_pedestal(), grey)  # as `mdn denoise` fits it
        wanted = registry.network_config(self.card).channels
        if channels not in (1, wanted):
            raise MdnError(f"--init {self.card.name} takes {wanted} channels; the noisy images have {channels}")
        self.pool = [np.ascontiguousarray(self.stabiliser.forward(p), dtype=np.float32) for p in planes]
        return self.pool

    def _read(self, warn: Callable[[str], None]) -> tuple[list[np.ndarray], int]:
        """Every plane (H, W, C) of the files, all of one sample type and channel count; the files' record."""
        planes: list[np.ndarray] = []
        kinds = set()
        for path in expand_inputs(self.options.data, recursive=True):
            try:
                image = images.read(path)
            except MdnError as exc:
                warn(f"skipped: {exc}")
                continue
            if image.hdr or image.alpha is not None:
                warn(f"skipped: {path}: HDR and alpha images are not camera counts")
                continue
            if min(image.height, image.width) < self.options.crop:
                warn(f"skipped: {path}: smaller than {self.options.crop}x{self.options.crop} pixels (--crop)")
                continue
            layout = image.source.layout
            _check_one_detector(image)
            kinds.add((str(layout.dtype), image.pixels.shape[-1]))
            planes.extend(image.pixels)
            self.files.append({
                "path": str(path), "shape": list(layout.shape), "dtype": str(layout.dtype), "axes": layout.axes,
                "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
            })  # fmt: skip
        if not planes:
            raise MdnError(f"no usable noisy images in {', '.join(self.options.data)}")
        if len(kinds) > 1:
            found = ", ".join(f"{d} with {c} channel(s)" for d, c in sorted(kinds))
            raise MdnError(f"the noisy images must come from one camera: one sample type and channel count ({found})")
        return planes, kinds.pop()[1]

    @property
    def sigma(self) -> float:
        assert self.stabiliser is not None, "images() fits the noise first"
        return self.stabiliser.sigma

    def loss(self, model: nn.Module, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Recorrupted-to-Recorrupted on noisy crops (B, C, H, W) (the loop calls them `clean`)."""
        noise = torch.randn(clean.shape, generator=generator, device=clean.device, dtype=clean.dtype) * self.sigma
        with torch.autocast(clean.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            out = run(model, clean + RECORRUPTION * noise)
        return F.mse_loss(out.float(), clean - noise / RECORRUPTION)

    def validation(self, warn: Callable[[str], None]) -> list[torch.Tensor]:
        """Fixed crops of the training images, drawn from the run's seed."""
        pool = self.pool or self.images(lambda message: None)
        rng = np.random.default_rng([self.options.seed, 11])
        crops = []
        for i in rng.choice(len(pool), VALIDATION_CROPS):
            image = pool[i]
            side = registry.network_config(self.card).window  # the network's sides (a U-Net's: 16)
            size = min(VALIDATION_SIZE, *image.shape[:2]) // side * side
            y, x = (int(rng.integers(n - size + 1)) for n in image.shape[:2])
            crops.append(torch.from_numpy(np.ascontiguousarray(image[y : y + size, x : x + size])).permute(2, 0, 1))
        return crops

    def score(self, validation: list[torch.Tensor], model: nn.Module) -> dict[str, float]:
        """SURE's estimate of the PSNR on the validation crops, and the noisy input's PSNR, in the stabilised range;
        where SURE's mean squared error falls below zero (noise fitted larger than the data holds), no PSNR but
        that mean (`sure_mse`)."""
        device = next(model.parameters()).device
        errors = [
            sure(model, crop[None].to(device), self.sigma, torch.Generator(device).manual_seed(i))
            for i, crop in enumerate(validation)
        ]
        mse, noisy_psnr = float(np.mean(errors)), float(10 * np.log10(1 / self.sigma**2))
        if mse <= 0:  # the fitted noise exceeds the data's (quantised or processed values): no estimate to give
            return {"noisy_psnr": noisy_psnr, "sure_mse": mse}
        return {"psnr": float(10 * np.log10(1 / mse)), "noisy_psnr": noisy_psnr}

    def card_fields(self) -> dict[str, Any]:
        assert self.stabiliser is not None, "images() fits the noise first"
        return {
            "transform": {"stabiliser": self.stabiliser.to_dict(), "dtype": self.files[0]["dtype"]},
            "training": {"noisy_data": self.files, "noise_fit": self.stabiliser.noise.to_dict()},
        }


DETECTORS_APART = 1.5
"""How many times one channel's fitted gain may differ from another's before a file's channels count as two
detectors' (a hyperstack's dim and bright channels: 2 and 60 counts a photon)."""


def _check_one_detector(image: picture.Image) -> None:
    """An MdnError where the channels of a stack's C axis carry different noise: a card learns one camera's, and
    one fit for both made a dim channel's output far worse than its input (each channel fitted as
    `tonemap.PerChannel` fits a file's for `mdn denoise`, on a sample of its planes)."""
    fitted = tonemap.PerChannel.around(image, _noise_fit)
    if not isinstance(fitted, tonemap.PerChannel):
        return
    gains = [part.noise.gain for part in fitted.transforms if isinstance(part, Stabiliser)]
    if len(gains) == len(fitted.transforms) and max(gains) > DETECTORS_APART * min(gains):
        raise MdnError(
            f"its {len(gains)} channels carry different noise (one's photon gain {max(gains) / min(gains):.1f}x "
            "another's: two detectors?); a --noisy card learns one camera's: train one card per channel, each "
            "channel in files of its own",
            image.path,
        )


def _noise_fit(image: picture.Image) -> tonemap.DisplayTransform:
    """The stabiliser fitted to a grey image's planes, or Identity where no photon noise fits."""
    return stabiliser_for([plane[..., 0] for plane in image.pixels]) or tonemap.Identity()


def run(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The network on (B, C, H, W) in channels-last layout; grey (C = 1) runs through a colour network replicated
    and is averaged back, as the inference engine runs it."""
    grey = x.shape[1] == 1 and model.config.channels == 3
    out = model((x.expand(-1, 3, -1, -1) if grey else x).contiguous(memory_format=torch.channels_last))
    return out.mean(dim=1, keepdim=True) if grey else out


def sure(model: nn.Module, noisy: torch.Tensor, sigma: float, generator: torch.Generator) -> float:
    """Monte-Carlo SURE: an unbiased estimate of the mean squared error of `model` on noisy (1, C, H, W), whose
    noise is Gaussian of spread `sigma`, from the noisy image alone: |f(y) - y|^2 / n - sigma^2 + 2 sigma^2 div f
    / n, the divergence probed by one random direction."""
    probe = torch.randn(noisy.shape, generator=generator, device=noisy.device, dtype=noisy.dtype)
    with torch.no_grad():
        out, moved = run(model, noisy).float(), run(model, noisy + SURE_STEP * probe).float()
    divergence = float((probe * (moved - out)).sum()) / SURE_STEP
    n = noisy.numel()
    return (float(((out - noisy) ** 2).sum()) - n * sigma**2 + 2 * sigma**2 * divergence) / n
