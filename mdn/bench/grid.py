"""The quality grid: clean references, noisy inputs from fixed seeds (cached on disk, so two runs give identical
numbers), the denoisers a name stands for (cards, `CARD+no-detail`, peers, zero-shot methods, `noisy`), and
PSNR/SSIM over models x noise types x levels x images."""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import platformdirs

from mdn import inference, metrics, noise, peers, registry, zeroshot
from mdn.device import pick_device, pick_dtype
from mdn.errors import MdnError
from mdn.inference.engine import QUALITIES, Engine, EngineOptions
from mdn.io import atomic, images
from mdn.io.batch import expand_inputs
from mdn.zeroshot import run as zeroshot_run

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
"""The bundled sample set: crops of images held back from the shipped models' training."""


NOISY = "noisy"


ZS_N2N = "zs-n2n"


MPI_PREFIX = "mpi-"


WITH_AUX = "+aux"
"""A render bench model name's suffix (`oidn+aux`, `CARD+aux`): the model also gets the albedo and normal."""


def zeroshot_name(method: str) -> str:
    """The bench model name of a `--zeroshot` method, any case: an MPI preset (`fast`, or `mpi-fast` as the bench
    prints it) or zs-n2n."""
    known = [*zeroshot.PRESETS, ZS_N2N]
    key = method.strip().lower()
    if key == ZS_N2N:
        return ZS_N2N
    if key.removeprefix(MPI_PREFIX) in zeroshot.PRESETS:
        return MPI_PREFIX + key.removeprefix(MPI_PREFIX)
    close = difflib.get_close_matches(key.removeprefix(MPI_PREFIX), known, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]}?" if close else ""
    raise MdnError(f"unknown zero-shot method {method!r} ({', '.join(known)}){hint}")


VARIANTS = {
    "+no-detail": {"detail": False},
    "+no-impulses": {"impulses": False},
    "+no-wiener": {"quality": "fast"},
    **{f"+{quality}": {"quality": quality} for quality in QUALITIES},
    "+strength-auto": {"light_check": True},
}
"""A bench model name's suffixes: `CARD+no-detail`, the card's network without the detail stage it runs after it,
as `mdn denoise --no-detail` runs it; `CARD+no-impulses`, without the impulses filled before it; `CARD+fast`,
`+balanced`, `+high`, the card at that `--quality` (`+no-wiener` is `+fast`); `CARD+strength-auto`, as
`--strength auto` runs it; so that one run compares them."""


ZEROSHOT_GRID = "photon:160,10;gaussian:15,50;speckle:0.01,0.04;correlated:20,50"
"""The zero-shot grid: light and heavy levels of the noises zero-shot denoising meets (photon counting first,
as in microscopy), with correlated noise to check that methods assuming pixel-independent noise do no harm."""


class Note(NamedTuple):
    """What a bench run tells its user before its rows: a note, or a `warning` (shown with --quiet too)."""

    text: str
    warning: bool = False


@dataclass(frozen=True)
class Score:
    """One cell of the quality grid."""

    model: str
    noise: str
    level: float
    image: str
    psnr: float
    ssim: float
    seconds: float


def default_grid() -> list[tuple[str, float]]:
    """Every noise type at each of its levels, but for photon counting (the zero-shot grid's) and the random
    practical mix (a training distribution, not a case)."""
    skipped = ("photon", "practical")
    return [(name, level) for name, kind in noise.NOISE_TYPES.items() if name not in skipped for level in kind.levels]


def parse_grid(text: str) -> list[tuple[str, float]]:
    """'gaussian:15,25;poisson' -> [(gaussian, 15), (gaussian, 25), (poisson, each paper level)]; a level given
    twice (`gaussian:15,15.0`) is measured once."""
    grid = []
    for item in filter(None, (part.strip() for part in text.split(";"))):
        name, _, levels = item.partition(":")
        kind = noise.make_noise(name)
        try:
            values = [float(v) for v in levels.split(",")] if levels else list(type(kind).levels)
        except ValueError:
            raise MdnError(f"--noise {item!r}: levels are numbers, e.g. 'gaussian:15,25;poisson'") from None
        grid.extend((kind.name, noise.make_noise(name, v).level) for v in values)
    return list(dict.fromkeys(grid))


SMALLEST = 16
"""The shortest side of a reference the bench scores: SSIM's 11-pixel window, with room to slide."""


def load_references(sources: list[str] | None, grey: bool = False) -> dict[str, np.ndarray]:
    """Clean references in [0, 1] by name, RGB (H, W, 3) or with `grey` the mean of the channels (H, W, 1): the
    given files and folders, or the bundled samples (`stored_references`, each made one kind by `as_reference`)."""
    return {name: as_reference(plane, grey) for name, plane in stored_references(sources).items()}


