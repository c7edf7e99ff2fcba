"""One command's stretch of a training run: its working folder, its claim on a name, its time budget, and how
to go on afterwards."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

from mdn import registry
from mdn.errors import MdnError
from mdn.io import atomic
from mdn.training import checkpoint
from mdn.training.devices import end_distributed, init_distributed
from mdn.training.loop import Progress, Trainer
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
        self.deadline = self.started + parse_duration(time_budget) if time_budget else None
        init_distributed(options.device)
        self.workdir = workdir or registry.user_dir().parent / "runs" / options.name
        self.cards = cards
        self.card_folder = cards or registry.user_dir()
        for folder, what in ((self.card_folder, "the model cards"), (self.workdir, "the run's checkpoints")):
            blocking = atomic.file_in_the_way(folder)
            if blocking is not None:
                raise MdnError(f"is a file; {what} need a folder there", blocking)
        if not resume:
            self._check_name(options.name, overwrite)
        made = not self.workdir.exists()
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self.trainer = Trainer(options, self.workdir, log)
        except MdnError:  # bad data or options: no empty run folder left behind, an old run left as it was
            if made and not any(self.workdir.iterdir()):
                self.workdir.rmdir()
            raise
        if resume:
            self.trainer.resume()
        elif self.trainer.rank == 0:  # --overwrite: the old run's checkpoint and log go, its card stays till replaced
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
