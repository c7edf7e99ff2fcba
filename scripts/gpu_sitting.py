"""A GPU sitting in command slots: check the GPU, measure training speed, then train the cards and bring them back.

A sitting is a short lease of a GPU machine (about 30 minutes, at most 10 minutes a command, only an output
folder comes back). Every slot is one command there, `bash scripts/gpu_sitting.sh STEP ...`, which runs this
script with the output folder; the runs' checkpoints and logs are written into it as they go, so a command cut
off at its limit still returns them. Between slots, `collect` copies what came back into sittings/, which
travels to the next slot (and, committed, to the next sitting), and every run resumes from there bit for bit.
Steps:

    prepare   here, on the CPU: build the training pack and fetch the wheels the GPU machine lacks
    speed     there: the default pipeline on a 24 MP photo end to end and its engine, stage by stage
    check     there: CUDA tests, inference speed, training speed (sdpa vs flex, eager vs compiled), then train
    plan      there: time each run's step (eager and compiled) and fix the step count that fits --budget (plan.json)
    train     there: train every run of --runs for --budget (resuming those that came back)
    collect   here: copy a slot's returned files into sittings/
    finish    here: write the model card of each run from its checkpoint, for `mdn bench` to judge

docs/gpu-sitting.md gives the commands and how the minutes are split.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mdn.training import parse_duration

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "sittings"
"""The runs between slots and between sittings: tracked, so that they travel with the working tree and the next
sitting, whenever it comes, continues them."""
PACK = ROOT / "data" / "pack"
WHEELS = ROOT / ".whl"
MISSING_THERE = ("openexr==3.5.3", "platformdirs==4.14.7")
"""What the GPU machine's Python lacks of mdn's dependencies for training and its tests (imagecodecs, 26 MB,
stays behind: training reads the pack's JPEGs through imageio, and nothing on this path writes PNG)."""
TRAVEL_MIB = 64
RUN_FILES = ("checkpoint.pt", "log.jsonl")
MIN_TRAINING = 30.0
"""Seconds a slot trains at least, even when the measurements before ran long (its checkpoints are written as
it goes, so a command stopped at its limit still returns them)."""


@dataclass(frozen=True)
class Run:
    """One training run of the sitting: its card name and the options that are its recipe."""

    name: str
    flags: tuple[str, ...]
    batch: int = 64
    crop: int = 64
    iters: int = 200_000


MASKED_RECIPE = (
    "--lr", "1e-3", "--warmup", "1000", "--precision", "bf16", "--validate-every", "2000", "--checkpoint-every", "1000"
)  # fmt: skip
"""The paper's network, data pipeline and 200K-step schedule (halved at 50 and 75 %), with the peak rate and
warm-up that learned fastest in the first GPU measurements of the small masked net (lr 1e-3 after 500 warm-up
steps: 21.6 dB at 2,800 steps, against 21.4 at 5,700 for lr 2e-4)."""

MASKED_CNN_RECIPE = (
    "--config", "unet-partial", "--lr", "1e-3", "--warmup", "1000", "--schedule", "cosine", "--precision", "bf16",
    "--dead-leaves", "40", "--stripes", "40", "--validate-every", "2000", "--checkpoint-every", "2000",
)  # fmt: skip
"""The masked U-Net (partial first convolution, the paper's 75-85 % input mask, sigma 15) with the recipe of its
CPU ablation (docs/training.md), at the paper's sample count: 12.8M crops of 64², here 100K steps of 128."""

MASKED_CNN_CONTINUED = (*MASKED_CNN_RECIPE, "--init", "docs/runs/unet-masked.json", "--lr", "5e-4", "--warmup", "500")
"""The masked U-Net of the first sitting (28,000 steps, its card in docs/runs/) on from its weights with a fresh,
lower cosine (its checkpoint did not outlive that sitting): the way to the paper's 12.8M crops in sittings."""

KPN_RECIPE = tuple("unet-kpn" if flag == "unet-partial" else flag for flag in MASKED_CNN_RECIPE)
"""The masked U-Net's recipe for `unet-kpn`, the same network predicting two 5x5 kernels per pixel (IDF's
output: a weighted average of input pixels) instead of pixels."""

KPN_REFINE_RECIPE = tuple("unet-kpn-refine" if flag == "unet-partial" else flag for flag in MASKED_CNN_RECIPE)
"""The same recipe for `unet-kpn-refine`: one 5x5 kernel pass, then six iterations of a small dynamic filter
(IDF's iteration) on its output."""

DYNAMIC_RECIPE = (
    "--config", "dynamic", "--lr", "1e-3", "--warmup", "500", "--schedule", "cosine", "--precision", "bf16",
    "--dead-leaves", "40", "--stripes", "40", "--validate-every", "1000", "--checkpoint-every", "1000",
)  # fmt: skip
"""IDF's design in mdn (`dynamic`: one 3x3 kernel predictor iterated ten times, about 54K parameters), Gaussian
sigma 15 alone, 32 crops of 128² a step (IDF's own recipe: 8 a step for 50,000 steps at lr 1e-4), a cosine from
1e-3 (a CPU probe learned steadily at that rate); the twin runs it unmasked as IDF trains, the masked run with
the paper's 75-85 % input mask. `dynamic-grey` is the twin with a quarter of its crops grey (sitting 7's twin,
which saw none, barely filters a grey picture: its noise is the same in every channel), and
`dynamic-correlation-grey` the same with bounded patch correlations as its tap features (IDF's colour correlation
is bounded; mdn's distance is not, which may be why impulses, far outside sigma 15, get past it)."""

PRACTICAL_MIX = (
    "--noise", "practical", "--level-range", "0.2,1.5", "--grey-share", "0.25", "--no-mask", "--dead-leaves", "40",
    "--warmup", "100", "--schedule", "cosine", "--precision", "bf16", "--validate-every", "1000",
    "--checkpoint-every", "500",
)  # fmt: skip
"""The practical-photos cards' mix and schedule (docs/training.md) at 64 crops of 128² a step: their CPU probes'
recipe, four times the crops per step and four times the pixels per crop."""

PRACTICAL_RECIPE = ("--init", "models/unet-practical.json", "--lr", "2e-4", *PRACTICAL_MIX)
"""`unet-practical` on from its card on its own mix."""

DEFAULT_CONTINUED = ("--config", "unet-dct", "--init", "models/unet-dct-practical.json", "--lr", "1e-4", *PRACTICAL_MIX)
"""The default (`unet-dct-practical`) on from its card on its own mix at half the rate: with its 20 % thumbnails
the control for the runs that change its data (procedural cloth for barbara's texture, more thumbnails)."""

GREY_MIX = tuple(
    "1.0" if previous == "--grey-share" else flag
    for previous, flag in zip(("", *PRACTICAL_MIX[:-1]), PRACTICAL_MIX, strict=True)
)
"""The practical mix with every crop grey: the default's grey network (`unet-dct-grey`, a CPU fine-tune of 20,000
steps of 16 crops of 96²) on from its card at GPU scale."""


def practical_run(name: str, *flags: str) -> Run:
    """A run on the practical mix: 4,000 steps of 64 crops of 128²."""
    return Run(name, flags, crop=128, iters=4000)


RUNS_BY_NAME = {
    "unet-masked": Run("unet-masked", MASKED_CNN_RECIPE, batch=128, iters=100_000),
    "unet-masked-on": Run("unet-masked-on", MASKED_CNN_CONTINUED, batch=128, iters=72_000),
    "unet-twin": Run("unet-twin", (*MASKED_CNN_RECIPE, "--no-mask"), batch=128, iters=100_000),
    "unet-masked-r20": Run(
        "unet-masked-r20", (*MASKED_CNN_RECIPE, "--input-mask-range", "0.15,0.25"), batch=128, iters=100_000
    ),
    "kpn-masked": Run("kpn-masked", KPN_RECIPE, batch=128, iters=10_000),
    "kpn-twin": Run("kpn-twin", (*KPN_RECIPE, "--no-mask"), batch=128, iters=10_000),
    "kpn-refine-masked": Run(
        "kpn-refine-masked", (*KPN_REFINE_RECIPE, "--validate-every", "1000"), batch=128, iters=5000
    ),
    "kpn-refine-twin": Run(
        "kpn-refine-twin", (*KPN_REFINE_RECIPE, "--no-mask", "--validate-every", "1000"), batch=128, iters=5000
    ),
    "dynamic-twin": Run("dynamic-twin", (*DYNAMIC_RECIPE, "--no-mask"), batch=32, crop=128, iters=20_000),
    "dynamic-grey": Run(
        "dynamic-grey", (*DYNAMIC_RECIPE, "--no-mask", "--grey-share", "0.25"), batch=32, crop=128, iters=10_000
    ),
    "dynamic-correlation-grey": Run(
        "dynamic-correlation-grey",
        (
            *(("dynamic-correlation" if flag == "dynamic" else flag) for flag in DYNAMIC_RECIPE),
            "--no-mask",
            "--grey-share",
            "0.25",
        ),
        batch=32,
        crop=128,
        iters=10_000,
    ),
    "dynamic-masked": Run(
        "dynamic-masked",
        tuple("dynamic-partial" if flag == "dynamic" else flag for flag in DYNAMIC_RECIPE),
        batch=32,
        crop=128,
        iters=20_000,
    ),
    "paper-masked": Run("paper-masked", ("--config", "paper", *MASKED_RECIPE)),
    "paper-baseline": Run("paper-baseline", ("--config", "paper", "--no-mask", *MASKED_RECIPE)),
    "practical-dct-thumbs": practical_run(
        "practical-dct-thumbs", "--config", "unet-dct", *PRACTICAL_RECIPE, "--thumbnail-share", "0.2"
    ),
    "practical-thumbs": practical_run(
        "practical-thumbs", "--config", "unet", *PRACTICAL_RECIPE, "--thumbnail-share", "0.2"
    ),
    "practical-dct": practical_run("practical-dct", "--config", "unet-dct", *PRACTICAL_RECIPE),
    "default-on": practical_run("default-on", *DEFAULT_CONTINUED, "--thumbnail-share", "0.2"),
    "default-kpn": practical_run(
        "default-kpn",
        "--config",
        "unet-dct-kpn",
        "--init",
        "models/unet-dct-practical.json",
        "--lr",
        "2e-4",
        *PRACTICAL_MIX,
        "--thumbnail-share",
        "0.2",
    ),
    "grey-network": practical_run(
        "grey-network",
        "--config",
        "unet-dct",
        "--init",
        "models/unet-dct-grey.json",
        "--lr",
        "1e-4",
        *GREY_MIX,
        "--thumbnail-share",
        "0.2",
    ),
    "default-textiles": practical_run(
        "default-textiles", *DEFAULT_CONTINUED, "--thumbnail-share", "0.2", "--textiles", "150"
    ),
    "default-textiles-thumbs": practical_run(
        "default-textiles-thumbs", *DEFAULT_CONTINUED, "--thumbnail-share", "0.35", "--textiles", "150"
    ),
    "fill-mpi": Run(
        "fill-mpi",
        ("--objective", "fill", "--config", "syn", "--validate-every", "2000", "--checkpoint-every", "1000"),
        batch=32,
        crop=128,
        iters=80_000,
    ),
}
"""The sitting's runs: the masked card and its unmasked twin on the same data, iterations and recipe (the claim
needs both), the same pair on the masked U-Net, and MPI's fill network at its own width (747K parameters) and
recipe for zero-shot on GPUs; the kernel-predicting U-Net masked and its twin (IDF's output on mdn's network);
the practical-photos successor: the DCT-shrinkage stage, a fifth of the crops web thumbnails, and each alone;
and the default on from there, with procedural cloth and more thumbnails, and with a kernel output (its network's
features, the last convolution afresh predicting two 5x5 kernels per pixel)."""


@dataclass
class Settings:
    """What a step works with: the output folder (the slot's $OUT), the pack, the runs and where they travel."""

    out: Path
    pack: Path
    carried: Path
    runs: list[str]
    budget: float
    margin: float
    device: str
    config: str | None
    fill_config: str | None
    batch: int | None
    crop: int | None
    iters: int | None
    compile: bool
    kernel: str
    speed_configs: str
    speed_kernels: str
    train_at_least: float
    photo_size: str
    side_by_side: float = 0.0
    """plan: the share of its own speed each run keeps when all train side by side (0: they train one after
    another)."""
    quick_speed: bool = False
    """speed: the default alone, twice end to end and twice in the engine, beside its network alone."""
    slack: float = 1.0
    """Multiplies the fixed time limits of the check's steps (tests, timings): above 1 on a slow or busy machine."""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def mdn(*args: str, timeout: float | None = None) -> int:
    """Run `python -m mdn ARGS` from the repository; returns its exit code (a timeout counts as 124)."""
    log("mdn " + " ".join(args))
    try:
        return subprocess.run([sys.executable, "-m", "mdn", *args], cwd=ROOT, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        log(f"stopped after {timeout:.0f} s")
        return 124


def train_args(run: Run, s: Settings, workdir: Path, cards: Path) -> list[str]:
    """The `mdn train` options of `run` under the sitting's settings (the same for training and for the card)."""
    flags = list(run.flags)
    fill = "--objective" in flags
    if (s.fill_config if fill else s.config) and "--config" in flags:
        flags[flags.index("--config") + 1] = s.fill_config if fill else s.config
    args = [
        "train", "--data", str(s.pack / "train"), "--val", str(s.pack / "val"), "--name", run.name,
        "--iters", str(s.iters or run.iters), "--batch", str(s.batch or run.batch), "--crop", str(s.crop or run.crop),
        "--device", s.device, "--workdir", str(workdir), "--output", str(cards), "--quiet", *flags,
    ]  # fmt: skip
    if not fill:
        args += ["--attention-kernel", s.kernel] + (["--compile"] if s.compile else [])
    return args


def train_runs(s: Settings, seconds: float) -> bool:
    """Train every run of the sitting side by side for `seconds`, each resuming where it came back from; returns
    whether all of them ended well. Their interim cards go to a scratch folder: `finish` writes the real ones."""
    with tempfile.TemporaryDirectory(prefix="cards-") as scratch:
        return _train_side_by_side(s, seconds, Path(scratch))


def _train_side_by_side(s: Settings, seconds: float, cards: Path) -> bool:
    threads = str(max(1, (os.cpu_count() or 1) // len(s.runs)))
    env = {**os.environ, "OMP_NUM_THREADS": threads}  # side by side, the runs share the cores rather than fight
    processes = []
    for name in s.runs:
        run = RUNS_BY_NAME[name]
        workdir = s.out / name
        workdir.mkdir(parents=True, exist_ok=True)
        carried = s.carried / name
        resume = (carried / "checkpoint.pt").is_file()
        for file in RUN_FILES:
            if (carried / file).is_file():
                shutil.copy2(carried / file, workdir / file)
        args = [*train_args(run, s, workdir, cards), "--time-budget", f"{seconds:.0f}s"]
        args += ["--resume"] if resume else []
        log(("resuming " if resume else "starting ") + "mdn " + " ".join(args))
        processes.append((name, subprocess.Popen([sys.executable, "-m", "mdn", *args], cwd=ROOT, env=env)))
    codes = []
    for name, process in processes:
        codes.append(process.wait())
        last = _last_record(s.out / name / "log.jsonl")
        log(f"{name}: exit {codes[-1]}, last validation {json.dumps(last)}")
    return not any(codes)


def _last_record(path: Path) -> dict:
    lines = path.read_text().splitlines() if path.is_file() else []
    return json.loads(lines[-1]) if lines else {}


def check(s: Settings, deadline: float) -> bool:
    """The CUDA tests, inference speed, the training-speed table (as far as time allows), then training for the
    rest of the slot."""
    tests = ["tests/test_engine.py", "tests/test_swinir.py", "tests/test_train.py"]
    log("CUDA tests")
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-k", "cuda", *tests], cwd=ROOT, timeout=150 * s.slack)
    if s.photo_size:
        inference_speed(s)
    rows: list[dict] = []
    speed = ["bench", "--train-speed", "--device", s.device, "--precision", "bf16", "--batch", str(s.batch or 64)]
    speed += ["--crop", str(s.crop or 64), "--attention-kernel", s.speed_kernels, "--runs", "3"]
    measurements = [(s.speed_configs, False)] + [(c, True) for c in s.speed_configs.split(",")[::-1] if s.compile]
    for index, (configs, compiled) in enumerate(measurements):
        left = deadline - s.train_at_least - time.monotonic()
        if index and left < 10:  # the first, eager table is always measured
            log(f"no time left to measure {configs}" + (" compiled" if compiled else ""))
            break
        table = s.out / "speed.part.json"
        timeout = left if index else max(left, 120.0 * s.slack)
        mdn(*speed, "--configs", configs, *(["--compile"] if compiled else []), "--json", str(table), timeout=timeout)
        rows += json.loads(table.read_text()) if table.is_file() else []
        table.unlink(missing_ok=True)
        (s.out / "speed.json").write_text(json.dumps(rows, indent=1) + "\n")
    s.kernel, s.compile = fastest_masked(rows, s.config or "paper", s.kernel, s.compile)
    log(f"training with --attention-kernel {s.kernel}" + (" --compile" if s.compile else ""))
    return train_runs(s, max(deadline - time.monotonic() - s.margin, MIN_TRAINING))


def inference_speed(s: Settings) -> None:
    """Time the default card on a photo of `photo_size` end to end (`mdn denoise` JPEG to JPEG: three runs as
    it is, two at `--quality fast` and two of the network alone) and the engine the same ways and `unet`'s, into
    `inference.json`."""
    width, height = (int(n) for n in s.photo_size.split("x"))
    folder = Path(tempfile.mkdtemp(prefix="photo-"))
    photo = write_photo(folder / "photo.jpg", width, height, s.pack / "val")
    denoise = ["denoise", str(photo), "-o", str(folder / "out.jpg"), "--overwrite", "--device", s.device, "--quiet"]
    seconds: dict[str, list[float | None]] = {}
    timed = [("default", (), 3), ("fast", ("--quality", "fast"), 2), ("network", ("--no-detail",), 2)]
    for label, flags, runs in [("default", (), 2)] if s.quick_speed else timed:
        for _ in range(runs):
            start = time.perf_counter()
            code = mdn(*denoise, *flags, timeout=60 * s.slack)
            seconds.setdefault(label, []).append(round(time.perf_counter() - start, 2) if code == 0 else None)
        log(f"mdn denoise {' '.join(flags)}, {s.photo_size} JPEG end to end: {seconds[label]} s")
    table = folder / "speed.json"
    default = "unet-dct-practical"
    names = f"{default},{default}+no-detail" if s.quick_speed else f"{default},{default}+fast,{default}+no-detail,unet"
    models = ["--models", names, "--sizes", s.photo_size, "--runs", "2"]
    mdn("bench", "--speed", "--device", s.device, *models, "--json", str(table), timeout=180 * s.slack)
    engine = json.loads(table.read_text()) if table.is_file() else []
    record = {"photo": s.photo_size, "denoise_seconds": seconds, "engine": engine}
    (s.out / "inference.json").write_text(json.dumps(record, indent=1) + "\n")
    shutil.rmtree(folder, ignore_errors=True)


def write_photo(path: Path, width: int, height: int, sources: Path) -> Path:
    """A `width` x `height` JPEG tiled row by row from the photos in `sources`, with Gaussian noise of sigma 15."""
    import imageio.v3 as iio
    import numpy as np

    from mdn.noise import make_noise

    photos = itertools.cycle([iio.imread(p)[..., :3] for p in sorted(sources.glob("*.jpg"))])
    canvas = np.zeros((height, width, 3), np.uint8)
    top = 0
    while top < height:
        left, row_height = 0, 0
        while left < width:
            photo = next(photos)[: height - top, : width - left]
            canvas[top : top + photo.shape[0], left : left + photo.shape[1]] = photo
            left, row_height = left + photo.shape[1], max(row_height, photo.shape[0])
        top += row_height
    noisy = make_noise("gaussian", 15)(canvas / np.float32(255), np.random.default_rng(0))
    iio.imwrite(path, np.round(noisy * 255).astype(np.uint8), quality=95)
    return path


def fastest_masked(rows: list[dict], config: str, kernel: str, compiled: bool) -> tuple[str, bool]:
    """The kernel and compile setting of the fastest masked step measured at the runs' size, else those given."""
    masked = [r for r in rows if r["masked"] and r["config"] == config]
    if not masked:
        return kernel, compiled
    best = max(masked, key=lambda r: r["it_per_s"])
    return best["kernel"], best["compiled"]


def plan(s: Settings) -> None:
    """Time one step of each run (eager, and compiled unless --no-compile), keep the faster setting for all of them,
    and fix the step count that trains every run, one after another (or side by side, each at the share of its
    own speed that `--side-by-side` says), within the budget (at most the runs' own schedule, in thousands);
    written to `plan.json`, which `train` then follows in every slot."""
    from mdn.bench import train_speed

    compile_choices = [False, True] if s.compile else [False]
    seconds_per_step: dict[bool, float] = {}
    rows = []
    for compiled in compile_choices:
        step_seconds = []
        for name in s.runs:
            run = RUNS_BY_NAME[name]
            flags = run.flags
            config = flags[flags.index("--config") + 1]
            row = train_speed(
                s.config or config, "--no-mask" not in flags, s.batch or run.batch, s.crop or run.crop,
                device=s.device, precision="bf16", compile=compiled,
            )  # fmt: skip
            log(f"{name}: {row.it_per_s:.1f} it/s" + (" compiled" if compiled else ""))
            rows.append({"run": name, **row.to_json()})
            step_seconds.append(1 / row.it_per_s)
        side_by_side = max(step_seconds) / s.side_by_side if s.side_by_side else 0.0
        seconds_per_step[compiled] = side_by_side or sum(step_seconds)
    compiled = min(seconds_per_step, key=seconds_per_step.__getitem__)
    shortest = min(s.iters or RUNS_BY_NAME[name].iters for name in s.runs)
    iters = min(shortest, max(1000, int(s.budget / seconds_per_step[compiled]) // 1000 * 1000))
    result = {"iters": iters, "compile": compiled, "budget_s": s.budget, "speed": rows}
    (s.out / "plan.json").write_text(json.dumps(result, indent=1) + "\n")
    log(f"plan: {iters} steps per run" + (", compiled" if compiled else ", eager"))


def follow_plan(s: Settings) -> None:
    """Take the step count and compile setting of the carried `plan.json`, where `plan` wrote one."""
    path = s.carried / "plan.json"
    if path.is_file() and s.iters is None:
        planned = json.loads(path.read_text())
        s.iters, s.compile = planned["iters"], planned["compile"] and s.compile
        log(f"following {path}: {s.iters} steps" + (", compiled" if s.compile else ", eager"))


def collect(source: Path, carried: Path) -> None:
    """Copy one slot's returned files (runs, speed tables, log) into `carried`, which the next slot takes along."""
    carried.mkdir(parents=True, exist_ok=True)
    for name in RUNS_BY_NAME:
        if (source / name / "checkpoint.pt").is_file():
            (carried / name).mkdir(exist_ok=True)
            for file in RUN_FILES:
                if (source / name / file).is_file():
                    shutil.copy2(source / name / file, carried / name / file)
            print(f"{name}: {_last_record(carried / name / 'log.jsonl')}")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if (source / "plan.json").is_file():
        shutil.copy2(source / "plan.json", carried / "plan.json")
    for file in ("speed.json", "inference.json", "sitting.log"):
        kept = file.replace(".", f"-{stamp}.")
        if (source / file).is_file():
            shutil.copy2(source / file, carried / kept)


def measured_speed(carried: Path) -> list[dict]:
    """The rows of the latest training-speed table that came back, if any."""
    tables = sorted(carried.glob("speed-*.json"))
    return json.loads(tables[-1].read_text()) if tables else []


def finish(s: Settings, cards: Path) -> None:
    """Write each run's model card from its checkpoint into `cards`."""
    for name in s.runs:
        run = RUNS_BY_NAME[name]
        if (s.carried / name / "checkpoint.pt").is_file():
            mdn(*train_args(run, s, s.carried / name, cards), "--finish")


def prepare(max_mib: float) -> None:
    """Build the pack (when missing) and fetch the wheels, then say whether a slot's load travels."""
    if not (PACK / "manifest.json").is_file() or _size(PACK) > max_mib * 2**20:
        data = ROOT / "data"
        for script, folder in (("photo_data.py", "photos"), ("skimage_data.py", "skimage")):
            if not (data / folder / "manifest.json").is_file():
                subprocess.run([sys.executable, f"scripts/{script}", str(data / folder)], cwd=ROOT, check=True)
        pack = ["scripts/training_pack.py", str(PACK), str(data / "photos"), str(data / "skimage")]
        subprocess.run([sys.executable, *pack, "--max-mib", str(max_mib)], cwd=ROOT, check=True)
    platforms = [f"--platform={p}" for p in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")]
    fetch = ["pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version", "3.12"]
    fetch += ["--implementation", "cp", *platforms, "-d", str(WHEELS), *MISSING_THERE]
    subprocess.run([sys.executable, "-m", *fetch], check=True)
    listed = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    travelling = subprocess.run(listed, cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    sizes = {
        "working tree": sum((ROOT / f).stat().st_size for f in travelling if f and (ROOT / f).is_file()),
        "pack": _size(PACK),
        "wheels": _size(WHEELS),
    }
    total = sum(sizes.values()) / 2**20
    print(", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in sizes.items()) + f": {total:.1f} of {TRAVEL_MIB} MiB")
    if total > TRAVEL_MIB - 2:
        raise SystemExit("too much to travel: rebuild the pack smaller (--max-mib) or keep fewer runs in sittings/")


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("prepare", "speed", "check", "plan", "train", "collect", "finish"))
    parser.add_argument("source", nargs="?", type=Path, help="collect: the folder a slot's files came back to")
    parser.add_argument("--output", "-o", dest="out", type=Path, default=Path(os.environ.get("OUT", "sitting-out")))
    parser.add_argument("--pack", type=Path, default=PACK)
    parser.add_argument("--carried", type=Path, default=RUNS, help="the runs that travel between slots")
    runs_help = "comma-separated: " + ", ".join(RUNS_BY_NAME)
    parser.add_argument("--runs", default="paper-masked,paper-baseline", help=runs_help)
    parser.add_argument("--budget", default="9m", help="a slot's wall time; plan: all runs' training (9m, 540s)")
    parser.add_argument("--margin", default="20s", help="time kept back at the end of a slot")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--config", help="SwinIR size instead of the runs' own (dry runs: tiny)")
    parser.add_argument("--fill-config", help="fill network size instead of its own (dry runs: grey-fast)")
    parser.add_argument("--batch", type=int, help="crops per step instead of the runs' own")
    parser.add_argument("--crop", type=int, help="crop size instead of the runs' own")
    parser.add_argument("--iters", type=int, help="schedule length instead of the plan's or the runs' own")
    parser.add_argument("--no-compile", action="store_true", help="train eagerly")
    parser.add_argument("--attention-kernel", default="auto", help="until `check` measures the fastest")
    parser.add_argument("--speed-configs", default="small,paper", help="check: sizes to measure, smallest first")
    parser.add_argument("--speed-kernels", default="sdpa,flex", help="check: attention kernels to compare")
    parser.add_argument("--train-at-least", default="3m", help="check: time kept for training after measuring")
    parser.add_argument("--photo-size", default="6000x4000", help="check: the photo timed end to end ('' skips it)")
    parser.add_argument(
        "--side-by-side",
        type=float,
        default=0.0,
        help="plan: each run's share of its own speed when all train side by side (0: one after another)",
    )
    parser.add_argument("--quick-speed", action="store_true", help="speed: the default twice, beside its network")
    parser.add_argument("--slack", type=float, default=1.0, help="check: multiply its steps' time limits (slow CPUs)")
    parser.add_argument("--cards", type=Path, default=ROOT / "runs" / "cards", help="finish: where the cards go")
    parser.add_argument("--max-mib", type=float, default=24.0, help="prepare: the pack's size limit")
    a = parser.parse_args()
    start = time.monotonic()
    settings = Settings(
        a.out, a.pack, a.carried, [r for r in a.runs.split(",") if r], parse_duration(a.budget),
        parse_duration(a.margin), a.device,
        a.config, a.fill_config, a.batch, a.crop, a.iters, not a.no_compile, a.attention_kernel,
        a.speed_configs, a.speed_kernels, parse_duration(a.train_at_least), a.photo_size, a.side_by_side,
        a.quick_speed, a.slack,
    )  # fmt: skip
    unknown = set(settings.runs) - set(RUNS_BY_NAME)
    if unknown:
        parser.error(f"unknown runs: {', '.join(sorted(unknown))}")
    if a.step in ("speed", "check", "plan", "train"):
        settings.out.mkdir(parents=True, exist_ok=True)
    if a.step == "prepare":
        prepare(a.max_mib)
    elif a.step == "speed":
        inference_speed(settings)
    elif a.step == "check":
        sys.exit(0 if check(settings, start + settings.budget) else 1)
    elif a.step == "plan":
        plan(settings)
    elif a.step == "train":
        follow_plan(settings)
        if a.attention_kernel == "auto":
            settings.kernel, settings.compile = fastest_masked(
                measured_speed(a.carried), a.config or "paper", "auto", settings.compile
            )
        seconds = max(settings.budget - (time.monotonic() - start) - settings.margin, MIN_TRAINING)
        sys.exit(0 if train_runs(settings, seconds) else 1)
    elif a.step == "collect":
        if a.source is None:
            parser.error("collect needs the folder the files came back to")
        collect(a.source, a.carried)
    else:
        follow_plan(settings)
        finish(settings, a.cards)


if __name__ == "__main__":
    main()
