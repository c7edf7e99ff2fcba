"""Real Monte Carlo noise for the bench: Cornell-box variations rendered with Mitsuba 3 (optional extra).

Each scene is rendered at a low sample count (noisy) and, as the average of several independent renders of at
most 1024 samples, at a high one (reference). A box reconstruction filter keeps the noise per pixel (the
default Gaussian filter correlates it). Renders are scene-linear HDR, written as EXR and cached.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import OpenEXR
import platformdirs

from mdn.errors import MdnError

SIZE = 128
"""Render width and height in pixels."""

MAX_SPP = 1024
"""Samples per render; higher references average several renders."""


def available() -> bool:
    return importlib.util.find_spec("mitsuba") is not None


def _mitsuba() -> Any:
    if not available():
        raise MdnError("--renders needs Mitsuba 3 (pip install mitsuba)")
    import mitsuba

    mitsuba.set_variant("scalar_rgb")
    return mitsuba


def _sphere(x: float, z: float, radius: float, bsdf: dict) -> dict:
    return {"type": "sphere", "center": [x, -1 + radius, z], "radius": radius, "bsdf": bsdf}


def scenes() -> dict[str, dict]:
    """Scene dictionaries by name: diffuse boxes, a glass sphere, a metal sphere and a glossy pair."""
    mi = _mitsuba()
    base = mi.cornell_box()
    base["sensor"]["film"] = {"type": "hdrfilm", "width": SIZE, "height": SIZE, "rfilter": {"type": "box"}}
    glass = {"type": "dielectric", "int_ior": 1.5}
    gold = {"type": "roughconductor", "material": "Au", "alpha": 0.15}
    plastic = {"type": "plastic", "diffuse_reflectance": {"type": "rgb", "value": [0.1, 0.25, 0.6]}}
    without_boxes = {k: v for k, v in base.items() if k not in ("small-box", "large-box")}
    return {
        "cornell": base,
        "glass": {**without_boxes, "ball": _sphere(0.0, 0.0, 0.4, glass)},
        "metal": {**without_boxes, "ball": _sphere(-0.3, -0.1, 0.35, gold), "box": base["small-box"]},
        "glossy": {**without_boxes, "a": _sphere(-0.4, 0.2, 0.3, plastic), "b": _sphere(0.4, -0.2, 0.3, glass)},
    }


def _cache(name: str, spp: int) -> Path:
    return Path(platformdirs.user_cache_dir("mdn")) / "renders" / f"{name}-{SIZE}px-{spp}spp.exr"


def _render(scene: dict, spp: int, seed: int) -> np.ndarray:
    mi = _mitsuba()
    return np.asarray(mi.render(mi.load_dict(scene), spp=spp, seed=seed), dtype=np.float32)[..., :3]


def render(name: str, spp: int) -> np.ndarray:
    """Linear HDR (SIZE, SIZE, 3) of a scene at `spp` samples per pixel, from the cache when it is there."""
    path = _cache(name, spp)
    if path.is_file():
        channels = OpenEXR.File(str(path), separate_channels=True).channels()
        return np.stack([channels[c].pixels for c in "RGB"], axis=-1)
    scene = scenes()[name]
    seeds = [spp * 7919 + i for i in range(max(1, spp // MAX_SPP))]
    parts = [_render(scene, min(spp, MAX_SPP), seed) for seed in seeds]
    image = np.mean(parts, axis=0).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    OpenEXR.File(header, {c: np.ascontiguousarray(image[..., i]) for i, c in enumerate("RGB")}).write(str(path))
    return image
