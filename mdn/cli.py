"""The `mdn` command line: parses options, prints with rich, maps errors to exit codes."""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import logging
import math
import os
import signal
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, NoReturn, ParamSpec

import numpy as np
import typer
from rich.progress import Progress, TextColumn
from rich.table import Table

import mdn
from mdn import (
    __version__,
    allocator,
    batch,
    bench,
    engine,
    images,
    inference,
    noise,
    peers,
    registry,
    train,
    zeroshot,
    zeroshot_run,
)
from mdn.errors import MdnError
from mdn.nets.skip import SIZES as SKIP_SIZES
from mdn.nets.swinir import SIZES
from mdn.report import BatchProgress, console, out, print_summary

app = typer.Typer(
    name="mdn",
    help="Denoise photos, microscopy and renders with masked-training and zero-shot networks.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)

P = ParamSpec("P")

logging.getLogger("imagecodecs").setLevel(logging.ERROR)  # libpng's warnings (a colour profile it dislikes) are noise
logging.getLogger("tifffile").setLevel(logging.CRITICAL)  # it logs damaged tags as errors; mdn reports the file

EXIT_FAILED = 1
"""Some inputs of a batch failed."""
EXIT_USAGE = 2
"""The command line itself is wrong: bad option, no inputs."""
EXIT_INTERRUPTED = 130
"""Stopped by Ctrl-C (128 + SIGINT, as shells report it)."""

Inputs = Annotated[
    list[str] | None,
    typer.Argument(help="Image files, directories or glob patterns.", show_default=False),
]
Output = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Output file (one input) or directory (many inputs)."),
]
Recursive = Annotated[bool, typer.Option("--recursive", "-r", help="Search directories recursively.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace existing output files, inputs included.")]
SkipExisting = Annotated[bool, typer.Option("--skip-existing", help="Leave inputs whose output exists alone.")]
Layer = Annotated[str | None, typer.Option("--layer", help="EXR layer or part to process (default: beauty).")]
Dtype = Annotated[
    str | None,
    typer.Option("--dtype", help="Sample type of the output: uint8, uint16, float16, float32 (default: input's)."),
]
JsonReport = Annotated[Path | None, typer.Option("--json", help="Write a per-file JSON report here.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print errors and warnings only.")]
PRECISION_HELP = "auto (bf16 where the hardware computes it natively), fp32, bf16 or fp16."
KERNEL_HELP = "attention kernel: auto, explicit, sdpa or flex (FlexAttention, compiled on GPUs)"
Seed = Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same bytes.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mdn {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Denoise photos, microscopy and renders with masked-training and zero-shot networks."""


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    console.print(f"[red]error[/]: {message}", soft_wrap=True)
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


def _run_batch(
    inputs: list[str] | None,
    output: Path | None,
    suffix: str,
    work: Callable[[BatchProgress], batch.Work],
    *,
    recursive: bool,
    overwrite: bool,
    skip_existing: bool,
    layer: str | None,
    dtype: str | None,
    json_report: Path | None,
    quiet: bool,
) -> None:
    """The shared file-in, file-out driver of every per-file command."""
    if not inputs:
        _fail("no inputs given (see --help)")
    found = batch.expand_inputs(inputs, recursive, skip_suffix=suffix if output is None else "")
    jobs = batch.plan(found, output, suffix)
    planned: int | None = None
    with _interrupts() as stop:
        with BatchProgress(len(jobs), quiet=quiet) as progress:
            try:
                results = batch.run(
                    jobs, work(progress), overwrite=overwrite, skip_existing=skip_existing, layer=layer, dtype=dtype,
                    on_file=progress.file, on_result=progress.result, stop=stop,
                )  # fmt: skip
            except batch.Interrupted as interrupted:
                results, planned = interrupted.results, interrupted.planned
        stop.set()  # from here on a Ctrl-C stops at once
        print_summary(results, quiet=quiet, planned=len(jobs))
        failed = any(r.status == "failed" for r in results)
        if json_report is not None:
            try:
                batch.write_report(results, json_report, planned)
            except MdnError as exc:
                console.print(f"[red]error[/]: {exc}", soft_wrap=True)
                failed = True
    if planned is not None:
        console.print(f"[yellow]interrupted[/] after {len(results)} of {planned} files")
        raise typer.Exit(EXIT_INTERRUPTED)
    if failed:
        raise typer.Exit(EXIT_FAILED)


@contextlib.contextmanager
def _interrupts() -> Iterator[threading.Event]:
    """Ctrl-C while inside: the first sets the event and raises KeyboardInterrupt (the event keeps it where a
    finaliser swallows the exception); once the event is set, a Ctrl-C removes the temporary files of writes in
    flight and exits at once with 130."""
    stop = threading.Event()

    def handle(signum: int, frame: object) -> None:
        if stop.is_set():
            images.remove_partial_writes()
            os.write(2, b"\ninterrupted again: stopped at once\n")
            os._exit(EXIT_INTERRUPTED)
        stop.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield stop
    except KeyboardInterrupt:  # before the batch started
        console.print("[yellow]interrupted[/] before any file")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        signal.signal(signal.SIGINT, previous)


@app.command("denoise", no_args_is_help=True)
@_user_errors
def denoise_command(
    inputs: Inputs = None,
    output: Output = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model card name or path to its JSON (see mdn models).")
    ] = None,
    tile: Annotated[int, typer.Option("--tile", help="Tile size in pixels (0: from --max-memory).")] = 0,
    overlap: Annotated[int | None, typer.Option("--overlap", help="Tile overlap (default: the card's).")] = None,
    batch_size: Annotated[int, typer.Option("--batch", help="Tiles per forward pass (0: 1 on CPU, 4 on GPU).")] = 0,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    precision: Annotated[str, typer.Option("--precision", help=PRECISION_HELP)] = "auto",
    max_memory: Annotated[str, typer.Option("--max-memory", help="Memory budget for tiles, e.g. 2G.")] = "2G",
    passes: Annotated[
        int | None, typer.Option("--passes", help="Average this many stochastic passes (default: the card's, or 1).")
    ] = None,
    input_mask: Annotated[
        float | None,
        typer.Option("--input-mask", help="Hide this share of input pixels in every pass (default: the card's, or 0)."),
    ] = None,
    seed: Seed = 0,
    no_attention_mask: Annotated[
        bool, typer.Option("--no-attention-mask", help="Switch the attention mask off (ablation).")
    ] = False,
    suffix: Annotated[str, typer.Option("--suffix", help="Output name suffix when -o is not given.")] = "_denoised",
    recursive: Recursive = False,
    overwrite: Overwrite = False,
    skip_existing: SkipExisting = False,
    layer: Layer = None,
    dtype: Dtype = None,
    json_report: JsonReport = None,
    quiet: Quiet = False,
) -> None:
    """Denoise photos, microscopy and renders with a trained model.

    Example: mdn denoise photo.png -o clean.png --passes 4
    """
    loaded = mdn.load_model(model)
    settings = {
        "passes": passes, "input_mask": input_mask, "seed": seed, "device": device, "precision": precision,
        "tile": tile, "overlap": overlap, "batch": batch_size, "max_memory": max_memory,
        "attention_mask": not no_attention_mask,
    }  # fmt: skip
    inference.options(loaded.card, **settings)  # a bad setting is a usage error before any file is read

    def work(progress: BatchProgress) -> batch.Work:
        def run(pixels: np.ndarray, context: batch.FileContext) -> np.ndarray:
            return mdn.denoise(pixels, loaded, **settings, axes="ZYXS", progress=progress.steps, info=context.info)

        return run

    _run_batch(
        inputs, output, suffix, work, recursive=recursive, overwrite=overwrite, skip_existing=skip_existing,
        layer=layer, dtype=dtype, json_report=json_report, quiet=quiet,
    )  # fmt: skip


@app.command("noise", no_args_is_help=True)
@_user_errors
def noise_command(
    inputs: Inputs = None,
    output: Output = None,
    noise_type: Annotated[str, typer.Option("--type", "-t", help="Noise type (see --list).")] = "gaussian",
    level: Annotated[float | None, typer.Option("--level", "-l", help="Noise level (default: the type's).")] = None,
    seed: Seed = 0,
    list_types: Annotated[bool, typer.Option("--list", help="List noise types, parameters and levels.")] = False,
    suffix: Annotated[str, typer.Option("--suffix", help="Output name suffix when -o is not given.")] = "_noisy",
    recursive: Recursive = False,
    overwrite: Overwrite = False,
    skip_existing: SkipExisting = False,
    layer: Layer = None,
    dtype: Dtype = None,
    json_report: JsonReport = None,
    quiet: Quiet = False,
) -> None:
    """Add synthetic noise of the masked-training paper's test types to images.

    Example: mdn noise photo.png -o noisy.png --type poisson --level 2.5 --seed 0
    """
    if list_types:
        _print_noise_types()
        return
    model = noise.make_noise(noise_type, level)

    def work(_: BatchProgress) -> batch.Work:
        def add(pixels: np.ndarray, context: batch.FileContext) -> np.ndarray:
            file_key = zlib.crc32(context.image.path.name.encode())
            context.info.update(noise=model.name, level=model.level, seed=seed)
            return mdn.add_noise(pixels, noise_type, level, seed=[seed, file_key], axes="ZYXS")

        return add

    _run_batch(
        inputs,
        output,
        suffix,
        work,
        recursive=recursive,
        overwrite=overwrite,
        skip_existing=skip_existing,
        layer=layer,
        dtype=dtype,
        json_report=json_report,
        quiet=quiet,
    )


@app.command("zeroshot", no_args_is_help=True)
@_user_errors
def zeroshot_command(
    inputs: Inputs = None,
    output: Output = None,
    preset_name: Annotated[
        str | None,
        typer.Option(
            "--preset", help=f"MPI settings: {', '.join(zeroshot.PRESETS)} (default: {zeroshot_run.DEFAULT_PRESET})."
        ),
    ] = None,
    method: Annotated[str, typer.Option("--method", help="mpi, or zs-n2n (no pre-trained model needed).")] = "mpi",
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Fill card (default: the preset's; grey images: fill-grey).")
    ] = None,
    iters: Annotated[int | None, typer.Option("--iters", help="Iterations per image (or tile).")] = None,
    beta: Annotated[float | None, typer.Option("--beta", help="MPI: EMA weight of the running fill.")] = None,
    mask_ratio: Annotated[
        float | None, typer.Option("--mask-ratio", help="MPI: share of pixels hidden per step.")
    ] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Adam learning rate.")] = None,
    time_budget: Annotated[
        float | None, typer.Option("--time-budget", help="Seconds per file; stops in time and writes the result.")
    ] = None,
    share: Annotated[
        bool, typer.Option("--share", help="MPI, stacks: continue each slice from the previous one.")
    ] = False,
    no_self_check: Annotated[
        bool, typer.Option("--no-self-check", help="MPI: no held-out pixels, no blending back toward the input.")
    ] = False,
    tile: Annotated[
        int | None,
        typer.Option(
            "--tile", help=f"MPI: fine-tune tiles of this size on large images (default: {zeroshot_run.TILE})."
        ),
    ] = None,
    overlap: Annotated[
        int | None, typer.Option("--overlap", help=f"MPI: tile overlap (default: {zeroshot_run.OVERLAP}).")
    ] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    precision: Annotated[str, typer.Option("--precision", help=PRECISION_HELP)] = "auto",
    seed: Seed = 0,
    suffix: Annotated[str, typer.Option("--suffix", help="Output name suffix when -o is not given.")] = "_zeroshot",
    recursive: Recursive = False,
    overwrite: Overwrite = False,
    skip_existing: SkipExisting = False,
    layer: Layer = None,
    dtype: Dtype = None,
    json_report: JsonReport = None,
    quiet: Quiet = False,
) -> None:
    """Denoise one image with no clean data: MPI fine-tunes a masked-fill network on the image itself.

    Example: mdn zeroshot cells.tif --iters 1000 -o cells_clean.tif
    """
    settings = {
        "method": method, "preset": preset_name, "model": model, "iters": iters, "beta": beta,
        "mask_ratio": mask_ratio, "lr": lr, "time_budget": time_budget, "share": share,
        "self_check": not no_self_check, "tile": tile, "overlap": overlap, "device": device, "precision": precision,
        "seed": seed,
    }  # fmt: skip
    zeroshot_run.Settings(**settings)  # a bad setting is a usage error before any file is read

    def work(progress: BatchProgress) -> batch.Work:
        def run(pixels: np.ndarray, context: batch.FileContext) -> np.ndarray:
            result = mdn.denoise_zeroshot(pixels, **settings, axes="ZYXS", progress=progress.steps, info=context.info)
            context.warnings += context.info.pop("warnings")
            return result

        return run

    _run_batch(
        inputs, output, suffix, work, recursive=recursive, overwrite=overwrite, skip_existing=skip_existing,
        layer=layer, dtype=dtype, json_report=json_report, quiet=quiet,
    )  # fmt: skip


def _ratio_range(text: str) -> tuple[float, float]:
    low, _, high = text.partition(",")
    try:
        values = float(low), float(high or low)
    except ValueError:
        raise typer.BadParameter(f"expected LOW,HIGH fractions such as 0.75,0.85, got {text!r}") from None
    if not 0 <= values[0] <= values[1] < 1:
        raise typer.BadParameter(f"expected 0 <= LOW <= HIGH < 1, got {text!r}")
    return values


@app.command("train", no_args_is_help=True)
@_user_errors
def train_command(
    data: Annotated[list[str], typer.Option("--data", help="Clean training images: files or folders (repeatable).")],
    name: Annotated[str, typer.Option("--name", help="Name of the model card to write.")],
    objective: Annotated[
        str, typer.Option("--objective", help=f"What to learn: {', '.join(train.OBJECTIVES)}.")
    ] = "denoise",
    config: Annotated[
        str | None,
        typer.Option("--config", help=f"Network: {', '.join(SIZES)} (denoise); {', '.join(SKIP_SIZES)} (fill)."),
    ] = None,
    iters: Annotated[int, typer.Option("--iters", help="Optimisation steps in the whole run.")] = 200_000,
    until: Annotated[int | None, typer.Option("--until", help="Stop (with a checkpoint) at this step.")] = None,
    time_budget: Annotated[
        str | None,
        typer.Option(
            "--time-budget", help="Stop in time (e.g. 9m, 90s, 1h30m), with a checkpoint and a card; --resume goes on."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch", help="Crops per step (per process).")] = 8,
    crop: Annotated[int | None, typer.Option("--crop", help="Crop size in pixels (64; fill: 128).")] = None,
    lr: Annotated[
        float | None, typer.Option("--lr", help="Peak learning rate (1e-4, halved at 50/75 %; fill: 2e-3, cosine).")
    ] = None,
    warmup: Annotated[int, typer.Option("--warmup", help="Steps of linear learning-rate warm-up.")] = 0,
    schedule: Annotated[
        str | None, typer.Option("--schedule", help=f"Learning-rate decay: {', '.join(train.SCHEDULES)}.")
    ] = None,
    init: Annotated[
        str | None, typer.Option("--init", help="Start from this model card's weights (name or JSON path).")
    ] = None,
    noise_type: Annotated[str, typer.Option("--noise", help="Training noise type.")] = "gaussian",
    level: Annotated[float, typer.Option("--level", help="Training noise level.")] = 15.0,
    no_mask: Annotated[bool, typer.Option("--no-mask", help="Train the baseline: no input or attention mask.")] = False,
    input_ratio: Annotated[
        str | None, typer.Option("--input-mask", help="Mask ratio range LOW,HIGH (0.75,0.85; fill: 0.3,0.3).")
    ] = None,
    attention_ratio: Annotated[float, typer.Option("--attention-mask", help="Attention mask ratio.")] = 0.75,
    ema: Annotated[float, typer.Option("--ema", help="Decay of the saved EMA weights.")] = 0.999,
    dead_leaves: Annotated[int, typer.Option("--dead-leaves", help="Add this many procedural images.")] = 0,
    validation: Annotated[
        list[str] | None, typer.Option("--val", help="Held-back clean images for validation PSNR (repeatable).")
    ] = None,
    validate_every: Annotated[int, typer.Option("--validate-every", help="Validate and log every N steps.")] = 500,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", help="Checkpoint every N steps.")] = 500,
    seed: Seed = 0,
    threads: Annotated[int, typer.Option("--threads", help="CPU threads (0: torch's default).")] = 0,
    bf16: Annotated[bool, typer.Option("--bf16", help="bfloat16 autocast for the forward pass.")] = False,
    compile_: Annotated[
        bool, typer.Option("--compile", help="torch.compile the network (fixed shapes): for GPUs; slower on CPU.")
    ] = False,
    device: Annotated[
        str, typer.Option("--device", help="auto (a CUDA GPU, else the CPU), cpu, cuda or cuda:N.")
    ] = "auto",
    kernel: Annotated[str, typer.Option("--attention-kernel", help=KERNEL_HELP.capitalize() + ".")] = "auto",
    workdir: Annotated[Path | None, typer.Option("--workdir", help="Checkpoint and log folder.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --workdir.")] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Start afresh over an existing run or card of this --name.")
    ] = False,
    finish: Annotated[
        bool, typer.Option("--finish", help="Write the model card from the checkpoint now, without training on.")
    ] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Folder for the model card (default: user models).")] = None,
    quiet: Quiet = False,
) -> None:
    """Train a masked SwinIR denoiser (or its no-mask baseline) on clean images and write its model card.

    Example: mdn train --data photos/ --val held-out/ --name my-masked --iters 20000
    """
    if objective not in train.OBJECTIVES:
        _fail(f"unknown --objective {objective!r} (choose from {', '.join(train.OBJECTIVES)})")
    given = {
        "config": config, "crop": crop, "lr": lr, "schedule": schedule, "init": init,
        "input_mask": input_ratio and _ratio_range(input_ratio),
    }  # fmt: skip
    options = train.TrainOptions.create(
        name=name, data=data, objective=objective, iters=iters, batch=batch_size, warmup=warmup, noise=noise_type,
        level=level, mask=not no_mask, attention_mask=attention_ratio, ema=ema, dead_leaves=dead_leaves,
        validation=validation or [], validate_every=validate_every, checkpoint_every=checkpoint_every, seed=seed,
        threads=threads, bf16=bf16, compile=compile_, device=device, attention_kernel=kernel,
        **{k: v for k, v in given.items() if v is not None},
    )  # fmt: skip
    started = time.monotonic()
    deadline = started + train.parse_duration(time_budget) if time_budget else None
    train.init_distributed(device)
    folder = workdir or registry.user_dir().parent / "runs" / name
    card_folder = out or registry.user_dir()
    if not (resume or finish):
        _claim_name(name, folder, card_folder, overwrite)
    folder.mkdir(parents=True, exist_ok=True)
    trainer = train.Trainer(options, folder, log=lambda m: console.print(m, soft_wrap=True))
    if resume or finish:
        trainer.resume()
    if not finish:
        try:
            _train_with_progress(trainer, until, deadline, quiet or trainer.rank != 0)
        except KeyboardInterrupt:
            if trainer.rank == 0:
                console.print(
                    f"interrupted at step {trainer.iteration:,}; checkpoint in {trainer.checkpoint_path}\n"
                    f"continue with: {_resume_command(trainer, out)}",
                    soft_wrap=True,
                )
            raise typer.Exit(130) from None
    if trainer.iteration == 0 and not finish:
        _fail(f"the time budget ran out before the first step ({time.monotonic() - started:.0f} s to start)", 1)
    if trainer.rank == 0:
        card = trainer.write_card(card_folder)
        if trainer.iteration >= options.iters:
            console.print(f"wrote model card {card.path} (finished)", soft_wrap=True)
        else:
            console.print(
                f"wrote model card {card.path} (step {trainer.iteration:,} of {options.iters:,})\n"
                f"continue with: {_resume_command(trainer, out)}",
                soft_wrap=True,
            )


def _claim_name(name: str, folder: Path, card_folder: Path, overwrite: bool) -> None:
    """Refuse to start over an existing run or card of the same name, unless told to replace them."""
    taken = [p for p in (folder / "checkpoint.pt", card_folder / f"{name}.json") if p.exists()]
    if taken and not overwrite:
        raise MdnError(
            f"--name {name} is taken ({', '.join(map(str, taken))}): add --resume to continue that run, "
            "--overwrite to start afresh, or choose another --name"
        )
    for path in (*taken, folder / "log.jsonl", card_folder / f"{name}.pt"):
        path.unlink(missing_ok=True)


def _resume_command(trainer: train.Trainer, cards: Path | None) -> str:
    """The command that continues `trainer`'s run from its checkpoint."""
    return f"{trainer.options.command()} --workdir {trainer.workdir}{f' --out {cards}' if cards else ''} --resume"


def _train_with_progress(trainer: train.Trainer, until: int | None, deadline: float | None, quiet: bool) -> None:
    columns = [*Progress.get_default_columns(), TextColumn("{task.fields[status]}")]
    with Progress(*columns, console=console, disable=quiet) as progress:
        task = progress.add_task("training", total=trainer.options.iters, completed=trainer.iteration, status="")
        status = ""
        for report in trainer.run(until, deadline):
            if report.validation:
                v = report.validation
                status = f"val {v['psnr']:.2f} dB" + (
                    f" (noisy {v['noisy_psnr']:.2f}, offset {v['offset']:+.1f})" if "offset" in v else ""
                )
            rate = report.iteration / max(report.seconds, 1e-9)
            loss = "" if math.isnan(report.loss) else f"loss {report.loss:.4f} "
            progress.update(task, completed=report.iteration, status=f"{loss}{rate:.2f} it/s {status}")


models_app = typer.Typer(no_args_is_help=False)
app.add_typer(models_app, name="models")


@models_app.callback(invoke_without_command=True)
def models_command(context: typer.Context) -> None:
    """List the installed model cards; `mdn models show NAME` prints one.

    Example: mdn models
    """
    if context.invoked_subcommand is not None:
        return
    table = Table("name", "task", "parameters", "what it is", "iterations", "default")
    for card in registry.cards().values():
        table.add_row(
            card.name, card.task, f"{card.parameters:,}", card.description, f"{card.training.get('iterations', 0):,}",
            "*" if card.default else "",
        )  # fmt: skip
    out.print(table)


@models_app.command("show")
@_user_errors
def models_show(name: Annotated[str, typer.Argument(help="Card name or path.")]) -> None:
    """Print one model card: architecture, training record and scores.

    Example: mdn models show small-masked
    """
    card = registry.find(name)
    out.print_json(data={**card.to_json(), "path": str(card.path)})


@app.command("bench")
@_user_errors
def bench_command(
    images_: Annotated[
        list[str] | None, typer.Argument(help="Clean reference images (default: the bundled sample set).")
    ] = None,
    models: Annotated[
        str | None,
        typer.Option("--models", help="Comma-separated cards or peers (default: noisy, every card, installed peers)."),
    ] = None,
    noise_grid: Annotated[
        str | None, typer.Option("--noise", help="e.g. 'gaussian:15,25;poisson' (default: every type, paper levels).")
    ] = None,
    zeroshot_methods: Annotated[
        str | None,
        typer.Option(
            "--zeroshot", help="Zero-shot methods to add: MPI presets and zs-n2n (default noises: the zero-shot grid)."
        ),
    ] = None,
    grey: Annotated[
        bool, typer.Option("--grey", help="Grey references (the mean of their channels): the microscopy grid.")
    ] = False,
    quick: Annotated[bool, typer.Option("--quick", help="One small image, two noises: a few seconds.")] = False,
    with_renders: Annotated[
        bool, typer.Option("--renders", help="Add Monte Carlo renders (Mitsuba 3) at 16 and 64 spp.")
    ] = False,
    speed_: Annotated[bool, typer.Option("--speed", help="Measure MP/s and peak memory instead of quality.")] = False,
    with_peers: Annotated[
        bool, typer.Option("--peers", help="Speed: add the installed peers (OIDN, BM3D) and each row's ratio to one.")
    ] = False,
    train_speed: Annotated[
        bool, typer.Option("--train-speed", help="Measure training iterations/s per --configs, masked and not.")
    ] = False,
    configs: Annotated[str, typer.Option("--configs", help="Train speed: network sizes, comma-separated.")] = "small",
    kernels: Annotated[
        str, typer.Option("--attention-kernel", help=f"Speed: {KERNEL_HELP}, comma-separated to compare.")
    ] = "auto",
    compile_: Annotated[
        bool, typer.Option("--compile", help="Train speed: torch.compile the network, as mdn train --compile.")
    ] = False,
    train_batch: Annotated[int, typer.Option("--train-batch", help="Train speed: crops per step.")] = 8,
    crop: Annotated[int, typer.Option("--crop", help="Train speed: crop size in pixels.")] = 48,
    sizes: Annotated[str, typer.Option("--sizes", help="Speed: square sizes or WxH, comma-separated.")] = "1024",
    runs: Annotated[int, typer.Option("--runs", help="Speed: timed runs per size (median reported).")] = 3,
    tile: Annotated[int, typer.Option("--tile", help="Tile size (0: from the memory budget).")] = 0,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    precision: Annotated[str, typer.Option("--precision", help=PRECISION_HELP)] = "fp32",
    seed: Seed = 0,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Write every score (or speed row) as CSV.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write every score (or speed row) as JSON.")] = None,
    plot_path: Annotated[Path | None, typer.Option("--plot", help="Plot PSNR against level (matplotlib).")] = None,
    markdown_path: Annotated[
        Path | None, typer.Option("--markdown", help="Write a per-model, per-noise summary table (Markdown).")
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Measure models: PSNR/SSIM over noise types and levels, or speed and memory with --speed.

    Example: mdn bench --models small-masked,small-baseline --plot study.png
    """
    if train_speed:
        settings = {"device": device, "bf16": precision == "bf16", "compile": compile_, "windows": runs}
        rows = [
            bench.train_speed(config.strip(), masked, train_batch, crop, kernel=kernel.strip(), **settings)
            for config in configs.split(",")
            for kernel in kernels.split(",")
            for masked in (True, False)
        ]
        _print_train_speed(rows)
        _write_rows([r.to_json() for r in rows], csv_path, json_path)
        return
    options = engine.EngineOptions(tile=tile, device=device, precision=precision, seed=seed)
    names = [m.strip() for m in models.split(",")] if models else None
    if speed_:
        names = names or [c.name for c in registry.cards().values() if c.task == "denoise"]
        names += [p for p in peers.available() if with_peers and p not in names]
        rows = [
            bench.peer_speed(name, _size(size), runs)
            if name in peers.PEERS
            else bench.speed(name, _size(size), runs, options, kernel.strip())
            for name in names
            for kernel in (["-"] if name in peers.PEERS else kernels.split(","))
            for size in sizes.split(",")
        ]
        reference = next((n for n in names if n in peers.PEERS), None)
        ratios = bench.speed_ratios(rows, reference) if reference else [None] * len(rows)
        _print_speed(rows, reference, ratios)
        extra = [{f"vs_{reference}": ratio} if reference else {} for ratio in ratios]
        _write_rows([{**r.to_json(), **more} for r, more in zip(rows, extra, strict=True)], csv_path, json_path)
        return
    cards = [c.name for c in registry.cards().values() if c.task == "denoise"]
    names = names or [bench.NOISY, *cards, *peers.available()]
    methods = [m.strip() for m in (zeroshot_methods or "").split(",") if m.strip()]
    names += [method if method == bench.ZS_N2N else bench.MPI_PREFIX + method for method in methods]
    references = bench.load_references(images_, grey)
    if quick:
        references = {k: v[:96, :96] for k, v in list(references.items())[:1]}
    default = "gaussian:15;poisson:2" if quick else bench.ZEROSHOT_GRID if methods else ""
    grid = bench.parse_grid(noise_grid or default) or bench.default_grid()
    with Progress(*Progress.get_default_columns(), console=console, disable=quiet) as progress:
        task = progress.add_task("bench", total=len(names) * len(grid) * len(references))
        scores = bench.quality(names, grid, references, options, seed, lambda d, t: progress.update(task, completed=d))
        if with_renders:
            renders_task = progress.add_task("renders", total=None)
            scores += bench.render_quality(
                names, options=options, progress=lambda d, t: progress.update(renders_task, completed=d, total=t)
            )
    _print_quality(scores, names)
    _write_rows([asdict(s) for s in scores], csv_path, json_path)
    if markdown_path is not None:
        markdown_path.write_text(bench.markdown(scores))
    if plot_path is not None:
        bench.plot(scores, plot_path)
        console.print(f"wrote {plot_path}")


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.strip().partition("x")
    try:
        return int(height or width), int(width)
    except ValueError:
        raise MdnError(f"not a size: {text!r} (e.g. 1024 or 6000x4000)") from None


def _print_quality(scores: list[bench.Score], names: list[str]) -> None:
    table = Table("noise", "level", *names, title="PSNR (dB) / SSIM, mean over images", title_justify="left")
    for (kind, level), cells in bench.summarise(scores).items():
        best = max(cells[m][0] for m in names)
        values = [
            f"[bold green]{cells[m][0]:.2f}[/] / {cells[m][1]:.3f}" if cells[m][0] == best else
            f"{cells[m][0]:.2f} / {cells[m][1]:.3f}"
            for m in names
        ]  # fmt: skip
        table.add_row(kind, f"{level:g}", *values)
    out.print(table)


def _print_train_speed(rows: list[bench.TrainSpeed]) -> None:
    table = Table(
        "config", "masks", "batch x crop", "it/s", "spread", "crops/s", "device", "precision", "kernel", "threads"
    )
    for r in rows:
        table.add_row(
            r.config, "on" if r.masked else "off", f"{r.batch} x {r.crop}²", f"{r.it_per_s:.2f}",
            f"{r.spread[0]:.2f}-{r.spread[1]:.2f}", f"{r.crops_per_s:.1f}", r.device, r.precision,
            r.kernel + (", compiled" if r.compiled else ""), str(r.threads),
        )  # fmt: skip
    out.print(table)


def _print_speed(rows: list[bench.Speed], reference: str | None, ratios: list[float | None]) -> None:
    columns = ["model", "size", "MP/s", "spread", "s/image", "peak RSS MB", "GPU MB", "device", "precision", "kernel"]
    table = Table(*columns, "tile", *([f"vs {reference}"] if reference else []))
    for r, ratio in zip(rows, ratios, strict=True):
        table.add_row(
            r.model, r.size, f"{r.mp_per_s:.3f}", f"{r.spread[0]:.3f}-{r.spread[1]:.3f}", f"{r.seconds:.2f}",
            str(r.peak_rss_mb), str(r.peak_gpu_mb), r.device, r.precision, r.kernel,
            f"{r.tile} x{r.batch}, {r.threads} thr" if r.tile else "-",
            *([f"{ratio:.2f}x" if ratio is not None else "-"] if reference else []),
        )  # fmt: skip
    out.print(table)


def _write_rows(rows: list[dict], csv_path: Path | None, json_path: Path | None) -> None:
    if json_path is not None:
        json_path.write_text(json.dumps(rows, indent=2) + "\n")
    if csv_path is not None and rows:
        with csv_path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


def _print_noise_types() -> None:
    table = Table("type", "level parameter", "default", "paper's levels")
    for name, kind in noise.NOISE_TYPES.items():
        levels = ", ".join(f"{v:g}" for v in kind.levels)
        table.add_row(name, kind.parameter, f"{kind.default_level:g}", levels)
    out.print(table)


def main() -> None:
    """Console entry point."""
    allocator.keep_freed_memory()
    app()
