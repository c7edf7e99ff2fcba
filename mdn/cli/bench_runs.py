"""What `mdn bench` runs: the options each kind of run takes (a usage error for the others), its reports checked
before any work, and its rows as they come, with what Ctrl-C leaves of them (the rows so far, in the reports)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import NoReturn, TypeVar

import typer
from rich.markup import escape

from mdn import bench
from mdn.bench.study import RENDERS_ALONE
from mdn.cli import display, per_file
from mdn.cli.report import console
from mdn.errors import MdnError
from mdn.inference import engine
from mdn.io import atomic, batch

BENCH_OPTIONS: dict[str, set[str]] = {
    "--plot": {"photos", "renders"}, "--markdown": {"photos", "renders"}, "--zeroshot": {"photos", "renders"},
    "--noise": {"photos", "renders"}, "--renders": {"photos", "renders"}, "--render-set": {"photos", "renders"},
    "--quick": {"photos"}, "IMAGES": {"photos"}, "--spp": {"renders"},
    "--peers": {"speed"}, "--sizes": {"speed"}, "--runs": {"speed", "train"},
    "--models": {"photos", "renders", "speed"}, "--tile": {"photos", "renders", "speed"},
    "--seed": {"photos", "renders", "speed"}, "--grey": {"photos", "speed"},
    "--attention-kernel": {"speed", "train"}, "--configs": {"train"}, "--compile": {"train"}, "--batch": {"train"},
    "--crop": {"train"},
}  # fmt: skip
"""The bench's options and arguments that some of its runs alone take, with those runs: `photos` (the quality
grid), `renders`, `speed` and `train` (training speed); every run takes the others (--device, the reports...)."""
BENCH_RUNS = {
    "quality": "the quality bench", "photos": "the photo grid", "renders": "renders (--renders, --render-set)",
    "speed": "--speed", "train": "--train-speed",
}  # fmt: skip
"""How a usage error names the runs of `BENCH_OPTIONS` (`quality`: photos and renders)."""

T = TypeVar("T")


def options_given(context: typer.Context) -> set[str]:
    """The options (as `--name`) and arguments (as their metavar) given on the command line, defaults or not."""
    given = set()
    for param in context.command.params:
        source = context.get_parameter_source(param.name or "")
        if source is not None and source.name == "COMMANDLINE":
            given.add(param.opts[0] if param.param_type_name == "option" else param.metavar or str(param.name).upper())
    return given


def runs_of(speed: bool, train_speed: bool, noise_grid: str | None, renders: bool) -> set[str]:
    """What a bench runs, as `BENCH_OPTIONS` names it: speed, train, or the photo grid (unless --noise none) and
    the renders (`renders`: asked for)."""
    if speed or train_speed:
        return {"speed" if speed else "train"}
    runs = set() if noise_grid == "none" else {"photos"}
    return runs | {"renders"} if renders else runs


def _runs_named(runs: set[str]) -> str:
    """'the quality bench and --speed': how a usage error names some runs of `BENCH_OPTIONS`."""
    if {"photos", "renders"} <= runs:
        runs = runs - {"photos", "renders"} | {"quality"}
    return " and ".join(name for run, name in BENCH_RUNS.items() if run in runs)


def _this_bench(runs: set[str]) -> str:
    """How a usage error names the bench that `runs` make: 'the quality bench', 'renders alone (--noise none)',
    '--speed' or '--train-speed'."""
    if "photos" in runs:
        return BENCH_RUNS["quality"]
    return "renders alone (--noise none)" if "renders" in runs else _runs_named(runs)


def check_options(context: typer.Context, runs: set[str]) -> None:
    """A usage error, in one line, for no run at all (--noise none without renders), for options given that none
    of the bench's `runs` takes (`BENCH_OPTIONS`) rather than leaving them unused, and for --grey with renders
    (scored in colour)."""
    if not runs:  # --noise none without renders: nothing to measure
        raise MdnError(RENDERS_ALONE)
    given = options_given(context)
    unused = [name for name, takes in BENCH_OPTIONS.items() if name in given and not takes & runs]
    if unused:
        takes = BENCH_OPTIONS[unused[0]]
        named = ", ".join(name for name in unused if BENCH_OPTIONS[name] == takes)
        raise MdnError(f"{named}: for {_runs_named(takes)}, not {_this_bench(runs)}")
    if "--grey" in given and "renders" in runs:
        raise MdnError("--grey: renders are scored in colour; bench the grey grid and the renders in two runs")


def check_reports(reports: dict[str, Path | None], inputs: list[Path]) -> None:
    """Refuse, before any work, two reports in one file, and a report over an input (a reference, a card given by
    its JSON file: `inputs`) or over a file that holds none (`batch.check_report`)."""
    named: dict[Path, str] = {}
    for option, path in reports.items():
        if path is None:
            continue
        if path.resolve() in named:
            raise MdnError(f"{named[path.resolve()]} and {option} name the same file: give each its own", path)
        named[path.resolve()] = option
        batch.check_report(path, inputs, plot=option == "--plot", remedy="remove it or choose another name")
    if reports["--plot"] is not None:
        batch.check_plot(reports["--plot"])


def _until_interrupted(rows: Iterable[T], stop: per_file.StopRequest) -> tuple[list[T], int | None]:
    """The rows a bench makes, and the exit status of the Ctrl-C or SIGTERM (a batch system's time limit, under
    `per_file.interrupts`) that stopped it first, then the rows made so far; None where none did. Once the rows
    are made, `stop` is set: a Ctrl-C then lets the reports finish, a second stops at once."""
    done: list[T] = []
    try:
        for row in rows:
            done.append(row)
    except KeyboardInterrupt:
        return done, stop.status
    finally:
        stop.set()
    return done, None


def _write_bench_rows(rows: list[dict], reports: dict[str, Path | None], interrupted: int | None, what: str) -> None:
    """Write the rows where --csv and --json ask, those of a bench stopped by a signal too (`interrupted`: the exit
    status; then say so and exit)."""
    if rows or interrupted is None:
        display.write_rows(rows, reports["--csv"], reports["--json"])
    if interrupted is not None:
        stopped(len(rows), what, reports, interrupted)


def stopped(done: int, what: str, reports: dict[str, Path | None], status: int = per_file.EXIT_INTERRUPTED) -> NoReturn:
    """Say how far a bench got before Ctrl-C or SIGTERM and which reports hold the `done` rows it made (partial
    ones); exit with `status` (128 + the signal), as `mdn denoise` does."""
    written = [str(path) for path in reports.values() if path is not None]
    if not done:
        said = f"before any {what}" + ("; nothing written" if written else "")
    else:
        said = f"after {done} {what}" + ("s" if done > 1 else "")
        if written:
            hold = "holds" if len(written) == 1 else "hold"
            said += f": {', '.join(written)} {hold} {'it' if done == 1 else 'them'} (partial)"
    console.print(f"[yellow]interrupted[/] {escape(said)}", soft_wrap=True)
    raise typer.Exit(status)


def tell(notes: Iterable[bench.Note], quiet: bool) -> None:
    """A bench's notes before its rows, a line each: its warnings always, the others unless `quiet`."""
    for note in notes:
        if note.warning:
            console.print(f"[yellow]warning[/]: {escape(note.text)}", soft_wrap=True)
        elif not quiet:
            console.print(f"note: {note.text}", soft_wrap=True, markup=False)


