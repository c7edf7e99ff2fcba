"""Render a held-out set of hand-built scenes: Mitsuba's Cornell box as a user edits it (needs Mitsuba 3).

Usage:
    python scripts/handbuilt_renders.py data/renders/handbuilt --threads 1
    python scripts/handbuilt_renders.py data/renders/handbuilt-gaussian --filter gaussian --threads 1
    python scripts/handbuilt_renders.py data/renders/handbuilt-256 --size 256 --threads 1

Seven scenes built from `mitsuba.cornell_box()`, none from the procedural generator the render cards train on: the
plain box; glass and gold spheres; a dim view from inside, near a corner; a light a sixth the size and as bright in
all; a silver tall box; a glossy plastic and a glass sphere; a low view up at a gold sphere under a dim light. 160 x
160 pixels (`--size`), 4 and 16 samples per pixel and a 1,024-sample reference, written as the training set's scene
folders (beauty, albedo, normal), so `scripts/render_slices.py` and `mdn bench --render-set` read them. A box
reconstruction filter by default (noise per pixel, as the training set has it); `--filter gaussian` gives Mitsuba's
default film filter, whose noise is correlated over neighbouring pixels. Resumable: scenes present are kept.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from mdn.renders import backend, dataset

SIZE = 160
SPPS = (4, 16)
REFERENCE_SPP = 1024
FIRST = 2_000_000
"""Scene numbers of this set: apart from the generator's training (0 on) and held-out (1,000,000 on) scenes."""
LIGHT = (18.387, 13.9873, 6.75357)
"""The Cornell box light's radiance in `cornell_box()`."""


def _sphere(x: float, z: float, radius: float, bsdf: dict) -> dict:
    return {"type": "sphere", "center": [x, -1 + radius, z], "radius": radius, "bsdf": bsdf}


def scenes(rfilter: str, size: int = SIZE) -> dict[str, dict[str, Any]]:
    """Scene dictionaries by name, each with a `size` x `size` film and the reconstruction filter `rfilter`."""
    mi = backend.mitsuba()
    transform = mi.ScalarTransform4f

    def box(light: float = 1.0, boxes: bool = True) -> dict[str, Any]:
        scene = mi.cornell_box()
        scene["sensor"]["film"] = {"type": "hdrfilm", "width": size, "height": size, "rfilter": {"type": rfilter}}
        radiance = {"type": "rgb", "value": [v * light for v in LIGHT]}
        scene["light"] = {**scene["light"], "emitter": {"type": "area", "radiance": radiance}}
        return scene if boxes else {k: v for k, v in scene.items() if k not in ("small-box", "large-box")}

    def seen_from(scene: dict[str, Any], origin: list[float], target: list[float]) -> dict[str, Any]:
        scene["sensor"]["to_world"] = transform().look_at(origin=origin, target=target, up=[0, 1, 0])
        return scene

    glass = {"type": "dielectric", "int_ior": 1.5}
    gold = {"type": "roughconductor", "material": "Au", "alpha": 0.1}
    silver = {"type": "roughconductor", "material": "Ag", "alpha": 0.05}
    plastic = {"type": "plastic", "diffuse_reflectance": {"type": "rgb", "value": [0.1, 0.25, 0.6]}}
    small = box(light=1 / 0.16)
    small["light"] = {**small["light"], "to_world": small["light"]["to_world"] @ transform().scale([0.4, 0.4, 1])}
    metal = box()
    metal["large-box"] = {**metal["large-box"], "bsdf": silver}
    up_view = {**box(light=0.5, boxes=False), "m": _sphere(0.2, -0.4, 0.4, gold)}
    return {
        "cornell": box(),
        "spheres": {**box(boxes=False), "g": _sphere(-0.4, -0.2, 0.35, glass), "m": _sphere(0.4, 0.2, 0.35, gold)},
        "dim-side": seen_from(box(light=0.25), [-0.9, 0.6, 0.98], [0.5, -0.7, -0.8]),
        "small-light": small,
        "silver-box": metal,
        "glossy": {**box(boxes=False), "a": _sphere(-0.45, 0.25, 0.3, plastic), "b": _sphere(0.35, -0.25, 0.4, glass)},
        "up-view": seen_from(up_view, [-0.7, -0.75, 2.0], [0.2, 0.1, -1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where the scene folders go")
    parser.add_argument("--filter", choices=("box", "gaussian"), default="box", help="film reconstruction filter")
    parser.add_argument("--size", type=int, default=SIZE, help=f"image side in pixels (default {SIZE})")
    parser.add_argument("--threads", type=int, default=0, help="renderer threads (0: all)")
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    for k, (name, scene) in enumerate(scenes(args.filter, args.size).items()):
        folder = dataset.scene_folder(args.folder, FIRST + k)
        if folder.is_dir():
            continue
        seeds = [9000 + 97 * k + j for j in range(len(SPPS) + 1)]
        label = f"{name}, {args.filter} filter" + (f", {args.size} px" if args.size != SIZE else "")
        dataset.write_scene(folder, scene, SPPS, REFERENCE_SPP, seeds, args.threads, label)
        print(f"{folder.name}: {name} ({time.monotonic() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
