"""What a model is worth: PSNR/SSIM over models x noise types x levels x images, and speed and memory.

Noisy inputs come from fixed seeds (per image, noise and level) and are cached on disk, so two runs of the
same grid give identical numbers. `noisy` stands for the unprocessed input, the floor of every row.
"""

from __future__ import annotations

import functools
import hashlib
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import platformdirs
import torch

from mdn import inference, metrics, noise, peers, registry, renders, training, zeroshot
from mdn.device import PRECISIONS, pick_device, pick_dtype
from mdn.errors import MdnError
from mdn.inference.engine import Engine, EngineOptions
from mdn.io import buffers, images, tonemap
from mdn.nets.swinir import SIZES, MaskedSwinIR
from mdn.nets.unet import UNET_SIZES, UNet
from mdn.renders import dataset
from mdn.zeroshot import run as zeroshot_run

SAMPLES = Path(__file__).resolve().parent / "samples"
"""The bundled sample set: crops of images held back from the shipped models' training."""

NOISY = "noisy"
ZS_N2N = "zs-n2n"
MPI_PREFIX = "mpi-"
WITHOUT = {"+no-detail": {"detail": False}, "+no-wiener": {"wiener": False}}
"""A bench model name's suffixes: `CARD+no-detail`, the card's network without the detail stage it runs after it,
as `mdn denoise --no-detail` runs it; `CARD+no-wiener`, the detail stage without its Wiener filtering
(`--no-wiener`); so that one run compares them."""
ZEROSHOT_GRID = "photon:160,10;gaussian:15,50;speckle:0.01,0.04;correlated:20,50"
"""The zero-shot grid: light and heavy levels of the noises zero-shot denoising meets (photon counting first,
as in microscopy), with correlated noise to check that methods assuming pixel-independent noise do no harm."""


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
    """'gaussian:15,25;poisson' -> [(gaussian, 15), (gaussian, 25), (poisson, each paper level)]."""
    grid = []
    for item in filter(None, (part.strip() for part in text.split(";"))):
        name, _, levels = item.partition(":")
        kind = noise.make_noise(name)
        values = [float(v) for v in levels.split(",")] if levels else list(type(kind).levels)
        grid.extend((kind.name, noise.make_noise(name, v).level) for v in values)
    return grid


def load_references(sources: list[str] | None, grey: bool = False) -> dict[str, np.ndarray]:
    """Clean references in [0, 1] by name, RGB (H, W, 3) or with `grey` the mean of the channels (H, W, 1): the
    given files and folders, or the bundled samples."""
    from mdn.io.batch import expand_inputs

    paths = expand_inputs(sources or [str(SAMPLES)], recursive=True)
    references = {}
    for path in paths:
        plane = images.read(path).pixels[0]
        if grey:
            references[path.stem] = plane.mean(axis=-1, keepdims=True)
        else:
            references[path.stem] = np.repeat(plane, 3, axis=-1) if plane.shape[-1] == 1 else plane
    return references


def noisy_input(reference: np.ndarray, image: str, kind: str, level: float, seed: int) -> np.ndarray:
    """The noisy version of a reference, from a seed fixed by (seed, image, noise, level), cached on disk."""
    key = hashlib.sha256(f"{image}|{kind}|{level:g}|{seed}|{reference.shape}".encode()).hexdigest()[:16]
    digest = hashlib.sha256(reference.tobytes()).hexdigest()[:16]
    cache = Path(platformdirs.user_cache_dir("mdn")) / "bench" / f"{key}-{digest}.npy"
    if cache.is_file():
        return np.load(cache)
    rng = np.random.default_rng(int(key, 16))
    noisy = noise.make_noise(kind, level)(reference, rng)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, noisy)
    return noisy


def _card_runs(name: str, options: EngineOptions | None) -> tuple[registry.ModelCard, EngineOptions]:
    """The card a bench model name means and how it runs: as `mdn denoise` runs it, or as a suffix in `WITHOUT`
    says."""
    suffix = next((suffix for suffix in WITHOUT if name.endswith(suffix)), "")
    card = registry.check_task(registry.find(name.removesuffix(suffix)), "denoise")
    settings = inference.as_card_runs(card, options or EngineOptions())
    return card, replace(settings, **WITHOUT.get(suffix, {}))


