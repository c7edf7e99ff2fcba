"""Per-file commands (denoise, noise, zeroshot): the file options they share, and their run over the inputs with
progress bars, Ctrl-C, the summary, the JSON report and the exit status."""

from __future__ import annotations

import contextlib
import functools
import glob
import inspect
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.markup import escape

from mdn import volumes
from mdn.cli.report import BatchProgress, console, print_summary, printable
from mdn.device import usable_threads, use_threads
from mdn.errors import MdnError
from mdn.io import atomic, batch, images, picture, tonemap
from mdn.io.tonemap import DisplayTransform

EXIT_FAILED = 1
"""Some inputs of a batch failed, or the work itself did."""
EXIT_INTERRUPTED = 130
"""Stopped by Ctrl-C (128 + SIGINT, as shells report it; SIGTERM gives 143)."""

FileWork = Callable[[np.ndarray, batch.FileContext, BatchProgress], np.ndarray]
"""A command's work on one file's pixels: `batch.Work` with the bars it reports its steps to."""
VolumeWork = Callable[[Path, Path, bool, Callable[[int, int], None]], dict[str, Any]]
"""A command's work on one zarr volume: (source, target, overwrite, progress) -> what its report records, and under
`warnings` what to tell the user of it."""


@dataclass(frozen=True)
class Work:
    """What a per-file command does: `each` file's pixels; `volume`, a whole zarr volume (None: the command
    takes no volumes); `fit`, each image's display transform (the card's own, or `tonemap.fit`); `one_input`,
    why it takes one input alone where it does."""

    each: FileWork
    volume: VolumeWork | None = None
    fit: Callable[[picture.Image], DisplayTransform] = tonemap.fit
    one_input: str = ""
    """Why this work takes one input only ('' where it takes a batch): the options say so."""
    fill_hidden: bool = True
    """Whether the colour under full transparency is filled before the work (a denoiser's; not a noise's)."""
    shrink: int = 1
    """How many times smaller the work makes each side (`aliased` noise: 2)."""


Inputs = Annotated[
    list[str] | None,
    typer.Argument(metavar="IMAGES", help="Image files, directories or glob patterns.", show_default=False),
]


class FolderPath(type(Path())):
    """An -o written with a trailing slash (`results.png/`): a folder, whatever its name looks like, as the shell
    and other tools take it (pathlib drops the slash)."""


def output_path(text: str) -> Path:
    """-o's value as a path, a `FolderPath` where it ends in a slash."""
    ends = text.endswith(("/", os.sep)) and bool(text.strip("/" + os.sep))
    return FolderPath(text) if ends else Path(text)


Output = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="Output file (one input) or directory (many inputs).",
        metavar="<file/folder>",
        parser=output_path,
    ),
]


def _suffix_option(default: str) -> Any:
    """The --suffix option of a command whose outputs beside their inputs get `default` (None: not given)."""
    words = f"Output name suffix (beside the input: {default}; with -o FOLDER: none unless given)."
    return Annotated[str | None, typer.Option("--suffix", help=words, show_default=False, metavar="<text>")]


