"""What the CLI shows of bench, training, noise types and model cards: rich tables and progress bars, and the
bench's rows written as CSV and JSON."""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.markup import escape
from rich.progress import Progress, TaskID, TextColumn
from rich.table import Column, Table
from rich.text import Text

from mdn import bench, noise, registry, training
from mdn.cli.report import PIPED, console, out
from mdn.io import atomic


def print_quality(scores: list[bench.Score], names: list[str]) -> None:
    """Mean PSNR / SSIM per (noise, level) and model, the best PSNR of each row in bold; a model not scored on a
    row (`+aux` names on photos, a run stopped short) leaves its cell blank."""
    rows = []
    for (kind, level), cells in bench.summarise(scores).items():
        best = max(psnr for psnr, _ in cells.values())
        values = [_score_cell(cells[m], best) if m in cells else "" for m in names]
        rows.append([kind, f"{level:g}", *values])
    print_wide(["noise", "level", *map(escape, names)], rows, keys=2, title="PSNR (dB) / SSIM, mean over images")


def _score_cell(cell: tuple[float, float], best: float) -> str:
    """'31.20 / 0.912', the PSNR in bold where it is the row's `best`."""
    psnr, ssim = cell
    shown = f"[bold green]{psnr:.2f}[/]" if psnr == best else f"{psnr:.2f}"
    return f"{shown} / {ssim:.3f}"


def print_wide(headers: list[str], rows: list[list[str]], keys: int = 1, title: str | None = None) -> None:
    """A table (cells in rich markup) whose columns after the first `keys` go into as many tables as the
    terminal's width needs, each repeating the key columns; where the key columns and any one other do not fit,
    each row as lines of `header value`. No cell is cut short and the title is one line."""
    cells = [headers, *([Text.from_markup(cell).plain for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) + 3 for i in range(len(headers))]  # a cell's padding and rule
    if title:
        out.print(Text(title, style="italic"), soft_wrap=True)
    groups = _column_groups(widths, keys, out.width - 1)  # the table's left edge
    if groups is None:
        _print_listed(headers, rows)
        return
    for group in groups:
        shown = [*range(keys), *group]
        table = Table(*(Column(headers[c], no_wrap=True) for c in shown))
        for row in rows:
            table.add_row(*(row[c] for c in shown))
        out.print(table)


def _column_groups(widths: list[int], keys: int, room: int) -> list[list[int]] | None:
    """The columns after the first `keys` in groups that fit `room` beside the key columns, in order; None where
    the key columns and the widest other one do not fit."""
    room -= sum(widths[:keys])
    if max(widths[keys:], default=0) > room:
        return None
    groups: list[list[int]] = [[]]
    for column in range(keys, len(widths)):
        if groups[-1] and sum(widths[c] for c in groups[-1]) + widths[column] > room:
            groups.append([])
        groups[-1].append(column)
    return groups


def _print_listed(headers: list[str], rows: list[list[str]]) -> None:
    """Each row as a block of `header value` lines, blocks apart by a blank line: a table for a narrow terminal,
    whose lines may wrap but lose nothing."""
    labels = [Text.from_markup(header).plain for header in headers]
    width = max(map(len, labels))
    for number, row in enumerate(rows):
        if number:
            out.print()
        for label, cell in zip(labels, row, strict=True):
            out.print(Text.assemble((label.ljust(width), "bold"), "  ", Text.from_markup(cell)), soft_wrap=True)


def print_train_speed(rows: list[bench.TrainSpeed]) -> None:
    """Training it/s per network size, masked and not."""
    headers = ["config", "masks", "batch x crop", "it/s", "spread", "crops/s", "device", "precision", "kernel",
               "threads"]  # fmt: skip
    cells = [
        [
            escape(r.config), "on" if r.masked else "off", f"{r.batch} x {r.crop}²", f"{r.it_per_s:.2f}",
            f"{r.spread[0]:.2f}-{r.spread[1]:.2f}", f"{r.crops_per_s:.1f}", r.device, r.precision,
            escape(r.kernel) + (", compiled" if r.compiled else ""), str(r.threads),
        ]
        for r in rows
    ]  # fmt: skip
    print_wide(headers, cells, keys=2)


def print_speed(speeds: bench.SpeedTable) -> None:
    """MP/s, spread, time and memory per model and size, with the ratio to a peer where one ran."""
    reference = speeds.reference
    columns = ["model", "size", "MP/s", "spread", "s/image", "peak RSS MB", "GPU MB", "device", "precision", "kernel"]
    rows = [
        [
            escape(r.model), r.size, f"{r.mp_per_s:.3f}", f"{r.spread[0]:.3f}-{r.spread[1]:.3f}", f"{r.seconds:.2f}",
            str(r.peak_rss_mb), str(r.peak_gpu_mb), r.device, r.precision, escape(r.kernel), _tiling(r),
            *([f"{ratio:.2f}x" if ratio is not None else "-"] if reference else []),
        ]
        for r, ratio in zip(speeds.rows, speeds.ratios, strict=True)
    ]  # fmt: skip
    print_wide([*columns, "tile", *([f"vs {reference}"] if reference else [])], rows, keys=2)


def _tiling(row: bench.Speed) -> str:
    """How a speed row ran: tile x batch, threads and passes."""
    if not row.tile:
        return "-"
    return f"{row.tile} x{row.batch}, {row.threads} thr" + (f", {row.passes} passes" if row.passes > 1 else "")


def write_rows(rows: list[dict], csv_path: Path | None, json_path: Path | None) -> None:
    """Write the rows as a JSON list and as CSV (an empty file for no rows), where asked."""
    if json_path is not None:
        text = json.dumps(rows, indent=2) + "\n"
        atomic.write_atomic(json_path, lambda tmp: tmp.write_text(text))
    if csv_path is not None:

        def write_csv(tmp: Path) -> None:
            with tmp.open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else [])
                if rows:
                    writer.writeheader()
                writer.writerows(rows)

        atomic.write_atomic(csv_path, write_csv)


