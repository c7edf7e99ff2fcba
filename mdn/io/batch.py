"""File in, file out, for every command: expand inputs, name outputs, run each file, collect results.

Every file goes read -> display transform (fitted once on the whole image) -> work -> inverse -> write, and a
failure in one file is recorded and the batch goes on. Reading and writing run on a background thread, one file
ahead of and one behind the work step.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mdn.errors import MdnError
from mdn.io import atomic, exr, images, picture, tonemap

Work = Callable[[np.ndarray, "FileContext"], np.ndarray]
"""Maps display-range planes (N, H, W, C) to planes of the same shape."""


@dataclass(frozen=True)
class Job:
    """One input file and where its result goes."""

    input: Path
    output: Path


@dataclass
class FileContext:
    """What the work step may know about the file it is working on, and what it reports back."""

    image: picture.Image
    info: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Result:
    """The outcome of one job."""

    input: Path
    output: Path
    status: Literal["done", "skipped", "failed"]
    seconds: float = 0.0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(input=str(self.input), output=str(self.output), seconds=round(self.seconds, 3))
        return data


def expand_inputs(
    inputs: Iterable[str | Path],
    recursive: bool = False,
    skip_suffix: str = "",
    results: Path | None = None,
    not_read: list[Path] | None = None,
    empty_folders: bool = False,
) -> list[Path]:
    """Files, directories (their image files, recursively if asked) and glob patterns -> sorted file list, each
    file once however it was spelt.

    A named file is kept even if its type is unsupported, so that it fails with a clear message; files found
    inside directories or by patterns are filtered to supported types, leaving out earlier results: names that
    end in `skip_suffix`, and files inside the `results` folder (so that running a command twice on a folder does
    not process its own output). `not_read` gets the pictures found in directories that mdn does not read
    (`images.PICTURES_NOT_READ`: HEIC, GIF, camera raw), for the user to be told. Nothing found is an MdnError,
    but with `empty_folders` where every input is a folder (a watched inbox empty for now): then no files.
    """
    found: list[Path] = []
    not_read = [] if not_read is None else not_read
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            below = _results_below(path, results)
            entries = [p for p in files_in(path, recursive) if not below(p)]
            found.extend(sorted(p for p in entries if _is_image(p, skip_suffix)))
            not_read.extend(sorted(p for p in entries if _unread_picture(p)))
        elif path.exists():
            found.append(path)
        elif glob.has_magic(str(item)):
            matches = sorted(Path(p) for p in glob.glob(str(item), recursive=recursive))
            found.extend(p for p in matches if _is_image(p, skip_suffix))
        else:
            found.append(path)
    if not found and empty_folders and all(Path(item).is_dir() for item in inputs):
        return []
    if not found:
        hint = f": {not_read_words(not_read)}" if not_read else ""
        raise MdnError(f"no image files found in {', '.join(map(str, inputs)) or 'the arguments'}{hint}")
    unique: dict[str, Path] = {}
    for path in found:
        unique.setdefault(os.path.abspath(path), path)
    return list(unique.values())


def files_in(folder: Path, recursive: bool) -> Iterator[Path]:
    """The entries of `folder`, and with `recursive` of every folder below it but hidden ones (.thumbnails,
    .cache), linked folders followed (a shoot linked into a training set), each real folder once; a link up to
    the folder named or above it (`up -> ..`) is not followed out of it."""
    if not recursive:
        yield from folder.iterdir()
        return
    top = os.path.realpath(folder)
    seen: set[str] = set()
    for root, folders, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            folders.clear()
            continue
        seen.add(real)
        folders[:] = [name for name in folders if not name.startswith(".") and not _leads_up(Path(root) / name, top)]
        yield from (Path(root) / name for name in (*folders, *files))


def _leads_up(path: Path, top: str) -> bool:
    """Whether `path` is a link to `top` (the real folder a search began in) or to a folder above it."""
    if not path.is_symlink():
        return False
    real = os.path.realpath(path)
    return top == real or top.startswith(real.rstrip(os.sep) + os.sep)


def _results_below(folder: Path, results: Path | None) -> Callable[[Path], bool]:
    """Whether a file found in `folder` lies in the `results` folder below it (a command's own earlier output)."""
    inside = Path(os.path.abspath(results)) if results is not None else None
    if inside is None or inside == Path(os.path.abspath(folder)):
        return lambda path: False
    return lambda path: Path(os.path.abspath(path)).is_relative_to(inside)


def _unread_picture(path: Path) -> bool:
    return path.suffix.lower() in images.PICTURES_NOT_READ and not path.name.startswith(".") and path.is_file()


def not_read_words(pictures: list[Path]) -> str:
    """The warning for pictures a batch found in its folders and leaves out (`expand_inputs`' `not_read`)."""
    names = ", ".join(str(p) for p in pictures[:3]) + (", ..." if len(pictures) > 3 else "")
    raw = sum(p.suffix.lower() in images.CAMERA_RAW for p in pictures)
    hint = "; camera raw: develop into 16-bit TIFF or PNG first" if raw else ""
    several = len(pictures) > 1
    return f"left out {len(pictures)} picture{'s' * several} of a type mdn does not read ({names}{hint})"


def _is_image(path: Path, skip_suffix: str = "") -> bool:
    if is_result(path, skip_suffix):
        return False
    return path.is_file() and path.suffix.lower() in images.FORMATS and not path.name.startswith(".")


def is_result(path: Path, skip_suffix: str) -> bool:
    """Whether a file's or store's name ends in `skip_suffix` (a command's earlier result beside its input)."""
    return bool(skip_suffix) and name_parts(path)[0].endswith(skip_suffix)


def plan(
    inputs: list[Path],
    output: Path | None,
    suffix: str,
    root: Path | None = None,
    in_folder: str = "",
    folder: bool = False,
) -> list[Job]:
    """Name each input's output; an MdnError for an output that would be its input (mdn never writes over one).

    No `output`: NAME{suffix}.EXT next to the input (an OME-TIFF's EXT: `.ome.tif`). One input and an output
    with an image extension: that file. Otherwise `output` is a directory that mirrors the inputs' tree below
    `root` (`tree_root`: the folders named and the inputs' own; default: the inputs' common folder): a file in it
    gives DIR/NAME{in_folder}.EXT (`in_folder`: a suffix the user gave), one a recursive search found in a
    subfolder DIR/SUB/NAME{in_folder}.EXT. With `folder` (-o written with a trailing slash) `output` is such a
    directory whatever its name (`results.png/`).
    """
    jobs = _named(inputs, output, suffix, root, in_folder, folder)
    for job in jobs:
        if os.path.realpath(job.output) == os.path.realpath(job.input):
            raise MdnError("would be written over by its own result: mdn never replaces an input; give -o another "
                           "file or folder, or a --suffix", job.input)  # fmt: skip
    return jobs


def check_suffix(suffix: str) -> None:
    """An MdnError for a --suffix that holds a folder (files' and volumes' outputs alike)."""
    if "/" in suffix or os.sep in suffix:
        raise MdnError(f"--suffix is added to each file's name and cannot hold a folder: {suffix!r}")


def _named(
    inputs: list[Path], output: Path | None, suffix: str, root: Path | None, in_folder: str, folder: bool = False
) -> list[Job]:
    """`plan`'s jobs, before the check."""
    check_suffix(suffix)
    check_suffix(in_folder)
    if output is None:
        return [Job(p, suffixed(p, suffix)) for p in inputs]
    folder = folder or output.is_dir()
    if _extension(output) and output.suffix.lower() not in images.FORMATS and not folder:
        supported = ", ".join(sorted(images.FORMATS))
        raise MdnError(f"cannot write {output.suffix!r} images (supported: {supported}; a folder: a name without "
                       "one, or ending in /)", output)  # fmt: skip
    if output.suffix.lower() in images.FORMATS and not folder:
        if len(inputs) > 1:
            raise MdnError(f"{len(inputs)} inputs need a directory for -o, not a file", output)
        return [Job(inputs[0], output)]
    blocking = atomic.file_in_the_way(output)
    if blocking is not None:
        raise MdnError(f"is a file; -o needs a folder for {len(inputs)} input{'s' * (len(inputs) > 1)}", blocking)
    base = tree_root(inputs) if root is None else Path(os.path.abspath(root))
    return [Job(p, suffixed(output / Path(os.path.abspath(p)).relative_to(base), in_folder)) for p in inputs]


def tree_root(found: Iterable[Path], folders: Iterable[Path] = ()) -> Path:
    """The folder that an output folder mirrors the inputs' tree below: the common folder of the `folders` the
    user named (a file a recursive search found in a subfolder keeps that subfolder) and of the `found` inputs'
    own folders."""
    places = [*folders, *(path.parent for path in found)]
    return Path(os.path.commonpath([os.path.abspath(place) for place in places]))


OME_ENDINGS = (".ome.tif", ".ome.tiff", ".ome.zarr")
"""The endings by which readers know an OME image (Fiji and QuPath choose their OME-TIFF reader by them, and
OME-Zarr stores are named so): a name's suffix goes before them."""


def suffixed(path: Path, suffix: str) -> Path:
    """NAME{suffix}.EXT beside `path` (`path` itself for no suffix)."""
    if not suffix:
        return path
    name, ext = name_parts(path)
    return path.with_name(f"{name}{suffix}{ext}")


def name_parts(path: Path) -> tuple[str, str]:
    """A file's or store's name as (NAME, EXT), an OME ending (`OME_ENDINGS`) whole as its EXT."""
    name = path.name
    ending = next((e for e in OME_ENDINGS if name.lower().endswith(e) and len(name) > len(e)), path.suffix)
    return name[: len(name) - len(ending)], name[len(name) - len(ending) :]


def _extension(path: Path) -> bool:
    """Whether a path ends in what looks like a file extension (.gif, .jpg2) rather than part of a folder's name."""
    return bool(re.fullmatch(r"\.[A-Za-z][A-Za-z0-9]{0,4}", path.suffix))


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' -> (K, N) with 0 <= K < N: shard K of N."""
    k, _, n = text.partition("/")
    try:
        shard = int(k), int(n)
    except ValueError:
        shard = (-1, 0)
    if not 0 <= shard[0] < shard[1]:
        raise MdnError(f"--shard must be K/N with 0 <= K < N (e.g. 0/4), got {text!r}")
    return shard


def shard(jobs: list[Job], k: int, n: int) -> list[Job]:
    """Shard k of n of a planned batch: every n-th job from the k-th, in the batch's sorted order, so that n
    processes given the same inputs cover every file exactly once and each output where the whole batch would
    have put it."""
    return jobs[k::n]


def merge_reports(reports: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One report from the `--json` reports of a batch's shards (or of any batches): their files in input
    order, the counts summed."""
    reports = list(reports)
    files = sorted((f for r in reports for f in r["files"]), key=lambda f: f["input"])
    merged: dict[str, Any] = {"files": files}
    for key in ("done", "skipped", "failed", "planned"):
        merged[key] = sum(r[key] for r in reports)
    merged["interrupted"] = any(r["interrupted"] for r in reports)
    return merged


class Interrupted(Exception):
    """Ctrl-C stopped a batch: `results` are the files handled before it (done, skipped or failed), out of
    `planned`."""

    def __init__(self, results: list[Result], planned: int) -> None:
        super().__init__(f"interrupted after {len(results)} of {planned} files")
        self.results, self.planned = results, planned


def run(
    jobs: list[Job],
    work: Work,
    *,
    overwrite: bool = False,
    skip_existing: bool = False,
    layer: str | None = None,
    dtype: str | None = None,
    on_file: Callable[[Job], None] | None = None,
    on_result: Callable[[Result], None] | None = None,
    overlap: bool = True,
    stop: threading.Event | None = None,
    fit: Callable[[picture.Image], tonemap.DisplayTransform] = tonemap.fit,
    fill_hidden: bool = False,
    shrink: int = 1,
) -> list[Result]:
    """Run `work` on every job, in order; failures are recorded, never raised.

    With `overlap`, a background thread reads the next file and writes the previous result while the current
    file is worked on, so that a batch keeps the device busy (at most three files are in memory at once). The
    results, their order, the files written and the `on_file` calls are the same either way. `on_file` is called
    as each file starts its work step, `on_result` as its result is final (on the background thread for a write).

    `fit` gives each image's display transform (a card's own, `tonemap.fitter`). With `fill_hidden` (a denoiser's
    work), the colour under full transparency is filled from its visible neighbours before the work and given back
    after (`alpha.fill_hidden`): a cut-out's edge gets no halo from what its background hides. `shrink`: how many
    times smaller the work makes each side (an output format's size limit is checked on the size it writes).

    KeyboardInterrupt, or `stop` found set, ends the batch: the file being worked on is abandoned, the writes
    already handed over are finished, and `Interrupted` carries the results so far.
    """
    results: list[Future[Result]] = []
    load = functools.partial(
        _load,
        overwrite=overwrite,
        skip_existing=skip_existing,
        layer=layer,
        dtype=dtype,
        fit=fit,
        fill=fill_hidden,
        shrink=shrink,
    )
    io = ThreadPoolExecutor(1, thread_name_prefix="mdn-io") if overlap else _Inline()
    interrupted = False
    try:
        loading = io.submit(load, jobs[0]) if jobs else None
        for index, job in enumerate(jobs):
            if stop is not None and stop.is_set():
                raise KeyboardInterrupt
            loaded, loading = loading.result(), None
            following = jobs[index + 1] if index + 1 < len(jobs) else None
            # The next input is read while this file works, unless it is this file's output: then after its write.
            chained = following is not None and os.path.abspath(following.input) == os.path.abspath(job.output)
            if following is not None and not chained:
                loading = io.submit(load, following)
            if on_file is not None:
                on_file(job)
            results.append(_work(loaded, work, io, overwrite=overwrite, skip_existing=skip_existing, dtype=dtype))
            del loaded  # the input's pixels go now: the write holds only the result
            if on_result is not None:
                results[-1].add_done_callback(lambda future: on_result(future.result()))
            if chained:
                loading = io.submit(load, following)
        wait(results)
    except KeyboardInterrupt:
        interrupted = True
    io.shutdown(wait=True)
    finished = [result.result() for result in results]
    if interrupted or (stop is not None and stop.is_set()):
        raise Interrupted(finished, len(jobs))
    return finished


@dataclass
class _Loaded:
    """A file read and put in display range, waiting for its work step."""

    image: picture.Image
    transform: tonemap.DisplayTransform
    pixels: np.ndarray
    result: Result
    hidden: np.ndarray | None = None
    """Where the colour was filled before the fit and the work (its zeros), to be given back after."""


def _load(
    job: Job,
    *,
    overwrite: bool,
    skip_existing: bool,
    layer: str | None,
    dtype: str | None,
    fit: Callable[[picture.Image], tonemap.DisplayTransform],
    fill: bool = False,
    shrink: int = 1,
) -> _Loaded | Result:
    """Read a job's input and fit its display transform (with `fill`, on the picture whose colour under full
    transparency is filled: `images.with_hidden_filled`); a finished Result when it is skipped or fails."""
    start = time.perf_counter()
    result = Result(job.input, job.output, "done")
    try:
        if skip_existing and exists(job.output):
            result.status = "skipped"
            return result
        if exists(job.output) and not overwrite:
            raise atomic.OutputExists(job.output, "--overwrite or --skip-existing")
        image = images.read(job.input, layer=layer)
        stored = images.target_layout(image, job.output, dtype, shrink)  # a format that cannot store it fails before
        if dtype is None and (lost := _depth_lost(image, stored.dtype, job.output)):
            result.warnings.append(lost)
        if left_out := images.photo_metadata(image, job.output, stored)[1]:
            result.warnings.append(f"left out of the {images.format_of(job.output).upper()}: {', '.join(left_out)}")
        if image.nonfinite:
            result.warnings.append(picture.replaced(image.nonfinite))
        result.warnings += [f"{what} left out" for what in image.source.meta.get("left_out", [])]
        result.warnings += _left_out_by_shrinking(image, job.output, shrink)
        shown, hidden = images.with_hidden_filled(image) if fill else (image, None)
        transform = fit(shown)
        pixels = transform.forward(shown.pixels)
    except (MdnError, MemoryError) as exc:
        return _failed(result, exc, start)
    result.seconds = time.perf_counter() - start
    return _Loaded(image, transform, pixels, result, hidden)


def exists(path: Path) -> bool:
    """Whether a file is at `path`; an MdnError where the system cannot say (a name longer than it takes)."""
    try:
        return path.exists()
    except OSError as exc:
        raise MdnError(f"cannot write: {(exc.strerror or str(exc)).lower()}", path) from None


def _left_out_by_shrinking(image: picture.Image, output: Path, shrink: int) -> list[str]:
    """Warnings for what of an EXR written back as EXR a picture made `shrink` times smaller leaves out (its
    channels of another size: `exr.shrinking_leaves_out`)."""
    if shrink == 1 or images.format_of(output) != image.source.format:
        return []
    smaller = "halved" if shrink == 2 else f"made {shrink} times smaller"
    return [f"{what} left out (the picture is {smaller})" for what in exr.shrinking_leaves_out(image)]


def _depth_lost(image: picture.Image, stored: np.dtype, output: Path) -> str | None:
    """The warning for an output format that holds fewer bits than the input had (a 16-bit TIFF or a float one
    written as JPEG), where `--dtype` did not ask for it; None where nothing is lost."""
    read, fmt = image.source.layout.dtype, images.format_of(output).upper()
    if stored.kind == "f" or (read.kind == "u" and stored.itemsize >= read.itemsize):
        return None
    deeper = [t for t in images.sample_types(output) if t.startswith("u") and np.dtype(t).itemsize > stored.itemsize]
    if deeper:  # a PNG of a float or 16-bit picture, written at 8 bits by default
        return f"its {read} samples are written as {stored} (--dtype {deeper[-1]} keeps more of them)"
    keeps = "PNG or TIFF keeps 16 bits" if read.kind == "u" else "TIFF or EXR keeps floats"
    return f"its {read} samples are written as {stored}: {fmt} holds no more ({keeps})"


def _work(
    loaded: _Loaded | Result,
    work: Work,
    io: Executor,
    *,
    overwrite: bool,
    skip_existing: bool,
    dtype: str | None,
) -> Future[Result]:
    """The work step on a loaded file, then its write handed to `io`; a result finished before (skipped, failed)
    or by a failing work step comes back as it is."""
    if isinstance(loaded, Result):
        return _finished(loaded)
    start = time.perf_counter()
    result = loaded.result
    context = FileContext(loaded.image)
    try:
        pixels = images.with_hidden_restored(loaded.transform.inverse(work(loaded.pixels, context)), loaded.image,
                                             loaded.hidden)  # fmt: skip
    except (MdnError, MemoryError) as exc:
        return _finished(_failed(result, exc, start))
    result.info = {**context.info, **transform_info(loaded.transform, loaded.image)}
    result.warnings += context.warnings
    if doubt := tonemap.other_camera(result.info.get("camera_noise")):
        result.warnings.append(doubt)
    result.seconds += time.perf_counter() - start
    store = functools.partial(_store, overwrite=overwrite, skip_existing=skip_existing, dtype=dtype)
    return io.submit(store, loaded.image.with_pixels(pixels), result)


def transform_info(transform: tonemap.DisplayTransform, image: picture.Image) -> dict[str, Any]:
    """What a file's report records of its display transform: the photon noise it was stabilised for, in the
    image's units (one fit, or one per channel; a camera card's: its camera's), where it was, and how many times
    that camera's noise the file's is (`camera_noise`, for a camera card)."""
    noise = tonemap.photon_noise(transform, image.source.layout.dtype)
    ratio = tonemap.camera_noise(transform, list(image.pixels[..., 0])) if noise is not None else None
    return {
        **({} if noise is None else {"photon_noise": noise}),
        **({} if ratio is None else {"camera_noise": round(ratio, 3)}),
    }


def inputs_info(planes: np.ndarray, pixels: np.ndarray) -> dict[str, Any]:
    """What a file's report records of a denoiser's input: whether a render's albedo and normal went with its
    `pixels` (the model's `planes` hold more channels)."""
    return {"auxiliary": planes.shape[-1] > pixels.shape[-1]}


def _store(image: picture.Image, result: Result, *, overwrite: bool, skip_existing: bool, dtype: str | None) -> Result:
    """Write a worked image atomically; returns its finished result: skipped where `skip_existing` and another
    process (a second worker on the folder) wrote the output meanwhile."""
    start = time.perf_counter()
    try:
        images.write(image, result.output, overwrite=overwrite, dtype=dtype)
    except atomic.OutputExists:  # another run wrote it meanwhile
        if not skip_existing:
            return _failed(result, atomic.OutputExists(result.output, "--overwrite or --skip-existing"), start)
        result.status = "skipped"
    except (MdnError, MemoryError) as exc:
        return _failed(result, exc, start)
    result.seconds += time.perf_counter() - start
    return result


def _failed(result: Result, exc: MdnError | MemoryError, start: float) -> Result:
    """Mark a result failed by `exc`, counting the time since `start`; an error that names no file names the input
    (a work step's, e.g. an image too small for it)."""
    result.status = "failed"
    if isinstance(exc, MdnError):
        result.error = str(exc) if exc.path is not None else f"{result.input}: {exc}"
    else:
        result.error = f"{result.input}: out of memory"
    result.seconds += time.perf_counter() - start
    return result


def _finished(value: Any) -> Future[Any]:
    """A future that already holds `value`."""
    future: Future[Any] = Future()
    future.set_result(value)
    return future


class _Inline(Executor):
    """An executor that runs each call at once on the calling thread: `run` without overlap."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return _finished(fn(*args, **kwargs))


PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".eps", ".tif", ".tiff", ".webp")
"""The file types a plot is written as (matplotlib's by the name)."""


def check_report(
    path: Path, files: Iterable[Path], overwrite: bool = False, *, plot: bool = False, remedy: str = "use --overwrite"
) -> None:
    """An MdnError naming `path`, before any work, where a report (a `plot`: an image of one) could not or should
    not be written there: one of the command's `files` (its inputs and results, never replaced by a report
    whatever `--overwrite` says), an existing file that is not text (an image named where the report's name was
    meant; for a plot, an image matplotlib did not make), an existing text file that holds no earlier report of
    its kind unless `overwrite` (`remedy` says what else to do), or a path no file can be written to."""
    if str(path) == "-":  # a file named '-' was written
        raise MdnError("a report is written to a file, not to '-': give a file name, or /dev/stdout")
    if any(path.resolve() == file.resolve() for file in files):
        raise MdnError("is an input or a result of this command; refusing to write a report over it", path)
    if path.is_file() and not atomic.is_stream(path):  # /dev/stdout into a log: the report goes after the log's lines
        kind = _plot_kind(path) if plot else _report_kind(path)
        if kind is None:
            what = "an image matplotlib did not make" if plot else "not a text file"
            raise MdnError(f"exists and is {what}; refusing to write a report over it", path)
        if not kind and not overwrite:
            raise MdnError(f"exists and holds no report; refusing to overwrite it ({remedy})", path)
    atomic.check_writable(path)


def check_plot(path: Path) -> None:
    """An MdnError naming `path` for a plot of a file type matplotlib does not write."""
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise MdnError(f"a plot is written as {', '.join(PLOT_SUFFIXES)}, not {path.suffix or 'a bare name'}", path)


REPORT_FIELDS = ({"model", "noise", "psnr"}, {"model", "mp_per_s"}, {"config", "it_per_s"}, {"files", "planned"})
"""The fields by which mdn knows a report it wrote (a bench's scores, speed or training-speed rows; a batch's
`--json`): a CSV header or a JSON object that holds all of one set."""


def _report_kind(path: Path) -> bool | None:
    """Whether a file holds an earlier report of mdn's of the kind its name says (JSON: an object or a list of
    them, CSV: a header, holding `REPORT_FIELDS`; Markdown: a bench's table), which a new one may replace; None
    where it is not text. A user's own CSV or JSON (a shoot's exposures) is no report."""
    try:
        with path.open("rb") as file:
            start = file.read(4096)
        text = start.decode("utf-8", errors="strict" if len(start) < 4096 else "ignore")
    except (OSError, UnicodeDecodeError):
        return None
    if "\0" in text:
        return None
    if not text.strip():  # empty: a bench's report of no rows, or nothing to lose
        return True
    first = text.lstrip().split("\n", 1)[0].strip()
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _report_fields(set(first.split(",")))
    if suffix in (".md", ".markdown"):
        return first.startswith(("| model |", "| PSNR minus"))
    return first[:1] in ("{", "[") and _json_report(path)


def _json_report(path: Path) -> bool:
    """Whether a JSON file is an object, or a list of them (none: a bench's rows, none made), of a report's
    fields."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    first = data[0] if isinstance(data, list) and data else data
    return data == [] or (isinstance(first, dict) and _report_fields(set(first)))


def _report_fields(fields: set[str]) -> bool:
    return any(marks <= fields for marks in REPORT_FIELDS)


def _plot_kind(path: Path) -> bool | None:
    """True for an earlier plot (matplotlib names itself near the start of the PNG, SVG and PDF it writes)."""
    try:
        with path.open("rb") as file:
            return b"matplotlib" in file.read(1 << 16).lower() or None
    except OSError:
        return None


def write_report(
    results: list[Result], path: Path, planned: int | None = None, shard: tuple[int, int] | None = None
) -> None:
    """Write the per-file results as JSON, atomically (an MdnError naming `path` when it cannot be written);
    `planned` files, when more than the results (a batch interrupted), are recorded too, and the shard (K, N)
    that ran (`merge_reports` joins the shards' reports)."""
    report = {
        "files": [r.to_json() for r in results],
        "done": sum(r.status == "done" for r in results),
        "skipped": sum(r.status == "skipped" for r in results),
        "failed": sum(r.status == "failed" for r in results),
        "planned": len(results) if planned is None else planned,
        "interrupted": planned is not None,
    }
    if shard is not None:
        report["shard"] = f"{shard[0]}/{shard[1]}"
    text = json.dumps(report, indent=2) + "\n"
    atomic.write_atomic(path, lambda tmp: tmp.write_text(text))
