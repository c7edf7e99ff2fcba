"""Zero-shot denoising of one image: MPI's fine-tuning with iterative fill (`mpi`, with its `self_check` and
`presets`), and ZS-N2N (`zs_n2n`); `ZeroShot` runs either over a stack's planes, and `run` is one run as
`mdn zeroshot` asks for it.

MPI (Ma et al., NeurIPS 2024) fine-tunes a copy of a mask-pre-trained skip network on the noisy image
itself: every iteration hides a random share of pixels, predicts them from the rest, blends the prediction
into the running output at the hidden pixels only (an exponential moving average) and takes one Adam step on
the hidden pixels' error. ZS-N2N (Mansour & Heckel, CVPR 2023) trains a tiny network from scratch on the two
diagonal half-resolution sub-images of the noisy image, each the target of the other.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np
import torch

from mdn.errors import MdnError
from mdn.inference.engine import ProgressCallback
from mdn.inference.tiling import TileGrid
from mdn.nets.skip import SkipNet
from mdn.zeroshot.mpi import IterativeFill, end_time, mpi_tiled
from mdn.zeroshot.presets import CONTINUED, FILL_CARDS, PRESETS, ZS_N2N_PRESET, Preset, fill_card
from mdn.zeroshot.self_check import SMALL_GAIN_DB, SelfCheck
from mdn.zeroshot.zs_n2n import zs_n2n


class ZeroShot:
    """Runs MPI or ZS-N2N over (N, H, W, C) planes in [0, 1]: slice by slice, fitting channels to the net.

    A grey net denoises colour planes channel by channel; a colour net with one shared mask sees grey planes
    replicated and averaged back. With `share`, each slice of a stack continues the fine-tuned network and
    optimiser of the slice before it of the same channel (a hyperstack's planes: `plane_channels`) instead of
    starting again from the pre-trained weights, for CONTINUED of the preset's iterations: continued from the other
    channel's (another dye), a two-channel stack came out 0.6 to 0.9 dB worse. A time budget is shared by the
    slices in proportion to their iterations. MPI's self-check of every plane (and channel group) of the last call
    is in `checks`.
    """

    def __init__(
        self,
        preset: Preset,
        net: SkipNet | None = None,
        *,
        seed: int = 0,
        tile: int = 512,
        overlap: int = 32,
        share: bool = False,
        time_budget: float | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        progress: ProgressCallback | None = None,
        self_check: bool = True,
    ) -> None:
        self.preset, self.seed, self.tile, self.overlap, self.share = preset, seed, tile, overlap, share
        self.time_budget, self.device, self.dtype, self.progress = time_budget, torch.device(device), dtype, progress
        self.net = net.to(self.device) if net is not None else None
        self.self_check = self_check
        self.checks: list[SelfCheck] = []
        self.runs: list[tuple[int, list[int]]] = []
        """What the last call ran, in order: (plane, its channels) each (a grey net runs a colour plane's apart)."""
        self.iterations: list[int] = []
        """The iterations each plane (and channel group) of the last call was given."""
        self.iterations_run: list[int] = []
        """The iterations each ran (fewer where a time budget stopped it)."""

    def __call__(self, planes: np.ndarray, plane_channels: Sequence[int] | None = None) -> np.ndarray:
        """The (N, H, W, C) planes denoised; `plane_channels`: each plane's index on a hyperstack's C axis (None:
        one channel)."""
        runs = self.runs = [(i, c) for i in range(planes.shape[0]) for c in self._channel_groups(planes.shape[-1])]
        # a slice continues the slice before of its channel: of its hyperstack channel, and (a grey net on colour
        # planes) of its colour channel
        chains = [(0 if plane_channels is None else int(plane_channels[plane]), *group) for plane, group in runs]
        steps = [self._steps(chains[:index], chains[index]) for index in range(len(runs))]
        self.iterations = [step.iters for step in steps]
        work = [step.iters * self._tiles(planes.shape[1:]) for step in steps]
        total = sum(work)
        end = end_time(self.time_budget)
        done, fills, result = 0, {}, np.empty_like(planes)
        self.checks, self.iterations_run = [], []
        for index, (plane, channels) in enumerate(runs):
            portion = steps[index].iters / sum(step.iters for step in steps[index:])  # of the time left
            tiles = work[index] // steps[index].iters
            self.iterations_run.append(0)

            def report(step: int, _: int, base: int = done, tiles: int = tiles) -> None:
                self.iterations_run[-1] = step // tiles
                if self.progress:
                    self.progress(base + step, total)

            image = planes[plane][..., channels]
            if self.net is None:
                iters = self.preset.iters
                out = zs_n2n(
                    image, iters=iters, lr=self.preset.lr, seed=self.seed, device=self.device, dtype=self.dtype,
                    time_budget=_share_of(end, portion), progress=report,
                )  # fmt: skip
            else:
                net_channels = self.net.config.channels
                fitted = np.repeat(image, net_channels, axis=-1) if image.shape[-1] < net_channels else image
                if not self.share or chains[index] not in fills:  # a second or so, the first
                    fills[chains[index]] = IterativeFill(self.net, self.preset, self.seed, self.dtype)
                fill = fills[chains[index]]
                out, check = mpi_tiled(
                    fitted, self.net, steps[index], tile=self.tile, overlap=self.overlap,
                    time_budget=_share_of(end, portion),
                    progress=report, fill=fill, self_check=self.self_check,
                )  # fmt: skip
                self.checks += [check] if check else []
                out = out.mean(axis=-1, keepdims=True) if out.shape[-1] > image.shape[-1] else out
            result[plane][..., channels] = out
            done += work[index]
        return result

    def _steps(self, before: list[tuple[int, ...]], chain: tuple[int, ...]) -> Preset:
        """The preset a run of `chain` (its plane's channel) after runs of `before` runs: the preset, or fewer
        iterations where it continues one of its chain."""
        if not self.share or chain not in before or self.net is None:
            return self.preset
        return dataclasses.replace(self.preset, iters=max(1, round(self.preset.iters * CONTINUED)))

    def _channel_groups(self, channels: int) -> list[list[int]]:
        if self.net is not None and self.net.config.channels == 1 and channels > 1:
            return [[c] for c in range(channels)]
        if self.net is not None and channels == 1 and self.net.config.mask_channels != 1:
            raise MdnError("a grey image needs a grey or shared-mask fill network (see mdn models)")
        return [list(range(channels))]

    def _tiles(self, shape: tuple[int, ...]) -> int:
        if self.net is None:
            return 1
        return len(TileGrid.cover(shape[0], shape[1], self.tile, self.overlap))


__all__ = [
    "CONTINUED", "FILL_CARDS", "PRESETS", "SMALL_GAIN_DB", "ZS_N2N_PRESET", "IterativeFill", "Preset", "SelfCheck",
    "ZeroShot", "fill_card", "mpi_tiled", "zs_n2n",
]  # fmt: skip


def _share_of(end: float | None, portion: float) -> float | None:
    """A slice's `portion` of the time left until `end` (None: no budget), taken as it starts its iterations: its
    set-up (building the fine-tuning's optimiser) spent none of the slices' after it."""
    return None if end is None else max(0.0, (end - time.monotonic()) * portion)