def stored_references(sources: list[str] | None) -> dict[str, np.ndarray]:
    """Clean references by name as their files store them, (H, W, 1) for a grey file: the given files and folders,
    or the bundled samples. A stack's planes (a microscope's z-stack or time series) are references each, named
    NAME[0], NAME[1]... in stored order; a float picture outside [0, 1] (HDR, or in a detector's units) is refused,
    as the noise would clip it."""
    paths = expand_inputs(sources or [str(SAMPLES)], recursive=True)
    references = {}
    for path in paths:
        planes = _reference_planes(path)
        if path.stem in references or any(name.startswith(f"{path.stem}[") for name in references):
            raise MdnError(f"two references are named {path.stem!r}: the bench names pictures by file name", path)
        for index, plane in enumerate(planes):
            references[path.stem if len(planes) == 1 else f"{path.stem}[{index}]"] = plane
    return references


def as_reference(plane: np.ndarray, grey: bool) -> np.ndarray:
    """A stored reference as the bench scores it: with `grey` the mean of its channels (H, W, 1), else RGB, a grey
    one as three equal channels (which the noise then strikes one by one, as colour noise)."""
    if grey:
        return plane.mean(axis=-1, keepdims=True)
    return np.repeat(plane, 3, axis=-1) if plane.shape[-1] == 1 else plane


def _reference_planes(path: Path) -> np.ndarray:
    """The (N, H, W, C) planes of a reference file, refused where the bench cannot score them: smaller than
    `SMALLEST`, float samples outside [0, 1], or too large for the memory."""
    try:
        image = images.read(path)
    except MemoryError:
        raise MdnError("is too large to hold in memory: bench a crop of it", path) from None
    height, width = image.height, image.width
    if min(height, width) < SMALLEST:
        raise MdnError(f"is {width}x{height}: too small to score (SSIM needs {SMALLEST} pixels a side)", path)
    low, high = image.source.value_range or (0.0, 1.0)
    if low < 0.0 or high > 1.0:
        raise MdnError(
            f"holds values from {low:.3g} to {high:.3g}: the bench scores pictures in [0, 1] and would clip this "
            "one (HDR, or floats in a detector's units); give it as 8 or 16 bits (renders: --render-set)",
            path,
        )
    return image.pixels


def noisy_input(reference: np.ndarray, image: str, kind: str, level: float, seed: int) -> np.ndarray:
    """The noisy version of a reference, from a seed fixed by (seed, image, noise, level), cached on disk (written
    atomically; a cache file that cannot be read, as a run killed by an older mdn may have left it, is made
    again)."""
    key = hashlib.sha256(f"{image}|{kind}|{level:g}|{seed}|{reference.shape}".encode()).hexdigest()[:16]
    digest = hashlib.sha256(reference.tobytes()).hexdigest()[:16]
    cache = Path(platformdirs.user_cache_dir("mdn")) / "bench" / f"{key}-{digest}.npy"
    cached = _cached(cache, reference.shape)
    if cached is not None:
        return cached
    rng = np.random.default_rng(int(key, 16))
    noisy = noise.make_noise(kind, level)(reference, rng)
    with contextlib.suppress(MdnError):  # a cache that cannot be written (read-only, full) costs time alone
        atomic.write_atomic(cache, lambda tmp: np.save(tmp, noisy))
    return noisy