def print_noise_types() -> None:
    """The noise types with their parameters and levels: names and defaults, which users type, whole at any width;
    the rest folded between words where the terminal is narrow, never cut, and each type as a block of lines
    where even their longest words do not fit beside the names and defaults (`_print_listed`)."""
    rows = [
        (name, kind.parameter, f"{kind.default_level:g}", ", ".join(f"{v:g}" for v in kind.levels))
        for name, kind in noise.NOISE_TYPES.items()
    ]
    headers = ["type", "level parameter", "default", "paper's levels"]
    columns = [(header, *cells) for header, cells in zip(headers, zip(*rows, strict=True), strict=True)]
    whole = [max(map(len, column)) for column in columns]
    words = [max(len(word) for cell in column for word in cell.split()) for column in columns]
    if whole[0] + words[1] + whole[2] + words[3] + 3 * len(headers) + 1 > out.width:  # a cell's padding and rule
        _print_listed(headers, [[escape(cell) for cell in row] for row in rows])
        return
    table = Table(
        Column("type", no_wrap=True, min_width=whole[0]),
        Column("level parameter", overflow="fold", min_width=words[1]),
        Column("default", no_wrap=True, min_width=whole[2]),
        Column("paper's levels", overflow="fold", min_width=words[3]),
    )
    for row in rows:
        table.add_row(*row)
    out.print(table)


def print_models(cards: list[registry.ModelCard]) -> None:
    """One line per card, names whole at any width: what it is for, its size, its training steps, and what it
    runs (the stages after its network where it has them) before its description, cut to the width left."""
    greys = {card.grey: card for card in cards if card.grey}
    rows = [
        (card.name, _use(card, greys.get(card.name)), _count(card.parameters), f"{card.steps:,}",
         (" → ".join(card.stages) + ": " if len(card.stages) > 1 else "") + card.description)
        for card in cards
    ]  # fmt: skip
    headings = ("name", "for", "params", "steps", "what it is")
    widths = [max(len(row[index]) for row in [headings, *rows]) for index in range(4)]
    room = max(out.width - sum(widths) - 2 * len(widths), 20) if not PIPED else max(len(row[-1]) for row in rows)
    for number, row in enumerate([headings, *rows]):
        cells = [cell.ljust(width) if index < 2 else cell.rjust(width) for index, (cell, width) in
                 enumerate(zip(row, widths, strict=False))]  # fmt: skip
        text = row[-1] if len(row[-1]) <= room else row[-1][: room - 1] + "…"
        out.print("  ".join([*cells, text]), style="bold" if number == 0 else None, soft_wrap=True, markup=False)
    out.print("default: mdn denoise's card; renders: for EXR files. More: mdn models show NAME", soft_wrap=True)


