"""Speed and memory: MP/s (median of timed runs) and peak memory of cards and peers at given sizes, side by
side with ratios to a reference, and training steps per second."""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from mdn import peers, registry, training
from mdn.bench.grid import Note, card_runs, denoise_cards
from mdn.device import PRECISIONS
from mdn.errors import MdnError
from mdn.inference.engine import Engine, EngineOptions, TooLarge
from mdn.nets.swinir import SIZES, MaskedSwinIR
from mdn.nets.unet import UNET_SIZES, UNet


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
        return _spread_apart(asdict(self))


def _spread_apart(row: dict) -> dict:
    """A row with its (min, max) `spread` as two numbers in its place, `spread_low` and `spread_high`, which a CSV
    cell holds."""
    fields = {}
    for key, value in row.items():
        fields.update({"spread_low": value[0], "spread_high": value[1]} if key == "spread" else {key: value})
    return fields


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
        network = registry.load(card_runs(name, None)[0])
    else:
        network = MaskedSwinIR(SIZES[name]) if name in SIZES else UNet(UNET_SIZES[name])
    return network.use_attention(kernel) if isinstance(network, MaskedSwinIR) else network


def speed(
    model: str,
    size: tuple[int, int],
    runs: int,
    options: EngineOptions | None = None,
    kernel: str = "auto",
    channels: int = 3,
) -> Speed:
    """Median MP/s over `runs` timed runs after a warm-up on a picture of `channels` (3, or 1 for grey), with peak
    host (and GPU) memory; a card runs with its own inference settings (the masked card's passes count)."""
    height, width = size
    image = np.random.default_rng(0).random((1, height, width, channels), dtype=np.float32)
    grey = None
    if not _is_size(model):  # a card runs as it is used: its passes, input mask, detail stage and tile overlap
        card, options = card_runs(model, options)
        grey = registry.load_grey(card) if channels == 1 else None  # and its grey pictures through its grey network
    engine = Engine(_network(model, kernel), options, grey)
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
        f"{width}x{height}", megapixels, statistics.median(rates), (min(rates), max(rates)),
        statistics.median(seconds), peak[0] // 2**20,
    )  # fmt: skip


def peer_speed(name: str, size: tuple[int, int], runs: int, channels: int = 3) -> Speed:
    """`speed` for an installed peer (its own threads and precision), on the same image the cards see."""
    if name not in peers.available():
        raise MdnError(f"peer {name!r} needs the {peers.PEERS[name][0]} package (pip install {peers.PEERS[name][0]})")
    denoise = peers.PEERS[name][1]
    height, width = size
    image = np.random.default_rng(0).random((height, width, channels), dtype=np.float32)
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
        return _spread_apart(asdict(self))


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
) -> Iterator[TrainSpeed]:
    """`train_speed` of each network size with each attention kernel, masked and not (each given twice, once), row
    by row as each is measured."""
    settings = {"device": device, "precision": precision, "compile": compile, "windows": windows}
    for config in dict.fromkeys(configs):
        for kernel in dict.fromkeys(kernels):
            for masked in (True, False):
                yield train_speed(config, masked, batch, crop, kernel=kernel, **settings)


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """'1024,6000x4000' -> [(1024, 1024), (4000, 6000)]: (height, width) of squares and WxH sizes."""
    sizes = []
    for item in text.split(","):
        width, x, height = item.strip().partition("x")
        try:
            size = int(height if x else width), int(width)
        except ValueError:
            size = (0, 0)
        if min(size) < 1:
            raise MdnError(f"not a size: {item!r} (e.g. 1024 or 6000x4000)")
        sizes.append(size)
    return sizes


class OutOfMemory(MdnError):
    """A size the machine has not the memory to time a model at."""


@dataclass(frozen=True)
class SpeedTable:
    """Speed rows and, when a peer is among the models, each row's MP/s over the first peer's at its size (OIDN's
    where it is there: the field's yardstick)."""

    rows: list[Speed]
    reference: str | None
    ratios: list[float | None]

    @classmethod
    def of(cls, rows: list[Speed]) -> SpeedTable:
        """The table of `rows`, with ratios to the first peer among them."""
        named_peers = list(dict.fromkeys(r.model for r in rows if r.model in peers.PEERS))
        reference = "oidn" if "oidn" in named_peers else next(iter(named_peers), None)
        return cls(rows, reference, speed_ratios(rows, reference) if reference else [None] * len(rows))

    def to_json(self) -> list[dict]:
        return [
            {**row.to_json(), **({f"vs_{self.reference}": ratio} if self.reference else {})}
            for row, ratio in zip(self.rows, self.ratios, strict=True)
        ]


@dataclass
class SpeedRows:
    """The rows of `speed_rows`, each as it is measured, and what the run tells before them (`notes`)."""

    rows: Iterator[Speed]
    notes: tuple[Note, ...] = ()

    def __iter__(self) -> SpeedRows:
        return self

    def __next__(self) -> Speed:
        return next(self.rows)


def speed_rows(
    models: list[str] | None,
    sizes: list[tuple[int, int]],
    runs: int,
    options: EngineOptions | None = None,
    kernels: list[str] | None = None,
    with_peers: bool = False,
    grey: bool = False,
) -> SpeedRows:
    """`speed` of each model (default: every denoising card) with each attention kernel (default: auto) at each
    size, on colour or `grey` pictures, row by row as each is measured; `with_peers` adds the installed peers, which
    run their own way, and a note (a warning where none is) names those not installed. A name, kernel or size
    given twice runs once; a size the machine has not the memory for raises OutOfMemory."""
    names = list(dict.fromkeys(models or denoise_cards()))
    kernels, sizes = list(dict.fromkeys(kernels or ["auto"])), list(dict.fromkeys(sizes))
    installed = peers.available() if with_peers else []
    names += [p for p in installed if p not in names]
    missing = [name for name in peers.PEERS if with_peers and name not in installed]
    notes = (_missing_peers(missing, warning=not installed),) if missing else ()
    return SpeedRows(_rows(names, sizes, runs, options, kernels, 1 if grey else 3), notes)


def _missing_peers(missing: list[str], warning: bool) -> Note:
    """--peers' note on the peers not installed, with the pip command that installs them."""
    packages = " ".join(peers.PEERS[name][0] for name in missing)
    said = f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed"
    timed = "no peer timed" if warning else "not timed"
    return Note(f"--peers: {said}, {timed} (pip install {packages})", warning)


def _rows(
    names: list[str],
    sizes: list[tuple[int, int]],
    runs: int,
    options: EngineOptions | None,
    kernels: list[str],
    channels: int,
) -> Iterator[Speed]:
    """`speed_rows`' rows, each as it is measured."""
    for name in names:
        for kernel in ["-"] if name in peers.PEERS else kernels:
            for size in sizes:
                yield _row(name, size, runs, options, kernel, channels)


def _row(
    name: str, size: tuple[int, int], runs: int, options: EngineOptions | None, kernel: str, channels: int
) -> Speed:
    """One speed row: a peer's (`peer_speed`) or a model's (`speed`); OutOfMemory naming the size where the
    machine has not the memory for it."""
    try:
        if name in peers.PEERS:
            return peer_speed(name, size, runs, channels)
        return speed(name, size, runs, options, kernel, channels)
    except (MemoryError, torch.OutOfMemoryError, TooLarge):  # TooLarge: the engine's tiles halved to their least
        raise OutOfMemory(f"--sizes {size[1]}x{size[0]}: out of memory timing {name}") from None