Suffix = _suffix_option("none")
Recursive = Annotated[bool, typer.Option("--recursive", "-r", help="Search directories recursively.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace existing output files (never an input).")]
SkipExisting = Annotated[bool, typer.Option("--skip-existing", help="Leave inputs whose output exists alone.")]
Layer = Annotated[
    str | None, typer.Option("--layer", help="EXR layer or part to process (default: beauty).", metavar="<name>")
]
Dtype = Annotated[
    str | None,
    typer.Option(
        "--dtype",
        help="Sample type of the output (default: the input's, or the closest its format stores).",
        metavar=f"<{'|'.join(images.SAMPLE_TYPES)}>",
    ),
]
JsonReport = Annotated[Path | None, typer.Option("--json", help="Write a per-file JSON report here.", metavar="<file>")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print errors and warnings only.")]
Threads = Annotated[int, typer.Option("--threads", help="CPU threads (0: one per core).", metavar="<n>")]
Shard = Annotated[
    str | None,
    typer.Option(
        "--shard",
        help="K/N: take every N-th file from the K-th (0 <= K < N), for Slurm arrays and farms.",
        metavar="<K/N>",
    ),
]


def _file_options(
    inputs: Inputs = None,
    output: Output = None,
    suffix: Suffix = None,
    recursive: Recursive = False,
    overwrite: Overwrite = False,
    skip_existing: SkipExisting = False,
    layer: Layer = None,
    dtype: Dtype = None,
    json_report: JsonReport = None,
    quiet: Quiet = False,
    threads: Threads = 0,
    shard: Shard = None,
) -> None:
    """The options every per-file command takes, as typer reads them from a signature."""


def command(suffix: str, verb: str = "denoise") -> Callable[[Callable[..., Work | None]], Callable[..., None]]:
    """A per-file command made of a function of the command's own options that returns its work on each file (None:
    nothing to run): the inputs, -o and the other file options (`suffix` the default output suffix) join its
    signature around its own options, and the files are run; a status other than 0 exits with it. `verb` says
    what it does to a picture, for the line that says a folder held none."""

    def make(own: Callable[..., Work | None]) -> Callable[..., None]:
        files = inspect.signature(_file_options, eval_str=True).parameters
        first, rest = [files["inputs"], files["output"]], [p for n, p in files.items() if n not in ("inputs", "output")]
        rest = [p.replace(annotation=_suffix_option(suffix)) if p.name == "suffix" else p for p in rest]

        @functools.wraps(own)
        def run_command(**options: Any) -> None:
            given = {name: options.pop(name) for name in files}
            given["suffix_given"] = given["suffix"] is not None
            given["suffix"] = suffix if given["suffix"] is None else given["suffix"]
            use_threads(cpu_threads(given.pop("threads"), given["quiet"]))
            apart = {**given, **options}
            file_only, volume_only = _given(apart, FILE_ONLY), _given(apart, VOLUME_ONLY)
            work = own(**options)
            if work is not None:
                status = run(work=work, **given, file_only=file_only, volume_only=volume_only, verb=verb)
            else:
                status = 0
            if status:
                raise typer.Exit(status)

        signature = inspect.signature(own, eval_str=True)
        run_command.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*first, *signature.parameters.values(), *rest], return_annotation=None
        )
        return run_command

    return make


def cpu_threads(count: int, quiet: bool = False) -> int:
    """--threads as this machine runs it (`device.usable_threads`), with a note where more were asked for than
    the cores this process may use (not with --quiet). An MdnError for a negative count."""
    used = usable_threads(count)
    if used < count and not quiet:
        console.print(f"note: --threads {count}: {used} cores here, using {used}", soft_wrap=True, markup=False)
    return used


