"""One zero-shot run as `mdn zeroshot` and `mdn.zeroshot` ask for it: the method and its preset with the
caller's overrides, checked; the fill card for the image; and what MPI's self-check means for the user."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mdn import allocator, registry, zeroshot
from mdn.device import pick_device, pick_dtype
from mdn.errors import MdnError
from mdn.inference.cards import check_seed
from mdn.inference.engine import MIN_TILE, ProgressCallback
from mdn.units import KIND_WORDS, is_kind, parse_duration

METHODS = ("mpi", "zs-n2n")
DEFAULT_PRESET_RGB, DEFAULT_PRESET = "full", "microscopy"
"""MPI's preset when none is given: `full` on RGB images, where it led `microscopy` by 1.29 ± 0.07 dB on the
colour bench at photon peak 10 (14 of 14 images) in two thirds of the time; `microscopy` on grey and other
channel counts (docs/bench.md)."""
PRECISION = "auto"
"""The default precision of zero-shot fine-tuning: bf16 where the hardware computes it natively."""
TILE, OVERLAP = 512, 32
"""MPI fine-tunes images larger than TILE pixels a side in tiles sharing OVERLAP pixels."""

FillModel = str | os.PathLike[str] | registry.ModelCard | registry.Model | None
"""A fill card by name or JSON path, the card itself or its loaded model; None: the preset's for the image."""


_KINDS: dict[str, type] = {
    "method": str, "preset": str, "iters": int, "beta": float, "mask_ratio": float, "lr": float, "share": bool,
    "self_check": bool, "tile": int, "overlap": int, "device": str, "precision": str, "seed": int,
}  # fmt: skip
"""The kind of each setting a caller gives (the API's callers: the command line's are typed by their options)."""
_GIVEN = ("method", "device", "precision", "seed")
"""The settings that None does not stand for (the others: the method's, the preset's or on)."""


@dataclass(frozen=True)
class Settings:
    """A zero-shot run's settings as the caller gives them (None: the method's or the preset's), checked as they
    are made: MdnError for a bad name or value."""

    method: str
    preset: str | None
    model: FillModel
    iters: int | None
    beta: float | None
    mask_ratio: float | None
    lr: float | None
    time_budget: float | str | None
    """Seconds, or a duration such as 90s or 1m (`units.parse_duration`): seconds once made."""
    share: bool | None
    """MPI on stacks: continue each slice from the previous one (None: yes)."""
    self_check: bool | None
    """MPI: blend the input back where the fill looks worse (None: yes)."""
    tile: int | None
    overlap: int | None
    device: str
    precision: str
    seed: int

    def __post_init__(self) -> None:
        self._check_kinds()
        check_seed(self.seed)
        if self.preset is not None and self.preset not in zeroshot.PRESETS:
            raise MdnError(f"unknown --preset {self.preset!r} (choose from {', '.join(zeroshot.PRESETS)})")
        if self.method not in METHODS:
            raise MdnError(f"--method must be mpi or zs-n2n, got {self.method!r}")
        if self.method == "zs-n2n" and (refused := self.mpi_only()):
            raise MdnError(f"{', '.join(refused)} {'applies' if len(refused) == 1 else 'apply'} to --method mpi only")
        if self.iters is not None and self.iters < 1:
            raise MdnError(f"--iters must be at least 1, got {self.iters}")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise MdnError(f"--lr must be a number more than 0, got {self.lr:g}")
        if self.beta is not None and not 0 <= self.beta < 1:
            raise MdnError(f"--beta must be in [0, 1), got {self.beta:g}")
        if self.mask_ratio is not None and not 0 < self.mask_ratio < 1:
            raise MdnError(f"--mask-ratio must be in (0, 1), got {self.mask_ratio:g}")
        if self.tile is not None and self.tile < MIN_TILE:
            raise MdnError(f"--tile must be at least {MIN_TILE} pixels, got {self.tile}")
        tile = TILE if self.tile is None else self.tile
        if self.overlap is not None and not 0 <= self.overlap <= tile // 2:
            raise MdnError(f"--overlap must be in [0, {tile // 2}] (half of --tile {tile}), got {self.overlap}")
        if self.time_budget is not None:
            object.__setattr__(self, "time_budget", parse_duration(self.time_budget))
        if isinstance(self.model, registry.Model):
            registry.check_task(self.model.card, "fill")
        elif self.model is not None:
            registry.check_task(
                self.model if isinstance(self.model, registry.ModelCard) else registry.find(self.model, "fill"), "fill"
            )
        pick_dtype(self.precision, pick_device(self.device))

    def _check_kinds(self) -> None:
        """An MdnError for a setting of another kind than `_KINDS` says (None only where it stands for one)."""
        for name, kind in _KINDS.items():
            value = getattr(self, name)
            if (value is not None or name in _GIVEN) and not is_kind(value, kind):
                option = "--" + name.replace("_", "-")
                raise MdnError(f"{option} must be {KIND_WORDS[kind]}, got {value!r}")

    def mpi_only(self) -> list[str]:
        """The options given that only MPI has: ZS-N2N trains a fresh network on the whole image, with no mask,
        fill card, tiles or self-check."""
        given = {
            "--preset": self.preset is not None, "--model": self.model is not None, "--beta": self.beta is not None,
            "--mask-ratio": self.mask_ratio is not None, "--share": self.share is not None,
            "--tile": self.tile is not None, "--overlap": self.overlap is not None,
            "--no-self-check": not _on(self.self_check),
        }  # fmt: skip
        return [option for option, set_ in given.items() if set_]

    def preset_name(self, channels: int) -> str:
        """The preset given, or the default for images with `channels` channels."""
        return self.preset or (DEFAULT_PRESET_RGB if channels == 3 else DEFAULT_PRESET)

    def steps(self, channels: int) -> zeroshot.Preset:
        """The method's preset for images with `channels` channels, with the overrides given."""
        base = zeroshot.PRESETS[self.preset_name(channels)] if self.method == "mpi" else zeroshot.ZS_N2N_PRESET
        overrides = {"iters": self.iters, "beta": self.beta, "mask_ratio": self.mask_ratio, "lr": self.lr}
        return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})

    @property
    def target(self) -> torch.device:
        return pick_device(self.device)


