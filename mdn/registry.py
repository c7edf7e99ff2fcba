"""Model cards: a name -> architecture, configuration, weight file with its sha256, training record and scores.

Built-in cards ship in `models/` (inside the wheel as `mdn/_models`); cards written by `mdn train` live in the
user data directory. `--model` accepts a card name or a path to a card's JSON file.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import pickle
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
import torch
from torch import nn

from mdn.errors import MdnError
from mdn.io.atomic import write_atomic
from mdn.nets.iterative import IterativeConfig, IterativeFilterNet
from mdn.nets.skip import SkipConfig, SkipNet
from mdn.nets.swinir import MaskedSwinIR, SwinIRConfig
from mdn.nets.unet import UNet, UNetConfig
from mdn.units import is_kind

NETWORKS: dict[str, tuple[Any, Callable[[Any], nn.Module]]] = {
    "dynamic-filter": (IterativeConfig, IterativeFilterNet),
    "masked-swinir": (SwinIRConfig, MaskedSwinIR),
    "skip": (SkipConfig, SkipNet),
    "unet": (UNetConfig, UNet),
}
"""Architecture name -> (its configuration class, its network class)."""

ARCHITECTURES: dict[str, Callable[[dict[str, Any]], nn.Module]] = {
    name: lambda config, kind=kind, network=network: network(kind.from_dict(config))
    for name, (kind, network) in NETWORKS.items()
}
"""Architecture name -> constructor from a configuration dict."""

_PACKAGE = Path(__file__).resolve().parent


def builtin_dir() -> Path:
    """Shipped cards: inside the installed wheel, else the source tree's models/ folder."""
    wheel = _PACKAGE / "_models"
    return wheel if wheel.is_dir() else _PACKAGE.parent / "models"


def user_dir() -> Path:
    """Cards written by `mdn train` (override with MDN_MODELS_DIR)."""
    return Path(os.environ.get("MDN_MODELS_DIR") or Path(platformdirs.user_data_dir("mdn")) / "models")


@dataclass
class ModelCard:
    """Everything known about one trained model."""

    name: str
    architecture: str
    config: dict[str, Any]
    weights: str
    sha256: str
    description: str = ""
    task: str = "denoise"
    default: bool = False
    default_hdr: bool = False
    """The card `mdn denoise` takes for HDR renders (EXR) when no model is named, instead of the default."""
    default_hdr_aux: bool = False
    """The card it takes for HDR renders that bring albedo and normal (a card trained with them alone)."""
    grey: str = ""
    """The card whose network runs this card's grey pictures (one channel, or three equal ones) before this card's
    own stages, as OIDN keeps weights for each set of inputs; empty: this card's network runs them too."""
    tile_overlap: int = 32
    inference: dict[str, Any] = field(default_factory=dict)
    transform: dict[str, Any] = field(default_factory=dict)
    """The pixel transform its network works in when the card fixes it (`tonemap.fitter`), e.g. a camera's
    variance-stabilising transform; empty: each image's own (`tonemap.fit`)."""
    training: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, Any] = field(default_factory=dict)
    path: Path | None = field(default=None, compare=False)

    @property
    def weights_path(self) -> Path:
        assert self.path is not None, "card has not been saved"
        return self.path.parent / self.weights

    @property
    def parameters(self) -> int:
        return int(self.training.get("parameters", 0))

    @property
    def steps(self) -> int:
        """Optimisation steps in all the sittings that made these weights: this card's run and the earlier
        sittings it continued (a card it was fine-tuned from has its own)."""
        earlier = self.training.get("earlier_sittings") or []
        return int(self.training.get("iterations", 0)) + sum(int(s["to"]) - int(s["from"]) for s in earlier)

    @property
    def stages(self) -> list[str]:
        """What `mdn denoise` runs with this card by default, in order: the network and the stages its inference
        settings turn on around it."""
        run = self.inference
        stages = ["impulses"] if run.get("impulses") else []
        stages += ["network" if run.get("passes", 1) == 1 else f"network x{run['passes']} passes"]
        if run.get("detail"):
            stages += ["texture"] + (["Wiener"] if run.get("quality") != "fast" else [])
        return stages + (["self-check"] if run.get("self_check") else [])

    @property
    def role(self) -> str:
        """What the card is the default for, in words ('' for none)."""
        if self.default:
            return "default" if self.task == "denoise" else f"default {self.task}"
        return "renders" if self.default_hdr else "renders+aux" if self.default_hdr_aux else ""

    def __repr__(self) -> str:
        return f"ModelCard({self.name!r}, task={self.task!r}, architecture={self.architecture!r})"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("path")
        return data

    @classmethod
    def from_file(cls, path: Path) -> ModelCard:
        """The card in a JSON file; an MdnError naming the file and what is wrong with it."""
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise MdnError(f"not a valid model card: {exc}", path) from None
        problem = card_problem(data)
        if problem:
            raise MdnError(f"not a valid model card: {problem}", path)
        return cls(**data, path=path)