def run(
    inputs: list[str] | None,
    output: Path | None,
    suffix: str,
    work: Work,
    *,
    verb: str = "denoise",
    suffix_given: bool = False,
    recursive: bool,
    overwrite: bool,
    skip_existing: bool,
    layer: str | None,
    dtype: str | None,
    json_report: Path | None,
    quiet: bool,
    shard: str | None = None,
    file_only: Sequence[str] = (),
    volume_only: Sequence[str] = (),
) -> int:
    """Run `work` on every input (files, folders, globs), or on shard K/N of them, and report it; returns the exit
    status: 0, EXIT_FAILED or EXIT_INTERRUPTED. Raises MdnError, before any file, for no inputs, an unusable
    output, a zarr volume among them with options given that apply to image files alone (`file_only`: their
    keywords, `FILE_ONLY`), or none with options that apply to volumes alone (`volume_only`, `VOLUME_ONLY`).
    Folders that hold nothing to work on are no error: a line says so (`verb`: what the work does), the --json
    report is written empty, and the status is 0. An `output` that is a `FolderPath` (written with a trailing
    slash) is a folder whatever its name."""
    if not inputs:
        raise MdnError("no inputs given (see --help)")
    if overwrite and skip_existing:
        raise MdnError("--overwrite and --skip-existing: give one")
    if output is not None and str(output) == "-":  # a folder named '-' was made
        raise MdnError("-o -: pictures are not written to stdout; give a file or a folder")
    folder = isinstance(output, FolderPath)
    output = Path(output) if output is not None else None
    part = batch.parse_shard(shard) if shard is not None else None
    not_read: list[Path] = []
    found, stores = _inputs(inputs, work.volume is not None, recursive, output, suffix, not_read)
    if dtype is not None and dtype not in images.SAMPLE_TYPES:
        raise MdnError(f"--dtype must be one of {', '.join(images.SAMPLE_TYPES)}, got {dtype!r}")
    count = len(found) + len(stores)
    if stores and file_only:
        raise MdnError(FILE_ONLY[file_only[0]], stores[0])
    if volume_only and not stores and count:
        raise MdnError(VOLUME_ONLY[volume_only[0]])
    if count > 1 and work.one_input:
        raise MdnError(f"{work.one_input}: give one input, not {count}")
    jobs = _plan(inputs, found, stores, output, suffix, suffix if suffix_given else "", folder)
    jobs = batch.shard(jobs, *part) if part else jobs
    if part and not jobs and count:
        console.print(f"shard {shard}: none of the {count} inputs falls to it", soft_wrap=True)
    if json_report is not None:
        batch.check_report(json_report, [*found, *stores, *(job.output for job in jobs)], overwrite)
    volume_jobs = [j for j in jobs if j.input in stores]
    jobs = [j for j in jobs if j.input not in stores]
    if not count:
        _nothing_found(inputs, not_read, verb, quiet)
    elif not_read:
        console.print(f"[yellow]warning[/]: {escape(printable(batch.not_read_words(not_read)))}", soft_wrap=True)
    planned: int | None = None
    stop = StopRequest()
    try:
        with interrupts() as stop:
            with BatchProgress(len(jobs) + len(volume_jobs), quiet=quiet) as progress:
                try:
                    results = batch.run(
                        jobs, functools.partial(work.each, progress=progress), overwrite=overwrite,
                        skip_existing=skip_existing, layer=layer, dtype=dtype, on_file=progress.file,
                        on_result=progress.result, stop=stop, fit=work.fit, fill_hidden=work.fill_hidden,
                        shrink=work.shrink,
                    )  # fmt: skip
                    for job in volume_jobs:
                        try:
                            results.append(_volume(job, work.volume, progress, overwrite, skip_existing))
                        except KeyboardInterrupt:  # its written chunks are kept and marked: a rerun goes on
                            planned = len(jobs) + len(volume_jobs)
                            break
                except batch.Interrupted as interrupted:
                    results, planned = interrupted.results, interrupted.planned
            stop.set()  # the work is done: a Ctrl-C from here on lets the summary and report finish
            failed = any(r.status == "failed" for r in results)
            report_error = None
            if json_report is not None:  # before the summary: a pipe closed early (`| head`) cannot lose it
                try:
                    batch.write_report(results, json_report, planned, part)
                except MdnError as exc:
                    report_error, failed = exc, True
            print_summary(results, quiet=quiet, planned=len(jobs) + len(volume_jobs))
            if report_error is not None:
                console.print(f"[red]error[/]: {escape(printable(str(report_error)))}", soft_wrap=True)
    except KeyboardInterrupt:  # before the batch started
        console.print("[yellow]interrupted[/] before any file")
        return stop.status
    if planned is not None:
        console.print(f"[yellow]interrupted[/] after {len(results)} of {planned} files")
        return stop.status
    if stop.signalled:  # after the last file: nothing was left undone
        console.print("[yellow]interrupted[/] after the work was done: the summary and report are whole")
    return EXIT_FAILED if failed else 0