def print_card(card: registry.ModelCard) -> None:
    """A model card in a few lines: what it is, what it runs, how it was trained and scored, and its files."""
    training = card.training
    role = {"default": "the default of mdn denoise", "renders": "mdn denoise's card for EXR renders",
            "renders+aux": "mdn denoise's card for EXR renders with albedo and normal"}.get(card.role)  # fmt: skip
    lines = [
        f"[bold]{escape(card.name)}[/]" + (f" ({role})" if role else ""),
        f"  what it is  {card.description}",
        f"  used by     {registry.TASKS.get(card.task, card.task)}",
        f"  network     {card.architecture}, {card.parameters:,} parameters",
        f"  runs        {' → '.join(card.stages)}",
        *([f"  grey        grey pictures through {card.grey}'s network, then these stages"] if card.grey else []),
        f"  trained     {card.steps:,} steps" + (f" on {training['hardware']}" if training.get("hardware") else ""),
    ]
    if training.get("initialised_from"):
        started = training["initialised_from"]
        lines.append(f"  started at  {started.get('card', '?') if isinstance(started, dict) else started}'s weights")
    for name, score in card.scores.items():
        if isinstance(score, dict) and isinstance(score.get("psnr"), int | float):
            noisy = f" (input {score['noisy_psnr']:.2f})" if isinstance(score.get("noisy_psnr"), int | float) else ""
            lines.append(f"  scored      {name}: {score['psnr']:.2f} dB{noisy}")
    lines.append(f"  card        {card.path}")
    lines.append("  (mdn models show NAME --json prints the whole card)")
    out.print(lines[0], soft_wrap=True)
    for line in lines[1:]:
        out.print(line, soft_wrap=True, markup=False)  # descriptions and paths may hold brackets


def _use(card: registry.ModelCard, grey_of: registry.ModelCard | None = None) -> str:
    """What a card is for in the list: its default role, 'grey' for the network of the default's grey pictures
    (`grey_of`: the card that names it), else the command that runs its task."""
    if grey_of is not None and grey_of.default:
        return "grey"
    return card.role or registry.TASKS.get(card.task, card.task).removeprefix("mdn ")


def _count(number: int) -> str:
    """1234567 -> '1.2 M', 47937 -> '47.9 k'."""
    return f"{number / 1e6:.1f} M" if number >= 1e6 else f"{number / 1e3:.1f} k" if number >= 1e3 else str(number)


@contextmanager
def stage_bars(quiet: bool = False) -> Iterator[Callable[[str, int, int], None]]:
    """A progress callback (stage, done, total) drawing one bar per stage, each added as its stage starts."""
    tasks: dict[str, TaskID] = {}
    shown = not quiet and console.is_terminal  # a log or a pipe gets the tables alone
    with Progress(*Progress.get_default_columns(), console=console, disable=not shown, transient=True) as progress:

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        yield update


def train_progress(sitting: training.Sitting, until: int | None, quiet: bool) -> None:
    """Run the sitting to `until` under a bar with the loss, the speed and the latest validation; in a log or a
    pipe, where no bar is drawn, one plain line per validation and checkpoint instead (`train_line`)."""
    trainer = sitting.trainer
    lines = not quiet and not console.is_terminal
    columns = [*Progress.get_default_columns(), TextColumn("{task.fields[status]}")]
    with Progress(*columns, console=console, disable=quiet or lines) as progress:
        task = progress.add_task("training", total=trainer.options.iters, completed=trainer.iteration, status="")
        status = ""
        for report in sitting.run(until):
            if report.validation:
                status = _validation_status(report.validation)
            rate = report.iteration / max(report.seconds, 1e-9)
            loss = "" if math.isnan(report.loss) else f"loss {report.loss:.4f} "
            progress.update(task, completed=report.iteration, status=f"{loss}{rate:.2f} it/s {status}")
            saved = trainer.saved_iteration == report.iteration
            if lines and (report.validation or saved):
                validated = status if report.validation else ""
                console.print(train_line(report, validated, saved, time.monotonic() - sitting.started), markup=False,
                              soft_wrap=True)  # fmt: skip


def _validation_status(validation: dict[str, float]) -> str:
    """A validation's PSNR, with the input's and the brightness offset where the objective measures them."""
    status = f"val {validation['psnr']:.2f} dB" if "psnr" in validation else "val n/a (SURE below zero)"
    if "offset" in validation:
        status += f" (noisy {validation['noisy_psnr']:.2f}, offset {validation['offset']:+.1f})"
    return status


def train_line(report: training.Progress, validation: str, saved: bool, elapsed: float) -> str:
    """One line of a run's progress for a log: step of total, loss, the step's `validation` ('' for none),
    whether a checkpoint was saved, and the seconds `elapsed` since the command started."""
    parts = [f"step {report.iteration:,}/{report.total:,}"]
    parts += [] if math.isnan(report.loss) else [f"loss {report.loss:.4f}"]
    parts += [validation] if validation else []
    parts += ["checkpoint saved"] if saved else []
    minutes, seconds = divmod(round(elapsed), 60)
    hours, minutes = divmod(minutes, 60)
    parts.append(f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s")
    return ", ".join(parts)
