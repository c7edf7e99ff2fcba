"""mdn: masked-training and zero-shot image denoising.

The command line's work on numpy arrays or image files, as one function each:

    import mdn
    noisy = mdn.add_noise(photo, "gaussian", 25, seed=0)   # photo: uint8 (H, W, 3)
    clean = mdn.denoise(noisy)                             # the default card; uint8 (H, W, 3) back
    cells = mdn.denoise_zeroshot("cells.tif", preset="fast")   # MPI on a file; the array as stored comes back

An image is a numpy array or a file path. Arrays: (H, W) grey, (H, W, C) with C = 1 to 4 (grey, grey + alpha,
RGB, RGBA), (Z, H, W) a grey stack when the last axis is longer than 4, or (Z, H, W, C); `axes` (tifffile's
letters, e.g. "ZYX") overrides the guess. Integer arrays (uint8, uint16) are scaled by their type's maximum,
16-bit ones stretched from their own range as 16-bit files are, and come back in their type, rounded and
clipped, never wrapped. Float arrays within [0, 1] are display-referred values, taken as they are; with values
outside they are stretched from their own range as float TIFF files are (`hdr=True`: scene-linear renders,
tone-mapped as EXR files are); they come back as the same float type, unclipped. A file is
read as the command line reads it, and its result comes back as an array laid out and typed as the file stores
it (`layer` picks an EXR layer). Alpha is never touched. The same seed gives the same result.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
from typing import TYPE_CHECKING, Any, TypeVar

from mdn.errors import MdnError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    import numpy as np

    from mdn.io.arrays import ImageLike
    from mdn.io.picture import Image
    from mdn.io.tonemap import DisplayTransform
    from mdn.registry import Model, ModelCard
    from mdn.zeroshot.run import FillModel

__version__ = "0.1.0"

__all__ = ["MdnError", "add_noise", "denoise", "denoise_volume", "denoise_zeroshot", "load_model", "models"]

_Function = TypeVar("_Function", bound="Callable[..., Any]")
_OPTION = re.compile(r"(?<![\w'\"/.-])--(no-)?([a-z][a-z0-9-]*)")
"""An option as a message names it: not inside a word, a quoted value or a path (`'my--tile'`, `/data/--x/`)."""
_OPTION_KEYWORDS = {"tile-batch": "batch", "output": "target"}
"""Command-line options whose keyword is not their name with underscores."""


def _in_keywords(text: str, function: Callable[..., Any]) -> str:
    """`text` with the command line's options that are `function`'s keywords in their spelling (`--tile`: `tile`,
    `--no-self-check`: `self_check=False`): the checks and advice the API shares with the commands name options."""
    keywords = set(inspect.signature(function).parameters)

    def spelled(match: re.Match[str]) -> str:
        negated, option = match.groups()
        keyword = _OPTION_KEYWORDS.get(option, option.replace("-", "_"))
        if keyword not in keywords:
            return match.group(0)
        return f"{keyword}=False" if negated else keyword

    return _OPTION.sub(spelled, text)


def _keyword_errors(function: _Function) -> _Function:
    """`function` raising its MdnErrors in its keywords' spelling (`_in_keywords`)."""

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            result = function(*args, **kwargs)
        except MdnError as error:  # the same error (an OutputExists stays one), in the keywords' words
            error.message = _in_keywords(error.message, function)
            error.args = (error.message if error.path is None else f"{error.path}: {error.message}",)
            raise
        return result

    return call  # type: ignore[return-value]


def _check_info(info: object) -> None:
    if info is not None and not isinstance(info, dict):
        raise MdnError(f"info must be a dict to fill in, got {type(info).__name__}")


def _check_progress(progress: object) -> None:
    """An MdnError, before any work, for a `progress` that cannot be called with (done, total)."""
    if progress is not None and not (callable(progress) and _takes_two(progress)):
        raise MdnError(f"progress must be a function called with (done, total), got {progress!r}")


def _takes_two(function: Callable[..., Any]) -> bool:
    """Whether `function` can be called with two positional arguments (one without a signature, taken on trust)."""
    try:
        inspect.signature(function).bind(0, 0)
    except TypeError:
        return False
    except ValueError:  # some builtins have no signature to read
        return True
    return True


def _not_a_volume(image: object, instead: str) -> None:
    """An MdnError where `image` names a zarr volume, which the picture functions do not read: `instead` says
    what does."""
    if isinstance(image, str | os.PathLike):
        from mdn.volumes import is_volume

        if is_volume(image):
            raise MdnError(f"is a zarr volume: {instead}", image)