FILE_ONLY = {
    "dtype": "--dtype applies to image files; a zarr volume's output keeps its sample type",
    "layer": "--layer picks an EXR file's layer; a zarr volume has none",
    "albedo": "--albedo and --normal are a render's buffers; a zarr volume takes none",
    "normal": "--albedo and --normal are a render's buffers; a zarr volume takes none",
    "share": "--share applies to stack files; a zarr volume's planes are each fitted from the pre-trained weights, "
    "as with --no-share",
}
"""The options (by keyword) that apply to image files alone, with why a zarr volume refuses them: given with a
volume among the inputs they are a usage error rather than left unused."""


VOLUME_ONLY = {"scheduler": "--scheduler runs a zarr volume's chunks on a cluster; no zarr volume is among the inputs"}
"""The options (by keyword) that apply to zarr volumes alone: given with none among the inputs, a usage error."""


def _nothing_found(folders: list[str], not_read: list[Path], verb: str, quiet: bool) -> None:
    """The line for `folders` that held nothing to work on (a watched inbox empty for now): a warning naming the
    pictures of types mdn does not read where they hold some, else a note (not with --quiet)."""
    where = ", ".join(map(str, folders))
    if not_read:
        words = printable(f"nothing to {verb} in {where}: {batch.not_read_words(not_read)}")
        console.print(f"[yellow]warning[/]: {escape(words)}", soft_wrap=True)
    elif not quiet:
        console.print(printable(f"nothing to {verb} in {where}: no image files"), soft_wrap=True, markup=False)


def _given(options: dict[str, Any], which: dict[str, str]) -> list[str]:
    """The keywords of `which` (`FILE_ONLY`, `VOLUME_ONLY`) among a command's `options` that were given (not None,
    not False)."""
    return [name for name in which if options.get(name) not in (None, False)]


def _plan(
    inputs: list[str],
    found: list[Path],
    stores: list[Path],
    output: Path | None,
    suffix: str,
    in_folder: str,
    folder: bool = False,
) -> list[batch.Job]:
    """The jobs of the image files `found` and the zarr `stores`, files first; an output folder mirrors them all
    below one root, the common folder of the folders named among the `inputs` and of the inputs' own
    (`batch.tree_root`), their names with `in_folder` (a --suffix given); `folder`: `output` is a folder whatever
    its name (a zarr store is a folder anyway: `volumes.output_path` decides)."""
    batch.check_suffix(suffix)  # a volume's name takes it too
    batch.check_suffix(in_folder)
    root = None
    if output is not None:
        folders = [Path(item) for item in inputs if Path(item).is_dir() and not volumes.is_volume(item)]
        root = batch.tree_root([*found, *stores], folders)
    several = len(found) + len(stores) > 1
    files = batch.plan(found, output, suffix, root, in_folder, folder) if found else []
    return files + [batch.Job(s, volumes.output_path(s, output, suffix, several, root, in_folder)) for s in stores]


def _inputs(
    inputs: list[str], volumes_taken: bool, recursive: bool, output: Path | None, suffix: str, not_read: list[Path]
) -> tuple[list[Path], list[Path]]:
    """The image files and the zarr stores that the inputs name, hold (folders) or match (patterns); stores only
    where the command takes volumes (one named otherwise is an MdnError). `not_read` gets the folders' pictures of
    a type mdn does not read."""
    pattern = {i: glob.has_magic(i) and not Path(i).exists() for i in inputs}
    stores = [Path(i) for i in inputs if volumes.is_volume(i) and not pattern[i]]
    files = [i for i in inputs if not volumes.is_volume(i) or pattern[i]]
    if stores and not volumes_taken:
        raise MdnError("zarr volumes are taken by mdn denoise and mdn zeroshot only", stores[0])
    skip_suffix = suffix if output is None else ""  # earlier results beside their inputs
    held = _volumes_in(files, recursive, output, skip_suffix) if volumes_taken else []
    stores += [store for store in held if store not in stores]
    try:
        found = (
            batch.expand_inputs(files, recursive, skip_suffix, results=output, not_read=not_read, empty_folders=True)
            if files
            else []
        )
    except MdnError:
        if not held:  # folders and patterns that hold volumes alone
            raise
        found = []
    return found, stores


