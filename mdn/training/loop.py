"""The training loop: one run's network, EMA, optimiser and data, its steps, validation and log, and checkpoints
that resume bit for bit; what is learned comes from `mdn.training.objectives`.

Every random draw of iteration i comes from generators seeded by (seed, rank, i), so a run resumed from a
checkpoint continues exactly as if it had never stopped. Under `torchrun` the loop runs data-parallel
(DistributedDataParallel, gloo on CPU and NCCL on GPU); rank 0 validates, logs and saves.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from mdn import allocator, registry
from mdn.device import usable_threads, use_threads
from mdn.errors import MdnError
from mdn.training import checkpoint
from mdn.training.card import training_card
from mdn.training.data import sample_batch, training_pool
from mdn.training.devices import hardware, training_device, training_dtype
from mdn.training.objectives import CardFineTuning
from mdn.training.options import TrainOptions
from mdn.training.recipes import objective_class
from mdn.training.schedule import SCHEDULES, Budget, scheduled_rate

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


HOW_IT_RUNS = (
    "iters",
    "threads",
    "device",
    "precision",
    "compile",
    "attention_kernel",
    "validate_every",
    "checkpoint_every",
)
"""Options a resumed run may change without changing what it learns (a longer schedule, another machine)."""


def changed_options(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """`--flag value (was value)` for each option of a resumed run that differs from its checkpoint's, but for
    HOW_IT_RUNS: the card then describes steps that ran otherwise (a Gaussian run resumed on Poisson noise)."""
    changed = []
    for key, value in now.items():
        was = before.get(key, value)
        if key not in HOW_IT_RUNS and (list(was) if isinstance(was, tuple | list) else was) != (
            list(value) if isinstance(value, tuple | list) else value
        ):
            changed.append(f"{TrainOptions.flag_of(key)} {value} (was {was})")
    return changed


def resumed_options(options: TrainOptions, recorded: dict[str, Any]) -> TrainOptions:
    """`options` with the run's own --init (from its checkpoint's `recorded` options) where the command left it
    at the objective's default: a resumed run goes on from its checkpoint's weights, never from a card's, so
    that card may be gone and its name still recorded. An MdnError where the command names another card."""
    if "init" not in recorded or options.init == recorded["init"]:
        return options
    default = TrainOptions.create(name=options.name, data=[], objective=options.objective).init
    if options.init != default:
        started = f"from {recorded['init']}'s weights" if recorded["init"] else "from fresh weights"
        raise MdnError(f"--init {options.init}: this run started {started} and goes on from its checkpoint; "
                       "leave --init out to resume it")  # fmt: skip
    return replace(options, init=recorded["init"])


def _as_json(value: Any) -> Any:
    """`value` as plain JSON types (numpy numbers become floats), as a checkpoint loaded with `weights_only`
    takes them and a card writes them."""
    return json.loads(json.dumps(value, default=float))


class Diverged(MdnError):
    """The loss went NaN or infinite: a run's failure, not its options' (the same options may train on other data).
    Its advice names an earlier card of the run's name, and --overwrite for a fresh start over what the run left,
    unless `restated` says there are none."""

    def __init__(
        self, what: str, kept: str, lr: float, workdir: Path, *, earlier_card: bool = True, overwrite: bool = True
    ) -> None:
        self.what, self.kept, self.lr, self.workdir = what, kept, lr, workdir
        stays = " (an earlier card of this name stays)" if earlier_card else ""
        again = " and --overwrite" if overwrite else ""
        super().__init__(
            f"training diverged by {what}: no card written{stays}, {kept}; start again with a lower --lr (it was "
            f"{lr:g}){again}",
            workdir,
        )

    def restated(self, earlier_card: bool, overwrite: bool) -> Diverged:
        """The same failure, told whether a card of the run's name is there and whether a fresh start needs
        --overwrite (a checkpoint or a card of the name is left)."""
        return Diverged(self.what, self.kept, self.lr, self.workdir, earlier_card=earlier_card, overwrite=overwrite)


class Trainer:
    """One training run in a working folder: `checkpoint.pt`, `log.jsonl` and finally the model card."""

    def __init__(
        self,
        options: TrainOptions,
        workdir: Path,
        log: Callable[[str], None] = print,
        *,
        state: dict[str, Any] | None = None,
    ) -> None:
        """`state`: a checkpoint's (`checkpoint.load`) to resume from. Its weights stand in for the --init card's
        (`resumed_options`), its record of the card being fine-tuned for that card, and, where the data cannot
        be read, its record of the card's data-derived fields for the data: the data's error then comes when
        the run trains (`pool`), and a card written without training on (`--finish`) needs no data."""
        if state is not None:
            options = resumed_options(options, state.get("options", {}))
        self.options, self.workdir, self.log = options, workdir, log
        self.rank = dist.get_rank() if dist.is_initialized() else 0
        self.world = dist.get_world_size() if dist.is_initialized() else 1
        self.device = training_device(options.device, self.rank)
        allocator.keep_freed_memory()
        use_threads(usable_threads(options.threads))  # recorded as given: a resume elsewhere takes its cores
        torch.manual_seed(options.seed)
        if options.schedule not in SCHEDULES:
            raise MdnError(f"--schedule must be one of {', '.join(SCHEDULES)}, got {options.schedule!r}")
        self.dtype = training_dtype(options.precision, self.device)
        kind = objective_class(options.objective)
        init_card = (state or {}).get("init_card")  # the card the run fine-tunes, as its checkpoint recorded it
        if init_card and issubclass(kind, CardFineTuning):
            self.objective = kind(options, self.dtype, card=registry.ModelCard(**init_card))
        else:
            self.objective = kind(options, self.dtype)
        if options.attention_kernel == "flex" and self.device.type == "cpu":
            raise MdnError("--attention-kernel flex has no backward pass on the CPU: use it on a GPU")
        self.model = self.objective.build().to(self.device)
        multiple = getattr(self.model, "side_multiple", 1)  # a network that pads its input takes any crop
        if options.crop % multiple:
            near = [n for n in (options.crop // multiple * multiple, -(-options.crop // multiple) * multiple) if n]
            fine_tuned = isinstance(self.objective, CardFineTuning) and not options.config  # its card's network
            network = f"{self.objective.card.name}'s network" if fine_tuned else f"--config {options.config}"
            raise MdnError(f"--crop must be a multiple of {multiple} for {network}, got {options.crop} "
                           f"({' or '.join(map(str, near))} would do)")  # fmt: skip
        if self.device.type == "cuda":
            self.model.to(memory_format=torch.channels_last)  # cuDNN's fast layout; on CPU the SwinIR gains nothing
        init, config = options.init, options.config
        fresh = init and state is None  # a resumed run's weights come from its checkpoint
        self.initialised_from = checkpoint.start_weights(self.model, init, self.objective, config) if fresh else {}
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.optimizer = self.objective.optimizer(self.model.parameters())
        self.iteration = 0
        self.sitting_start = 0
        self.history: list[dict[str, Any]] = []
        self.seconds = 0.0
        self.stopped_early = False
        self.saved_iteration: int | None = None
        """The step of the checkpoint in the working folder (None: none yet)."""
        self.stopped_cleanly = False
        """Whether a Ctrl-C or SIGTERM ended the run at the end of a step, with its checkpoint saved."""
        self.stopped_by = signal.SIGINT
        """The signal that interrupted the run (Ctrl-C's SIGINT, or SIGTERM)."""
        self.scores: dict[str, float] = {}
        """The latest validation: the scores of the EMA weights a card saves (not the best seen on the way)."""
        self.changed: list[str] = []
        """The options this sitting changed from the run's checkpoint (`changed_options`)."""
        self.recorded: tuple[TrainOptions | None, dict[str, Any] | None] = (None, None)
        """The checkpoint's options and card record (`recipe`): what the weights trained with before this
        sitting."""
        self.data_error: MdnError | None = None
        """Why a resumed run's data could not be read (None: it was): raised when the run trains."""
        self._held: list[str] = []
        """A resumed run's warnings about its data, told once the data is read or needed (not by `--finish`)."""
        warn = self._warn if state is None else self._held.append
        try:
            self._pool = training_pool(self.objective.images(warn), self.device)
            self.validation = None if self.rank else self.objective.validation(warn)
        except MdnError as exc:
            if state is None:
                raise
            self._pool, self.validation, self.data_error = [], None, exc
        else:
            self._tell_held()
        self.parallel: nn.Module = self.model
        if self.world > 1:
            self.parallel = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        if options.compile:
            self.model.compile(dynamic=False)
        if state is not None:
            self.resume(state)

    @property
    def checkpoint_path(self) -> Path:
        return self.workdir / checkpoint.CHECKPOINT

    @property
    def pool(self) -> list[torch.Tensor]:
        """The training images on the device; the data's error where a resumed run could not read them."""
        if self.data_error is not None:
            self._tell_held()
            raise self.data_error
        return self._pool

    def _tell_held(self) -> None:
        """Warn of what the data's reading held back (`_held`)."""
        for message in self._held:
            self._warn(message)
        self._held.clear()

    def _warn(self, message: str) -> None:
        if self.rank == 0:
            self.log(f"warning: {message}")

    # -------------------------------------------------------------------------------- checkpoints

    def save_checkpoint(self) -> None:
        """Save the run so far (rank 0); Diverged, in every rank alike, where its weights went NaN or Inf: a step
        whose loss was finite can still overflow its update, and the loss is read back every few steps only."""
        if not self._finite():
            raise self._diverged("its weights went NaN or Inf")
        if self.rank:
            return
        options, record = self.recipe()
        fine_tuned = self.objective.card.to_json() if isinstance(self.objective, CardFineTuning) else None
        state = {
            "options": asdict(options),
            "iteration": self.iteration,
            "seconds": self.seconds,
            "scores": self.scores,
            "initialised_from": self.initialised_from,
            "history": self.sittings(),
            "card_fields": _as_json(record),
            **({"init_card": _as_json(fine_tuned)} if fine_tuned else {}),
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }
        checkpoint.save(self.workdir, state)
        self.saved_iteration = self.iteration

    def resume(self, state: dict[str, Any] | None = None) -> None:
        """Continue from the working folder's checkpoint, or from its `state` read already (on any device: the
        weights and the optimiser's state are copied onto the run's)."""
        state = checkpoint.load(self.workdir, self.device) if state is None else state
        self._restore_weights(state)
        self.iteration, self.seconds = state["iteration"], state["seconds"]
        self.saved_iteration = self.iteration
        self.changed = changed_options(state.get("options", {}), asdict(self.options))
        if self.changed:
            shown = ", ".join(self.changed)
            self._warn(f"resumed at step {self.iteration:,} with other options than the run's: {shown}")
        self.scores = state.get("scores", state.get("best", {}))  # checkpoints before 2026-11 named it "best"
        self.history = state.get("history", [])
        self.initialised_from = state.get("initialised_from", {})
        self.sitting_start = self.iteration
        self.recorded = (_recorded_options(state), state.get("card_fields"))

    def recipe(self) -> tuple[TrainOptions, dict[str, Any]]:
        """The options the weights last trained with and what the objective puts in their card (`description`,
        `inference`, `transform`, `training`): this sitting's once it has trained a step, else its checkpoint's
        record, so that a card written without training on (`--finish`) describes the steps that made it,
        whatever options the command gave and wherever the data went. An MdnError where the card needs the data
        and neither it nor the record is there (a checkpoint from before checkpoints kept it)."""
        options, record = self.recorded
        if self.iteration > self.sitting_start:  # this sitting trained: its own
            options, record = None, None
        if options is None:
            options = self.options
        else:  # the command's name and how it runs stand, as they do for a resumed run (HOW_IT_RUNS)
            options = replace(options, name=self.options.name, **{k: getattr(self.options, k) for k in HOW_IT_RUNS})
        if record is not None:
            return options, record
        needs = self.objective.card_from_data
        if self.data_error is not None and needs:
            raise MdnError(
                f"its card needs the training data for {needs}, which its checkpoint (from before checkpoints kept "
                f"it) does not hold: {self.data_error}"
            )
        o = self.objective
        return options, {"description": o.describe(), "inference": o.inference(), **o.card_fields()}

    def _restore_weights(self, state: dict[str, Any]) -> None:
        """The network's, the EMA's and the optimiser's state from a checkpoint (`checkpoint.load`'s, whose weights
        it checked); an MdnError where they are another network's (resumed with another --config) or another
        optimiser's."""
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError:  # another network: a size mismatch in every layer, as many lines
            trained = state.get("options", {}).get("config", "another")
            raise MdnError(
                f"its checkpoint holds a network of --config {trained}, not {self.options.config}: resume with the "
                "run's own options, or start afresh with --overwrite",
                self.workdir,
            ) from None
        try:  # `checkpoint.load` checked that they are weights: what fails here belongs to other options
            self.ema.load_state_dict(state["ema"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (KeyError, RuntimeError, TypeError, ValueError):
            raise MdnError(
                "its checkpoint's averaged weights or optimiser state do not fit this run's: resume with the run's "
                "own options, or start afresh with --overwrite",
                self.workdir,
            ) from None

    def sittings(self) -> list[dict[str, Any]]:
        """The sittings of this run so far: each command, the steps it ran and where (a resumed run may change
        options, e.g. extend iters, or move between machines, so one command line alone may not reproduce it)."""
        sitting = {
            "command": self.options.command(),
            "from": self.sitting_start,
            "to": self.iteration,
            "hardware": hardware(self.device, self.world),
            **({"changed": self.changed} if self.changed else {}),
        }
        return [*self.history, sitting] if self.iteration > self.sitting_start else list(self.history)

    # ------------------------------------------------------------------------------------ the loop

    def step(self) -> torch.Tensor:
        """One optimisation step; returns the loss as a tensor on the device (reading it would wait for the
        step)."""
        o = self.options
        crops, generator = step_generators([o.seed, self.rank, self.iteration], self.device)
        clean = sample_batch(self.pool, o.batch, self.objective.source_crop(o.crop), crops)
        for group in self.optimizer.param_groups:
            group["lr"] = scheduled_rate(o, self.iteration)
        loss = self.objective.loss(self.parallel, clean, generator)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.objective.clip(self.model.parameters())
        self.optimizer.step()
        update_ema(self.ema, self.model, o.ema)
        self.iteration += 1
        return loss.detach()

    def run(self, until: int | None = None, deadline: float | None = None) -> Iterator[Progress]:
        """Train to `until` (default: the whole run) or until the next step would end past `deadline` (a
        `time.monotonic()` value) with time left for the last validation and checkpoint, yielding progress;
        checkpoints on the way and at the stop. A fresh run logs the validation of its starting weights as
        iteration 0. `stopped_early` tells afterwards whether the deadline ended it. Ctrl-C or SIGTERM ends the
        run at the end of its step with a checkpoint, then raises KeyboardInterrupt; a second one raises at once."""
        o = self.options
        _ = self.pool  # a resumed run whose data could not be read says so before it starts
        until = min(until or o.iters, o.iters)
        budget = Budget(deadline)
        with _stop_requests(lambda signum: setattr(self, "stopped_by", signum)) as interrupted:
            if self.iteration == 0 and self.rank == 0 and self.validation is not None:
                with budget.finishing():
                    self._append_log(Progress(0, o.iters, float("nan"), 0.0, self.validate()))
            self.model.train()
            losses: list[torch.Tensor] = []
            loss = float("nan")
            self.stopped_early = False
            spent, stopped = self._agree(budget.spent(), interrupted.is_set())
            while self.iteration < until and not (spent or stopped):
                start = time.perf_counter()
                losses.append(self.step())
                self.seconds += time.perf_counter() - start
                budget.stepped()
                spent, stopped = self._agree(budget.spent(), interrupted.is_set())  # before validating, saving
                if stopped:
                    break  # saved below, without a validation
                last = self.iteration == until or spent
                validating = self.rank == 0 and (self.iteration % o.validate_every == 0 or last)
                checkpointing = self.iteration % o.checkpoint_every == 0 or last
                if len(losses) == LOSS_EVERY or validating or checkpointing:
                    loss = float(torch.stack(losses).mean())
                    losses.clear()
                    if not math.isfinite(loss):  # before a checkpoint or a card could keep its weights
                        raise self._diverged(f"loss {loss}")
                report = Progress(self.iteration, o.iters, loss, self.seconds)
                with budget.finishing():
                    if validating:
                        report.validation = self.validate()
                        self._append_log(report)
                    if checkpointing:
                        self.save_checkpoint()
                yield report
            if stopped:
                self.save_checkpoint()
                self.stopped_cleanly = True  # saved at the end of a whole step: its card may be written too
                raise KeyboardInterrupt
        self.stopped_early = self.iteration < until

    def _finite(self) -> bool:
        """Whether the model's and the EMA's weights are all finite (the same on every rank after a step)."""
        weights = [*self.model.parameters(), *self.ema.parameters()]
        return bool(torch.stack(torch._foreach_norm(weights)).isfinite().all())

    def _diverged(self, what: str) -> Diverged:
        kept = f"the checkpoint of step {self.saved_iteration:,} is kept" if self.saved_iteration else "nothing saved"
        return Diverged(f"step {self.iteration:,} ({what})", kept, self.options.lr, self.workdir)

    def _agree(self, spent: bool, interrupted: bool) -> tuple[bool, bool]:
        """Whether rank 0's time budget is spent and whether any process was interrupted, the same in every
        process of a distributed run (all stop at the same step, and the same way)."""
        if self.world == 1:
            return spent, interrupted
        flags = torch.tensor([float(spent and self.rank == 0), float(interrupted)], device=self.device)
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        return bool(flags[0].item()), bool(flags[1].item())

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
        checkpoint.append_log(self.workdir, record)

    # ---------------------------------------------------------------------------------- the card

    def write_card(self, folder: Path) -> registry.ModelCard:
        """The card of the EMA weights so far, saved in `folder` (Diverged where they went NaN or Inf)."""
        if not self._finite():
            raise self._diverged("its weights went NaN or Inf")
        return registry.save(self.ema, training_card(self), folder)


def _recorded_options(state: dict[str, Any]) -> TrainOptions | None:
    """The options a checkpoint recorded (None: none, or fields this version no longer has)."""
    try:
        return TrainOptions.from_recipe(state["options"]) if "options" in state else None
    except (TypeError, MdnError):
        return None


def step_generators(key: list[int], device: torch.device) -> tuple[torch.Generator, torch.Generator]:
    """A step's generators from its key (seed, rank, iteration): CPU torch (crop positions) and device torch
    (noise, masks); torch's global generator (drop-path) is seeded for the step too."""
    global_seed, crop_seed, mask_seed = np.random.SeedSequence(key).generate_state(3, dtype=np.uint64)
    torch.manual_seed(int(global_seed))
    crops = torch.Generator().manual_seed(int(crop_seed))
    return crops, torch.Generator(device).manual_seed(int(mask_seed))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """Move the EMA weights a share 1 - `decay` towards the model's; buffers are copied."""
    torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers(), strict=True):
        e.copy_(b)


@contextlib.contextmanager
def _stop_requests(noted: Callable[[int], None]) -> Iterator[threading.Event]:
    """While inside, the first Ctrl-C or SIGTERM sets the event (the loop stops at the end of its step and saves)
    and a second raises KeyboardInterrupt at once; `noted` is told each signal. Handlers can only be set in the
    main thread; elsewhere the signals keep theirs."""
    requested = threading.Event()

    def request(signum: int, frame: object) -> None:
        noted(signum)
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):
            previous[signum] = signal.signal(signum, request)
    try:
        yield requested
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
