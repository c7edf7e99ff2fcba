"""Masked training (Chen et al. 2023): options, data, the schedule, the loop, checkpoints that resume bit for bit,
and the model card; what is learned comes from `mdn.objectives`.

Every random draw of iteration i comes from generators seeded by (seed, rank, i), so a run resumed from a
checkpoint continues exactly as if it had never stopped. Under `torchrun` the loop runs data-parallel
(DistributedDataParallel, gloo on CPU and NCCL on GPU); rank 0 validates, logs and saves.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import json
import math
import os
import platform
import re
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from mdn import allocator, images, registry, tonemap
from mdn.engine import pick_device, pick_dtype, use_threads
from mdn.errors import MdnError
from mdn.objectives import OBJECTIVES, Objective


@dataclass
class TrainOptions:
    """Every knob of a run; the defaults follow the paper, and `create` gives an objective's own."""

    name: str
    data: list[str]
    objective: str = "denoise"
    config: str = "small"
    iters: int = 200_000
    batch: int = 8
    crop: int = 64
    lr: float = 1e-4
    warmup: int = 0
    schedule: str = "step"
    init: str = ""
    noise: str = "gaussian"
    level: float = 15.0
    """The training noise level, and the validation's."""
    level_range: tuple[float, ...] = ()
    """LOW, HIGH: each crop's training noise level drawn uniformly from this range instead (validation stays at
    `level`); empty: every crop at `level`."""
    grey_share: float = 0.0
    """The share of crops made grey, with the same noise in every channel, as grey images reach the network."""
    mask: bool = True
    input_mask: tuple[float, float] = (0.75, 0.85)
    """The range the input mask ratio of each crop is drawn from."""
    attention_mask: float = 0.75
    """The attention mask ratio."""
    ema: float = 0.999
    dead_leaves: int = 0
    validation: list[str] = field(default_factory=list)
    validate_every: int = 500
    checkpoint_every: int = 500
    seed: int = 0
    threads: int = 0
    precision: str = "fp32"
    """The forward pass's compute type: fp32, bf16 or auto (see `training_dtype`)."""
    compile: bool = False
    device: str = "auto"
    attention_kernel: str = "auto"

    FLAGS: ClassVar[dict[str, str]] = {
        "validation": "--val", "mask": "--no-mask", "input_mask": "--input-mask-range",
        "attention_mask": "--attention-mask-ratio",
    }  # fmt: skip
    """`mdn train` options whose names differ from the fields'."""

    def __post_init__(self) -> None:
        low, high = self.input_mask
        if not 0 <= low <= high < 1:
            raise MdnError(f"input_mask must be a range LOW,HIGH with 0 <= LOW <= HIGH < 1, got {low:g},{high:g}")
        if not 0 <= self.grey_share <= 1:
            raise MdnError(f"grey_share must be in [0, 1], got {self.grey_share:g}")
        if self.level_range and not (len(self.level_range) == 2 and 0 < self.level_range[0] <= self.level_range[1]):
            raise MdnError(f"level_range must be LOW,HIGH with 0 < LOW <= HIGH, got {self.level_range}")

    @classmethod
    def create(cls, **given: Any) -> TrainOptions:
        """Options for an objective: its own defaults, then what was given (None: the default)."""
        given = {key: value for key, value in given.items() if value is not None}
        return cls(**{**objective_class(given.get("objective", "denoise")).defaults, **given})

    @classmethod
    def from_recipe(cls, recipe: dict[str, Any]) -> TrainOptions:
        """The options a card's `training.recipe` or a checkpoint's `options` recorded (as JSON); records from
        before `precision` hold `bf16: true/false` instead."""
        given = {
            **recipe,
            "input_mask": tuple(recipe.get("input_mask", cls.input_mask)),
            "level_range": tuple(recipe.get("level_range", ())),
        }
        if "bf16" in given:
            given["precision"] = "bf16" if given.pop("bf16") else "fp32"
        return cls(**given)

    def command(self) -> str:
        """The `mdn train` command line that gives these options (defaults left out)."""
        defaults = TrainOptions.create(name="", data=[], objective=self.objective)
        parts = ["mdn train"]
        for key, value in asdict(self).items():
            if key == "objective" and value == "denoise":
                continue
            if key not in ("name", "data", "objective") and value == getattr(defaults, key):
                continue
            flag = self.FLAGS.get(key, "--" + key.replace("_", "-"))
            if isinstance(value, bool):
                parts.append(flag)
            elif isinstance(value, list):
                parts.extend(f"{flag} {item}" for item in value)
            elif isinstance(value, tuple):
                parts.append(f"{flag} {','.join(f'{v:g}' for v in value)}")
            else:
                parts.append(f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}")
        return " ".join(parts)