def _on(switch: bool | None) -> bool:
    """Whether a switch the caller may leave out (None) is on: by default it is."""
    return switch is None or bool(switch)


def fill_model(run: Settings, channels: int) -> registry.Model | None:
    """The fill network MPI fine-tunes (the preset's card for the image kind unless one is given); None for
    ZS-N2N. Raises MdnError, saying how to make one, when the default card is not installed."""
    if run.method != "mpi":
        return None
    if run.model is None:
        default = zeroshot.fill_card(run.preset_name(channels), grey=channels == 1)
        if default not in registry.cards():
            raise MdnError(
                f"no pre-trained fill model {default!r} is installed: train one with "
                f"`mdn train --objective fill --config {default.removeprefix('fill-')} --name {default}` "
                "or use --method zs-n2n"
            )
        return registry.load_model(default, task="fill")
    return registry.load_model(run.model, task="fill")


def run(
    planes: np.ndarray,
    settings: Settings,
    progress: ProgressCallback | None = None,
    info: dict[str, Any] | None = None,
    plane_channels: Sequence[int] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Denoise (N, H, W, C) display-range planes; returns them with the self-check's warnings. Pixels outside
    [0, 1] (outliers past a range fitted without them: a hot pixel) are fitted as their neighbours' median
    (`in_range`) and come back as they were: the fill networks know [0, 1] alone. `plane_channels`: each plane's
    index on a hyperstack's C axis (a slice continues the one before of its channel). `info` gets the method,
    model, iterations, device, precision and (MPI) the self-check's estimates per plane."""
    channels = planes.shape[-1]
    model = fill_model(settings, channels)
    preset, device = settings.steps(channels), settings.target
    allocator.keep_freed_memory()  # fine-tuning steps: 1.5x faster without fresh pages for every tensor
    dtype = pick_dtype(settings.precision, device)
    runner = zeroshot.ZeroShot(
        preset, model.net if model else None, seed=settings.seed, tile=TILE if settings.tile is None else settings.tile,
        overlap=OVERLAP if settings.overlap is None else settings.overlap, share=_on(settings.share),
        time_budget=settings.time_budget, device=device, dtype=dtype, progress=progress,
        self_check=_on(settings.self_check),
    )  # fmt: skip
    outside = (planes < 0) | (planes > 1)
    result = runner(in_range(planes, outside) if outside.any() else planes, plane_channels)
    np.copyto(result, planes, where=outside)
    if info is not None:
        info.update(
            method=settings.method, model=model and model.name, iters=preset.iters, device=str(device),
            precision=str(dtype).removeprefix("torch."),
        )  # fmt: skip
        if len(set(runner.iterations)) > 1:
            info["continued_iters"] = runner.iterations[-1]  # a stack's slices after the first
        if runner.iterations_run != runner.iterations:  # a time budget stopped them
            info["iters_run"] = runner.iterations_run
        if runner.checks:
            info["self_check"] = [check.to_json() for check in runner.checks]
    names = run_names(runner.runs, channels) if len(runner.checks) == len(runner.runs) else None
    found = verdicts(runner.checks, settings.preset_name(channels), names)
    return result, found + _budget_spent(runner.iterations_run, channels, runner.runs)


def in_range(planes: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """The (N, H, W, C) planes with each pixel `outside` [0, 1] replaced by the median of its 3x3 neighbours
    clipped to [0, 1]: three hot pixels clipped to 1 on a 256² specimen had still made the fine-tuned fill look
    2.3 dB worse than the input to the self-check, which gave the input back."""
    padded = np.pad(np.clip(planes, 0.0, 1.0), ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    n, y, x, c = np.nonzero(outside)
    neighbours = np.stack([padded[n, y + dy, x + dx, c] for dy in (0, 1, 2) for dx in (0, 1, 2) if (dy, dx) != (1, 1)])
    filled = planes.copy()
    filled[n, y, x, c] = np.median(neighbours, axis=0)
    return filled


def _budget_spent(iterations_run: list[int], channels: int, runs: list[tuple[int, list[int]]]) -> list[str]:
    """Words for the parts of a run that a time budget left no iteration (`iterations_run` 0): all of it, or
    which planes or channels came back as they were."""
    unrun = [i for i, iterations in enumerate(iterations_run) if iterations == 0]
    if not unrun:
        return []
    if len(unrun) == len(iterations_run):
        return ["the time budget ran out before the first iteration: the input came back as it was"]
    which = _which(unrun, len(iterations_run), run_names(runs, channels))
    back = "it came back as it was" if len(unrun) == 1 else "they came back as they were"
    return [f"the time budget ran out before {which} began: {back} (give more time)"]


def verdicts(checks: list[zeroshot.SelfCheck], preset: str, names: list[str] | None = None) -> list[str]:
    """What a user should know from MPI's self-check: a fill that alone would have made the image worse, and
    a result that is barely better than the input; on a stack or a photo run channel by channel, which planes or
    channels (one check each, `names`: `run_names`; None: a stack's planes) they concern."""
    found = []
    worse = [i for i, check in enumerate(checks) if check.fill_gain_db < 0]
    if worse:
        worst = min((checks[i] for i in worse), key=lambda check: check.fill_gain_db)
        where = "" if len(checks) == 1 else f"on {_which(worse, len(checks), names)}, "
        found.append(
            f"self-check: {where}the fine-tuned fill alone looked {-worst.fill_gain_db:.1f} dB worse than the input; "
            f"{worst.weight:.0%} of the input was blended back"
        )
    small = [i for i, check in enumerate(checks) if check.gain_db < zeroshot.SMALL_GAIN_DB]
    if small:
        low, high = min((checks[i] for i in small), key=lambda check: check.gain_db).gain_range_db
        what = "this image" if len(checks) == 1 else _which(small, len(checks), names)
        found.append(
            f"self-check: --preset {preset} improves {what} by an estimated {low:.1f} to {high:.1f} dB only; "
            "try --method zs-n2n or another preset"
        )
    return found


COLOUR_CHANNELS = ("red", "green", "blue")
"""An RGB picture's channels by name, for a user."""


def run_names(runs: list[tuple[int, list[int]]], channels: int) -> list[str] | None:
    """What a user calls each of a zero-shot run's parts ((plane, its channels), `ZeroShot.runs`) where a grey
    net ran a colour picture channel by channel: 'the red channel' of one picture, 'plane 2's red channel' of a
    stack; None where each part is a whole plane (`_slices` numbers a stack's)."""
    if all(len(group) == channels for _, group in runs):
        return None
    planes = len({plane for plane, _ in runs})

    def channel(c: int) -> str:
        return f"the {COLOUR_CHANNELS[c]} channel" if channels == 3 else f"channel {c + 1}"

    if planes == 1:
        return [channel(group[0]) for _, group in runs]
    return [f"plane {plane + 1}'s {channel(group[0]).removeprefix('the ')}" for plane, group in runs]


def _which(indices: list[int], total: int, names: list[str] | None) -> str:
    """The parts at `indices` of `total`: by their `names` (the first few of many), else as a stack's planes."""
    if names is None:
        return _slices(indices, total)
    return _first_few([names[i] for i in indices])


def _slices(indices: list[int], total: int) -> str:
    """Planes of a stack (its slices, channels, time points, in stored order) by their numbers from 1, e.g.
    'planes 1, 4 of 9' (the first few of many)."""
    return f"plane{'s' if len(indices) > 1 else ''} {_first_few([str(i + 1) for i in indices])} of {total}"


def _first_few(labels: list[str]) -> str:
    """'a, b, c': the first six of `labels`, and how many more."""
    return ", ".join(labels[:6]) + (f" and {len(labels) - 6} more" if len(labels) > 6 else "")
