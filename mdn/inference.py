"""A trained denoiser run as its card says: the card's inference settings merged with the caller's options and
checked, then the tiled engine over display-range planes."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from mdn.engine import Engine, EngineOptions, ProgressCallback, check_tiling, parse_size, pick_device, pick_dtype
from mdn.errors import MdnError
from mdn.registry import Model, ModelCard, network_config


def options(
    card: ModelCard,
    *,
    passes: int | None = None,
    input_mask: float | None = None,
    overlap: int | None = None,
    max_memory: int | str = 2 << 30,
    **settings: Any,
) -> EngineOptions:
    """Engine options for `card`: its inference settings (passes, input mask) and tile overlap unless given
    here, `settings` (EngineOptions' fields) as given. Raises MdnError for a setting the engine would refuse."""
    given = {"passes": passes, "input_mask": input_mask}
    inference = {**card.inference, **{k: v for k, v in given.items() if v is not None}}
    if inference.get("passes", 1) < 1:
        raise MdnError("--passes must be at least 1")
    if not 0 <= inference.get("input_mask", 0.0) < 1:
        raise MdnError("--input-mask must be in [0, 1)")
    result = EngineOptions(
        overlap=card.tile_overlap if overlap is None else overlap,
        max_memory=parse_size(max_memory) if isinstance(max_memory, str) else max_memory,
        **settings,
        **inference,
    )
    pick_dtype(result.precision, pick_device(result.device))
    if result.tile:
        check_tiling(result.tile, result.overlap, network_config(card).window)
    return result


def as_card_runs(card: ModelCard, options: EngineOptions) -> EngineOptions:
    """`options` with the card's own inference settings and tile overlap: the card as `mdn denoise` runs it when
    no option overrides them."""
    return dataclasses.replace(options, overlap=card.tile_overlap, **card.inference)


def run(
    planes: np.ndarray,
    model: Model,
    settings: EngineOptions,
    progress: ProgressCallback | None = None,
    info: dict[str, Any] | None = None,
) -> np.ndarray:
    """Denoise (N, H, W, C) display-range planes; `info` gets the model, tiles run, tile size and device."""
    engine = Engine(model.net, settings)
    result = engine(planes, progress)
    if info is not None:
        info.update(model=model.name, tiles=engine.tiles_run, tile=engine.tile, device=str(engine.device))
    return result