VOLUME_DENOISED = "mdn.denoise_volume(source, target) denoises it chunk by chunk"


@_keyword_errors
def denoise(
    image: ImageLike,
    model: str | os.PathLike[str] | ModelCard | Model | None = None,
    *,
    axes: str | None = None,
    hdr: bool = False,
    layer: str | None = None,
    albedo: str | os.PathLike[str] | None = None,
    normal: str | os.PathLike[str] | None = None,
    passes: int | None = None,
    input_mask: float | None = None,
    impulses: bool | None = None,
    detail: bool | None = None,
    quality: str | None = None,
    wiener: bool | None = None,
    self_check: bool | None = None,
    strength: float | str | None = None,
    keep_clean: bool | None = None,
    seed: int = 0,
    device: str = "auto",
    precision: str = "auto",
    tile: int = 0,
    overlap: int | None = None,
    batch: int = 0,
    max_memory: int | str = "2G",
    attention_mask: bool = True,
    threads: int = 0,
    progress: Callable[[int, int], None] | None = None,
    info: dict[str, Any] | None = None,
) -> np.ndarray:
    """Denoise an image with a trained model, as `mdn denoise` does.

    `model`: a card name, the path of a card's JSON, a card, a model from `load_model` (loaded once for many
    images), or None for the default card (for HDR input, an EXR file or `hdr=True`, the card marked default for
    renders). A render card also takes the render's albedo and normal: `albedo` and `normal` files, else the
    EXR's own layers when it has both (one alone is warned of and left out). `passes`, `input_mask`, `impulses`
    (fill values stuck at black or white that their neighbours do not share before the network), `detail` (put
    back the texture the network
    smoothed, measured against the image's own noise, then, at `quality` "balanced" (the default) or "high", not
    "fast", filter groups of similar patches with that as pilot; `wiener=False` means "fast"), `self_check`
    (blend the input back by the image's own noise where the card would do worse) and `keep_clean` (give an
    image that measures clean once its impulses are filled back as it came, but for them) default to the card's
    own settings;
    `strength`, the share of the change kept (1: all of it; "auto": where a colour image came out little changed,
    the share its measured noise explains), to all.
    `tile` (0: from `max_memory`), `overlap`, `batch`,
    `device` (auto, cpu, cuda, cuda:N, mps), `precision` (fp32, bf16, fp16, auto) and `threads` (CPU threads for
    the call; 0: torch's setting) set how it runs; `progress`
    gets (tiles done, tiles in all) and `info`, when given, what the command's `--json` report records of a file
    (model, tiles, tile, device, the photon noise fitted, ...). Returns the image in the input's layout and type.

        >>> clean = mdn.denoise(noisy, "small-baseline", tile=256)
    """
    from pathlib import Path

    from mdn import device as compute
    from mdn import inference
    from mdn.io import arrays, tonemap
    from mdn.io.batch import inputs_info, transform_info  # `batch` is a setting here

    _check_info(info)
    _check_progress(progress)
    _not_a_volume(image, VOLUME_DENOISED)
    opened = arrays.load(image, axes, hdr, layer)
    settings = inference.run_settings(locals())
    buffers = [Path(p) if p is not None else None for p in (albedo, normal)]
    models = inference.ModelChoice(model, settings, *buffers)
    report = info if info is not None else {}  # what the command's --json report records of a file
    told: list[str] = []

    def fit(shown: Image) -> DisplayTransform:
        transform = models.fit(shown)
        recorded = transform_info(transform, shown)
        report.update(recorded)
        if doubt := tonemap.other_camera(recorded.get("camera_noise")):  # this call's, not a reused info's
            told.append(doubt)
        return transform

    def work(planes: np.ndarray) -> np.ndarray:
        inputs, loaded, options = models.inputs(planes, opened, told.append)
        report.update(inputs_info(inputs, planes))
        return inference.run(inputs, loaded, options, progress, report)

    with compute.threads(threads, stacklevel=3):
        result = arrays.apply(opened, work, fit=fit, fill_hidden=True)
    for message in told:  # after the work, so that they point at the caller's line
        import warnings

        warnings.warn(f"{opened.path}: {_in_keywords(message, denoise)}", stacklevel=3)
    return result