def objective_class(name: str) -> type[Objective[Any]]:
    """The objective of a name in `OBJECTIVES`."""
    if name not in OBJECTIVES:
        raise MdnError(f"unknown objective {name!r} (choose from {', '.join(OBJECTIVES)})")
    return OBJECTIVES[name]


def parse_range(text: str) -> tuple[float, float]:
    """'0.75,0.85' -> (0.75, 0.85); one number is a range of that value alone."""
    low, _, high = text.partition(",")
    try:
        return float(low), float(high or low)
    except ValueError:
        raise MdnError(f"expected LOW,HIGH numbers such as 0.75,0.85, got {text!r}") from None


def parse_duration(text: str) -> float:
    """Seconds in a duration such as 90, 90s, 9m, 1h30m or 2.5h."""
    parts = re.fullmatch(r"\s*(?:(\d+(?:\.\d*)?)h)?\s*(?:(\d+(?:\.\d*)?)m)?\s*(?:(\d+(?:\.\d*)?)s?)?\s*", text)
    if not parts or not any(parts.groups()):
        raise MdnError(f"expected a duration such as 90s, 9m or 1h30m, got {text!r}")
    hours, minutes, seconds = (float(g or 0) for g in parts.groups())
    return 3600 * hours + 60 * minutes + seconds


# --------------------------------------------------------------------------------------------------- data


def load_images(sources: list[str], min_size: int, warn: Callable[[str], None]) -> list[np.ndarray]:
    """Clean RGB training images (H, W, 3) in [0, 1] from files and folders (searched recursively)."""
    from mdn.batch import expand_inputs

    found = []
    for path in expand_inputs(sources, recursive=True):
        try:
            image = images.read(path)
        except MdnError as exc:
            warn(f"skipped: {exc}")
            continue
        if min(image.height, image.width) < min_size:
            warn(f"skipped: {path}: smaller than the {min_size}px crop")
            continue
        pixels = tonemap.fit(image).forward(image.pixels)
        for plane in pixels:
            rgb = np.repeat(plane, 3, axis=-1) if plane.shape[-1] == 1 else plane
            found.append(np.clip(rgb, 0, 1))
    return found


