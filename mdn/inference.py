"""A trained denoiser run as its card says: the card's inference settings merged with the caller's options and
checked, then the tiled engine over display-range planes."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from mdn import registry, tonemap
from mdn.engine import Engine, EngineOptions, ProgressCallback, check_tiling, parse_size, pick_device, pick_dtype
from mdn.errors import MdnError
from mdn.images import ARRAY, Image
from mdn.registry import Model, ModelCard, network_config
from mdn.renders import aux
from mdn.tonemap import DisplayTransform


def options(
    card: ModelCard,
    *,
    passes: int | None = None,
    input_mask: float | None = None,
    self_check: bool | None = None,
    overlap: int | None = None,
    max_memory: int | str = 2 << 30,
    **settings: Any,
) -> EngineOptions:
    """Engine options for `card`: its inference settings (passes, input mask, self-check) and tile overlap unless
    given here, `settings` (EngineOptions' fields) as given. Raises MdnError for a setting the engine would
    refuse."""
    given = {"passes": passes, "input_mask": input_mask, "self_check": self_check}
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
        if settings.self_check:
            info.update(kept_share=[round(share, 3) for share in engine.kept_shares])
    return result


class ModelChoice:
    """The model for each image of a batch, with its engine options: the named card, or with no name the default
    card, and for HDR renders the card marked default for them (`ModelCard.default_hdr`), loaded when the first
    render comes. `settings`: `options`' keyword arguments; a setting the engine refuses raises at once."""

    def __init__(self, name: str | None, settings: dict[str, Any]) -> None:
        self.name, self.settings = name, settings
        self.chosen: dict[bool, tuple[Model, EngineOptions]] = {}
        self.for_image(hdr=False)

    def for_image(self, hdr: bool) -> tuple[Model, EngineOptions]:
        render = hdr and self.name is None
        if render not in self.chosen:
            card = registry.find(self.name) if self.name is not None else registry.default_card(hdr=render)
            model = registry.load_model(card)
            self.chosen[render] = model, options(model.card, **self.settings)
        return self.chosen[render]

    def fit(self, image: Image) -> DisplayTransform:
        """The display transform of an image for its model (`tonemap.fitter` of the card's own transform)."""
        return tonemap.fitter(self.for_image(image.hdr)[0].card.transform)(image)


def with_auxiliary(
    planes: np.ndarray, model: Model, image: Image, albedo: Path | None = None, normal: Path | None = None
) -> np.ndarray:
    """Display-range planes (N, H, W, C) with the render's albedo and normal appended when the model takes them
    and the render has them (`aux.read`: given files, else the EXR's own layers); as they are otherwise (the
    engine then shows the model none)."""
    if not getattr(network_config(model.card), "aux", 0):
        if albedo or normal:
            raise MdnError(f"model {model.name} takes no albedo or normal (a render card with them does)")
        return planes
    found = aux.read(None if image.source.format == ARRAY else image.path, albedo, normal)
    if found is None:
        return planes
    if found.shape[:3] != planes.shape[:3]:
        raise MdnError(f"albedo and normal are {found.shape[1:3]}, the render {planes.shape[1:3]}", image.path)
    return np.concatenate([planes, found], axis=-1)
