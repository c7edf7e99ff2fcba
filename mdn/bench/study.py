"""A bench run as `mdn bench` asks for it: its models, images, grid and renders, run with stage progress."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mdn import peers
from mdn.bench.grid import (
    NOISY,
    WITH_AUX,
    ZEROSHOT_GRID,
    Note,
    Score,
    as_reference,
    default_grid,
    denoise_cards,
    parse_grid,
    quality_scores,
    stored_references,
    zeroshot_name,
)
from mdn.bench.renders import check_aux, check_render_set, render_scores
from mdn.errors import MdnError
from mdn.inference.engine import EngineOptions, grey_in_colour

RENDERS_ALONE = (
    "--noise none runs no photo grid, renders alone: add --renders or --render-set (or name noises, e.g. --noise "
    "'gaussian:15,25')"
)
"""The error for `--noise none` without renders."""


def _chosen_grid(grid: str | None, quick: bool, zeroshot: bool) -> list[tuple[str, float]]:
    """The (noise, level) pairs of `--noise` (`parse_grid`; "none": no pair), or the default: two noises when
    `quick`, the zero-shot grid with `zeroshot` methods, else every noise at the paper's levels."""
    if grid == "none":
        return []
    if grid is not None:
        chosen = parse_grid(grid)
        if not chosen:
            raise MdnError(f"--noise {grid!r} names no noise (e.g. 'gaussian:15,25;poisson'; none: renders alone)")
        return chosen
    if quick:
        return parse_grid("gaussian:15;poisson:2")
    return parse_grid(ZEROSHOT_GRID) if zeroshot else default_grid()


@dataclass(frozen=True)
class Study:
    """A quality grid as `mdn bench` runs it: models, (noise, level) pairs, clean references, and whether Monte
    Carlo renders join."""

    models: list[str]
    grid: list[tuple[str, float]]
    references: dict[str, np.ndarray]
    renders: bool = False
    spps: tuple[int, ...] = (16, 64)
    render_set: Path | None = None
    notes: tuple[Note, ...] = ()

    @classmethod
    def make(
        cls,
        models: list[str] | None = None,
        zeroshot_methods: list[str] | None = None,
        sources: list[str] | None = None,
        *,
        grey: bool = False,
        quick: bool = False,
        grid: str | None = None,
        renders: bool = False,
        spps: tuple[int, ...] = (16, 64),
        render_set: Path | None = None,
    ) -> Study:
        """`models` default to `noisy`, every denoising card and the installed peers; zero-shot methods (MPI
        presets, zs-n2n: see `zeroshot_name`) join them and make the zero-shot grid the default one; a name given
        twice runs once. `sources`: clean references (see `stored_references`), grey with `grey` or where every one
        is grey (a note says so; some grey among colour ones are scored in colour, warned); `quick`: a 96-pixel crop
        of one of them and two noises; `grid` as `parse_grid` takes it (default: every noise at the paper's levels;
        "none": renders alone, no references read). Renders: at `spps` (each once), the Cornell boxes or the scenes
        of `render_set`, checked here (`check_render_set`), as names that take a render's albedo and normal are
        (`check_aux`): the photo grid leaves them out."""
        methods = zeroshot_methods or []
        names = list(models or [NOISY, *denoise_cards(), *peers.available()])
        names = list(dict.fromkeys([*names, *map(zeroshot_name, methods)]))
        spps = tuple(dict.fromkeys(spps))
        check_aux(names, render_set)
        if render_set is not None:
            check_render_set(render_set, spps, any(name.endswith(WITH_AUX) for name in names))
        chosen = _chosen_grid(grid, quick, bool(methods))
        if not chosen and not (renders or render_set):
            raise MdnError(RENDERS_ALONE)
        stored = stored_references(sources) if chosen else {}
        if quick:
            stored = {k: v[:96, :96] for k, v in list(stored.items())[:1]}
        greys = [name for name, plane in stored.items() if plane.shape[-1] == 1 or grey_in_colour(plane)]
        as_grey = grey or (bool(stored) and len(greys) == len(stored))
        references = {name: as_reference(plane, as_grey) for name, plane in stored.items()}
        notes = () if grey else _kind_notes(greys, len(stored))
        return cls(names, chosen, references, renders or render_set is not None, spps, render_set, notes)

    def scores(
        self,
        options: EngineOptions | None = None,
        seed: int = 0,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> Iterator[Score]:
        """Each score of the grid, then of the renders, as it is made (a run stopped keeps those so far);
        `progress` gets (stage: bench or renders, done, total)."""

        def stage(name: str) -> Callable[[int, int], None] | None:
            return functools.partial(progress, name) if progress else None

        plain = [name for name in self.models if not name.endswith(WITH_AUX)]
        if self.grid:
            yield from quality_scores(plain, self.grid, self.references, options, seed, stage("bench"))
        if self.renders:
            yield from render_scores(
                self.models, self.spps, options=options, progress=stage("renders"), render_set=self.render_set
            )


def _kind_notes(greys: list[str], count: int) -> tuple[Note, ...]:
    """What a bench without --grey tells of the `greys` among its `count` references: all grey, a note that they
    are benched as grey pictures (as --grey benches them); some, a warning that those are scored in colour."""
    if not greys:
        return ()
    if len(greys) == count:
        said = "the reference is grey" if count == 1 else f"all {count} references are grey"
        return (Note(f"{said}: benched as grey pictures, as with --grey"),)
    named = ", ".join(greys[:3]) + (", ..." if len(greys) > 3 else "")
    return (
        Note(
            f"{len(greys)} of {count} references are grey ({named}): scored in colour with the others, as three "
            "equal channels under colour noise; bench them on their own (or with --grey) for grey scores",
            warning=True,
        ),
    )
