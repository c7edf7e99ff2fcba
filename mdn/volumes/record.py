"""What makes an output volume's chunks, recorded in its progress folder when a run begins the output and
compared when a run goes on with it: the input store, the card (its weights) or the zero-shot method, and the
settings that change pixels, so that an unfinished output is never finished by another input, card or setting."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from mdn import registry, zeroshot
from mdn.device import PRECISIONS, pick_device, pick_dtype
from mdn.errors import MdnError
from mdn.inference.engine import EngineOptions, tiling
from mdn.io import atomic

RECORD = ".begun-with.json"
"""The record's file in the output's progress folder (hidden: no chunk's marker starts with a dot)."""

UNRECORDED = "unrecorded_before"
"""A record's key marking an output begun by an mdn that kept no record: its first chunks are unchecked."""

NOT_COMPARED = ("mdn", "transform", UNRECORDED)
"""Keys kept for the reader or compared on their own (`check_transform`), not with the settings."""


def of_card(source: Path, card: registry.ModelCard, options: EngineOptions, window: int) -> dict[str, Any]:
    """The record of a run of `card` over `source`: its weights (and its grey card's), and the engine's options
    as they resolve here (the tile `--max-memory` chooses where `--tile` is 0, the stages' `window`, 0 where a
    plane runs them whole); `--max-memory` itself only groups chunks into units, which leaves pixels alone."""
    device = pick_device(options.device)
    tile, batch = tiling(options, registry.network_config(card), device)
    settings = dataclasses.asdict(options)
    del settings["max_memory"]
    settings |= {
        "tile": tile,
        "batch": batch, "device": device.type, "precision": _precision(options.precision, device), "window": window,
    }  # fmt: skip
    made = {"made_by": f"card {card.name}", "weights": card.sha256}
    if card.grey:
        made["grey"] = _card_words(card.grey, "denoise")
    return {"input": _real(source), **made, **settings, "mdn": _version()}


def of_zeroshot(source: Path, settings: Any) -> dict[str, Any]:
    """The record of a zero-shot run over `source` with `settings` (`zeroshot.run.Settings`): the method and
    every setting but the time budget, which a run going on shares anew among the planes left, as they resolve
    for a volume's grey planes (the preset's steps and fill card where not given: `--iters 800` given is the
    `microscopy` preset's own)."""
    given = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    del given["time_budget"], given["method"]
    device = pick_device(settings.device)
    model = settings.model
    if isinstance(model, registry.Model):
        model = model.card
    steps = settings.steps(1)
    mpi = settings.method == "mpi"
    if mpi and model is None:
        model = zeroshot.fill_card(settings.preset_name(1), True)
    given |= {
        "preset": settings.preset_name(1) if mpi else None,
        **{name: getattr(steps, name) for name in ("iters", "beta", "mask_ratio", "lr")},
        "share": settings.share is not False, "self_check": settings.self_check is not False,
        "model": None if model is None else _card_words(model, "fill"),
        "device": device.type, "precision": _precision(settings.precision, device),
    }  # fmt: skip
    return {"input": _real(source), "made_by": f"zeroshot {settings.method}", **given, "mdn": _version()}


def write(folder: Path, record: dict[str, Any]) -> None:
    """Write `record` into a progress folder, whole or not at all."""
    atomic.write_atomic(folder / RECORD, lambda tmp: tmp.write_text(json.dumps(record, indent=1) + "\n"))


def read(folder: Path) -> dict[str, Any] | None:
    """The record in a progress folder; None where the run that began it kept none (an earlier mdn)."""
    path = folder / RECORD
    if not path.is_file():
        return None
    try:
        found = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MdnError(f"cannot read the record of the unfinished run ({exc}); --overwrite to start afresh",
                       folder.parent) from None  # fmt: skip
    if not isinstance(found, dict):
        raise MdnError("the record of the unfinished run is not a JSON object; --overwrite to start afresh",
                       folder.parent)  # fmt: skip
    return found


def check(target: Path, begun: dict[str, Any], now: dict[str, Any]) -> None:
    """An MdnError naming `target` where the run going on with it would make its chunks otherwise than the run
    that began it: another input, card, method or setting (keys that either record lacks are not compared)."""
    differ = [k for k in now if k not in NOT_COMPARED and k in begun and begun[k] != now[k]]
    first = [k for k in ("input", "made_by") if k in differ]  # the rest is beside the point where these differ
    said = "; ".join(_pair(_words(k, begun[k]), _words(k, now[k])) for k in first or differ)
    if said:
        raise MdnError(f"holds an unfinished run begun with {said}: run it with the same settings to go on, or "
                       "--overwrite to start afresh", target)  # fmt: skip


def check_transform(target: Path, folder: Path, begun: dict[str, Any], transform: Any) -> None:
    """Record the display transform fitted to the input where the record holds none yet (no chunk is written
    before it is), else an MdnError naming `target` where it differs: the input's pixels changed since."""
    fitted = repr(transform)
    if "transform" not in begun:
        write(folder, {**begun, "transform": fitted})
    elif begun["transform"] != fitted:
        source = begun.get("input", "its input")
        raise MdnError(f"holds an unfinished run of {source} as it was then: its pixels have changed since (their "
                       "fitted range differs); --overwrite to start afresh", target)  # fmt: skip


def unchecked(target: Path) -> str:
    """The warning for an unfinished output begun without a record: what made its first chunks is unknown."""
    return (f"{target} was begun by an earlier mdn that kept no record of its input and settings, so the "
            "chunks done could not be checked against this run's; --overwrite starts afresh if they were made "
            "otherwise")  # fmt: skip


def _pair(begun: str, now: str) -> str:
    """'A, not B', the words that B begins with as A does left out of it ('--tile 64, not 128')."""
    first, second = begun.split(" "), now.split(" ")
    same = 0
    while same < min(len(first), len(second)) - 1 and first[same] == second[same]:
        same += 1
    return f"{begun}, not {' '.join(second[same:])}"


def _words(key: str, value: Any) -> str:
    """A recorded setting as a message says it."""
    if key == "input":
        return f"the input {value}"
    if key == "made_by":
        kind, _, name = str(value).partition(" ")
        return f"the card {name}" if kind == "card" else f"mdn zeroshot --method {name}"
    if key == "weights":
        return f"the card's weights of sha256 {str(value)[:12]}"
    if key == "grey":
        return f"the grey card {value}"
    if key == "window":
        return f"stage windows of {value} px (--max-memory)" if value else "whole-plane stages (--max-memory)"
    if key == "light_check":
        return "--strength auto" if value else "a fixed --strength"
    if key in ("repeat_above", "coarse"):
        return f"the card's {key} {value}"
    flag = "--" + {"batch": "tile-batch"}.get(key, key).replace("_", "-")
    if isinstance(value, bool):
        return flag if value else "--no-" + flag[2:]
    return f"{flag} {'(the default)' if value is None else value}"


def _card_words(card: str | os.PathLike[str] | registry.ModelCard, task: str) -> str:
    """A card by name and the start of its weights' sha256 (a retrained card of the same name differs)."""
    try:
        found = card if isinstance(card, registry.ModelCard) else registry.find(card, task)
    except MdnError:
        return str(card)
    return f"{found.name} of sha256 {found.sha256[:12]}"


def _precision(precision: str, device: Any) -> str:
    """The compute type a --precision resolves to on `device`, by its option name (auto: bf16 or fp32)."""
    dtype = pick_dtype(precision, device)
    return next((name for name, kind in PRECISIONS.items() if kind == dtype), str(dtype))


def _real(source: Path) -> str:
    return os.path.realpath(source)


def _version() -> str:
    from mdn import __version__

    return __version__