def _volumes_in(items: list[str], recursive: bool, results: Path | None, skip_suffix: str = "") -> list[Path]:
    """The zarr stores that folders (their own, or all below with `recursive`) and glob patterns among `items`
    hold, sorted; none inside another store, none inside the `results` folder, none whose name ends in
    `skip_suffix` (as files: `batch.expand_inputs`)."""
    found: list[Path] = []
    for item in items:
        if glob.has_magic(item) and not Path(item).exists():
            candidates = sorted(Path(p) for p in glob.glob(item, recursive=recursive))
        elif Path(item).is_dir():
            candidates = sorted(p for p in batch.files_in(Path(item), recursive) if p.is_dir())  # links followed
        else:
            continue
        found += [p for p in candidates if volumes.is_volume(p)]
    outside = Path(os.path.abspath(results)) if results is not None else None
    kept = [p for p in found if not (outside and Path(os.path.abspath(p)).is_relative_to(outside))]
    outermost = [p for p in kept if not any(p != q and p.is_relative_to(q) for q in kept)]
    return [p for p in outermost if not batch.is_result(p, skip_suffix)]  # after: its own arrays go with it


def _volume(
    job: batch.Job, volume: VolumeWork, progress: BatchProgress, overwrite: bool, skip_existing: bool
) -> batch.Result:
    """One zarr volume through the command's `volume` work, as a batch result."""
    progress.file(job)
    start = time.perf_counter()
    try:
        if skip_existing and batch.exists(job.output) and not (job.output / volumes.PROGRESS).exists():
            result = batch.Result(job.input, job.output, "skipped")
        else:
            info = volume(job.input, job.output, overwrite, progress.steps)
            warnings = info.pop("warnings", [])
            result = batch.Result(job.input, job.output, "done", time.perf_counter() - start, info=info)
            result.warnings += warnings
            if info.get("nonfinite"):
                result.warnings.append(picture.replaced(info["nonfinite"]))
            if doubt := tonemap.other_camera(info.get("camera_noise")):
                result.warnings.append(doubt)
    except OSError as exc:  # its output's name past what the file system takes, as `batch.exists` says of a file's
        error = f"{job.output}: cannot write: {(exc.strerror or str(exc)).lower()}"
        result = batch.Result(job.input, job.output, "failed", time.perf_counter() - start, error=error)
    except MdnError as exc:
        result = batch.Result(job.input, job.output, "failed", time.perf_counter() - start, error=str(exc))
    progress.result(result)
    return result


class StopRequest(threading.Event):
    """Set by the first Ctrl-C or SIGTERM, or once the work is done; `signal` is the one that came (the exit
    status is 128 + it), `signalled` whether one did."""

    signal: int = signal.SIGINT
    signalled: bool = False

    @property
    def status(self) -> int:
        return 128 + self.signal


@contextlib.contextmanager
def interrupts() -> Iterator[StopRequest]:
    """Ctrl-C or SIGTERM (a batch system's stop, `kill`, `timeout`) while inside: the first sets the event and
    raises KeyboardInterrupt (the event keeps it where a finaliser swallows the exception), so that the batch
    stops with its summary and report; once the work is done (the event set by the run), the first is noted and
    the summary and report finish; a second removes the temporary files of writes in flight and exits at once."""
    stop = StopRequest()

    def handle(signum: int, frame: object) -> None:
        if stop.signalled:
            atomic.remove_partial_writes()
            os.write(2, b"\ninterrupted again: stopped at once\n")
            os._exit(128 + signum)
        stop.signal, stop.signalled = signum, True
        if stop.is_set():  # the work is done: its summary and report are a moment's
            return
        stop.set()
        raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, handle) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