def denoisers(names: list[str], options: EngineOptions | None = None, grey: bool = False) -> dict[str, peers.Denoise]:
    """Name -> (H, W, C) denoise function, for model cards (`CARD+no-detail`, `CARD+no-wiener`: see `WITHOUT`),
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
            card, settings = _card_runs(name, options)
            engine = Engine(registry.load(card), settings)
            found[name] = lambda x, engine=engine: engine(x[None])[0]
    return found


def quality(
    models: list[str],
    grid: list[tuple[str, float]],
    references: dict[str, np.ndarray],
    options: EngineOptions | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> list[Score]:
    """Score every model on every (noise, level) and image; grey references (H, W, 1) make a grey grid, whose
    noisy inputs and outputs pass through 16 bits as a microscopist's TIFF files would."""
    grey = any(r.shape[-1] == 1 for r in references.values())
    functions = denoisers(models, options, grey)
    total, done = len(models) * len(grid) * len(references), 0
    if progress:
        progress(done, total)
    scores = []
    for kind, level in grid:
        for image, picture in references.items():
            noisy = noisy_input(picture, image, kind, level, seed)
            clean = noise.make_noise(kind, level).reference(picture)
            noisy = as_16_bit(noisy) if grey else noisy
            for name, denoise in functions.items():
                start = time.perf_counter()
                out = as_16_bit(denoise(noisy)) if grey else denoise(noisy)
                seconds = time.perf_counter() - start
                scores.append(
                    Score(name, kind, level, image, metrics.psnr(out, clean), metrics.ssim(out, clean), seconds)
                )
                done += 1
                if progress:
                    progress(done, total)
    return scores


def as_16_bit(pixels: np.ndarray) -> np.ndarray:
    """Pixels as a 16-bit file holds them: clipped to [0, 1] and rounded to 1/65535."""
    return np.round(np.clip(pixels, 0.0, 1.0) * 65535) / 65535


def parse_spps(text: str) -> tuple[int, ...]:
    """'4,16' -> (4, 16): sample counts per pixel, each at least 1."""
    try:
        spps = tuple(int(item) for item in text.split(",") if item.strip())
    except ValueError:
        spps = ()
    if not spps or min(spps) < 1:
        raise MdnError(f"--spp takes whole sample counts of at least 1, comma-separated; got {text!r}")
    return spps


WITH_AUX = "+aux"
"""A render bench model name's suffix (`oidn+aux`, `CARD+aux`): the model also gets the albedo and normal."""


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


def render_quality(
    models: list[str],
    spps: tuple[int, ...] = (16, 64),
    reference_spp: int = 1024,
    options: EngineOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
    render_set: Path | None = None,
) -> list[Score]:
    """Score models on Monte Carlo renders (`render_cases`): each sees the noisy render tone-mapped (OIDN sees
    linear HDR, as it expects); outputs and reference are scored through the tone map fitted on the noisy render.
    Names ending in WITH_AUX also get the render's albedo and normal (render sets have them)."""
    if render_set is None and any(name.endswith(WITH_AUX) for name in models):
        raise MdnError(f"models{WITH_AUX} need albedo and normal buffers: give --render-set")
    functions = denoisers(list(dict.fromkeys(name.removesuffix(WITH_AUX) for name in models)), options)
    cases = list(render_cases(spps, reference_spp, render_set))
    total, done = len(models) * len(cases), 0
    if progress:
        progress(done, total)
    scores = []
    for case in cases:
        display = tonemap.ToneMap.fit(case.noisy)
        shown, clean = display.forward(case.noisy), display.forward(case.reference)
        for name in models:
            base, with_aux = name.removesuffix(WITH_AUX), name.endswith(WITH_AUX)
            start = time.perf_counter()
            if base == "oidn":
                given = (case.albedo, case.normal) if with_aux else (None, None)
                out = display.forward(peers.oidn_hdr(case.noisy, *given))
            elif with_aux:
                out = functions[base](np.concatenate([shown, buffers.network_input(case.albedo, case.normal)], axis=-1))
            else:
                out = functions[base](shown)
            seconds = time.perf_counter() - start
            psnr, ssim = metrics.psnr(out, clean), metrics.ssim(out, clean)
            scores.append(Score(name, "render", case.spp, case.scene, psnr, ssim, seconds))
            done += 1
            if progress:
                progress(done, total)
    return scores


