"""A render training set made by mdn itself: procedural scenes at low sample counts beside their references.

Each scene is a folder `scene-NNNNNN` holding one EXR per sample count (`spp-0004.exr`, ...) and `reference.exr`,
each with the beauty pass (R, G, B), the albedo (`albedo.R/G/B`) and the shading normal (`normal.X/Y/Z`), as
a renderer writes them for a denoiser. Every render has its own seed, so the noise of two files is independent.
A scene is rendered into a temporary folder and renamed when complete: a generation stopped at any moment
resumes with the scenes it lacks, and a finished scene is never rendered again.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import OpenEXR

from mdn.errors import MdnError
from mdn.io import exr, picture
from mdn.renders import backend, procedural
from mdn.renders.backend import Buffers

Warn = Callable[[str], None]
"""Told of what a read replaced (NaN/Inf samples)."""

LAYERS = {"beauty": ("R", "G", "B"), "albedo": ("albedo.R", "albedo.G", "albedo.B"),
          "normal": ("normal.X", "normal.Y", "normal.Z")}  # fmt: skip
"""Channel names of each buffer in the files."""

REFERENCE = "reference.exr"
"""The file of a scene's reference render."""
SCENE_NAME = "scene.txt"
"""The file naming a hand-built scene (generated scenes are named by their number)."""

HELD_OUT = 1_000_000
"""Scene numbers from here on are kept for evaluation: they draw textures from other photos."""


@dataclass(frozen=True)
class DatasetOptions:
    """What each scene of a set is rendered at."""

    spps: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    reference_spp: int = 1024
    scene: procedural.SceneOptions = field(default_factory=procedural.SceneOptions)


def scene_folder(root: Path, number: int) -> Path:
    return root / f"scene-{number:06d}"


def noisy_name(spp: int) -> str:
    return f"spp-{spp:04d}.exr"


def write_buffers(path: Path, buffers: Buffers) -> None:
    """Write a render's buffers as one half-float EXR (values clipped to half's range)."""
    channels = {
        name: np.ascontiguousarray(np.clip(plane[..., i], -65504, 65504).astype(np.float16))
        for plane, names in zip(buffers, LAYERS.values(), strict=True)
        for i, name in enumerate(names)
    }
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    OpenEXR.File(header, channels).write(str(path))


def read_buffers(path: Path, warn: Warn | None = None) -> Buffers:
    """A render's buffers (float32) from a file `write_buffers` wrote (or a renderer in its layout: beauty R, G, B,
    and albedo and normal where it has them: a beauty-only render has None there), NaN and +-Inf replaced as
    `mdn denoise` replaces them in a file, and `warn` told how many."""
    channels = exr.open_exr(path).parts[0].channels
    planes: list[np.ndarray | None] = []
    for buffer, names in LAYERS.items():
        missing = [name for name in names if name not in channels]
        if missing and (buffer == "beauty" or len(missing) < len(names)):
            raise MdnError(f"not a render of the training set: no channel {missing[0]}", path)
        planes.append(None if missing else np.stack([channels[n].pixels for n in names], -1).astype(np.float32))
    replaced = sum(picture.sanitise(plane) for plane in planes if plane is not None)
    if replaced and warn is not None:
        warn(f"{path}: {picture.replaced(replaced)}")
    return Buffers(*planes)


def render_scene(root: Path, number: int, textures: Sequence[Path], options: DatasetOptions, threads: int = 0) -> Path:
    """Render scene `number` at every sample count and its reference into `root`, unless it is there."""
    folder = scene_folder(root, number)
    if folder.is_dir():
        return folder
    seeds = [number * 64 + k for k in range(len(options.spps) + 1)]
    scene = procedural.scene(number, textures, options.scene)
    return write_scene(folder, scene, options.spps, options.reference_spp, seeds, threads)