def training(
    rows: Iterable[bench.TrainSpeed], quiet: bool, reports: dict[str, Path | None], stop: per_file.StopRequest
) -> None:
    """Training speed rows as they come: their table (unless `quiet`) and reports."""
    done, interrupted = _until_interrupted(rows, stop)
    if done and not quiet:
        display.print_train_speed(done)
    _write_bench_rows([row.to_json() for row in done], reports, interrupted, "row")


def speed(
    rows: Iterable[bench.Speed], quiet: bool, reports: dict[str, Path | None], stop: per_file.StopRequest
) -> None:
    """Speed rows as they come, after their notes (`bench.SpeedRows`): their table with ratios to a peer (unless
    `quiet`) and reports; a size out of memory ends the rows there, with one error line and exit status 1 after
    the rows measured before it, as a file out of memory is to `mdn denoise`."""
    tell(rows.notes if isinstance(rows, bench.SpeedRows) else (), quiet)
    failure: list[bench.OutOfMemory] = []

    def until_out_of_memory() -> Iterator[bench.Speed]:
        try:
            yield from rows
        except bench.OutOfMemory as exc:
            failure.append(exc)

    done, interrupted = _until_interrupted(until_out_of_memory(), stop)
    table = bench.SpeedTable.of(done)
    if done and not quiet:
        display.print_speed(table)
    _write_bench_rows(table.to_json(), reports, interrupted, "row")
    if failure:
        console.print(f"[red]error[/]: {escape(str(failure[0]))}", soft_wrap=True)
        raise typer.Exit(per_file.EXIT_FAILED)


def quality(
    study: bench.Study,
    options: engine.EngineOptions,
    seed: int,
    quiet: bool,
    reports: dict[str, Path | None],
    stop: per_file.StopRequest,
) -> None:
    """A quality study's scores as they come, under progress bars: their table (unless `quiet`) and reports, the
    Markdown saying when Ctrl-C cut it short; the study's notes first."""
    tell(study.notes, quiet)
    with display.stage_bars(quiet) as progress:
        scores, interrupted = _until_interrupted(study.scores(options, seed, progress), stop)
    if scores and not quiet:
        display.print_quality(scores, study.models)
    markdown_path, plot_path = reports["--markdown"], reports["--plot"]
    if scores and markdown_path is not None:
        partial = f"\nPartial: interrupted after {len(scores)} scores.\n" if interrupted is not None else ""
        table = bench.markdown(scores) + partial
        atomic.write_atomic(markdown_path, lambda tmp: tmp.write_text(table))
    if scores and plot_path is not None:
        bench.plot(scores, plot_path)
        if not quiet and interrupted is None:
            console.print(f"wrote {plot_path}", markup=False)
    _write_bench_rows([asdict(s) for s in scores], reports, interrupted, "score")
