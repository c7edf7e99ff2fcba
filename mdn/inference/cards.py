"""A trained denoiser run as its card says: the card's inference settings merged with the caller's options and
checked, then the tiled engine over display-range planes."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mdn import registry
from mdn.device import parse_size, pick_device, pick_dtype
from mdn.errors import MdnError
from mdn.inference.engine import (
    QUALITIES,
    Engine,
    EngineOptions,
    ProgressCallback,
    check_tiling,
    tiling,
)
from mdn.io import buffers, tonemap
from mdn.io.images import ARRAY
from mdn.io.picture import Image
from mdn.io.tonemap import DisplayTransform
from mdn.registry import Model, ModelCard, network_config
from mdn.units import KIND_WORDS, is_kind

RUN_SETTINGS = (
    "passes", "input_mask", "impulses", "detail", "quality", "wiener", "self_check", "strength", "keep_clean",
    "seed", "device", "precision", "tile", "overlap", "batch", "max_memory", "attention_mask",
)  # fmt: skip
"""The keyword arguments of `options` that `mdn denoise` and `mdn.denoise` take from their callers."""


def run_settings(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """`options`' keyword arguments (`RUN_SETTINGS`) from a call's own arguments (its `locals()`), so that the
    command and the API name them once."""
    return {name: arguments[name] for name in RUN_SETTINGS}


def strength_settings(strength: float | str | None) -> dict[str, Any]:
    """The engine settings a `--strength` stands for: "auto", the light-noise check (`stages.light`); a number in
    [0, 1], the share of the change kept; None, the card's own."""
    if strength is None:
        return {}
    if strength == "auto":
        return {"light_check": True}
    try:
        share = float(strength)
    except (TypeError, ValueError):
        share = math.nan
    if not 0 <= share <= 1:
        raise MdnError(f"--strength must be auto or a number from 0 to 1, got {strength!r}")
    return {"strength": share, "light_check": False}


SEEDS = 2**32
"""Seeds are 0 to 2^32 - 1 (numpy's and torch's generators both take them)."""
MIN_MEMORY = 64 << 20
"""The smallest memory budget: the stages' smallest window takes a quarter of it (`stages.windows.window_for`)."""


def check_seed(seed: int) -> None:
    """An MdnError for a whole number that is not a seed (`SEEDS`): `mdn denoise`'s and `mdn zeroshot`'s check."""
    if not 0 <= seed < SEEDS:
        raise MdnError(f"--seed must be 0 to {SEEDS - 1}, got {seed}")


def options(
    card: ModelCard,
    *,
    passes: int | None = None,
    input_mask: float | None = None,
    impulses: bool | None = None,
    detail: bool | None = None,
    quality: str | None = None,
    wiener: bool | None = None,
    self_check: bool | None = None,
    strength: float | str | None = None,
    keep_clean: bool | None = None,
    overlap: int | None = None,
    max_memory: int | str = 2 << 30,
    **settings: Any,
) -> EngineOptions:
    """Engine options for `card`: its inference settings (passes, input mask, impulses, detail, quality,
    self-check, clean kept) and tile overlap unless given here, `settings` (EngineOptions' fields) as given;
    `wiener` False means quality fast; `strength` a share of the output's change to keep in [0, 1], or "auto"
    for the light-noise check's. Raises MdnError for a setting the engine would refuse."""
    _check_settings(card)
    given = {
        "passes": passes, "input_mask": input_mask, "impulses": impulses, "detail": detail,
        "quality": _quality(quality, wiener), "self_check": self_check, "keep_clean": keep_clean,
        **strength_settings(strength),
    }  # fmt: skip
    chosen = {k: v for k, v in given.items() if v is not None}
    memory = parse_size(max_memory) if isinstance(max_memory, str) else max_memory
    _check_types({**chosen, "overlap": overlap}, card_has_one=True)
    _check_types({**settings, "max_memory": memory}, card_has_one=False)
    inference = {**card.inference, **chosen}
    if inference.get("quality", EngineOptions.quality) not in QUALITIES:
        raise MdnError(f"--quality must be one of {', '.join(QUALITIES)}, got {inference['quality']!r}")
    if inference.get("passes", 1) < 1:
        raise MdnError("--passes must be at least 1")
    if not 0 <= inference.get("input_mask", 0.0) < 1:
        raise MdnError("--input-mask must be in [0, 1)")
    check_seed(settings.get("seed", 0))
    if settings.get("batch", 0) < 0:
        raise MdnError(f"--tile-batch must be 0 (1 on a CPU, 4 on a GPU) or more, got {settings['batch']}")
    if memory < MIN_MEMORY:
        raise MdnError(f"--max-memory must be at least {MIN_MEMORY >> 20}M (the stages' smallest window), got "
                       f"{max_memory!r}")  # fmt: skip
    result = EngineOptions(
        overlap=card.tile_overlap if overlap is None else overlap, max_memory=memory, **settings, **inference
    )
    device = pick_device(result.device)
    pick_dtype(result.precision, device)
    config = network_config(card)
    check_tiling(tiling(result, config, device)[0], result.overlap, config.window)
    return result


