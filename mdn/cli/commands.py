"""The `mdn` command line: parses options, calls the library, prints with rich, maps errors to exit codes."""

from __future__ import annotations

import functools
import json
import logging
import signal
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec

import numpy as np
import typer
from rich.markup import escape

from mdn import __version__, bench, inference, noise, registry, training, volumes
from mdn.cli import bench_runs, display, per_file
from mdn.cli.former_options import FormerOptions
from mdn.cli.per_file import EXIT_FAILED, Quiet
from mdn.cli.report import BatchProgress, console, printable
from mdn.cli.usage import EXIT_USAGE, Command, Group, ShowGroup
from mdn.device import use_threads
from mdn.errors import MdnError
from mdn.inference import engine
from mdn.io import batch, tonemap
from mdn.nets.iterative import ITERATIVE_SIZES
from mdn.nets.skip import SIZES as SKIP_SIZES
from mdn.nets.swinir import SIZES
from mdn.nets.unet import UNET_SIZES
from mdn.training import SCHEDULES
from mdn.training.options import OBJECTIVE_DEFAULTS, check_name
from mdn.training.self_supervised import SelfSupervised
from mdn.zeroshot import PRESETS
from mdn.zeroshot import run as zs

app = typer.Typer(
    name="mdn",
    help="Denoise photos, microscopy and renders with masked-training and zero-shot networks.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=Group,
)

P = ParamSpec("P")


logging.getLogger("imagecodecs").setLevel(logging.ERROR)  # libpng's warnings (a colour profile it dislikes) are noise
logging.getLogger("tifffile").setLevel(logging.CRITICAL)  # it logs damaged tags as errors; mdn reports the file

ENGINE = engine.EngineOptions()
"""The library's inference defaults, which the options show and keep."""
TRAIN = training.TrainOptions(name="defaults", data=[])
"""The library's training defaults (the denoise objective's), which the options show and keep."""
NOISY = SelfSupervised.defaults
"""The defaults `--noisy` training takes instead, which the options show."""
RESEARCH = "Research"
"""The help panel of ablation and measurement options, listed after the everyday ones."""


def _opt(names: str, help: str, **more: Any) -> Any:
    """A typer option of space-separated `names`, one of them its metavar where it has one (`--tile <px>`: the
    value's meaning, where typer's would be its type, `<int>`)."""
    words = names.split()
    metavar = [word for word in words if word.startswith("<")]
    more = {"metavar": metavar[0], **more} if metavar else more
    return typer.Option(*(word for word in words if not word.startswith("<")), help=help, **more)


def _choices(names: Iterable[str]) -> str:
    """The metavar listing an option's choices: <a|b|c>."""
    return f"<{'|'.join(names)}>"


def _research(names: str, help: str) -> Any:
    """A typer option in the Research panel of the help."""
    return _opt(names, help, rich_help_panel=RESEARCH)


Seed = Annotated[
    int,
    _opt("--seed <n>", "Random seed (0 to 2^32 - 1): the same seed gives the same bytes.", min=0,
         max=inference.SEEDS - 1),
]  # fmt: skip
Device = Annotated[
    str,
    _opt("--device", "Where to run; auto: a GPU where there is one, else the CPU.", metavar="<auto|cpu|cuda[:N]|mps>"),
]
PRECISION_HELP = "Number format; auto: bf16 where the hardware computes it natively, else fp32."
PRECISIONS = _choices(("auto", "fp32", "bf16", "fp16"))
Precision = Annotated[str, _opt("--precision", PRECISION_HELP, metavar=PRECISIONS)]
KERNEL_HELP = "Attention kernel: auto, explicit, sdpa or flex (FlexAttention, compiled on GPUs)"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mdn {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, _opt("--version", "Print the version and exit.", callback=_version, is_eager=True)
    ] = False,
) -> None:
    """Denoise photos, microscopy and renders with masked-training and zero-shot networks."""


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    console.print(f"[red]error[/]: {escape(printable(message))}", soft_wrap=True)
    raise typer.Exit(code)