def write_scene(
    folder: Path,
    scene: dict,
    spps: Sequence[int],
    reference_spp: int,
    seeds: Sequence[int],
    threads: int = 0,
    name: str | None = None,
) -> Path:
    """Render a scene dictionary at each of `spps` and at `reference_spp` (one seed each, in that order) into a
    scene folder, through a temporary folder renamed when complete; `name` goes to its `SCENE_NAME` file."""
    tmp = folder.parent / f".{folder.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for k, (spp, seed) in enumerate(zip((*spps, reference_spp), seeds, strict=True)):
        buffers = backend.render(scene, spp, seed=seed, threads=threads)
        write_buffers(tmp / (noisy_name(spp) if k < len(spps) else REFERENCE), buffers)
    if name is not None:
        (tmp / SCENE_NAME).write_text(name + "\n")
    os.replace(tmp, folder)
    return folder


def _with_defaults(kept: dict, defaults: dict) -> dict:
    """Recorded options with the defaults of options added since the set was made (JSON types)."""
    merged = json.loads(json.dumps(defaults))
    for key, value in kept.items():
        merged[key] = _with_defaults(value, merged[key]) if isinstance(value, dict) and key in merged else value
    return merged


def generate(
    root: Path,
    numbers: range,
    textures: Sequence[Path],
    options: DatasetOptions = DatasetOptions(),
    deadline: float | None = None,
    threads: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Render the scenes `numbers` that `root` lacks, stopping before a scene would start past `deadline` (a
    `time.monotonic()` value); returns the scene folders present. `root/dataset.json` records the options and
    textures; a set is only ever extended with the options it was made with."""
    root.mkdir(parents=True, exist_ok=True)
    record = {"options": asdict(options), "textures": [p.name for p in textures], "variant": backend.variant()}
    manifest = root / "dataset.json"
    if manifest.is_file():
        kept = _with_defaults(json.loads(manifest.read_text())["options"], asdict(DatasetOptions()))
        if kept != json.loads(json.dumps(record["options"])):
            raise MdnError("the set was made with other options; give another folder", root)
    else:
        manifest.write_text(json.dumps(record, indent=1) + "\n")
    done = [n for n in numbers if scene_folder(root, n).is_dir()]
    if progress:
        progress(len(done), len(numbers))
    for number in numbers:
        if scene_folder(root, number).is_dir():
            continue
        if deadline is not None and time.monotonic() >= deadline:
            break
        render_scene(root, number, textures, options, threads)
        done.append(number)
        if progress:
            progress(len(done), len(numbers))
    return [scene_folder(root, n) for n in sorted(done)]


def scenes(root: Path) -> list[Path]:
    """The scene folders of a set, each complete: an MdnError names the first that lacks its reference or renders."""
    found = sorted(p for p in root.glob("scene-*") if p.is_dir())
    for folder in found:
        _check_complete(folder)
    return found


def _check_complete(scene: Path) -> None:
    """Refuse a scene folder without its reference or without any low-sample render."""
    if not (scene / REFERENCE).is_file():
        raise MdnError(f"an incomplete scene: no {REFERENCE}", scene)
    if not sample_counts(scene):
        raise MdnError(f"an incomplete scene: no low-sample render ({noisy_name(16)}, ...)", scene)


def reference(scene: Path, warn: Warn | None = None) -> Buffers:
    """A scene's reference render."""
    return read_buffers(scene / REFERENCE, warn)


def sample_counts(scene: Path) -> list[int]:
    """The sample counts of a scene's low-sample renders (`spp-0016.exr`: 16), fewest first; other files, such
    as a user's `spp-old.exr`, left alone."""
    return sorted(int(p.stem[4:]) for p in scene.glob("spp-*.exr") if p.stem[4:].isdigit())


def noisy_renders(
    scene: Path, spps: tuple[int, ...] | None = None, warn: Warn | None = None
) -> list[tuple[int, Buffers]]:
    """A scene's low-sample renders (those at `spps`, default all) with their sample counts, fewest first."""
    wanted = [spp for spp in sample_counts(scene) if spps is None or spp in spps]
    return [(spp, read_buffers(scene / noisy_name(spp), warn)) for spp in wanted]