def _quality(quality: str | None, wiener: bool | None) -> str | None:
    """The quality asked for: `quality`, or "fast" where the former `--no-wiener` says so; an MdnError for a
    `wiener` that is not True or False, or that `quality` contradicts."""
    if wiener is None:
        return quality
    if not is_kind(wiener, bool):
        raise MdnError(f"--wiener must be {KIND_WORDS[bool]}, got {wiener!r}")
    if quality is not None and (quality == "fast") == bool(wiener):
        option = "--wiener" if wiener else "--no-wiener"
        raise MdnError(f"--quality {quality} contradicts {option} (--no-wiener is --quality fast)")
    return quality if wiener else "fast"


def unheeded(card: ModelCard, settings: Mapping[str, Any], chosen: EngineOptions) -> list[str]:
    """What the caller asked of `card` (`settings`: `options`' keyword arguments, `chosen`: their result) that its
    run leaves out or the card was not made for, one line each."""
    return [note for note in (_idle_quality(card, settings, chosen), _untrained_masks(card, settings)) if note]


def _idle_quality(card: ModelCard, settings: Mapping[str, Any], chosen: EngineOptions) -> str | None:
    """A quality given where no detail stage runs for it to set."""
    quality = settings.get("quality")
    if quality is None or chosen.detail:
        return None
    why = "--no-detail" if settings.get("detail") is not None else "its card has none; --detail adds it"
    return f"model {card.name} runs no detail stage ({why}): --quality {quality} changes nothing"


def _untrained_masks(card: ModelCard, settings: Mapping[str, Any]) -> str | None:
    """Input masks given for a card its recipe trained without them (`mdn train --no-mask`)."""
    input_mask = settings.get("input_mask")
    if not input_mask or card.training.get("recipe", {}).get("mask") is not False:
        return None
    return (
        f"model {card.name} was trained without input masks: --input-mask {input_mask:g} hides pixels it never "
        "learnt to fill, which darkens the picture (take a card trained with masks)"
    )


_DEFAULTS = {field.name: field.default for field in dataclasses.fields(EngineOptions)}


def _fits(value: Any, default: Any) -> bool:
    """Whether `value` is of the kind of an EngineOptions field whose default is `default`."""
    return is_kind(value, type(default))


def _check_types(settings: Mapping[str, Any], card_has_one: bool) -> None:
    """An MdnError for a caller's setting of another kind than its EngineOptions field (the API's callers: the
    command line's are typed by their options); None, where `card_has_one`, is the card's own."""
    for name, value in settings.items():
        if (value is not None or not card_has_one) and name in _DEFAULTS and not _fits(value, _DEFAULTS[name]):
            option = "tile-batch" if name == "batch" else name.replace("_", "-")
            raise MdnError(f"--{option} must be {KIND_WORDS[type(_DEFAULTS[name])]}, got {value!r}")


def _check_settings(card: ModelCard) -> None:
    """An MdnError naming the card where its inference settings are not the engine's, or of another type."""
    for name, value in card.inference.items():
        if name not in _DEFAULTS:
            raise MdnError(f"not a valid model card: inference setting {name!r} is not known here", card.path)
        if not _fits(value, _DEFAULTS[name]):
            raise MdnError(f"not a valid model card: inference setting {name} is {value!r}", card.path)


def as_card_runs(card: ModelCard, options: EngineOptions) -> EngineOptions:
    """`options` with the card's own inference settings and tile overlap: the card as `mdn denoise` runs it when
    no option overrides them."""
    _check_settings(card)
    return dataclasses.replace(options, overlap=card.tile_overlap, **card.inference)


def run(
    planes: np.ndarray,
    model: Model,
    settings: EngineOptions,
    progress: ProgressCallback | None = None,
    info: dict[str, Any] | None = None,
) -> np.ndarray:
    """Denoise (N, H, W, C) display-range planes; `info` gets the model, tiles run, tile size, device, whether
    the detail stage and its Wiener filtering ran, the quality (None without the detail stage), and the impulses
    filled (where that stage ran)."""
    engine = Engine(model.net, settings, model.grey_net)
    result = engine(planes, progress)
    if info is not None:
        info.update(
            model=model.name,
            tiles=engine.tiles_run,
            tile=engine.tile,
            device=str(engine.device),
            detail=settings.detail,
            wiener=settings.detail and settings.quality != "fast",
            quality=settings.quality if settings.detail else None,  # it sets what follows the detail stage
        )
        if settings.impulses:
            info.update(impulses=engine.impulses_filled)
        if settings.self_check:
            info.update(kept_share=[round(share, 3) for share in engine.kept_shares])
        if settings.repeat_above:
            info.update(repeats=engine.repeats)
        if settings.coarse:
            info.update(coarse=engine.coarse_runs)
        if settings.light_check or settings.strength != 1:
            info.update(kept_change=[round(share, 3) for share in engine.light_shares])
        if settings.keep_clean:
            info.update(clean=engine.clean)
    return result


