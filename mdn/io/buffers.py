"""A render's auxiliary buffers, albedo and normal, as a render card takes them beside the beauty pass.

Renderers write them as EXR layers or parts (OIDN's and most engines' `albedo` and `normal`, Arnold's `N`,
Blender Cycles' `Denoising Albedo` and `Denoising Normal` in a view layer) or as files of their own. The network
sees albedo in [0, 1] and the normal mapped from [-1, 1] to [0, 1]; a render without them gets six zero channels,
which training showed it as "none given". An EXR's own buffers are those of the view layer of the beauty pass read
(Blender writes one Combined and one set of buffers per view layer); a file given for a buffer is read in its layer
of that buffer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mdn.errors import MdnError
from mdn.io import exr, images, picture

CHANNELS = 6
"""Albedo (3) then normal (3)."""

LAYER_NAMES = exr.BUFFER_NAMES
"""Layer names (case aside, after any view-layer prefix) that hold each buffer, in order of preference."""


def network_input(albedo: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """(..., H, W, 6) float32: albedo clipped to [0, 1], then the normal mapped from [-1, 1] to [0, 1]."""
    mapped = (np.clip(normal, -1.0, 1.0) + 1.0) / 2.0
    return np.concatenate([np.clip(albedo, 0.0, 1.0), mapped], axis=-1).astype(np.float32)


def read(
    path: Path | None,
    albedo: Path | None = None,
    normal: Path | None = None,
    warn: Callable[[str], None] | None = None,
    layer: str | None = None,
    opened: Any = None,
) -> np.ndarray | None:
    """The (1, H, W, 6) auxiliary planes of a render: from the given files, else from the EXR's own layers of its
    beauty's view layer (`layer`: the `--layer` name the beauty was read by; `opened`: the OpenEXR file the beauty
    was read from, whose channels are not decoded again; else one read; `path` None for a render
    held in memory); None when the render has neither. An EXR with one of its layers and not the other runs on its
    beauty alone (`warn` says so); one buffer file without the other is refused. NaN and Inf are replaced, and
    `warn` told how many. Normals from a file of whole numbers (PNG, 8- or 16-bit TIFF) are decoded from [0, 1]
    to [-1, 1]."""
    given = {buffer: file for buffer, file in (("albedo", albedo), ("normal", normal)) if file}
    wanted = {buffer: names for buffer, names in LAYER_NAMES.items() if buffer not in given}
    is_exr = path is not None and path.is_file() and images.format_of_file(path) == "exr"  # by content, as read
    found = exr.read_exr_layers(path, wanted, layer, opened) if wanted and is_exr else {}
    if is_exr and wanted and not found and warn is not None:
        _say_whose(path, wanted, warn)
    where = {buffer: f"{path}: its {buffer} layer" for buffer in found}
    if len(found) == 1 and not given:
        (present,) = found
        if warn is not None:
            missing = "normal" if present == "albedo" else "albedo"
            warn(f"it has {'an' if present == 'albedo' else 'a'} {present} layer but no {missing}: "
                 "denoised from its beauty alone")  # fmt: skip
        return None
    for buffer, pixels in found.items():
        _say_replaced(picture.sanitise(pixels), f"its {buffer} layer", warn)
    for buffer, file in given.items():
        found[buffer], where[buffer] = _file_pixels(buffer, file, warn), str(file)
        if is_exr:
            _check_window(buffer, file, path, layer)
    if not found:
        return None
    if len(found) == 1:
        (present,) = found
        raise MdnError(f"a render card takes albedo and normal together; only the {present} was found", path)
    for buffer in ("albedo", "normal"):
        if found[buffer].shape[-1] != 3:
            channels = found[buffer].shape[-1]
            raise MdnError(f"the {buffer} buffer has {channels} channel{'s' * (channels > 1)}, not 3", where[buffer])
    if found["albedo"].shape != found["normal"].shape:
        sizes = {b: "x".join(map(str, found[b].shape[1::-1])) for b in found}
        raise MdnError(f"the albedo is {sizes['albedo']}, the normal {sizes['normal']}", where["normal"])
    return network_input(found["albedo"], found["normal"])[None]


def _file_pixels(buffer: str, file: Path, warn: Callable[[str], None] | None) -> np.ndarray:
    """A buffer's (H, W, C) pixels from a file of its own (an EXR's layer of it: `_file_layer`), a normal of whole
    numbers decoded to [-1, 1]; `warn` told of the NaN and Inf replaced."""
    image = images.read(file, layer=_file_layer(buffer, file))
    _say_replaced(image.nonfinite, f"its {buffer} ({file})", warn)
    pixels = image.pixels[0]
    if buffer == "normal" and np.issubdtype(image.source.layout.dtype, np.integer):
        pixels = pixels * 2.0 - 1.0  # stored as (n + 1) / 2
    return pixels


def _check_window(buffer: str, file: Path, beauty: Path, layer: str | None) -> None:
    """An MdnError where a buffer's own EXR covers other pixels than the beauty's EXR (its data window offset: a
    crop or region render), which, taken pixel for pixel, would lie beside the picture."""
    if images.format_of_file(file) != "exr":
        return
    own, theirs = exr.layer_window(file, _file_layer(buffer, file)), exr.layer_window(beauty, layer)
    if own != theirs:
        raise MdnError(f"the {buffer}'s data window {own} is not the beauty's {theirs} ({beauty})", file)


def _file_layer(buffer: str, file: Path) -> str | None:
    """The layer of a buffer's own EXR that holds it: the one its pass names (`LAYER_NAMES`: a renderer's file of
    every pass), else the file's only one; None for another format. An MdnError for an EXR of several layers where
    no one layer is named for the buffer (its beauty would be taken for it)."""
    if not file.is_file() or images.format_of_file(file) != "exr":
        return None
    layers = exr.exr_layer_names(file)
    for name in LAYER_NAMES[buffer]:
        named = [layer for layer in layers if exr.pass_name(layer) == name]
        if len(named) > 1:
            raise MdnError(f"which layer is the {buffer}? it has several ({', '.join(named)}): give one alone", file)
        if named:
            return named[0]
    if len(layers) > 1:
        passes = " or ".join(LAYER_NAMES[buffer])
        raise MdnError(f"which layer is the {buffer}? none is named {passes} ({', '.join(layers)})", file)
    return None


def _say_replaced(count: int, what: str, warn: Callable[[str], None] | None) -> None:
    """Tell `warn` of the NaN and Inf values replaced in a buffer (`what`), as a beauty's are told."""
    if count and warn is not None:
        warn(f"{picture.replaced(count)} in {what}")


def _say_whose(path: Path, wanted: dict[str, tuple[str, ...]], warn: Callable[[str], None]) -> None:
    """Tell where an EXR's picture (Blender's Composite) took no buffers though several view layers hold them:
    whose would be a guess."""
    holders = exr.buffer_view_layers(path, wanted)
    if len(holders) > 1:
        warn(f"its albedo and normal belong to {len(holders)} view layers ({', '.join(holders)}): denoised from its "
             f"beauty alone (--layer {holders[0]}.Combined takes that view layer's)")  # fmt: skip
