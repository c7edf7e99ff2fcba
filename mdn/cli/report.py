"""What the CLI shows while files are processed and after: rich progress bars and the summary table."""

from __future__ import annotations

import contextlib
import os
import sys
import unicodedata
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from mdn.io.batch import Job, Result

PIPED_WIDTH = 200
"""The width tables take on a pipe or in a file (unless COLUMNS says otherwise), where nothing wraps them: wide
enough that no cell is cut."""
PIPED = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
"""Results go to a pipe or a file, where lines are read whole rather than wrapped at a screen's width."""
out = Console(highlight=False, width=PIPED_WIDTH if PIPED else None)
"""Results a user may pipe or redirect (tables of models and scores); what a run did goes to `console`."""
LOGGED = not sys.stderr.isatty() and not os.environ.get("COLUMNS")
"""Messages go to a log file (a batch system's, nohup's), where the summary table is read whole too."""
console = Console(stderr=True, highlight=False, width=PIPED_WIDTH if LOGGED else None)
"""Progress, warnings, errors and what a run did: a file's `wrote` line, a batch's summary."""
FOLDED_BELOW = 40
"""The width under which a batch's summary is a line per file rather than a table: the table's four columns take
13 columns of borders and padding, `skipped` and `seconds` 7 each, and each path at least 6 to stay legible."""


class BatchProgress:
    """A bar over files and, for long files, a bar over the steps (tiles, iterations) within the current one; in a
    log or a pipe, where no bar is drawn, a line per file of a batch as its result is final (a job's log had shown
    nothing until the batch ended)."""

    def __init__(self, total_files: int, quiet: bool = False) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=quiet or not console.is_terminal,  # a log or a pipe gets the results alone
            transient=True,  # gone when the batch ends: the summary, or the one line of a single file, stays
        )
        self._files = self._progress.add_task("files", total=total_files)
        self._steps: int | None = None
        self._name = ""
        self._failed = 0
        self._total, self._done = total_files, 0
        self._lines = not quiet and not console.is_terminal and total_files > 1

    def __enter__(self) -> BatchProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._finish_steps()
        self._progress.__exit__(*exc)

    def file(self, job: Job) -> None:
        """Called as each file starts."""
        self._finish_steps()
        self._name = job.input.name
        self._describe()

    def result(self, result: Result) -> None:
        """Called as each file's result is final: every file advances the bar, failed ones are also counted
        beside it."""
        if result.status == "failed":
            self._failed += 1
            self._describe()
        self._progress.advance(self._files)
        self._done += 1
        if self._lines:
            line = f"{self._done}/{self._total} {result.status}: {printable(result.input)} ({result.seconds:.1f} s)"
            console.print(line, markup=False, soft_wrap=True)

    def _describe(self) -> None:
        failed = f" [red]({self._failed} failed)[/]" if self._failed else ""
        self._progress.update(self._files, description=f"[bold]{self._name}[/]{failed}")

    def steps(self, done: int, total: int) -> None:
        """Progress within the current file."""
        if self._steps is None:
            self._steps = self._progress.add_task("  steps", total=total)
        self._progress.update(self._steps, completed=done, total=total)

    def _finish_steps(self) -> None:
        if self._steps is not None:
            self._progress.remove_task(self._steps)
            self._steps = None


def _kept(shares: list[float] | None) -> str:
    """`--strength`'s share of the change kept, as the line after a file says it: none where all was kept."""
    if not shares or min(shares) >= 1:
        return ""
    low, high = round(100 * min(shares)), round(100 * max(shares))
    return f"kept {low} % of the change" if low == high else f"kept {low}-{high} % of the change"


def print_summary(results: list[Result], quiet: bool = False, planned: int | None = None) -> None:
    """Warnings and errors always; unless quiet, a file's `wrote` line, or a table of all files when several were
    planned (a line per file in a terminal narrower than `FOLDED_BELOW`), all on stderr: stdout is for data."""
    for result in results:
        for warning in result.warnings:
            console.print(f"[yellow]warning[/]: {escape(printable(f'{result.input}: {warning}'))}", soft_wrap=True)
        if result.error:
            console.print(f"[red]error[/]: {escape(printable(result.error))}", soft_wrap=True)
    if quiet or not results:  # no file worked on: the caller says why (an empty shard, a stop before the first)
        return
    if (planned or len(results)) == 1:
        if results and results[0].status != "failed":
            result = results[0]
            if result.status == "done":
                info = result.info
                what = [info.get("model") or info.get("noise") or info.get("method"), _kept(info.get("kept_change"))]
                what = "".join(f"{part}, " for part in what if part)
                console.print(
                    f"wrote {_short(result.output)} ({what}{result.seconds:.1f} s)", soft_wrap=True, markup=False
                )
            else:
                console.print(f"skipped, exists: {_short(result.output)}", soft_wrap=True, markup=False)
        return
    colours = {"done": "green", "skipped": "yellow", "failed": "red"}
    counts = {status: sum(r.status == status for r in results) for status in colours}
    if not LOGGED and console.width < FOLDED_BELOW:  # a table's status column would be cut: a line per file
        console.print("summary")
        for r in results:
            name, output = escape(printable(r.input)), escape(_short(r.output))
            status = f"[{colours[r.status]}]{r.status}[/]"
            console.print(f"{name}: {status} ({r.seconds:.2f} s) -> {output}", overflow="fold")
        console.print(", ".join(f"{n} {status}" for status, n in counts.items() if n))
        return
    table = Table(title="summary", title_justify="left")
    for column in ("input", "output"):
        table.add_column(column, overflow="fold")  # a narrow terminal breaks a path, never cuts it
    table.add_column("status", no_wrap=True, min_width=len("skipped"))
    table.add_column("seconds", justify="right", no_wrap=True)
    for r in results:
        table.add_row(
            escape(printable(r.input)), escape(_short(r.output)), f"[{colours[r.status]}]{r.status}", f"{r.seconds:.2f}"
        )
    if LOGGED:  # a log is read whole: the table as wide as its longest paths, none folded
        needed = console.measure(table, options=console.options.update_width(1 << 16)).maximum
        Console(stderr=True, highlight=False, width=needed).print(table)
    else:
        console.print(table)
    console.print(", ".join(f"{n} {status}" for status, n in counts.items() if n))


def _short(path: Path) -> str:
    """`path` as printed (`printable`), relative to the working folder where it lies in it."""
    with contextlib.suppress(ValueError):
        path = path.relative_to(Path.cwd())
    return printable(path)


def printable(path: Path | str) -> str:
    """`path` (or a message naming one) with any byte of its name that no text encoding holds, and any control
    character, as an escape (\\xff, \\x1b, \\n): a terminal shows it as wide as a table measured it (the bare
    byte came out six columns wide and pushed the row out), and a name's escape sequence or newline can neither
    colour the terminal nor split a one-line error."""
    text = str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(_escaped(c) if unicodedata.category(c) == "Cc" else c for c in text)


def _escaped(character: str) -> str:
    return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(character, f"\\x{ord(character):02x}")