class ModelChoice:
    """The model for each image of a batch, with its engine options: the named card (a name, JSON path, card or
    loaded model), or with none the default card; for HDR renders the card marked default for them
    (`ModelCard.default_hdr`), and for renders that bring albedo and normal the one marked default for those
    (`default_hdr_aux`), as OIDN keeps weights for each set of inputs. Each is loaded when its first image comes.
    `settings`: `options`' keyword arguments, a setting the engine refuses raising when its model loads. `albedo`
    and `normal`: buffer files given for every render (else each EXR's own layers)."""

    def __init__(
        self,
        model: str | Path | ModelCard | Model | None,
        settings: dict[str, Any],
        albedo: Path | None = None,
        normal: Path | None = None,
    ) -> None:
        self.model, self.settings, self.buffers = model, settings, (albedo, normal)
        self.chosen: dict[tuple[bool, bool], tuple[Model, EngineOptions]] = {}
        self.told: set[str] = set()
        """The cards whose `unheeded` settings the caller has been told of."""

    def for_image(self, hdr: bool, aux: bool = False) -> tuple[Model, EngineOptions]:
        """The model and options for an image (`hdr`: a render; `aux`: one with albedo and normal)."""
        key = (hdr and self.model is None, aux and hdr and self.model is None)
        if key not in self.chosen:
            card = self.model if self.model is not None else registry.default_card(hdr=key[0], aux=key[1])
            model = registry.load_model(card)
            self.chosen[key] = model, options(model.card, **self.settings)
        return self.chosen[key]

    def untold(self, model: Model, settings: EngineOptions) -> list[str]:
        """What the caller asked that `model`'s run (with `settings`, from `for_image`) leaves out or its card was
        not made for (`unheeded`); empty once told for that card, so that a batch hears it once."""
        if model.name in self.told:
            return []
        self.told.add(model.name)
        return unheeded(model.card, self.settings, settings)

    def check_buffers(self) -> None:
        """An MdnError, before any file, where buffer files are given for a named model that takes none."""
        if self.model is not None and any(self.buffers):
            model = self.for_image(hdr=True)[0]
            if not _takes_aux(model):
                raise _takes_no_buffers(model)

    def fit(self, image: Image) -> DisplayTransform:
        """The display transform of an image for its model (`tonemap.fitter` of the card's own transform; a
        render's cards with and without buffers share theirs, `registry.default_card`)."""
        transform = tonemap.fitter(self.for_image(image.hdr)[0].card.transform)(image)
        return tonemap.FlatKept.around(transform, image.pixels)

    def inputs(
        self, planes: np.ndarray, image: Image, warn: Callable[[str], None] | None = None
    ) -> tuple[np.ndarray, Model, EngineOptions]:
        """The image's model and options, and its display-range planes (N, H, W, C) as that model takes them
        (`_with_buffers`); `warn` is told what the model's run leaves out of the settings (`untold`)."""
        planes, model, settings = self._with_buffers(planes, image, warn)
        for note in self.untold(model, settings) if warn is not None else ():
            warn(note)
        return planes, model, settings

    def _with_buffers(
        self, planes: np.ndarray, image: Image, warn: Callable[[str], None] | None = None
    ) -> tuple[np.ndarray, Model, EngineOptions]:
        """The image's model and options, and its display-range planes (N, H, W, C) as that model takes them: with
        the render's albedo and normal appended when the model takes them and the render has them (`buffers.read`:
        given files, else the EXR's own layers, of its beauty's view layer), the render default then swapped for the
        one for buffers."""
        model, settings = self.for_image(image.hdr)
        albedo, normal = self.buffers
        if not _takes_aux(model):
            if albedo or normal:
                raise _takes_no_buffers(model)
            return planes, model, settings
        path = None if image.source.format == ARRAY else image.path
        found = buffers.read(path, albedo, normal, warn, image.source.meta.get("layer"), image.source.meta.get("file"))
        if found is None:
            if _needs_aux(model):
                raise MdnError(
                    f"model {model.name} was trained with albedo and normal always given: give them (EXR layers or "
                    "--albedo and --normal) or take a card that works without them",
                    image.path,
                )
            return planes, model, settings
        if found.shape[:3] != planes.shape[:3]:
            raise MdnError(f"albedo and normal are {found.shape[1:3]}, the render {planes.shape[1:3]}", image.path)
        with_buffers, buffer_settings = self.for_image(image.hdr, aux=True)
        if _takes_aux(with_buffers):
            model, settings = with_buffers, buffer_settings
        return np.concatenate([planes, found], axis=-1), model, settings


def _takes_no_buffers(model: Model) -> MdnError:
    return MdnError(f"model {model.name} takes no albedo or normal (a render card with them does)")


def _takes_aux(model: Model) -> bool:
    return bool(getattr(network_config(model.card), "aux", 0))


def _needs_aux(model: Model) -> bool:
    """Whether the card never saw a render without its buffers in training (`mdn train --aux-share 1`)."""
    return model.card.training.get("recipe", {}).get("aux_share", 0.0) >= 1.0