def dead_leaves(count: int, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Procedural images of overlapping discs with power-law radii (Lee, Mumford and Huang 2001)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    result = []
    for _ in range(count):
        image = np.zeros((size, size, 3), np.float32)
        covered = np.zeros((size, size), bool)
        while covered.mean() < 0.995:
            radius = size * 0.02 / (1 - rng.random() * (1 - (0.02 / 0.5) ** 2)) ** 0.5
            cy, cx = rng.random(2) * size
            disc = ((yy - cy) ** 2 + (xx - cx) ** 2 < radius**2) & ~covered
            image[disc] = rng.random(3)
            covered |= disc
        result.append(image)
    return result


def sample_batch(pool: list[torch.Tensor], batch: int, crop: int, generator: torch.Generator) -> torch.Tensor:
    """Random crops, area-weighted over the pool of (C, H, W) tensors, each in one of the 8 flips/rotations:
    (B, C, crop, crop) on the pool's device. Positions come from the CPU `generator`; pixels never leave the
    device."""
    areas = torch.tensor([p.shape[1] * p.shape[2] for p in pool], dtype=torch.float64)
    picks = torch.multinomial(areas, batch, replacement=True, generator=generator).tolist()
    crops = []
    for i in picks:
        image = pool[i]
        y, x = (int(torch.randint(n - crop + 1, (1,), generator=generator)) for n in image.shape[1:])
        turns, flip = torch.randint(4, (2,), generator=generator).tolist()
        patch = torch.rot90(image[:, y : y + crop, x : x + crop], turns, dims=(1, 2))
        crops.append(patch.flip(2) if flip % 2 else patch)
    return torch.stack(crops)


# ------------------------------------------------------------------------------------------- schedules

SCHEDULES = ("step", "cosine")
"""`step`: the masked-training paper's, halved at 50 % and 75 % of the run; `cosine`: decay to 0.5 % of the peak
(MPI's pre-training)."""


def scheduled_rate(options: TrainOptions, iteration: int) -> float:
    """The learning rate of step `iteration`: a linear warm-up over `options.warmup` steps, then the schedule."""
    o = options
    warm = min(1.0, (iteration + 1) / o.warmup) if o.warmup else 1.0
    if o.schedule == "cosine":
        floor = o.lr / 200
        return warm * (floor + (o.lr - floor) * 0.5 * (1 + math.cos(math.pi * min(iteration / o.iters, 1.0))))
    return warm * o.lr * (0.5 ** (iteration >= o.iters // 2)) * (0.5 ** (iteration >= 3 * o.iters // 4))


LOSS_EVERY = 25
"""Steps whose losses are read back together: reading a loss waits for its step, so a GPU would idle for a
moment every step if each were read."""


@dataclass
class Progress:
    """What the loop reports after each iteration; `loss` is the mean of the last steps read back (at most
    LOSS_EVERY, and always up to a validation or a checkpoint)."""

    iteration: int
    total: int
    loss: float
    seconds: float
    validation: dict[str, float] | None = None


class Trainer:
    """One training run in a working folder: `checkpoint.pt`, `log.jsonl` and finally the model card."""

    def __init__(self, options: TrainOptions, workdir: Path, log: Callable[[str], None] = print) -> None:
        self.options, self.workdir, self.log = options, workdir, log
        self.rank = dist.get_rank() if dist.is_initialized() else 0
        self.world = dist.get_world_size() if dist.is_initialized() else 1
        self.device = _device(options.device, self.rank)
        allocator.keep_freed_memory()
        use_threads(options.threads)
        torch.manual_seed(options.seed)
        if options.schedule not in SCHEDULES:
            raise MdnError(f"schedule must be one of {', '.join(SCHEDULES)}, got {options.schedule!r}")
        self.dtype = training_dtype(options.precision, self.device)
        self.objective = objective_class(options.objective)(options, self.dtype)
        if options.attention_kernel == "flex" and self.device.type == "cpu":
            raise MdnError("attention_kernel flex has no backward pass on the CPU: use it on a GPU")
        self.model = self.objective.build().to(self.device)
        if self.device.type == "cuda":
            self.model.to(memory_format=torch.channels_last)  # cuDNN's fast layout; on CPU the SwinIR gains nothing
        self.initialised_from = self._initialise(options.init) if options.init else {}
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.optimizer = self.objective.optimizer(self.model.parameters())
        self.iteration = 0
        self.sitting_start = 0
        self.history: list[dict[str, Any]] = []
        self.seconds = 0.0
        self.stopped_early = False
        self.scores: dict[str, float] = {}
        """The latest validation: the scores of the EMA weights a card saves (not the best seen on the way)."""
        self.pool = self._training_pool()
        self.validation = self._validation_set()
        self.parallel: nn.Module = self.model
        if self.world > 1:
            self.parallel = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        if options.compile:
            self.model.compile(dynamic=False)

    def _initialise(self, name: str) -> dict[str, Any]:
        """Start from a model card's weights (a finished run of the same network); returns what it was."""
        card = registry.find(name, task=self.objective.name)
        if card.architecture != self.objective.architecture:
            wanted = self.objective.architecture
            raise MdnError(f"init {name}: a {card.architecture} card cannot start a {wanted} run")
        try:
            self.model.load_state_dict(registry.load(card).state_dict())
        except RuntimeError as exc:
            raise MdnError(f"init {name}: its network differs from config {self.options.config}") from exc
        return {"card": card.name, "sha256": card.sha256, "iterations": card.training.get("iterations", 0)}

    @property
    def checkpoint_path(self) -> Path:
        return self.workdir / "checkpoint.pt"

    def _training_pool(self) -> list[torch.Tensor]:
        """The training images as (C, H, W) tensors on the training device."""
        o = self.options
        pool = load_images(o.data, o.crop, self._warn) if o.data else []
        pool += dead_leaves(o.dead_leaves, 256, np.random.default_rng([o.seed, 7]))
        if not pool:
            raise MdnError(f"no usable training images in {', '.join(o.data)}")
        return [torch.from_numpy(image).permute(2, 0, 1).contiguous().to(self.device) for image in pool]

    def _validation_set(self) -> Any:
        if not self.options.validation or self.rank:
            return None
        references = load_images(self.options.validation, 64, self._warn)
        if not references:
            raise MdnError(f"no usable validation images in {', '.join(self.options.validation)}")
        return self.objective.validation(references)

    def _warn(self, message: str) -> None:
        if self.rank == 0:
            self.log(f"warning: {message}")

    # -------------------------------------------------------------------------------- checkpoints

    def save_checkpoint(self) -> None:
        if self.rank:
            return
        state = {
            "options": asdict(self.options),
            "iteration": self.iteration,
            "seconds": self.seconds,
            "scores": self.scores,
            "initialised_from": self.initialised_from,
            "history": self._history(),
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }
        tmp = self.checkpoint_path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint_path)

    def resume(self) -> None:
        """Continue from the working folder's checkpoint."""
        if not self.checkpoint_path.is_file():
            raise MdnError("no checkpoint to resume from", self.checkpoint_path)
        state = torch.load(self.checkpoint_path, map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.iteration, self.seconds = state["iteration"], state["seconds"]
        self.scores = state.get("scores", state.get("best", {}))  # checkpoints before 2026-11 named it "best"
        self.history = state.get("history", [])
        self.initialised_from = state.get("initialised_from", {})
        self.sitting_start = self.iteration

    def _history(self) -> list[dict[str, Any]]:
        """The sittings of this run so far: each command and the steps it ran (a resumed run may change options,
        e.g. extend iters, so one command line alone may not reproduce it)."""
        sitting = {"command": self.options.command(), "from": self.sitting_start, "to": self.iteration}
        return [*self.history, sitting] if self.iteration > self.sitting_start else list(self.history)

    # ------------------------------------------------------------------------------------ the loop

    def _generators(self, iteration: int) -> tuple[torch.Generator, torch.Generator]:
        """Step `iteration`'s generators: CPU torch (crop positions) and device torch (noise, masks); torch's
        global generator (drop-path) is seeded for the step too."""
        key = [self.options.seed, self.rank, iteration]
        global_seed, crop_seed, mask_seed = np.random.SeedSequence(key).generate_state(3, dtype=np.uint64)
        torch.manual_seed(int(global_seed))
        crops = torch.Generator().manual_seed(int(crop_seed))
        return crops, torch.Generator(self.device).manual_seed(int(mask_seed))

    def step(self) -> torch.Tensor:
        """One optimisation step; returns the loss as a tensor on the device (reading it would wait for the
        step)."""
        o = self.options
        crops, generator = self._generators(self.iteration)
        clean = sample_batch(self.pool, o.batch, o.crop, crops)
        for group in self.optimizer.param_groups:
            group["lr"] = scheduled_rate(o, self.iteration)
        loss = self.objective.loss(self.parallel, clean, generator)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.objective.clip(self.model.parameters())
        self.optimizer.step()
        with torch.no_grad():
            torch._foreach_lerp_(list(self.ema.parameters()), list(self.model.parameters()), 1.0 - o.ema)
            for e, b in zip(self.ema.buffers(), self.model.buffers(), strict=True):
                e.copy_(b)
        self.iteration += 1
        return loss.detach()

    def run(self, until: int | None = None, deadline: float | None = None) -> Iterator[Progress]:
        """Train to `until` (default: the whole run) or until the next step would end past `deadline` (a
        `time.monotonic()` value) with time left for the last validation and checkpoint, yielding progress;
        checkpoints on the way, at the stop and on Ctrl-C. A fresh run logs the validation of its starting
        weights as iteration 0. `stopped_early` tells afterwards whether the deadline ended it."""
        o = self.options
        until = min(until or o.iters, o.iters)
        budget = _Budget(deadline)
        if self.iteration == 0 and self.rank == 0 and self.validation is not None:
            with budget.finishing():
                self._append_log(Progress(0, o.iters, float("nan"), 0.0, self.validate()))
        self.model.train()
        losses: list[torch.Tensor] = []
        loss = float("nan")
        self.stopped_early = False
        stop = self._agree(budget.spent())
        with _interrupt_saves(self):
            while self.iteration < until and not stop:
                start = time.perf_counter()
                losses.append(self.step())
                self.seconds += time.perf_counter() - start
                budget.stepped()
                stop = self._agree(budget.spent())  # decided before this step's validation and checkpoint
                last = self.iteration == until or stop
                validating = self.rank == 0 and (self.iteration % o.validate_every == 0 or last)
                checkpointing = self.iteration % o.checkpoint_every == 0 or last
                if len(losses) == LOSS_EVERY or validating or checkpointing:
                    loss = float(torch.stack(losses).mean())
                    losses.clear()
                report = Progress(self.iteration, o.iters, loss, self.seconds)
                with budget.finishing():
                    if validating:
                        report.validation = self.validate()
                        self._append_log(report)
                    if checkpointing:
                        self.save_checkpoint()
                yield report
        self.stopped_early = self.iteration < until

    def _agree(self, stop: bool) -> bool:
        """Rank 0's stop decision, shared with every process of a distributed run (all stop at the same step)."""
        if self.world == 1:
            return stop
        flag = torch.tensor([float(stop)], device=self.device)
        dist.broadcast(flag, 0)
        return bool(flag.item())

    def validate(self) -> dict[str, float] | None:
        if self.validation is None:
            return None
        scores = self.objective.score(self.validation, self.ema)
        self.scores = scores
        return scores

    def _append_log(self, report: Progress) -> None:
        record: dict[str, Any] = {"iteration": report.iteration, "seconds": round(report.seconds, 1)}
        if report.iteration:
            record["loss"] = report.loss
        record.update(report.validation or {})
        with (self.workdir / "log.jsonl").open("a") as f:
            f.write(json.dumps(record) + "\n")

    # ---------------------------------------------------------------------------------- the card

    def write_card(self, folder: Path) -> registry.ModelCard:
        o = self.options
        card = registry.ModelCard(
            name=o.name,
            architecture=self.objective.architecture,
            task=self.objective.name,
            config=self.model.config.to_dict(),
            weights="",
            sha256="",
            description=self.objective.describe(),
            inference=self.objective.inference(),
            training={
                "command": o.command(),
                "sittings": self._history(),
                "recipe": asdict(o),
                "data": o.data + ([f"{o.dead_leaves} dead-leaves images"] if o.dead_leaves else []),
                "validation_images": o.validation,
                "iterations": self.iteration,
                **({"initialised_from": self.initialised_from} if self.initialised_from else {}),
                "seconds": round(self.seconds),
                "hardware": _hardware(self.device, self.world),
                "torch": torch.__version__,
            },
            scores={self.objective.score_name: self.scores} if self.scores else {},
        )
        return registry.save(self.ema, card, folder)


class _Budget:
    """A wall-clock deadline for a sitting: spent once the next step, plus the slowest validation and checkpoint
    seen so far (with a margin), would end past it. Steps are timed on the host; on a GPU the loss read-back
    every LOSS_EVERY steps keeps the host within a few steps of the device."""

    MARGIN = 1.5

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline
        self.step_seconds = 0.0
        self.finish_seconds = 0.0
        self._last = time.monotonic()

    def stepped(self) -> None:
        now = time.monotonic()
        self.step_seconds = max(now - self._last, 0.9 * self.step_seconds)
        self._last = now

    @contextlib.contextmanager
    def finishing(self) -> Iterator[None]:
        """Time a validation or checkpoint: the stop must leave room for one."""
        start = time.monotonic()
        yield
        self.finish_seconds = max(self.finish_seconds, time.monotonic() - start)
        self._last = time.monotonic()

    def spent(self) -> bool:
        if self.deadline is None:
            return False
        needed = self.MARGIN * (self.step_seconds + self.finish_seconds)
        return time.monotonic() + needed > self.deadline


def _device_name(name: str) -> str:
    """A device name with `auto` made concrete: a CUDA GPU when there is one, else the CPU."""
    return name if name != "auto" else "cuda" if torch.cuda.is_available() else "cpu"


def training_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The compute type of training's forward pass: fp32, bf16, or auto (bf16 where the device computes it
    natively, as inference chooses). fp16 is refused: training has no loss scaling."""
    if precision == "fp16":
        raise MdnError("precision fp16 cannot train (no loss scaling): use bf16 or fp32")
    return pick_dtype(precision, device)


def _device(name: str, rank: int) -> torch.device:
    """The training device for a device name (see `_device_name`); a CUDA run without an index takes the GPU of
    its local rank."""
    device = pick_device(_device_name(name))
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def _hardware(device: torch.device, world: int) -> str:
    if device.type == "cuda":
        what = torch.cuda.get_device_name(device)
    else:
        what = f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
    return f"{world} x {what}" if world > 1 else what


@contextlib.contextmanager
def _interrupt_saves(trainer: Trainer) -> Iterator[None]:
    """Save a checkpoint when the run is interrupted (Ctrl-C or SIGTERM), then let the interruption through."""
    previous = signal.getsignal(signal.SIGTERM)
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    except KeyboardInterrupt:
        trainer.save_checkpoint()
        raise
    finally:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, previous)


def init_distributed(device: str = "auto") -> bool:
    """Join the process group when started by torchrun, NCCL for runs on CUDA GPUs and gloo for CPU runs;
    returns whether this is a distributed run."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    dist.init_process_group("nccl" if _device_name(device).startswith("cuda") else "gloo")
    return True


def end_distributed() -> None:
    """Leave the process group together: every rank waits for the others (rank 0 may still write its card),
    then the group is torn down. Its worker threads are joined once nothing holds the group any more; a rank
    that exits with them still running can abort (a worker frees a tensor while Python shuts down)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
        gc.collect()


class NameTaken(MdnError):
    """A fresh run's name is in use: a checkpoint in its working folder or a card of that name."""

    def __init__(self, name: str, paths: list[Path]) -> None:
        self.name, self.paths = name, paths
        listed = ", ".join(map(str, paths))
        super().__init__(f"name {name} is taken ({listed}): resume that run, overwrite it or choose another name")


class NothingTrained(MdnError):
    """A sitting ended before its first step (its time budget ran out while it started)."""


class Sitting:
    """One command's stretch of a run: where it works and writes its card, a fresh run's claim on its name (or
    the checkpoint it resumes), its time budget, and how to go on afterwards."""

    def __init__(
        self,
        options: TrainOptions,
        workdir: Path | None = None,
        cards: Path | None = None,
        *,
        resume: bool = False,
        overwrite: bool = False,
        time_budget: str | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        """`workdir` defaults to runs/NAME beside the user's models, `cards` to the user's models; `time_budget`
        (a duration, see `parse_duration`) counts from now. A fresh run refuses a taken name (NameTaken) unless
        `overwrite`, which removes the old run's checkpoint, log and card."""
        self.started = time.monotonic()
        self.deadline = self.started + parse_duration(time_budget) if time_budget else None
        init_distributed(options.device)
        self.workdir = workdir or registry.user_dir().parent / "runs" / options.name
        self.cards = cards
        self.card_folder = cards or registry.user_dir()
        if not resume:
            self._claim_name(options.name, overwrite)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.trainer = Trainer(options, self.workdir, log)
        if resume:
            self.trainer.resume()

    def _claim_name(self, name: str, overwrite: bool) -> None:
        taken = [p for p in (self.workdir / "checkpoint.pt", self.card_folder / f"{name}.json") if p.exists()]
        if taken and not overwrite:
            raise NameTaken(name, taken)
        for path in (*taken, self.workdir / "log.jsonl", self.card_folder / f"{name}.pt"):
            path.unlink(missing_ok=True)

    def run(self, until: int | None = None) -> Iterator[Progress]:
        """`Trainer.run` to `until` within the time budget; NothingTrained when not one step fitted."""
        yield from self.trainer.run(until, self.deadline)
        if self.trainer.iteration == 0:
            spent = time.monotonic() - self.started
            raise NothingTrained(f"the time budget ran out before the first step ({spent:.0f} s to start)")

    @property
    def finished(self) -> bool:
        """Whether the run has made all its iterations."""
        return self.trainer.iteration >= self.trainer.options.iters

    def write_card(self) -> registry.ModelCard | None:
        """The model card of the weights so far, written by rank 0 (None on the other ranks)."""
        return None if self.trainer.rank else self.trainer.write_card(self.card_folder)

    def close(self) -> None:
        """End the sitting: the processes of a distributed run let go of the DistributedDataParallel wrapper,
        which holds the process group, and leave the group together."""
        self.trainer.parallel = self.trainer.model
        end_distributed()

    def resume_command(self) -> str:
        """The `mdn train` command that continues the run from its checkpoint."""
        output = f" --output {self.cards}" if self.cards else ""
        return f"{self.trainer.options.command()} --workdir {self.workdir}{output} --resume"