def summarise(scores: list[Score]) -> dict[tuple[str, float], dict[str, tuple[float, float]]]:
    """(noise, level) -> model -> (mean PSNR, mean SSIM) over images."""
    table: dict[tuple[str, float], dict[str, list[Score]]] = {}
    for s in scores:
        table.setdefault((s.noise, s.level), {}).setdefault(s.model, []).append(s)
    return {
        row: {m: (float(np.mean([s.psnr for s in c])), float(np.mean([s.ssim for s in c]))) for m, c in cells.items()}
        for row, cells in table.items()
    }


def least_gain(scores: list[Score], model: str) -> float:
    """The smallest PSNR gain of `model` over the noisy input on any (noise, level, image) of the grid."""
    noisy = {(s.noise, s.level, s.image): s.psnr for s in scores if s.model == NOISY}
    return min(s.psnr - noisy[(s.noise, s.level, s.image)] for s in scores if s.model == model)


def standard_error(values: list[float]) -> float:
    """The standard error of the mean of `values` (0 for fewer than two)."""
    return float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0


def per_image(scores: list[Score], model: str, kind: str | None = None) -> dict[str, tuple[float, float]]:
    """Image -> (PSNR, SSIM) of `model`, each the mean over the levels of `kind` (every noise when None): the
    images are the independent draws a spread is computed over."""
    chosen: dict[str, list[Score]] = {}
    for s in scores:
        if s.model == model and kind in (None, s.noise):
            chosen.setdefault(s.image, []).append(s)
    return {i: (float(np.mean([s.psnr for s in c])), float(np.mean([s.ssim for s in c]))) for i, c in chosen.items()}


