"""The objectives by name: what `TrainOptions.objective` names, as the classes a run builds."""

from __future__ import annotations

from typing import Any

from mdn.errors import MdnError
from mdn.training.objectives import MaskedDenoising, MaskedFill, Objective
from mdn.training.render import RenderDenoising
from mdn.training.self_supervised import SelfSupervised

OBJECTIVES: dict[str, type[Objective[Any]]] = {
    o.name: o for o in (MaskedDenoising, MaskedFill, SelfSupervised, RenderDenoising)
}
"""Objective name -> class, for `TrainOptions.objective`."""


def objective_class(name: str) -> type[Objective[Any]]:
    """The objective of a name in `OBJECTIVES`."""
    if name not in OBJECTIVES:
        raise MdnError(f"unknown objective {name!r} (choose from {', '.join(OBJECTIVES)})")
    return OBJECTIVES[name]