FIELD_TYPES: dict[str, type] = {
    "name": str, "architecture": str, "config": dict, "weights": str, "sha256": str, "description": str,
    "task": str, "default": bool, "default_hdr": bool, "default_hdr_aux": bool, "grey": str, "tile_overlap": int,
    "inference": dict, "transform": dict, "training": dict, "scores": dict,
}  # fmt: skip
"""A card's JSON fields and their types (`ModelCard`'s fields but its path)."""
REQUIRED = ("name", "architecture", "config", "weights", "sha256")
TYPE_NAMES = {str: "text", dict: "an object", bool: "true or false", int: "a whole number"}


def card_problem(data: Any) -> str:
    """What makes `data` (a card's parsed JSON) no card, in words; '' where it is one."""
    if not isinstance(data, dict):
        return "not a JSON object"
    missing = [name for name in REQUIRED if name not in data]
    if missing:
        return f"missing {', '.join(missing)}"
    unknown = [name for name in data if name not in FIELD_TYPES]
    if unknown:
        return f"fields this version of mdn does not know: {', '.join(unknown)} (written by a newer mdn?)"
    for name, value in data.items():
        kind = FIELD_TYPES[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            return f"{name} is {json.dumps(value)[:40]}, not {TYPE_NAMES[kind]}"
    if not data["name"].strip():
        return "its name is empty"
    training = data.get("training", {})
    for name in ("iterations", "parameters"):
        if not _whole(training.get(name, 0)):
            return f"training.{name} is {json.dumps(training[name])[:40]}, not a whole number"
    sittings = training.get("earlier_sittings") or []
    if not isinstance(sittings, list) or not all(
        isinstance(s, dict) and _whole(s.get("from")) and _whole(s.get("to")) for s in sittings
    ):
        return "training.earlier_sittings is not a list of {from, to} steps"
    return ""


def _whole(value: Any) -> bool:
    return is_kind(value, int)


def cards() -> dict[str, ModelCard]:
    """All cards by name; a user card shadows a built-in one of the same name. Files that are no card are left
    out (`problems` names them)."""
    return scan()[0]


def problems() -> list[MdnError]:
    """What `cards` leaves out or has to choose: a user's JSON file in the models folder that is no card (named
    as `--model` would name it), and two user cards of one name (the one whose file has that name is taken)."""
    return scan()[1]


def scan() -> tuple[dict[str, ModelCard], list[MdnError]]:
    """`cards` and `problems` from one read of the models folders."""
    found: dict[str, ModelCard] = {}
    issues: list[MdnError] = []
    for folder in (builtin_dir(), user_dir()):
        if not folder.is_dir():
            continue
        mine: dict[str, ModelCard] = {}
        for path in sorted(folder.glob("*.json")):
            try:
                card = ModelCard.from_file(path)
            except MdnError as exc:
                issues.append(exc)
                continue
            other = mine.get(card.name)
            if other is not None:
                kept, left = (card, other) if path.stem == card.name else (other, card)
                issues.append(MdnError(f"another card is also named {card.name!r}; {kept.path} is taken", left.path))
                card = kept
            mine[card.name] = card
        found.update(mine)
    return found, issues


def default_card(task: str = "denoise", hdr: bool = False, aux: bool = False) -> ModelCard:
    """The card marked default for a task; with `hdr`, the one marked default for HDR renders if there is one,
    and with `aux` too the one for renders with albedo and normal if it works in the same pixel transform and is
    not a built-in one beside a user's render card. A user's card so marked comes before a built-in one."""
    found = [card for card in reversed(cards().values()) if card.task == task]
    plain = [card for card in found if card.default]
    renders = [card for card in found if hdr and card.default_hdr] + plain
    if not renders:
        raise MdnError(f"no default {task} model is installed (see mdn models)")
    chosen = renders[0]
    with_buffers = [
        card
        for card in found
        if hdr and aux and card.default_hdr_aux and card.transform == chosen.transform
        and _built_in(card) <= _built_in(chosen)
    ]  # fmt: skip
    return [*with_buffers, chosen][0]


def _built_in(card: ModelCard) -> bool:
    return card.path is not None and card.path.parent == builtin_dir()


def find(name: str | os.PathLike[str] | None, task: str | None = "denoise") -> ModelCard:
    """A card by name or by path to its JSON file; None gives the task's default. An unknown name is told the
    cards of `task` (None: every card) that it may have meant."""
    if name is None:
        return default_card(task or "denoise")
    if not isinstance(name, str | os.PathLike):
        raise MdnError(f"a model is a card's name, its JSON file, a ModelCard or a loaded Model, not {name!r}")
    path = Path(name)
    if path.suffix == ".json":
        if not path.is_file():
            raise MdnError("is a folder, not a model card" if path.exists() else "no such model card file", path)
        return ModelCard.from_file(path)
    if path.suffix == ".pt":
        raise MdnError("is a weight file; a model is named by its card's name or JSON file (see mdn models)", path)
    available, issues = scan()
    if str(name) in available:
        return available[str(name)]
    for issue in issues:  # the user's card of that name that could not be read
        if issue.path is not None and issue.path.stem == str(name):
            raise issue
    taken = [card_name for card_name, card in available.items() if task is None or card.task == task]
    close = difflib.get_close_matches(str(name), taken, n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(close)}?" if close else f" (available: {', '.join(taken) or 'none'})"
    raise MdnError(f"unknown model {str(name)!r}{hint}")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def network_config(card: ModelCard) -> Any:
    """The card's network configuration (a `SwinIRConfig`, `UNetConfig`, `IterativeConfig` or `SkipConfig`),
    without building it."""
    if card.architecture not in NETWORKS:
        raise MdnError(f"unknown architecture {card.architecture!r} in model card", card.path)
    try:
        return NETWORKS[card.architecture][0].from_dict(card.config)
    except (TypeError, KeyError, ValueError) as exc:
        reason = f"missing {exc}" if isinstance(exc, KeyError) else re.sub(r"^\w+\.__init__\(\) ", "", str(exc))
        raise MdnError(f"not a valid model card: its {card.architecture} config: {reason}", card.path) from None


def build(card: ModelCard) -> nn.Module:
    """An untrained network of the card's architecture and configuration."""
    network_config(card)  # refuses an unknown architecture
    return ARCHITECTURES[card.architecture](card.config)


def load(card: ModelCard) -> nn.Module:
    """The card's network with its weights, checked against the card's sha256 and loaded without pickle code. A
    card that a training run saved again while it was read (`save` replaces the weights, then the card) is read
    again once."""
    try:
        return _load_checked(card)
    except MdnError as error:
        try:
            saved = ModelCard.from_file(card.path) if card.path is not None and card.path.is_file() else None
            if saved is None or saved.sha256 == card.sha256:
                raise error
            return _load_checked(saved)
        except MdnError:
            raise error from None


def _load_checked(card: ModelCard) -> nn.Module:
    weights = card.weights_path
    if not weights.is_file():
        raise MdnError("weight file is missing", weights)
    if sha256(weights) != card.sha256:
        raise MdnError("weight file does not match the sha256 in its model card (corrupt or replaced?)", weights)
    model = build(card)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        state = {k: v.float() for k, v in state.items()}
    except (RuntimeError, pickle.UnpicklingError, AttributeError, EOFError, OSError) as exc:
        raise MdnError(f"cannot load weights: {str(exc).splitlines()[0]}", weights) from None
    mismatch = _mismatch(model.state_dict(), state)
    if mismatch:
        raise MdnError(f"the weights are for another network than its card's config ({mismatch})", weights)
    broken = nonfinite_weights(state)
    if broken:  # they would write a black picture
        raise MdnError(f"the weights hold NaN or Inf ({broken}): a training run that diverged; train it again", weights)
    model.load_state_dict(state)
    return model.eval()


def _mismatch(wanted: dict[str, torch.Tensor], given: dict[str, torch.Tensor]) -> str:
    """How two state dicts differ, in words ('' where their names and shapes agree)."""
    missing = [k for k in wanted if k not in given]
    extra = [k for k in given if k not in wanted]
    shapes = [k for k in wanted if k in given and wanted[k].shape != given[k].shape]
    parts = [f"{len(missing)} tensors missing", f"{len(extra)} unknown", f"{len(shapes)} of another shape"]
    return ", ".join(part for part, found in zip(parts, (missing, extra, shapes), strict=True) if found)


@dataclass(frozen=True)
class Model:
    """A card with its network loaded: what `mdn.load_model` returns, to run many images without reloading."""

    card: ModelCard
    net: nn.Module
    grey_net: nn.Module | None = None
    """The network for grey pictures (`ModelCard.grey`), where the card names one."""

    @property
    def name(self) -> str:
        return self.card.name

    def __repr__(self) -> str:
        device = next(self.net.parameters()).device
        return f"Model({self.name!r}, {self.card.architecture}, {self.card.parameters:,} parameters, {device})"


TASKS = {"denoise": "mdn denoise", "fill": "mdn zeroshot"}
"""A card's task -> the command that runs it."""


def check_task(card: ModelCard, task: str) -> ModelCard:
    """`card` when it is a card for `task`, else an MdnError naming the card, what it is for and what to take."""
    if card.task != task:
        ours = TASKS.get(card.task, f"the {card.task} task")
        raise MdnError(
            f"model {card.name} is a {card.task} card, for {ours}; {TASKS.get(task, task)} takes a {task} card "
            f"(see mdn models)"
        )
    return card


def load_model(model: str | os.PathLike[str] | ModelCard | Model | None, task: str | None = "denoise") -> Model:
    """A card given by name, JSON path or itself (None: `task`'s default) with its network loaded; a Model comes
    back as it is. A card for another task than `task` is refused (task None: any card)."""
    if isinstance(model, Model):
        card = model.card
    else:
        card = model if isinstance(model, ModelCard) else find(model, task or "denoise")
    if task is not None:
        check_task(card, task)
    return model if isinstance(model, Model) else Model(card, load(card), load_grey(card))


def load_grey(card: ModelCard) -> nn.Module | None:
    """The network of the card that `card.grey` names, loaded; None where it names none. Refused unless it does
    the card's task on the same inputs (channels, auxiliary channels)."""
    if not card.grey:
        return None
    grey = check_task(find(card.grey, card.task), card.task)
    ours, theirs = network_config(card), network_config(grey)
    if (ours.channels, getattr(ours, "aux", 0)) != (theirs.channels, getattr(theirs, "aux", 0)):
        raise MdnError(f"the grey model {grey.name} takes other inputs than {card.name}", card.path)
    return load(grey)


def nonfinite_weights(state: dict[str, torch.Tensor]) -> str:
    """The tensors of a state dict that hold NaN or Inf, in words ('' where none does)."""
    broken = [name for name, tensor in state.items() if tensor.is_floating_point() and not tensor.isfinite().all()]
    return "" if not broken else broken[0] if len(broken) == 1 else f"{broken[0]} and {len(broken) - 1} more"


def save(model: nn.Module, card: ModelCard, folder: Path) -> ModelCard:
    """Write the weights and the card (with the weights' sha256) into `folder`; return the saved card. Weights
    that hold NaN or Inf are refused (MdnError), as `load` would refuse them."""
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{card.name}.pt"
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if broken := nonfinite_weights(state):
        raise MdnError(f"the weights hold NaN or Inf ({broken}): not saved", weights)
    write_atomic(weights, lambda tmp: torch.save(state, tmp))  # a reader never sees half a file (`load`)
    card.weights, card.sha256, card.path = weights.name, sha256(weights), folder / f"{card.name}.json"
    card.training.setdefault("parameters", sum(p.numel() for p in model.parameters()))
    text = json.dumps(card.to_json(), indent=2) + "\n"
    write_atomic(card.path, lambda tmp: tmp.write_text(text))
    return card