@_keyword_errors
def denoise_volume(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    model: str | os.PathLike[str] | ModelCard | Model | None = None,
    *,
    passes: int | None = None,
    input_mask: float | None = None,
    impulses: bool | None = None,
    detail: bool | None = None,
    quality: str | None = None,
    wiener: bool | None = None,
    self_check: bool | None = None,
    strength: float | str | None = None,
    keep_clean: bool | None = None,
    seed: int = 0,
    device: str = "auto",
    precision: str = "auto",
    tile: int = 0,
    overlap: int | None = None,
    batch: int = 0,
    max_memory: int | str = "2G",
    attention_mask: bool = True,
    scheduler: str | None = None,
    overwrite: bool = False,
    threads: int = 0,
    progress: Callable[[int, int], None] | None = None,
    info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Denoise a zarr array or OME-Zarr image chunk by chunk into a new store, as `mdn denoise in.zarr -o
    out.zarr` does: equal to the whole volume denoised at once, memory bounded by a chunk (by a plane where the
    card's stages measure whole planes, as the default's do), an interrupted run taken up where it stopped.
    `source` and `target` are the stores' paths (`target` a .zarr store; `denoise` takes arrays in memory);
    `scheduler`: a dask.distributed scheduler address (or `local:N`) to run the chunks on; `threads`: CPU
    threads for the call; the other settings as `denoise` takes them. Needs the distributed extra
    (`pip install 'mdn[distributed]'`); returns what the report records, which `info`, when given, gets too.

        >>> mdn.denoise_volume("cells.ome.zarr", "clean.ome.zarr", scheduler="tcp://10.0.0.5:8786")
    """
    import warnings

    from mdn import device as compute
    from mdn import inference, volumes
    from mdn.io import picture, tonemap

    _check_info(info)
    _check_progress(progress)
    stores = [_store_path(path, name) for path, name in ((source, "source"), (target, "target"))]
    models = inference.ModelChoice(model, inference.run_settings(locals()))
    loaded, options = models.for_image(hdr=False)
    for note in models.untold(loaded, options):  # before a run that may be long
        warnings.warn(f"{source}: {_in_keywords(note, denoise_volume)}", stacklevel=3)
    with compute.threads(threads, stacklevel=3):
        report = volumes.denoise(*stores, loaded, options, overwrite=overwrite, scheduler=scheduler, progress=progress)
    for note in report.pop("warnings", []):  # an output begun by an earlier mdn, its settings unchecked
        warnings.warn(f"{source}: {_in_keywords(note, denoise_volume)}", stacklevel=3)
    if info is not None:
        info.update(report)
    if report.get("nonfinite"):
        warnings.warn(f"{source}: {picture.replaced(report['nonfinite'])}", stacklevel=3)
    if doubt := tonemap.other_camera(report.get("camera_noise")):
        warnings.warn(f"{source}: {doubt}", stacklevel=3)
    return report


def _store_path(path: object, name: str) -> Path:
    """A zarr store's path from a `denoise_volume` argument: an MdnError for anything but a path."""
    import os
    from pathlib import Path

    if not isinstance(path, str | os.PathLike):
        raise MdnError(f"{name} must be a zarr store's path, got {type(path).__name__} (denoise takes arrays)")
    return Path(path)


@_keyword_errors
def denoise_zeroshot(
    image: ImageLike,
    method: str = "mpi",
    preset: str | None = None,
    model: FillModel = None,
    *,
    axes: str | None = None,
    hdr: bool = False,
    layer: str | None = None,
    iters: int | None = None,
    beta: float | None = None,
    mask_ratio: float | None = None,
    lr: float | None = None,
    time_budget: float | str | None = None,
    share: bool | None = None,
    self_check: bool | None = None,
    tile: int | None = None,
    overlap: int | None = None,
    device: str = "auto",
    precision: str = "auto",
    seed: int = 0,
    threads: int = 0,
    progress: Callable[[int, int], None] | None = None,
    info: dict[str, Any] | None = None,
) -> np.ndarray:
    """Denoise an image with no clean data, as `mdn zeroshot` does: MPI fine-tunes a pre-trained fill network
    on the image itself; `method="zs-n2n"` trains a small network from scratch.

    `preset` (MPI: full, fast, real, microscopy; default full on RGB, microscopy on grey) with `iters`, `beta`,
    `mask_ratio` and `lr` overriding it; `model`: the fill card (default: the preset's, fill-grey for grey
    images). `time_budget` (seconds, or a duration such as "2m") stops in time and returns what it has. MPI
    only: `share` (default on) continues each slice of a stack from the previous one's network for a quarter of
    the iterations (`share=False`: every slice from the pre-trained weights), `tile` and `overlap` fine-tune large
    images tile by tile, and the self-check (default on) blends the input back where the fill looks worse
    (`self_check=False`: the plain fill). `threads` caps the CPU threads for the call (0: torch's setting).
    `progress` gets (iterations done, in all); `info`, when given, the method, model, iterations, device,
    precision, the self-check's estimates and its warnings (without `info` they are issued with `warnings.warn`).
    Returns the image in the input's layout and type.

        >>> clean = mdn.denoise_zeroshot(cells, preset="fast", time_budget=30)
    """
    import warnings

    from mdn import device as compute
    from mdn.io import arrays, tonemap
    from mdn.zeroshot import run as zeroshot_run

    _check_info(info)
    _check_progress(progress)
    settings = zeroshot_run.Settings(
        method, preset, model, iters, beta, mask_ratio, lr, time_budget, share, self_check, tile, overlap, device,
        precision, seed,
    )  # fmt: skip

    told: list[str] = []
    _not_a_volume(image, "`mdn zeroshot IN.zarr -o OUT.zarr` fits each of its planes")
    opened = arrays.load(image, axes, hdr, layer)
    channels = opened.source.layout.channel_of_planes()

    def work(planes: np.ndarray) -> np.ndarray:
        result, verdicts = zeroshot_run.run(planes, settings, progress, info, channels)
        told.extend(_in_keywords(verdict, denoise_zeroshot) for verdict in verdicts)
        return result

    with compute.threads(threads, stacklevel=3):
        result = arrays.apply(opened, work, fit=tonemap.fit_robust)  # as `mdn zeroshot` does
    if info is not None:
        info["warnings"] = told
    for verdict in told if info is None else ():  # after the work, so that they point at the caller's line
        warnings.warn(verdict, stacklevel=3)
    return result


@_keyword_errors
def add_noise(
    image: ImageLike,
    kind: str = "gaussian",
    level: float | None = None,
    *,
    seed: int | Sequence[int] | np.random.Generator = 0,
    axes: str | None = None,
    hdr: bool = False,
    layer: str | None = None,
) -> np.ndarray:
    """The image with synthetic noise, as `mdn noise` adds it: `kind` gaussian, speckle, poisson, photon,
    correlated, saltpepper, isp, mixture, or a photo's: aliased (a web thumbnail: the result is half the size),
    jpeg or practical, at `level` (None: the kind's default; `mdn noise --list`), drawn from
    `numpy.random.default_rng(seed)`. Returns the image in the input's layout and type.

        >>> noisy = mdn.add_noise(photo, "poisson", 2.5, seed=0)
    """
    import numpy as np

    from mdn import noise
    from mdn.io import arrays

    if not isinstance(kind, str):
        raise MdnError(f"kind must be a noise's name (see mdn noise --list), got {kind!r}")
    model = noise.make_noise(kind, level)
    _not_a_volume(image, "add_noise takes pictures: pass its planes as arrays (zarr.open(path)[...])")
    try:
        rng = np.random.default_rng(seed)
    except (ValueError, TypeError) as exc:
        raise MdnError(f"seed must be a non-negative integer (or a numpy Generator): {exc}") from None
    return arrays.apply(
        image, lambda planes: model(planes, rng), axes=axes, hdr=hdr, layer=layer, fit=noise.display_transform
    )


def models() -> list[ModelCard]:
    """The installed model cards (shipped and trained), a user's card shadowing a shipped one of its name.

    >>> [card.name for card in mdn.models()]
    """
    from mdn import registry

    return list(registry.cards().values())


@_keyword_errors
def load_model(name: str | os.PathLike[str] | None = None, task: str | None = None) -> Model:
    """A model card (by name or JSON path) with its network loaded, for `denoise` (or, for a fill card,
    `denoise_zeroshot`) to run many images without reloading it. `task` "denoise" or "zeroshot" (the card's
    "fill") refuses a card for the other; None with no task is the default denoise card, with "zeroshot" the
    fill card of the full preset on colour images.

    >>> model = mdn.load_model("small-baseline")
    >>> fill = mdn.load_model("fill-grey", "zeroshot")
    """
    from mdn import registry, zeroshot
    from mdn.zeroshot import run as zeroshot_run

    tasks = {"denoise": "denoise", "zeroshot": "fill", "fill": "fill", None: None}
    if task not in tasks:
        raise MdnError(f"task must be denoise or zeroshot, got {task!r}")
    if name is None and tasks[task] == "fill":
        name = zeroshot.fill_card(zeroshot_run.DEFAULT_PRESET_RGB, grey=False)
    return registry.load_model(name, tasks[task])


def __dir__() -> list[str]:
    """What `dir(mdn)` lists: the API, not the module's own imports."""
    return sorted([*__all__, "__version__"])
