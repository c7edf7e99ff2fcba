"""One command's stretch of a training run: its working folder, its claim on a name, its time budget, and how
to go on afterwards."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.distributed as dist

from mdn import registry
from mdn.errors import MdnError
from mdn.io import atomic
from mdn.training import checkpoint
from mdn.training.devices import end_distributed, init_distributed
from mdn.training.loop import Diverged, Progress, Trainer
from mdn.training.options import TrainOptions
from mdn.units import parse_duration


class NameTaken(MdnError):
    """A fresh run's name is in use: a checkpoint in its working folder or a card of that name."""

    def __init__(self, name: str, paths: list[Path]) -> None:
        self.name, self.paths = name, paths
        listed = ", ".join(map(str, paths))
        super().__init__(f"name {name} is taken ({listed}): resume that run, overwrite it or choose another name")


class NothingTrained(MdnError):
    """A sitting ended before its first step (its time budget ran out while it started)."""


LOCK = "lock"
"""The file in a run's folder that the process training in it holds locked (`fcntl.flock`), its pid inside for the
message: the kernel lets the lock go when the process ends however it ends (killed, out of memory), so a lock
left behind never stops a run, and two that start at once cannot both take it."""
_HELD: dict[Path, int] = {}
"""This process's locks: run folder -> the open file its lock lives with."""


def claim(workdir: Path, name: str) -> None:
    """Make this process the one that trains in `workdir` (`LOCK`); an MdnError where another process holds it
    (two commands of one run would overwrite each other's checkpoints, log and card)."""
    if workdir in _HELD:
        return
    path = workdir / LOCK
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        holder = _holder(path)
        whose = f" (pid {holder})" if holder is not None else ""
        raise MdnError(f"a run of {name} is in progress{whose}: let it end or stop it", workdir) from None
    os.ftruncate(descriptor, 0)
    os.write(descriptor, f"{os.getpid()}\n".encode())
    _HELD[workdir] = descriptor


def release(workdir: Path) -> None:
    """Let go of this process's `LOCK` in `workdir`, and take the file away (another's stays)."""
    descriptor = _HELD.pop(workdir, None)
    if descriptor is not None:
        (workdir / LOCK).unlink(missing_ok=True)
        os.close(descriptor)


def _holder(path: Path) -> int | None:
    """The pid a lock file names (None: none, or one being written)."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def budget_seconds(text: str) -> float:
    """The seconds of a --time-budget (see `parse_duration`); an empty one is refused, not taken for none."""
    try:
        return parse_duration(text)
    except MdnError as exc:
        raise MdnError(f"--time-budget: {exc}") from None


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
        `overwrite`: the old run's checkpoint and log go once this run can start, its card once this run's card
        replaces it."""
        self.started = time.monotonic()
        self.deadline = None if time_budget is None else self.started + budget_seconds(time_budget)
        init_distributed(options.device)
        self.rank = dist.get_rank() if dist.is_initialized() else 0
        self.workdir = (workdir or registry.user_dir().parent / "runs" / options.name).absolute()
        self.cards = cards
        self.card_folder = cards or registry.user_dir()
        for folder, what in ((self.card_folder, "the model cards"), (self.workdir, "the run's checkpoints")):
            blocking = atomic.file_in_the_way(folder)
            if blocking is not None:
                raise MdnError(f"is a file; {what} need a folder there", blocking)
        saved = checkpoint.load(self.workdir, torch.device("cpu")) if resume else None  # before the data loads
        if not resume:
            self._check_name(options.name, overwrite)
        self.made = not self.workdir.exists()
        """Whether this sitting made the run's folder (which it then takes away again where it saves nothing)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            if self.rank == 0:
                claim(self.workdir, options.name)
            self.trainer = Trainer(options, self.workdir, log, state=saved)
        except (MdnError, KeyboardInterrupt):  # bad data or options, or Ctrl-C while loading: an old run left as it was
            self._discard_unsaved()
            raise
        if saved is None and self.rank == 0:  # --overwrite: the old run's checkpoint and log go, its card stays
            for name in (checkpoint.CHECKPOINT, checkpoint.LOG):
                (self.workdir / name).unlink(missing_ok=True)

    def _check_name(self, name: str, overwrite: bool) -> None:
        """NameTaken where an earlier run of this name left files (its checkpoint, its card) and `overwrite` does
        not let this run replace them."""
        card = self.card_folder / f"{name}.json"
        taken = [p for p in (self.workdir / checkpoint.CHECKPOINT, card, card.with_suffix(".pt")) if p.exists()]
        if taken and not overwrite:
            raise NameTaken(name, taken)

    def run(self, until: int | None = None) -> Iterator[Progress]:
        """`Trainer.run` to `until` within the time budget; NothingTrained when not one step fitted. A run that
        ends so, or diverges, before its first checkpoint takes away the folder it made."""
        try:
            yield from self.trainer.run(until, self.deadline)
            if self.trainer.iteration == 0:
                spent = time.monotonic() - self.started
                raise NothingTrained(f"the time budget ran out before the first step ({spent:.0f} s to start)")
        except NothingTrained:
            self._discard_unsaved()
            raise
        except Diverged as diverged:
            self._discard_unsaved()
            raise self._advised(diverged) from None
        except MdnError:  # a resumed run's data gone (`Trainer.data_error`), a checkpoint that cannot be written
            self._discard_unsaved()
            raise

    def _discard_unsaved(self) -> None:
        """Take away the run folder this sitting made where it holds no checkpoint (rank 0): its log alone, of a
        run that cannot be resumed, would only stand in the name's way."""
        if self.rank:
            return
        release(self.workdir)
        if not self.made or (self.workdir / checkpoint.CHECKPOINT).exists():
            return
        (self.workdir / checkpoint.LOG).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # what else was put there meanwhile stays, with its folder
            self.workdir.rmdir()

    def _advised(self, diverged: Diverged) -> Diverged:
        """`diverged` told what of the run's name is left: an earlier card, a checkpoint that a fresh start must
        --overwrite."""
        card = (self.card_folder / f"{self.trainer.options.name}.json").exists()
        saved = (self.workdir / checkpoint.CHECKPOINT).exists()
        return diverged.restated(earlier_card=card, overwrite=card or saved)

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
        if self.rank == 0:
            release(self.workdir)
        end_distributed()

    def resume_command(self) -> str:
        """The `mdn train` command that continues the run from its checkpoint."""
        output = ["--output", str(self.cards)] if self.cards else []
        where = ["--workdir", str(self.workdir), *output, "--resume"]
        return shlex.join(["mdn", "train", *self.trainer.options.arguments(), *where])
