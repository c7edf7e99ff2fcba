"""The model card a training run writes: its network, how it runs, and the record of how it was trained."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Protocol

import torch
from torch import nn

from mdn import registry
from mdn.training.checkpoint import INHERITED_STAGES
from mdn.training.devices import hardware
from mdn.training.objectives import Objective
from mdn.training.options import TrainOptions


class Run(Protocol):
    """What a card is written from: a run's options, objective and network, and its record so far (a `Trainer`
    is one)."""

    options: TrainOptions
    objective: Objective[Any]
    model: nn.Module
    iteration: int
    initialised_from: dict[str, Any]
    seconds: float
    scores: dict[str, Any]
    device: torch.device
    world: int

    def sittings(self) -> list[dict[str, Any]]: ...

    def recipe(self) -> tuple[TrainOptions, dict[str, Any]]: ...


def training_card(trainer: Run) -> registry.ModelCard:
    """The card of a run's weights so far: command, sittings (with the options each resumed one changed),
    recipe, data, time and hardware, latest scores."""
    objective = trainer.objective
    o, own = trainer.recipe()
    return registry.ModelCard(
        name=o.name,
        architecture=objective.architecture,
        task=objective.task,
        config=trainer.model.config.to_dict(),
        weights="",
        sha256="",
        description=described(own["description"], trainer.sittings()),
        inference=_inference(trainer, own.get("inference", {})),
        transform=own.get("transform", {}),
        training={
            "command": o.command(),
            "sittings": trainer.sittings(),
            "recipe": asdict(o),
            "data": o.data
            + ([f"{o.dead_leaves} dead-leaves images"] if o.dead_leaves else [])
            + ([f"{o.stripes} stripe images"] if o.stripes else [])
            + ([f"{o.textiles} textile images"] if o.textiles else []),
            **own.get("training", {}),
            "validation_images": o.validation,
            "iterations": trainer.iteration,
            **({"initialised_from": trainer.initialised_from} if trainer.initialised_from else {}),
            "seconds": round(trainer.seconds),
            "hardware": trained_on(trainer),
            "torch": torch.__version__,
        },
        scores={objective.score_name: trainer.scores} if trainer.scores else {},
    )


def described(description: str, sittings: list[dict[str, Any]]) -> str:
    """The objective's `description` of the last sitting's recipe, followed by the options each resumed sitting
    changed and from which step, so that a run resumed on other noise is not described by the last noise alone."""
    changes = [f"at step {s['from']:,} {', '.join(s['changed'])}" for s in sittings if s.get("changed")]
    return f"{description} (changed on resuming: {'; '.join(changes)})" if changes else description


def _inference(trainer: Run, own: dict[str, Any]) -> dict:
    """How the card runs: its objective's settings (`own`), and the stages the card it started from ran
    (`checkpoint.INHERITED_STAGES`: they go with a photo network, whatever its weights)."""
    stages = {stage: True for stage in INHERITED_STAGES if trainer.initialised_from.get(stage)}
    return {**stages, **own}


def trained_on(trainer: Run) -> str:
    """The machines the run's sittings trained on (a card may be finished elsewhere: on the CPU after a GPU
    sitting); sittings recorded before machines were, and a run with none, count as this one."""
    here = hardware(trainer.device, trainer.world)
    machines = [sitting.get("hardware", here) for sitting in trainer.sittings()] or [here]
    return ", ".join(dict.fromkeys(machines))
