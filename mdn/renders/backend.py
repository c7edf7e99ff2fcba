"""Mitsuba 3 for training renders: the fastest CPU variant that works here, and one render as its buffers.

`llvm_ad_rgb` (vectorised, needs a libLLVM on the system) rendered a 128² Cornell box at 1024 samples about
4 times faster than `scalar_rgb` on a 2-core CPU; without LLVM the scalar variant is used.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import Any, NamedTuple

import numpy as np

from mdn.errors import MdnError

VARIANTS = ("llvm_ad_rgb", "scalar_rgb")
AOVS = "albedo:albedo,nn:sh_normal"
"""The auxiliary buffers rendered beside the beauty pass: surface albedo and shading normal of the first hit."""


class Buffers(NamedTuple):
    """One render: linear HDR beauty (H, W, 3), albedo (H, W, 3) in [0, 1] and world-space normal (H, W, 3) in
    [-1, 1] (zero where a ray hits nothing)."""

    beauty: np.ndarray
    albedo: np.ndarray
    normal: np.ndarray


def available() -> bool:
    return importlib.util.find_spec("mitsuba") is not None


@functools.cache
def variant() -> str:
    """The first variant of VARIANTS that loads a scene here."""
    if not available():
        raise MdnError("rendering needs Mitsuba 3 (pip install mitsuba)")
    import mitsuba as mi

    for name in VARIANTS:
        try:
            mi.set_variant(name)
            mi.load_dict({"type": "scene"})
        except (ImportError, RuntimeError, AttributeError):
            continue
        return name
    raise MdnError(f"no Mitsuba variant of {', '.join(VARIANTS)} works here")


def mitsuba(threads: int = 0) -> Any:
    """The mitsuba module set to `variant()` (other code may have switched it); `threads` > 0 caps the LLVM
    variant's threads."""
    import mitsuba as mi

    mi.set_variant(variant())
    if threads and mi.variant().startswith("llvm"):
        import drjit

        drjit.set_thread_count(threads)
    return mi


def render(scene: dict, spp: int, seed: int, threads: int = 0) -> Buffers:
    """Path-trace a scene dictionary (without its integrator) at `spp` samples per pixel with its AOVs."""
    mi = mitsuba(threads)
    integrator = {"type": "aov", "aovs": AOVS, "image": scene.get("integrator", {"type": "path"})}
    loaded = mi.load_dict({**scene, "integrator": integrator})
    pixels = np.asarray(mi.render(loaded, spp=spp, seed=seed), dtype=np.float32)
    return Buffers(pixels[..., 0:3], pixels[..., 3:6], pixels[..., 6:9])