def markdown(scores: list[Score], reference: str | None = None) -> str:
    """Tables for a README: one row per model, mean PSNR ± its standard error over images / mean SSIM per noise
    type (over levels) and over the whole grid, with each model's least gain over its input when the grid has the
    `noisy` row; then each model's difference to `reference` (default: the first model that is not `noisy`),
    paired per image, ± its standard error: a difference within about two standard errors is not established."""
    kinds = list(dict.fromkeys(s.noise for s in scores))
    models = list(dict.fromkeys(s.model for s in scores))
    gains = NOISY in models
    extra = ["mean", "least gain (dB)"] if gains else ["mean"]
    lines = ["| model | " + " | ".join(kinds + extra) + " |", "|---|" + "---|" * (len(kinds) + len(extra))]
    for model in models:
        cells = []
        for kind in [*kinds, None]:
            values = list(per_image(scores, model, kind).values())
            psnrs = [v[0] for v in values]
            cells.append(f"{np.mean(psnrs):.2f} ± {standard_error(psnrs):.2f} / {np.mean([v[1] for v in values]):.3f}")
        if gains:
            cells.append(f"{least_gain(scores, model):+.2f}")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    reference = reference or next((m for m in models if m != NOISY), None)
    others = [m for m in models if m not in (reference, NOISY)]
    if reference and others:
        lines += ["", f"| PSNR minus {reference} (dB, paired per image) | " + " | ".join([*kinds, "mean"]) + " |"]
        lines.append("|---|" + "---|" * (len(kinds) + 1))
        for model in others:
            cells = []
            for kind in [*kinds, None]:
                ours, theirs = per_image(scores, model, kind), per_image(scores, reference, kind)
                differences = [ours[i][0] - theirs[i][0] for i in ours if i in theirs]
                cells.append(f"{np.mean(differences):+.2f} ± {standard_error(differences):.2f}")
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(scores: list[Score], path: Path) -> None:
    """PSNR against level, one panel per noise type, one line per model (the paper's Figure 11)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarise(scores)
    kinds = list(dict.fromkeys(k for k, _ in summary))
    models = list(dict.fromkeys(s.model for s in scores))
    fig, axes = plt.subplots(1, len(kinds), figsize=(3.2 * len(kinds), 3.2), squeeze=False)
    for ax, kind in zip(axes[0], kinds, strict=True):
        levels = sorted(level for k, level in summary if k == kind)
        for model in models:
            ax.plot(levels, [summary[(kind, lv)][model][0] for lv in levels], marker="o", label=model)
        ax.set_title(kind)
        kind_type = noise.NOISE_TYPES.get(kind)
        ax.set_xlabel(kind_type.parameter.split(" (")[0] if kind_type else "samples per pixel")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("PSNR (dB)")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------- speed


@dataclass(frozen=True)
class Speed:
    """Throughput and memory of one model at one size."""

    model: str
    size: str
    megapixels: float
    mp_per_s: float
    spread: tuple[float, float]
    seconds: float
    peak_rss_mb: int
    peak_gpu_mb: int
    device: str
    precision: str
    kernel: str
    tile: int
    batch: int
    threads: int
    passes: int = 1

    def to_json(self) -> dict:
        return asdict(self)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@contextmanager
def peak_rss() -> Iterator[list[int]]:
    """Sample the resident set size every 5 ms; yields a one-element list holding the peak so far."""
    peak = [_rss_bytes()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.005):
            peak[0] = max(peak[0], _rss_bytes())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


def precision_name(asked: str, dtype: torch.dtype) -> str:
    """The precision that ran, and whether it was chosen automatically: 'bf16 (auto)'."""
    name = next(key for key, value in PRECISIONS.items() if value == dtype)
    return f"{name} (auto)" if asked == "auto" else name


def _is_size(name: str) -> bool:
    """Whether `name` means a network size with random weights (as fast as trained ones): a card of the same
    name comes first."""
    return name in {*SIZES, *UNET_SIZES} and name not in registry.cards()


def _network(name: str, kernel: str) -> torch.nn.Module:
    """A model card or a network size (see `_is_size`), computing its attention with `kernel`."""
    if not _is_size(name):
        network = registry.load(_card_runs(name, None)[0])
    else:
        network = MaskedSwinIR(SIZES[name]) if name in SIZES else UNet(UNET_SIZES[name])
    return network.use_attention(kernel) if isinstance(network, MaskedSwinIR) else network


def speed(
    model: str, size: tuple[int, int], runs: int, options: EngineOptions | None = None, kernel: str = "auto"
) -> Speed:
    """Median MP/s over `runs` timed runs after a warm-up, with peak host (and GPU) memory; a card runs with its
    own inference settings (the masked card's passes count)."""
    height, width = size
    image = np.random.default_rng(0).random((1, height, width, 3), dtype=np.float32)
    if not _is_size(model):  # a card runs as it is used: its passes, input mask, detail stage and tile overlap
        options = _card_runs(model, options)[1]
    engine = Engine(_network(model, kernel), options)
    # A GPU warms up on the whole image: kernels compile and autotune for each tile shape.
    engine(image if engine.device.type == "cuda" else image[:, : min(height, 256), : min(width, 256)])
    cuda = engine.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    timing = _timed(lambda: engine(image), runs, size, cuda)
    gpu = torch.cuda.max_memory_allocated() // 2**20 if cuda else 0
    return Speed(
        model, *timing, gpu, str(engine.device), precision_name(engine.options.precision, engine.dtype), kernel,
        engine.tile, engine.batch, torch.get_num_threads(), engine.options.passes,
    )  # fmt: skip


def _timed(
    call: Callable[[], object], runs: int, size: tuple[int, int], cuda: bool = False
) -> tuple[str, float, float, tuple[float, float], float, int]:
    """`runs` timed calls on an image of `size`: its size as WxH, megapixels, median MP/s, (min, max) MP/s,
    median seconds and peak host memory (MB), the first fields of a `Speed`."""
    height, width = size
    seconds = []
    with peak_rss() as peak:
        for _ in range(runs):
            start = time.perf_counter()
            call()
            if cuda:
                torch.cuda.synchronize()
            seconds.append(time.perf_counter() - start)
    megapixels = height * width / 1e6
    rates = [megapixels / s for s in seconds]
    return (
        f"{width}x{height}", round(megapixels, 2), statistics.median(rates), (min(rates), max(rates)),
        statistics.median(seconds), peak[0] // 2**20,
    )  # fmt: skip


def peer_speed(name: str, size: tuple[int, int], runs: int) -> Speed:
    """`speed` for an installed peer (its own threads and precision), on the same image the cards see."""
    if name not in peers.available():
        raise MdnError(f"peer {name!r} needs the {peers.PEERS[name][0]} package (pip install {peers.PEERS[name][0]})")
    denoise = peers.PEERS[name][1]
    height, width = size
    image = np.random.default_rng(0).random((height, width, 3), dtype=np.float32)
    denoise(image[: min(height, 256), : min(width, 256)])
    return Speed(name, *_timed(lambda: denoise(image), runs, size), 0, "cpu", "its own", "-", 0, 1, 0)


def speed_ratios(rows: list[Speed], reference: str) -> list[float | None]:
    """Each row's MP/s over `reference`'s at the same size (None where the reference has no row there)."""
    rates = {r.size: r.mp_per_s for r in rows if r.model == reference}
    return [r.mp_per_s / rates[r.size] if r.size in rates else None for r in rows]


@dataclass(frozen=True)
class TrainSpeed:
    """Training throughput of one network size, masked or not, on one device and precision."""

    config: str
    masked: bool
    batch: int
    crop: int
    it_per_s: float
    crops_per_s: float
    spread: tuple[float, float]
    device: str
    precision: str
    kernel: str
    compiled: bool
    threads: int

    def to_json(self) -> dict:
        return asdict(self)


def train_speed(
    config: str,
    masked: bool,
    batch: int,
    crop: int,
    *,
    device: str = "auto",
    precision: str | None = None,
    kernel: str = "auto",
    compile: bool = False,
    windows: int = 5,
    steps: int = 10,
) -> TrainSpeed:
    """Median iterations/s of `mdn train`'s whole step (crops, noise, masks, forward, backward, Adam, EMA) over
    `windows` timed windows of `steps` steps, after a warm-up window, on procedural training images; `precision`
    None is training's default."""
    options = training.TrainOptions.create(
        name="speed", data=[], config=config, batch=batch, crop=crop, mask=masked, dead_leaves=4, precision=precision,
        iters=(windows + 1) * steps, device=device, attention_kernel=kernel, compile=compile,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        trainer = training.Trainer(options, Path(folder), log=lambda _: None)
        cuda = trainer.device.type == "cuda"
        rates = []
        for window in range(windows + 1):
            start = time.perf_counter()
            for _ in range(steps):
                trainer.step()
            if cuda:
                torch.cuda.synchronize()
            if window:
                rates.append(steps / (time.perf_counter() - start))
    rate = statistics.median(rates)
    precision = precision_name(options.precision, trainer.dtype)
    return TrainSpeed(
        config, masked, batch, crop, rate, rate * batch, (min(rates), max(rates)), str(trainer.device), precision,
        kernel, compile, torch.get_num_threads(),
    )  # fmt: skip


def train_speed_rows(
    configs: list[str],
    kernels: list[str],
    batch: int,
    crop: int,
    *,
    device: str = "auto",
    precision: str | None = None,
    compile: bool = False,
    windows: int = 5,
) -> list[TrainSpeed]:
    """`train_speed` of each network size with each attention kernel, masked and not."""
    settings = {"device": device, "precision": precision, "compile": compile, "windows": windows}
    return [
        train_speed(config, masked, batch, crop, kernel=kernel, **settings)
        for config in configs
        for kernel in kernels
        for masked in (True, False)
    ]


# ------------------------------------------------------------------------------------- what mdn bench runs


def engine_options(tile: int = 0, device: str = "auto", precision: str | None = None, seed: int = 0) -> EngineOptions:
    """How the bench runs the cards: the engine's own precision unless one is given."""
    return EngineOptions(tile=tile, device=device, seed=seed, **({"precision": precision} if precision else {}))


def denoise_cards() -> list[str]:
    """The names of the installed denoising cards."""
    return [card.name for card in registry.cards().values() if card.task == "denoise"]


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """'1024,6000x4000' -> [(1024, 1024), (4000, 6000)]: (height, width) of squares and WxH sizes."""
    sizes = []
    for item in text.split(","):
        width, _, height = item.strip().partition("x")
        try:
            sizes.append((int(height or width), int(width)))
        except ValueError:
            raise MdnError(f"not a size: {item!r} (e.g. 1024 or 6000x4000)") from None
    return sizes


@dataclass(frozen=True)
class SpeedTable:
    """Speed rows and, when a peer is among the models, each row's MP/s over the first peer's at its size."""

    rows: list[Speed]
    reference: str | None
    ratios: list[float | None]

    def to_json(self) -> list[dict]:
        return [
            {**row.to_json(), **({f"vs_{self.reference}": ratio} if self.reference else {})}
            for row, ratio in zip(self.rows, self.ratios, strict=True)
        ]


def speed_table(
    models: list[str] | None,
    sizes: list[tuple[int, int]],
    runs: int,
    options: EngineOptions | None = None,
    kernels: list[str] | None = None,
    with_peers: bool = False,
) -> SpeedTable:
    """`speed` of each model (default: every denoising card) with each attention kernel (default: auto) at each
    size; `with_peers` adds the installed peers, which run their own way."""
    names = list(models or denoise_cards())
    names += [p for p in peers.available() if with_peers and p not in names]
    rows = [
        peer_speed(name, size, runs) if name in peers.PEERS else speed(name, size, runs, options, kernel)
        for name in names
        for kernel in (["-"] if name in peers.PEERS else kernels or ["auto"])
        for size in sizes
    ]
    named_peers = [n for n in names if n in peers.PEERS]
    reference = "oidn" if "oidn" in named_peers else next(iter(named_peers), None)  # the field's yardstick
    return SpeedTable(rows, reference, speed_ratios(rows, reference) if reference else [None] * len(rows))


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
        presets, zs-n2n) join them and make the zero-shot grid the default one. `sources`: clean references (see
        `load_references`); `quick`: a 96-pixel crop of one of them and two noises; `grid` as `parse_grid` takes
        it (default: every noise at the paper's levels; "none": renders alone). Renders: at `spps`, the Cornell
        boxes or the scenes of `render_set`."""
        methods = zeroshot_methods or []
        names = list(models or [NOISY, *denoise_cards(), *peers.available()])
        names += [method if method == ZS_N2N else MPI_PREFIX + method for method in methods]
        references = load_references(sources, grey)
        if quick:
            references = {k: v[:96, :96] for k, v in list(references.items())[:1]}
        default = "gaussian:15;poisson:2" if quick else ZEROSHOT_GRID if methods else ""
        chosen = [] if grid == "none" else parse_grid(grid or default) or default_grid()
        if not chosen and not (renders or render_set):
            raise MdnError("--noise none leaves nothing to measure: add --renders or --render-set")
        return cls(names, chosen, references, renders or render_set is not None, spps, render_set)

    def run(
        self,
        options: EngineOptions | None = None,
        seed: int = 0,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> list[Score]:
        """The scores of the grid, then of the renders; `progress` gets (stage: bench or renders, done, total)."""

        def stage(name: str) -> Callable[[int, int], None] | None:
            return functools.partial(progress, name) if progress else None

        plain = [name for name in self.models if not name.endswith(WITH_AUX)]
        scores = quality(plain, self.grid, self.references, options, seed, stage("bench")) if self.grid else []
        if self.renders:
            scores += render_quality(
                self.models, self.spps, options=options, progress=stage("renders"), render_set=self.render_set
            )
        return scores
