"""Monte Carlo renders on the bench: the Cornell boxes or a render set's scenes at some samples per pixel beside
their references, scored tone-mapped, with albedo and normal for the names that ask (`+aux`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import OpenEXR

from mdn import metrics, peers, renders
from mdn.bench.grid import WITH_AUX, Score, card_runs, denoisers, is_method
from mdn.errors import MdnError
from mdn.inference.engine import EngineOptions
from mdn.io import buffers, tonemap
from mdn.renders import dataset


def parse_spps(text: str) -> tuple[int, ...]:
    """'4,16' -> (4, 16): sample counts per pixel, each at least 1; a count given twice (`4,4`) is rendered once."""
    try:
        spps = tuple(dict.fromkeys(int(item) for item in text.split(",") if item.strip()))
    except ValueError:
        spps = ()
    if not spps or min(spps) < 1:
        raise MdnError(f"--spp takes whole sample counts of at least 1, comma-separated; got {text!r}")
    return spps


def check_aux(models: list[str], render_set: Path | None) -> None:
    """Refuse, before any work, names ending in WITH_AUX without a render set (only its renders have the albedo
    and normal they take; the Cornell boxes and photos have none), or whose model takes none (OIDN and cards do)."""
    asking = [name for name in models if name.endswith(WITH_AUX)]
    if asking and render_set is None:
        raise MdnError(f"--models {asking[0]}: models{WITH_AUX} need a render's albedo and normal: give --render-set")
    for name in asking:
        if name != f"oidn{WITH_AUX}" and not _is_card(name.removesuffix(WITH_AUX)):
            raise MdnError(f"--models {name}: only OIDN and cards take a render's albedo and normal")


class RenderCase(NamedTuple):
    """One noisy render and its reference (linear HDR, H x W x 3), with its albedo and normal when it has them."""

    scene: str
    spp: int
    noisy: np.ndarray
    reference: np.ndarray
    albedo: np.ndarray | None = None
    normal: np.ndarray | None = None


def render_cases(spps: tuple[int, ...], reference_spp: int, render_set: Path | None = None) -> Iterator[RenderCase]:
    """The Cornell-box variations rendered (and cached) at `spps` and `reference_spp`, or the scenes of a render
    set (`renders.dataset`) at those of `spps` it holds, beside its references, with their albedo and normal."""
    if render_set is None:
        for scene in renders.scenes():
            reference = renders.render(scene, reference_spp)
            for spp in spps:
                yield RenderCase(scene, spp, renders.render(scene, spp), reference)
        return
    folders = dataset.scenes(render_set)
    if not folders:
        raise MdnError("no render scenes here (scripts/render_data.py makes them)", render_set)
    for folder in folders:
        reference = dataset.reference(folder).beauty
        for spp, noisy in dataset.noisy_renders(folder, spps):
            yield RenderCase(folder.name, spp, noisy.beauty, reference, noisy.albedo, noisy.normal)


def check_render_set(render_set: Path, spps: tuple[int, ...], with_aux: bool = False) -> None:
    """Refuse, before any work, a render set the bench cannot score at `spps`: no such folder, no scenes, a scene
    lacking its reference or renders (`dataset.scenes`), none of `spps` in any scene, a render of another size
    than its reference, or (`with_aux`: a name asks for them) a render without albedo and normal layers."""
    if not render_set.is_dir():
        raise MdnError("no such folder" if not render_set.exists() else "not a folder", render_set)
    folders = dataset.scenes(render_set)
    if not folders:
        raise MdnError("no render scenes here (scripts/render_data.py makes them)", render_set)
    held = {folder: dataset.sample_counts(folder) for folder in folders}
    found = sorted({spp for counts in held.values() for spp in counts})
    if not set(spps) & set(found):
        raise MdnError(f"no renders at {_counted(spps)} spp (its scenes hold {_counted(found)})", render_set)
    wanted = {name for buffer in ("albedo", "normal") for name in dataset.LAYERS[buffer]} if with_aux else set()
    for folder, counts in held.items():
        size, _ = _exr_header(folder / dataset.REFERENCE)
        for spp in sorted(set(spps) & set(counts)):
            path = folder / dataset.noisy_name(spp)
            render_size, channels = _exr_header(path)
            if render_size != size:
                raise MdnError(f"is {render_size} but its reference is {size}", path)
            if not wanted <= channels:
                raise MdnError(f"has no albedo and normal layers, which models{WITH_AUX} take", path)


def _counted(spps: tuple[int, ...] | list[int]) -> str:
    """(4, 16) -> '4, 16'."""
    return ", ".join(map(str, spps))


def _exr_header(path: Path) -> tuple[str, set[str]]:
    """An EXR's size, 'WxH', and its channels' names, from its header."""
    try:
        header = OpenEXR.File(str(path), header_only=True).header()
    except RuntimeError:
        raise MdnError("cannot read it as an EXR file", path) from None
    low, high = header["dataWindow"]
    width, height = high - low + 1
    return f"{width}x{height}", {channel.name for channel in header.get("channels", [])}


def _is_card(name: str) -> bool:
    """Whether a bench name is a card, whose render `mdn denoise` writes back through `tonemap.RenderTransform`
    (OIDN, `noisy` and the zero-shot methods are scored on their own output: `grid.is_method`)."""
    return not is_method(name)


def render_scores(
    models: list[str],
    spps: tuple[int, ...] = (16, 64),
    reference_spp: int = 1024,
    options: EngineOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
    render_set: Path | None = None,
) -> Iterator[Score]:
    """Each score of the models on Monte Carlo renders (`render_cases`) as it is made: each sees the noisy render
    tone-mapped (a card with its own headroom; OIDN sees linear HDR, as it expects) and a card's output goes back
    to linear HDR as `mdn denoise` writes it (`tonemap.RenderTransform`); outputs and reference are scored through
    the tone map fitted on the noisy render without headroom. Names ending in WITH_AUX also get the render's albedo
    and normal (a render set must have them: `check_aux`). A render set is checked first (`check_render_set`); a
    name or a sample count given twice is scored once."""
    spps = tuple(dict.fromkeys(spps))
    check_aux(models, render_set)
    if render_set is not None:
        check_render_set(render_set, spps, any(name.endswith(WITH_AUX) for name in models))
    models = list(dict.fromkeys(models))
    bases = list(dict.fromkeys(name.removesuffix(WITH_AUX) for name in models))
    functions = denoisers(bases, options)
    headrooms = {  # each card runs in the tone map it was trained in (`tonemap.fitter`)
        base: float(card_runs(base, options)[0].transform.get("headroom", 0.0)) for base in bases if _is_card(base)
    }
    cases = list(render_cases(spps, reference_spp, render_set))
    total, done = len(models) * len(cases), 0
    if progress:
        progress(done, total)
    for case in cases:
        display = tonemap.ToneMap.fit(case.noisy)
        clean = display.forward(case.reference)
        written = {h: tonemap.RenderTransform.fit(case.noisy, h) for h in {0.0, *headrooms.values()}}
        for name in models:
            base, with_aux = name.removesuffix(WITH_AUX), name.endswith(WITH_AUX)
            transform = written[headrooms.get(base, 0.0)]
            shown = transform.forward(case.noisy)
            start = time.perf_counter()
            if base == "oidn":
                given = (case.albedo, case.normal) if with_aux else (None, None)
                out = display.forward(peers.oidn_hdr(case.noisy, *given))
            elif with_aux:
                out = functions[base](np.concatenate([shown, buffers.network_input(case.albedo, case.normal)], axis=-1))
            else:
                out = functions[base](shown)
            if _is_card(base):
                out = display.forward(transform.inverse(out))
            seconds = time.perf_counter() - start
            psnr, ssim = metrics.psnr(out, clean), metrics.ssim(out, clean)
            yield Score(name, "render", case.spp, case.scene, psnr, ssim, seconds)
            done += 1
            if progress:
                progress(done, total)