def _cached(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """The array cached at `path`, or None where there is none, or none of `shape` that can be read whole."""
    try:
        cached = np.load(path)
    except (OSError, ValueError, EOFError):  # missing, cut short, or not an array file
        return None
    return cached if isinstance(cached, np.ndarray) and cached.shape == shape else None


def _variant(name: str) -> tuple[str, str]:
    """A bench model name's card and its suffix in `VARIANTS` ('' for none): 'unet+fast' -> ('unet', '+fast')."""
    suffix = next((suffix for suffix in VARIANTS if name.endswith(suffix)), "")
    return name.removesuffix(suffix), suffix


def is_method(name: str) -> bool:
    """Whether a bench model name is no card: `noisy`, a peer or a zero-shot method (`mpi-PRESET`, zs-n2n)."""
    preset = name.removeprefix(MPI_PREFIX) if name.startswith(MPI_PREFIX) else None
    return name in (NOISY, ZS_N2N, *peers.PEERS) or preset in zeroshot.PRESETS


def card_runs(name: str, options: EngineOptions | None) -> tuple[registry.ModelCard, EngineOptions]:
    """The card a bench model name means and how it runs: as `mdn denoise` runs it, or as a suffix in `VARIANTS`
    says. A suffix on a name that is no card, or a fill card (zero-shot's, which `--zeroshot` runs), is refused in
    words that say so."""
    base, suffix = _variant(name)
    if suffix and is_method(base):
        raise MdnError(f"--models {name}: {base} takes no variant ({suffix} is for cards: CARD{suffix})")
    card = registry.find(base)
    if card.task == "fill":
        raise _fill_card_error(name, card.name)
    registry.check_task(card, "denoise")
    settings = inference.as_card_runs(card, options or EngineOptions())
    return card, replace(settings, **VARIANTS.get(suffix, {}))


def _fill_card_error(name: str, card: str) -> MdnError:
    """The error for a fill card in --models: where the bench runs it (the `--zeroshot` presets that take it, on
    colour and grey pictures), or that it runs only the presets' own."""
    presets = list(zeroshot.PRESETS)
    colour = [preset for preset in presets if zeroshot.fill_card(preset, grey=False) == card]
    grey = [preset for preset in presets if zeroshot.fill_card(preset, grey=True) == card]
    said = f"--models {name}: a fill card, for zero-shot denoising"
    if not colour and not grey:
        return MdnError(
            f"{said}; the bench's --zeroshot presets run their own fill cards (mdn zeroshot --model {card})"
        )
    where = [f"presets {', '.join(colour)} on colour pictures"] if colour else []
    where += [("every preset" if grey == presets else ", ".join(grey)) + " on grey ones"] if grey else []
    return MdnError(f"{said}, which the bench runs through --zeroshot ({'; '.join(where)}), not --models")


def card_files(names: list[str]) -> list[Path]:
    """The files read for the bench model names that are cards, by name or by JSON file (`cards/x.json`), with a
    suffix of `VARIANTS` or WITH_AUX or without: each card's JSON and weights, which no report of the run may
    replace."""
    installed = registry.cards()
    files = []
    for name in names:
        base = _variant(name.removesuffix(WITH_AUX))[0]
        card = installed.get(base)
        if card is None and base.endswith(".json") and Path(base).is_file():
            card = registry.find(base)
        files += [card.path, card.weights_path] if card is not None and card.path is not None else []
    return files


def denoisers(names: list[str], options: EngineOptions | None = None, grey: bool = False) -> dict[str, peers.Denoise]:
    """Name -> (H, W, C) denoise function, for model cards (`CARD+no-detail`, `CARD+fast`...: see `VARIANTS`),
    installed peers, zero-shot methods (`mpi-PRESET`, `zs-n2n`, at `mdn zeroshot`'s default precision; with `grey`,
    MPI takes the grey fill card as `mdn zeroshot` does for grey images) and `noisy` (the identity)."""
    found: dict[str, peers.Denoise] = {}
    device = pick_device((options or EngineOptions()).device)
    dtype = pick_dtype(zeroshot_run.PRECISION, device)
    for name in names:
        if name == NOISY:
            found[name] = lambda x: x
        elif name == ZS_N2N:
            runner = zeroshot.ZeroShot(zeroshot.ZS_N2N_PRESET, seed=0, device=device, dtype=dtype)
            found[name] = lambda x, runner=runner: runner(x[None])[0]
        elif name.startswith(MPI_PREFIX) and name.removeprefix(MPI_PREFIX) in zeroshot.PRESETS:
            preset = name.removeprefix(MPI_PREFIX)
            net = registry.load(registry.find(zeroshot.fill_card(preset, grey), task="fill"))
            runner = zeroshot.ZeroShot(zeroshot.PRESETS[preset], net, device=device, dtype=dtype)
            found[name] = lambda x, runner=runner: runner(x[None])[0]
        elif name in peers.PEERS:
            package, function = peers.PEERS[name]
            if name not in peers.available():
                raise MdnError(f"peer {name!r} needs the {package} package (pip install {package})")
            found[name] = function
        else:
            card, settings = card_runs(name, options)
            engine = Engine(registry.load(card), settings, registry.load_grey(card))
            found[name] = lambda x, engine=engine: engine(x[None])[0]
    return found


def quality_scores(
    models: list[str],
    grid: list[tuple[str, float]],
    references: dict[str, np.ndarray],
    options: EngineOptions | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[Score]:
    """Each score of every model (once, if named twice) on every (noise, level) and image as it is made; grey
    references (H, W, 1) make a grey grid, whose noisy inputs and outputs pass through 16 bits as a microscopist's
    TIFF files would."""
    grey = any(r.shape[-1] == 1 for r in references.values())
    functions = denoisers(models, options, grey)
    total, done = len(functions) * len(grid) * len(references), 0
    if progress:
        progress(done, total)
    for kind, level in grid:
        for image, picture in references.items():
            noisy = noisy_input(picture, image, kind, level, seed)
            clean = noise.make_noise(kind, level).reference(picture)
            noisy = as_16_bit(noisy) if grey else noisy
            for name, denoise in functions.items():
                start = time.perf_counter()
                out = as_16_bit(denoise(noisy)) if grey else denoise(noisy)
                seconds = time.perf_counter() - start
                yield Score(name, kind, level, image, metrics.psnr(out, clean), metrics.ssim(out, clean), seconds)
                done += 1
                if progress:
                    progress(done, total)


def as_16_bit(pixels: np.ndarray) -> np.ndarray:
    """Pixels as a 16-bit file holds them: clipped to [0, 1] and rounded to 1/65535."""
    return np.round(np.clip(pixels, 0.0, 1.0) * 65535) / 65535


def engine_options(tile: int = 0, device: str = "auto", precision: str | None = None, seed: int = 0) -> EngineOptions:
    """How the bench runs the cards: the engine's own precision unless one is given."""
    return EngineOptions(tile=tile, device=device, seed=seed, **({"precision": precision} if precision else {}))


def denoise_cards() -> list[str]:
    """The names of the installed denoising cards."""
    return [card.name for card in registry.cards().values() if card.task == "denoise"]