def _user_errors(command: Callable[P, None]) -> Callable[P, None]:
    """Turn an MdnError raised before any file is processed into one line and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except MdnError as exc:
            _fail(str(exc))

    return wrapper


@app.command(
    "denoise",
    no_args_is_help=True,
    cls=FormerOptions,
    short_help="Denoise photos, microscopy and renders with a trained model.",
)
@_user_errors
@per_file.command(suffix="_denoised")
def denoise_command(
    model: Annotated[str | None, _opt("--model -m <card>", "Model card name or path to its JSON (see mdn models).",
                                      show_default="the card mdn models marks default; EXR: renders")] = None,
    tile: Annotated[int, _opt("--tile <px>", "Tile size in pixels (0: from --max-memory).")] = ENGINE.tile,
    overlap: Annotated[int | None, _opt("--overlap <px>", "Tile overlap (default: the card's).")] = None,
    tile_batch: Annotated[int, _opt("--tile-batch <n>", "Tiles per forward pass (0: 1 on CPU, 4 on "
                                    "GPU).")] = ENGINE.batch,
    device: Device = ENGINE.device,
    precision: Precision = ENGINE.precision,
    max_memory: Annotated[str, _opt("--max-memory <size>", "Memory budget for tiles, volume units and the stages "
                                    "(a larger plane runs them window by window).")] = f"{ENGINE.max_memory >> 30}G",
    passes: Annotated[int | None, _opt("--passes <n>", "Passes to average, each over the image flipped or turned its "
                                       "own way: 8 for the last tenths of a dB (default: the card's, or 1).")] = None,
    input_mask: Annotated[float | None, _opt("--input-mask <share>", "Share of input pixels hidden in every pass "
                                             "(default: the card's, or 0).")] = None,
    impulses: Annotated[bool | None, _opt("--impulses/--no-impulses", "Fill pixels stuck at black or white that "
                                          "their neighbours do not share (salt and pepper, dead and hot pixels) "
                                          "before the network; --no-impulses keeps them, e.g. one-pixel stars "
                                          "(default: the card's).")] = None,
    detail: Annotated[bool | None, _opt("--detail/--no-detail", "Put back the texture the network smoothed (what "
                                        "it removed that stands above the image's own noise in 8x8 DCTs), then "
                                        "filter groups of similar patches with that as pilot (default: the "
                                        "card's).")] = None,
    quality: Annotated[str | None, _opt("--quality", "With the detail stage, what follows it: fast (nothing), balanced "
                                 "or high (filtering groups of similar patches: about 0.3 dB for 2.6x the time on "
                                 "a CPU; high +0.04 dB for 1.2x balanced's).",
                                 metavar=_choices(engine.QUALITIES), show_default=ENGINE.quality)] = None,
    wiener: Annotated[bool | None, _opt("--wiener/--no-wiener", "--no-wiener: --quality fast.",
                                        hidden=True)] = None,
    self_check: Annotated[bool | None, _opt("--self-check/--no-self-check", "Measure each image's noise and blend "
                                            "the input back where the card would do worse (default: the "
                                            "card's).")] = None,
    strength: Annotated[str | None, _opt("--strength", "The share of the denoiser's change to keep, from 0 (the "
                                         "input) to 1 (all of it), or auto: where a colour picture comes out little "
                                         "changed, the share its measured noise explains (clean and lightly noisy "
                                         "pictures keep their texture; a camera's light noise can hide from that "
                                         "measure).", metavar="auto|0-1", show_default="1")] = None,
    keep_clean: Annotated[bool | None, _opt("--keep-clean/--no-keep-clean", "Give a picture that measures "
                                            "clean once its impulses are filled back as it came, but for them "
                                            "(default: the card's).")] = None,
    seed: Seed = 0,
    scheduler: Annotated[str | None, _opt("--scheduler <address>", "zarr volumes: run their chunks on a "
                                          "dask.distributed cluster: a scheduler address, or local[:N] for N local "
                                          "workers.")] = None,
    attention_mask: Annotated[bool, _research("--attention-mask/--no-attention-mask",
                                              "Mask attention as in training.")] = ENGINE.attention_mask,
    albedo: Annotated[Path | None, _opt("--albedo <file>", "Renders: the albedo buffer's file (default: the EXR's "
                                        "albedo layer, if any), for a render card that takes it.")] = None,
    normal: Annotated[Path | None, _opt("--normal <file>", "Renders: the normal buffer's file (default: the EXR's "
                                        "normal layer, if any).")] = None,
) -> per_file.Work | None:  # fmt: skip
    """Denoise photos, microscopy and renders with a trained model.

    Example: mdn denoise photo.png -o clean.png --passes 4
    """
    settings = inference.run_settings({**locals(), "batch": tile_batch})
    models = inference.ModelChoice(model, settings, albedo, normal)
    models.for_image(hdr=False)  # a bad model or setting is a usage error before any file is read
    models.check_buffers()
    if scheduler is not None:
        volumes.check_address(scheduler)

    def run(pixels: np.ndarray, context: batch.FileContext, progress: BatchProgress) -> np.ndarray:
        planes, loaded, options = models.inputs(pixels, context.image, context.warnings.append)
        context.info.update(batch.inputs_info(planes, pixels))
        return inference.run(planes, loaded, options, progress.steps, context.info)

    def volume(source: Path, target: Path, overwrite: bool, progress: Callable[[int, int], None]) -> dict[str, Any]:
        loaded, options = models.for_image(hdr=False)
        report = volumes.denoise(source, target, loaded, options, overwrite=overwrite, scheduler=scheduler,
                                 progress=progress)  # fmt: skip
        untold = models.untold(loaded, options)  # what the card does not do as asked
        return {**report, "warnings": [*report.get("warnings", []), *untold]}

    buffers = " and ".join(f"--{name} {path}" for name, path in (("albedo", albedo), ("normal", normal)) if path)
    one_input = f"{buffers} are one render's buffers" if buffers else ""
    return per_file.Work(run, volume=volume, fit=models.fit, one_input=one_input)


@app.command(
    "noise",
    no_args_is_help=True,
    cls=Command,
    short_help="Add the paper's test noises, or photos' real ones, to images.",
)
@_user_errors
@per_file.command(suffix="_noisy", verb="add noise to")
def noise_command(
    noise_type: Annotated[str, _opt("--type -t", "Noise type (see --list).", metavar=_choices(noise.NOISE_TYPES))] = (
        "gaussian"
    ),
    level: Annotated[float | None, _opt("--level -l <level>", "Noise level (default: the type's).")] = None,
    seed: Seed = 0,
    list_types: Annotated[bool, _opt("--list", "List noise types, parameters and levels.")] = False,
) -> per_file.Work | None:  # fmt: skip
    """Add synthetic noise of the masked-training paper's test types to images.

    Example: mdn noise photo.png -o noisy.png --type poisson --level 2.5 --seed 0
    """
    if list_types:
        display.print_noise_types()
        return None
    model = noise.make_noise(noise_type, level)

    def add(pixels: np.ndarray, context: batch.FileContext, progress: BatchProgress) -> np.ndarray:
        context.info.update(noise=model.name, level=model.level, seed=seed)
        file_seed = noise.file_seed(seed, context.image.path.name, context.image.pixels)
        return model(pixels, np.random.default_rng(file_seed))  # the planes of `mdn.add_noise`, as they are

    return per_file.Work(add, fit=noise.display_transform, fill_hidden=False, shrink=model.shrink)


@app.command(
    "zeroshot", no_args_is_help=True, cls=Command, short_help="Denoise single images with no clean data (MPI, ZS-N2N)."
)
@_user_errors
@per_file.command(suffix="_zeroshot")
def zeroshot_command(
    preset_name: Annotated[str | None, _opt("--preset", f"MPI settings (default: {zs.DEFAULT_PRESET_RGB} on RGB, "
                           f"{zs.DEFAULT_PRESET} on grey).", metavar=_choices(PRESETS))] = None,
    method: Annotated[str, _opt("--method", "zs-n2n needs no pre-trained model.",
                                metavar=_choices(zs.METHODS))] = "mpi",
    model: Annotated[str | None, _opt("--model -m <card>", "Fill card (see mdn models).",
                                                 show_default="the preset's; grey: fill-grey")] = None,
    iters: Annotated[int | None, _opt("--iters <n>", "Iterations per image (or tile).")] = None,
    beta: Annotated[float | None, _opt("--beta <weight>", "MPI: EMA weight of the running fill.")] = None,
    mask_ratio: Annotated[float | None, _opt("--mask-ratio <share>", "MPI: share of pixels hidden per step.")] = None,
    lr: Annotated[float | None, _opt("--lr <rate>", "Adam learning rate.")] = None,
    time_budget: Annotated[str | None, _opt("--time-budget <time>", "Per file: stop in time with a result (e.g. "
                                            "90s, 2m, 1h30m).")] = None,
    share: Annotated[bool | None, _opt("--share/--no-share", "MPI, stacks: continue each slice from the previous "
                                       "one's network, for a quarter of the iterations (default: on).")] = None,
    tile: Annotated[int | None, _opt("--tile <px>", f"MPI: tile size for large images ({zs.TILE}).")] = None,
    overlap: Annotated[int | None, _opt("--overlap <px>", f"MPI: tile overlap (default: {zs.OVERLAP}).")] = None,
    device: Device = "auto",
    precision: Precision = zs.PRECISION,
    seed: Seed = 0,
    no_self_check: Annotated[bool, _research("--no-self-check", "MPI: the fill alone (no held-out pixels, no blend "
                                             "with the input, no Wiener stage).")] = False,
) -> per_file.Work | None:  # fmt: skip
    """Denoise one image with no clean data: MPI fine-tunes a masked-fill network on the image itself.

    Example: mdn zeroshot cells.tif --iters 1000 -o cells_clean.tif
    """
    settings = {
        "method": method, "preset": preset_name, "model": model, "iters": iters, "beta": beta,
        "mask_ratio": mask_ratio, "lr": lr, "time_budget": time_budget, "share": share,
        "self_check": not no_self_check, "tile": tile, "overlap": overlap, "device": device, "precision": precision,
        "seed": seed,
    }  # fmt: skip
    zs.Settings(**settings)  # a bad setting is a usage error before any file is read

    def run(pixels: np.ndarray, context: batch.FileContext, progress: BatchProgress) -> np.ndarray:
        channels = context.image.source.layout.channel_of_planes()
        result, verdicts = zs.run(pixels, zs.Settings(**settings), progress.steps, context.info, channels)  # as the API
        context.warnings += verdicts
        return result

    def volume(source: Path, target: Path, overwrite: bool, progress: Callable[[int, int], None]) -> dict[str, Any]:
        return volumes.denoise(source, target, None, None, zeroshot=zs.Settings(**settings), overwrite=overwrite,
                               progress=progress)  # fmt: skip

    # MPI's self-check reads the noise of all it sees; the range left outside is taken through clipped
    return per_file.Work(run, volume=volume, fill_hidden=False, fit=tonemap.fit_robust)


@app.command(
    "train",
    no_args_is_help=True,
    cls=FormerOptions,
    short_help="Train a denoiser, or fit one to a camera's noisy images.",
)
@_user_errors
def train_command(
    name: Annotated[str, _opt("--name <name>", "Name of the model card to write.")],
    data: Annotated[list[str] | None, _opt("--data", "Clean training images: files or folders (repeatable).",
                                                  metavar="<path>")] = None,
    noisy: Annotated[list[str] | None, _opt("--noisy", "Instead of --data: noisy images of one camera (files, folders, "
                                            "TIFF stacks; repeatable), learned from without clean data.",
                                            metavar="<path>")] = None,
    objective: Annotated[str, _opt("--objective", "What to learn.",
                                   metavar=_choices(OBJECTIVE_DEFAULTS))] = TRAIN.objective,
    config: Annotated[str | None, _opt("--config <network>", "Network: "
                                       f"{', '.join([*SIZES, *UNET_SIZES, *ITERATIVE_SIZES])} (denoise; a U-Net "
                                       "needs --no-mask unless partial or feature-mask, a dynamic filter unless "
                                       f"dynamic-partial); {', '.join(SKIP_SIZES)} (fill).")] = None,
    iters: Annotated[int | None, _opt("--iters <n>", f"Optimisation steps in the whole run ({TRAIN.iters:,}; "
                                      f"--noisy: {NOISY['iters']:,}).")] = None,
    until: Annotated[int | None, _opt("--until <step>", "Stop (with a checkpoint) at this step.")] = None,
    time_budget: Annotated[str | None, _opt("--time-budget <time>", "Stop in time (e.g. 9m, 90s, 1h30m), with a "
                                            "checkpoint and a card; --resume goes on.")] = None,
    batch_size: Annotated[int | None, _opt("--batch <n>", f"Crops per step, per process ({TRAIN.batch}; --noisy: "
                                           f"{NOISY['batch']}).")] = None,
    crop: Annotated[int | None, _opt("--crop <px>", "Crop size in pixels (64; fill: 128).")] = None,
    lr: Annotated[float | None, _opt("--lr <rate>", "Peak learning rate (1e-4 halved at 50/75 %; fill: 2e-3 "
                                     "cosine).")] = None,
    warmup: Annotated[int | None, _opt("--warmup <steps>", f"Steps of linear learning-rate warm-up ({TRAIN.warmup}; "
                                       "render: 100).")] = None,
    schedule: Annotated[str | None, _opt("--schedule", "Learning-rate decay (default: the objective's).",
                                         metavar=_choices(SCHEDULES))] = None,
    init: Annotated[str | None, _opt("--init <card>", "Start from this model card's weights (name or JSON path; "
                                     f"--noisy: {NOISY['init']}).")] = None,
    noise_type: Annotated[str, _opt("--noise <type>", "Training noise type.")] = TRAIN.noise,
    level: Annotated[float, _opt("--level <level>", "Training (and validation) noise level.")] = TRAIN.level,
    level_range: Annotated[str | None, _opt("--level-range <low,high>", "LOW,HIGH: train each crop at a level "
                                            "drawn from this range (validation stays at --level).")] = None,
    grey_share: Annotated[float, _opt("--grey-share <share>", "Share of crops made grey, the same noise in every "
                                      "channel (as grey images run).")] = TRAIN.grey_share,
    thumbnail_share: Annotated[float, _opt("--thumbnail-share <share>", "Practical noise: share of crops made web "
                                           "thumbnails (decimated by 2, plain white noise).")] = TRAIN.thumbnail_share,
    aux_share: Annotated[float, _opt("--aux-share <share>", "Render training: share of crops that see the render's "
                                     "albedo and normal (0: a card without them).")] = TRAIN.aux_share,
    headroom: Annotated[float | None, _opt("--headroom <x>", "Render training: the tone map's exposure keeps the 95th "
                                           "percentile of brightness at most this (8; 0: no bound).")] = None,
    headroom_percentile: Annotated[float, _research("--headroom-percentile <pct>", "Render training: the percentile "
                                                    "--headroom bounds in the training crops (the card keeps 95).")
                                   ] = TRAIN.headroom_percentile,
    ema: Annotated[float | None, _opt("--ema <decay>", f"Decay of the saved EMA weights ({TRAIN.ema}; --noisy: "
                                      f"{NOISY['ema']}).")] = None,
    dead_leaves: Annotated[int, _opt("--dead-leaves <n>", "Add this many procedural images.")] = TRAIN.dead_leaves,
    stripes: Annotated[int, _opt("--stripes <n>", "Add this many procedural images of fine stripes.")] = TRAIN.stripes,
    textiles: Annotated[int, _opt("--textiles <n>", "Add this many procedural images of cloth (stripes, plaids).")] = (
        TRAIN.textiles
    ),
    validation: Annotated[list[str] | None, _opt("--val", "Held-back clean images to validate (repeatable).",
                                                         metavar="<path>")] = None,
    validate_every: Annotated[int | None, _opt("--validate-every <steps>", f"Validate and log every N steps ("
                                               f"{TRAIN.validate_every}; --noisy: {NOISY['validate_every']}).")] = None,
    checkpoint_every: Annotated[int, _opt("--checkpoint-every <steps>", "Checkpoint every N steps.")] = (
        TRAIN.checkpoint_every
    ),
    seed: Seed = TRAIN.seed,
    threads: Annotated[int, _opt("--threads <n>", "CPU threads (0: one per core).")] = TRAIN.threads,
    precision: Annotated[str, _opt("--precision", "auto: bf16 where the hardware computes it natively.",
                                    metavar=_choices(("auto", "fp32", "bf16")))] = TRAIN.precision,
    device: Annotated[str, _opt("--device", "auto (a CUDA GPU, else the CPU), cpu, cuda or cuda:N.",
                                metavar="<auto|cpu|cuda[:N]>")] = TRAIN.device,
    workdir: Annotated[Path | None, _opt("--workdir <folder>", "Checkpoint and log folder.")] = None,
    resume: Annotated[bool, _opt("--resume", "Continue the run in --workdir (options changed: recorded in the "
                                 "card).")] = False,
    overwrite: Annotated[bool, _opt("--overwrite", "Start afresh over a run or card of this --name.")] = False,
    finish: Annotated[bool, _opt("--finish", "Write the card from the checkpoint now, without training on (its "
                                 "data may be gone).")] = False,
    output: Annotated[Path | None, _opt("--output -o <folder>", "Folder for the model card (default: "
                                        "$MDN_MODELS_DIR, else mdn/models in the user data folder).")] = None,
    quiet: Quiet = False,
    no_mask: Annotated[bool, _research("--no-mask", "Train the baseline: no input or attention mask.")] = False,
    input_range: Annotated[str | None, _research("--input-mask-range <low,high>", "Input mask ratio range LOW,HIGH "
                                                 "(0.75,0.85; fill: 0.3,0.3).")] = None,
    attention: Annotated[float, _research("--attention-mask-ratio <share>", "Attention mask ratio.")] = (
        TRAIN.attention_mask
    ),
    compile_: Annotated[bool, _research("--compile", "torch.compile the network (fixed shapes): for GPUs; slower on "
                                        "CPU.")] = TRAIN.compile,
    kernel: Annotated[str, _research("--attention-kernel <kernel>", f"{KERNEL_HELP}.")] = TRAIN.attention_kernel,
) -> None:  # fmt: skip
    """Train a denoiser on clean images (a masked SwinIR, its no-mask baseline or a U-Net), or fit one to a camera's
    noisy images alone (--noisy), and write its card.

    Example: mdn train --data photos/ --val held-out/ --name my-masked --iters 20000

    Example: mdn train --noisy stacks/ --name my-scope --time-budget 10m
    """
    if data is not None and noisy is not None:
        _fail("--data and --noisy: give one (clean images with --data, or a camera's noisy ones with --noisy)")
    if (data is None) == (noisy is None):
        _fail("give the training images: clean ones with --data, or a camera's noisy ones with --noisy")
    if noisy is not None and objective not in (TRAIN.objective, SelfSupervised.name):
        _fail(f"--noisy trains the {SelfSupervised.name} objective, not --objective {objective}")
    if overwrite and (resume or finish):
        given = "--resume" if resume else "--finish"
        _fail(f"{given} and --overwrite: give one ({given} goes on from the checkpoint, --overwrite starts afresh)")
    check_name(name)  # before any file of that name is looked for
    if (registry.builtin_dir() / f"{name}.json").is_file():  # its card would stand in for the shipped one
        _fail(f"--name {name} is a shipped card's name: choose another")
    if noisy is not None:
        data, objective = noisy, SelfSupervised.name
    data, validation = _absolute(data or []), _absolute(validation or [])  # the card's and resume command's record
    workdir, output = workdir and workdir.absolute(), output and output.absolute()
    if init is not None and Path(init).suffix == ".json":  # a card's file, not a name
        init = str(Path(init).absolute())
    options = training.TrainOptions.create(
        name=name, data=data, objective=objective, config=config, iters=iters, batch=batch_size, crop=crop, lr=lr,
        warmup=warmup, schedule=schedule, init=init, noise=noise_type, level=level,
        level_range=level_range and training.parse_range(level_range), grey_share=grey_share,
        thumbnail_share=thumbnail_share, aux_share=aux_share, headroom=headroom,
        headroom_percentile=headroom_percentile,
        mask=False if no_mask else None, input_mask=input_range and training.parse_range(input_range),
        attention_mask=attention, ema=ema, dead_leaves=dead_leaves, stripes=stripes, textiles=textiles,
        validation=validation, validate_every=validate_every, checkpoint_every=checkpoint_every, seed=seed,
        threads=threads, precision=precision, compile=compile_, device=device,
        attention_kernel=kernel,
    )  # fmt: skip
    per_file.cpu_threads(threads, quiet)  # the note; the run records the count given (a resume elsewhere)
    if until is not None and until < 1:
        _fail(f"--until must be 1 or more, got {until}")
    if until is not None and until > options.iters:
        _fail(f"--until {until:,} is past --iters {options.iters:,}")
    log = functools.partial(console.print, soft_wrap=True, markup=False)
    try:
        sitting = training.Sitting(
            options, workdir, output, resume=resume or finish, overwrite=overwrite, time_budget=time_budget, log=log
        )
    except training.NameTaken as taken:
        _fail(
            f"--name {name} is taken ({', '.join(map(str, taken.paths))}): add --resume to continue that run, "
            "--overwrite to start afresh, or choose another --name"
        )
    except KeyboardInterrupt:  # while the images load: the sitting took away the run folder it had made
        log("interrupted before training: nothing written")
        raise typer.Exit(128 + signal.SIGINT) from None
    trainer = sitting.trainer
    if until is not None and until <= trainer.iteration:  # a resumed run
        sitting.close()
        _fail(f"--until {until:,}: the run is at step {trainer.iteration:,} already")
    if options.iters < trainer.iteration:
        sitting.close()
        _fail(f"--iters {options.iters:,}: the run is at step {trainer.iteration:,} already")
    if not finish and not quiet and trainer.rank == 0:  # what it found to learn from, before the hours it takes
        megapixels = sum(picture.shape[-2] * picture.shape[-1] for picture in trainer.pool) / 1e6
        pictures = "1 picture" if len(trainer.pool) == 1 else f"{len(trainer.pool):,} pictures"
        drawn = trainer.objective.procedural()
        log(f"training on {pictures} ({megapixels:,.2f} megapixels{f', {drawn:,} of them drawn' if drawn else ''})")
    if not finish:
        try:
            display.train_progress(sitting, until, quiet or trainer.rank != 0)
        except KeyboardInterrupt:
            saved = trainer.saved_iteration
            if trainer.rank == 0 and saved is None:
                log(f"interrupted at step {trainer.iteration:,}, before its first checkpoint")
            elif trainer.rank == 0:
                trained = trainer.stopped_cleanly and trainer.iteration > trainer.sitting_start  # not a second Ctrl-C
                card = sitting.write_card() if trained else None
                wrote = f"; model card of the weights so far: {card.path}" if card is not None else ""
                log(f"interrupted at step {trainer.iteration:,}; checkpoint of step {saved:,} in "
                    f"{trainer.checkpoint_path}{wrote}\ncontinue with: {sitting.resume_command()}")  # fmt: skip
            raise typer.Exit(128 + trainer.stopped_by) from None
        except (training.NothingTrained, training.Diverged) as exc:
            _fail(str(exc), EXIT_FAILED)
    card = sitting.write_card()
    sitting.close()
    if card is not None:
        done = "finished" if sitting.finished else f"step {trainer.iteration:,} of {options.iters:,}"
        go_on = "" if sitting.finished else f"\ncontinue with: {sitting.resume_command()}"
        log(f"wrote model card {card.path} ({done}){go_on}")


def _absolute(paths: list[str]) -> list[str]:
    """Paths as absolute ones (not resolved: the links the user gave stay), so that a card's record of its data
    and the command that resumes its run mean the same from any folder."""
    return [str(Path(path).absolute()) for path in paths]


models_app = typer.Typer(cls=ShowGroup, no_args_is_help=False, rich_markup_mode=None)
app.add_typer(models_app, name="models", short_help="List the installed model cards; show NAME: one card.")


@models_app.callback(invoke_without_command=True)
def models_command(context: typer.Context) -> None:
    """List the installed model cards; `mdn models show NAME` prints one.

    Example: mdn models
    """
    if context.invoked_subcommand is None:
        found, problems = registry.scan()
        display.print_models(list(found.values()))
        for problem in problems:
            if problem.path is not None and problem.path.parent == registry.user_dir():
                console.print(f"[yellow]warning[/]: {escape(str(problem))}", soft_wrap=True)


@models_app.command("show", cls=Command, short_help="One model card in a few lines (--json: the card).")
@_user_errors
def models_show(
    name: Annotated[str, typer.Argument(help="Card name or path.", metavar="NAME")],
    as_json: Annotated[bool, _opt("--json", "Print the whole card as JSON.")] = False,
) -> None:
    """Show one model card: what it is, what it runs, its training and scores (--json: the card itself).

    Example: mdn models show unet
    """
    card = registry.find(name, task=None)
    if as_json:
        # plain text whatever the terminal (FORCE_COLOR in CI had coloured it into invalid JSON)
        sys.stdout.write(json.dumps({**card.to_json(), "path": str(card.path)}, indent=2, ensure_ascii=False) + "\n")
    else:
        display.print_card(card)


def _listed(text: str | None) -> list[str] | None:
    """'a, b,c' -> ['a', 'b', 'c']; None for no text."""
    return [item.strip() for item in text.split(",") if item.strip()] if text else None


@app.command("bench", cls=FormerOptions, short_help="Measure models: quality, speed and memory.")
@_user_errors
def bench_command(
    context: typer.Context,
    images_: Annotated[list[str] | None, typer.Argument(metavar="IMAGES", help="Clean reference images, a stack's "
                                                        "planes each one, NAME[z] (default: the bundled sample "
                                                        "set).")] = None,
    models: Annotated[str | None, _opt("--models <names>", "Comma-separated cards (CARD+no-detail: without its detail "
                                       "stage; CARD+no-impulses: without filling impulses; CARD+fast, "
                                       "CARD+balanced, CARD+high: at that --quality) or peers (default: noisy, "
                                       "every card, installed peers).")] = None,
    noise_grid: Annotated[str | None, _opt("--noise <grid>", "e.g. 'gaussian:15,25;poisson' (default: every type but "
                                           "photon and practical, paper levels; none: renders alone).")] = None,
    zeroshot_methods: Annotated[str | None, _opt("--zeroshot <names>", "Zero-shot methods to add: MPI presets and "
                                                 "zs-n2n (default noises: the zero-shot grid).")] = None,
    grey: Annotated[bool, _opt("--grey", "Grey references (the mean of their channels; a set of grey files is "
                               "benched so without it): the microscopy grid; speed: grey pictures.")] = False,
    quick: Annotated[bool, _opt("--quick", "One small image, two noises: a few seconds.")] = False,
    renders: Annotated[bool, _opt("--renders", "Add Monte Carlo renders (Mitsuba 3) at --spp.")] = False,
    spps: Annotated[str, _opt("--spp <n,...>", "Renders: samples per pixel, comma-separated.")] = "16,64",
    render_set: Annotated[Path | None, _opt("--render-set <folder>", "Renders: the scenes of a render set (made by "
                                            "scripts/render_data.py --held-out) instead of the Cornell boxes.")] = None,
    speed: Annotated[bool, _opt("--speed", "Measure MP/s and peak memory instead of quality.")] = False,
    with_peers: Annotated[bool, _opt("--peers", "Speed: add the installed peers (OIDN, BM3D), each row's ratio to "
                                     "one.")] = False,
    sizes: Annotated[str, _opt("--sizes <sizes>", "Speed: square sizes or WxH, comma-separated.")] = "1024",
    runs: Annotated[int, _opt("--runs <n>", "Speed: timed runs per size (median reported).")] = 3,
    tile: Annotated[int, _opt("--tile <px>", "Tile size (0: from the memory budget).")] = ENGINE.tile,
    device: Device = ENGINE.device,
    precision: Annotated[str | None, _opt("--precision", PRECISION_HELP, metavar=PRECISIONS,
                                          show_default=f"{ENGINE.precision}; train speed: {TRAIN.precision}")] = None,
    seed: Seed = 0,
    csv_path: Annotated[Path | None, _opt("--csv <file>", "Write every score (or speed row) as CSV.")] = None,
    json_path: Annotated[Path | None, _opt("--json <file>", "Write every score (or speed row) as JSON.")] = None,
    plot_path: Annotated[Path | None, _opt("--plot <file>", "Plot PSNR against level (matplotlib).")] = None,
    markdown_path: Annotated[Path | None, _opt("--markdown <file>", "Write a model x noise summary in "
                                               "Markdown.")] = None,
    quiet: Quiet = False,
    threads: per_file.Threads = 0,
    train_speed: Annotated[bool, _research("--train-speed", "Measure training it/s per --configs, masked and "
                                           "not.")] = False,
    configs: Annotated[str, _research("--configs <names>", "Train speed: network sizes, "
                                      "comma-separated.")] = TRAIN.config,
    kernels: Annotated[str, _research("--attention-kernel <kernels>", f"{KERNEL_HELP}; comma-separated to "
                                      "compare (speed).")] = TRAIN.attention_kernel,
    compile_: Annotated[bool, _research("--compile", "Train speed: torch.compile the network, as mdn train "
                                        "--compile.")] = TRAIN.compile,
    batch_size: Annotated[int, _research("--batch <n>", "Train speed: crops per step.")] = TRAIN.batch,
    crop: Annotated[int, _research("--crop <px>", "Train speed: crop size in pixels.")] = TRAIN.crop,
) -> None:  # fmt: skip
    """Measure models: PSNR/SSIM over noise types and levels, or speed and memory with --speed.

    Example: mdn bench --models unet,small-baseline --plot study.png
    """
    use_threads(per_file.cpu_threads(threads, quiet))
    if speed and train_speed:
        _fail("--speed and --train-speed: give one (each is a bench of its own)")
    if runs < 1:
        _fail(f"--runs must be 1 or more, got {runs}")
    bench_runs.check_options(
        context, bench_runs.runs_of(speed, train_speed, noise_grid, renders or render_set is not None)
    )
    names = {"--models": models, "--zeroshot": zeroshot_methods, "--configs": configs, "--attention-kernel": kernels}
    for name, text in names.items():
        if text is not None and not _listed(text):
            _fail(f"{name} {text!r} names nothing: give at least one, or leave {name} out for the default")
    quality = not (speed or train_speed)
    references = batch.expand_inputs(images_ or [str(bench.SAMPLES)], recursive=True) if quality else []
    cards = bench.card_files(_listed(models) or bench.denoise_cards()) if not train_speed else []
    reports = {"--csv": csv_path, "--json": json_path, "--markdown": markdown_path, "--plot": plot_path}
    bench_runs.check_reports(reports, [*references, *cards])
    options = bench.engine_options(tile, device, precision, seed)
    with per_file.interrupts() as stop:  # Ctrl-C or SIGTERM: the rows so far go into the reports
        if train_speed:
            settings = {"device": device, "precision": precision, "compile": compile_, "windows": runs}
            rows = bench.train_speed_rows(_listed(configs) or [], _listed(kernels) or [], batch_size, crop, **settings)
            bench_runs.training(rows, quiet, reports, stop)
        elif speed:
            square = bench.parse_sizes(sizes)
            rows = bench.speed_rows(_listed(models), square, runs, options, _listed(kernels), with_peers, grey)
            bench_runs.speed(rows, quiet, reports, stop)
        else:
            try:
                study = bench.Study.make(
                    _listed(models), _listed(zeroshot_methods), images_, grey=grey, quick=quick, grid=noise_grid,
                    renders=renders, spps=bench.parse_spps(spps), render_set=render_set,
                )  # fmt: skip
            except KeyboardInterrupt:  # while it reads the references
                bench_runs.stopped(0, "score", reports, stop.status)
            bench_runs.quality(study, options, seed, quiet, reports, stop)
