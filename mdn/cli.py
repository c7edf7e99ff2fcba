"""The `mdn` command line: parses options, prints with rich, maps errors to exit codes."""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn, ParamSpec

import numpy as np
import typer
from rich.table import Table

from mdn import __version__, batch, noise
from mdn.errors import MdnError
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

EXIT_FAILED = 1
"""Some inputs of a batch failed."""
EXIT_USAGE = 2
"""The command line itself is wrong: bad option, no inputs."""

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
    jobs = batch.plan(batch.expand_inputs(inputs, recursive), output, suffix)
    with BatchProgress(len(jobs), quiet=quiet) as progress:
        results = batch.run(
            jobs,
            work(progress),
            overwrite=overwrite,
            skip_existing=skip_existing,
            layer=layer,
            dtype=dtype,
            on_file=progress.file,
        )
    print_summary(results, quiet=quiet)
    if json_report is not None:
        batch.write_report(results, json_report)
    if any(r.status == "failed" for r in results):
        raise typer.Exit(EXIT_FAILED)


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
            return model(pixels, np.random.default_rng([seed, file_key]))

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


def _print_noise_types() -> None:
    table = Table("type", "level parameter", "default", "paper's levels")
    for name, kind in noise.NOISE_TYPES.items():
        levels = ", ".join(f"{v:g}" for v in kind.levels)
        table.add_row(name, kind.parameter, f"{kind.default_level:g}", levels)
    out.print(table)


def main() -> None:
    """Console entry point."""
    app()
