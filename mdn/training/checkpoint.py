"""What a run keeps on disk between sittings: its checkpoint (written atomically), its validation log, and the
card weights a fresh run may start from."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from mdn import registry
from mdn.errors import MdnError

if TYPE_CHECKING:
    from mdn.training.objectives import Objective

CHECKPOINT = "checkpoint.pt"
LOG = "log.jsonl"


def save(workdir: Path, state: dict[str, Any]) -> None:
    """Write the checkpoint through a temporary file, so that a run killed while saving keeps the previous one."""
    path = workdir / CHECKPOINT
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load(workdir: Path, device: torch.device) -> dict[str, Any]:
    """The checkpoint's state, its tensors on `device`."""
    path = workdir / CHECKPOINT
    if not path.is_file():
        raise MdnError("no checkpoint to resume from", path)
    return torch.load(path, map_location=device, weights_only=True)


def append_log(workdir: Path, record: dict[str, Any]) -> None:
    """One line of the run's log: a step's time, loss and validation scores."""
    with (workdir / LOG).open("a") as f:
        f.write(json.dumps(record) + "\n")


def start_weights(model: nn.Module, name: str, objective: Objective, config: str) -> dict[str, Any]:
    """Load a card's weights (a finished run of the objective's network) into `model`; returns what it was."""
    card = registry.find(name, task=objective.task)
    architecture = objective.architecture
    if card.architecture != architecture:
        raise MdnError(f"init {name}: a {card.architecture} card cannot start a {architecture} run")
    try:
        model.load_state_dict(registry.load(card).state_dict())
    except RuntimeError as exc:
        raise MdnError(f"init {name}: its network differs from config {config}") from exc
    return {"card": card.name, "sha256": card.sha256, "iterations": card.training.get("iterations", 0)}
