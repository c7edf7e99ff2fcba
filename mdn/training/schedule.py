"""When a run does what: its learning rate at each step, and the wall-clock budget of a sitting."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator

from mdn.training.options import TrainOptions

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


class Budget:
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
