"""What a run keeps on disk between sittings: its checkpoint (written atomically), its validation log, and the
card weights a fresh run may start from."""

from __future__ import annotations

import json
import os
import pickle
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


SAVED = ("iteration", "seconds", "model", "ema", "optimizer")
"""What every checkpoint `save` has written (older ones lack `options`, `scores`, `history`); a file without them
is no run's checkpoint."""


def load(workdir: Path, device: torch.device) -> dict[str, Any]:
    """The checkpoint's state, its tensors on `device`; an MdnError naming the file where it is not one `save`
    wrote (cut short, empty, another program's), so that a damaged run is reported, not crashed on."""
    path = workdir / CHECKPOINT
    if not path.is_file():
        raise MdnError("no checkpoint to resume from", path)
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises what its zip, pickle or tensor reader met: none of it is ours to name
        raise unreadable(path, _reason(exc)) from None
    problem = _malformed(state)
    if problem:
        raise unreadable(path, problem)
    return state


def _malformed(state: Any) -> str:
    """What makes a loaded checkpoint no state `save` wrote, in words ('' where nothing does)."""
    missing = [key for key in SAVED if key not in state] if isinstance(state, dict) else list(SAVED)
    if missing:
        return f"it lacks {', '.join(missing)}"
    for key in ("model", "ema"):
        if not isinstance(state[key], dict) or not all(isinstance(v, torch.Tensor) for v in state[key].values()):
            return f"its {key} holds no weights"
    if not isinstance(state["optimizer"], dict) or not {"state", "param_groups"} <= state["optimizer"].keys():
        return "its optimizer holds no optimiser state"
    return ""


def unreadable(path: Path, reason: str) -> MdnError:
    """The error of a checkpoint that cannot be resumed from, with what starts the run again."""
    return MdnError(f"is not a readable mdn checkpoint ({reason}): --overwrite starts the run afresh", path)


def _reason(exc: Exception) -> str:
    """What went wrong reading a checkpoint, in a few words: torch's messages run to paragraphs."""
    if isinstance(exc, EOFError) or "central directory" in str(exc):
        return "cut short or empty"
    if isinstance(exc, pickle.UnpicklingError):  # not torch's zip format, or objects besides tensors
        return "not a file of PyTorch tensors"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return first[:80].rstrip(".")


def append_log(workdir: Path, record: dict[str, Any]) -> None:
    """One line of the run's log: a step's time, loss and validation scores."""
    with (workdir / LOG).open("a") as f:
        f.write(json.dumps(record) + "\n")


INHERITED_STAGES = ("impulses", "detail")
"""The stages around a photo network that a card started from one that runs them runs too, whatever its
weights."""


def start_weights(model: nn.Module, name: str, objective: Objective, config: str) -> dict[str, Any]:
    """Load a card's weights (a finished run of the objective's network) into `model`; returns what it was (and
    each of `INHERITED_STAGES` the card runs, which the new card then runs too). A
    network that takes more input channels than the card's (auxiliary inputs) gets zero weights for them, and
    blocks the card lacks that the network names in `starts_as_identity` keep their own, so it starts as the card
    was; layers it names in `fresh_when_reshaped` keep their own where the card's differ in shape (a kernel output
    on a card that predicted pixels)."""
    card = registry.find(name, task=objective.task)
    architecture = objective.architecture
    if card.architecture != architecture:
        raise MdnError(f"--init {name}: a {card.architecture} card cannot start a {architecture} run")
    state = registry.load(card).state_dict()
    prefixes = tuple(getattr(model, "starts_as_identity", ()))
    fresh = tuple(getattr(model, "fresh_when_reshaped", ()))
    for key, wanted in model.state_dict().items():
        if key in state and fresh and key.startswith(fresh) and state[key].shape != wanted.shape:
            state[key] = wanted  # an output the card did not have: learned from its features afresh
        elif key in state:
            state[key] = _widened(state[key], wanted.shape)
        elif prefixes and key.startswith(prefixes):
            state[key] = wanted  # a block the card lacks, which leaves its input as it is until trained
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise MdnError(f"--init {name}: its network differs from --config {config}") from exc
    start = {"card": card.name, "sha256": card.sha256, "iterations": card.training.get("iterations", 0)}
    return {**start, **{stage: True for stage in INHERITED_STAGES if card.inference.get(stage)}}


def _widened(weight: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """A convolution's weight with zeros for the input channels `shape` has beyond it (unchanged otherwise)."""
    extra = shape[1] - weight.shape[1] if weight.dim() == 4 and len(shape) == 4 else 0
    if extra <= 0 or shape[0] != weight.shape[0] or shape[2:] != weight.shape[2:]:
        return weight
    return torch.cat([weight, weight.new_zeros((weight.shape[0], extra, *weight.shape[2:]))], dim=1)
