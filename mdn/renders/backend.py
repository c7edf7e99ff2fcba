"""Mitsuba 3 for training renders: the fastest CPU variant that works here, and one render as its buffers.

`llvm_ad_rgb` (vectorised, needs a libLLVM on the system) rendered a 128² Cornell box at 1024 samples about
4 times faster than `scalar_rgb` on a 2-core CPU; where it cannot render (no libLLVM, or one older than 19 that
aborts Dr.Jit's code generation) the scalar variant is used.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import signal
import subprocess
import sys
from typing import Any, NamedTuple

import numpy as np

from mdn.errors import MdnError

VARIANTS = ("llvm_ad_rgb", "scalar_rgb")
AOVS = "albedo:albedo,nn:sh_normal"
"""The auxiliary buffers rendered beside the beauty pass: surface albedo and shading normal of the first hit."""


class Buffers(NamedTuple):
    """One render: linear HDR beauty (H, W, 3), albedo (H, W, 3) in [0, 1] and world-space normal (H, W, 3) in
    [-1, 1] (zero where a ray hits nothing); None for a render a user brings with its beauty alone."""

    beauty: np.ndarray
    albedo: np.ndarray | None
    normal: np.ndarray | None


def available() -> bool:
    return importlib.util.find_spec("mitsuba") is not None


PROBE = """
import sys
import mitsuba as mi
mi.set_variant(sys.argv[1])
look = mi.ScalarTransform4f().look_at(origin=[0, 0, 4], target=[0, 0, 0], up=[0, 1, 0])
scene = mi.load_dict({
    "type": "scene", "integrator": {"type": "path"}, "light": {"type": "constant"},
    "ball": {"type": "sphere", "bsdf": {"type": "diffuse"}},
    "sensor": {"type": "perspective", "to_world": look, "film": {"type": "hdrfilm", "width": 8, "height": 8}},
})
mi.render(scene, spp=4)
"""
"""A test render (an 8x8 lit sphere at 4 samples) run in a child process, the variant's name its argument: a
variant that loads can still abort the process at its first render (Dr.Jit's LLVM back end with an older
libLLVM), which a child survives and the caller does not."""
PROBE_SECONDS = 300.0
"""How long the test render may take (it compiles the variant's kernels: a few seconds)."""

log = logging.getLogger(__name__)


def probe(name: str) -> str | None:
    """Why the variant `name` cannot render here, or None when its test render in a child process succeeds.
    The child inherits the environment, so DRJIT_LIBLLVM_PATH names the libLLVM it tries."""
    try:
        child = subprocess.run(
            [sys.executable, "-c", PROBE, name], capture_output=True, text=True, timeout=PROBE_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        return f"its test render took over {PROBE_SECONDS:g} s"
    except OSError as exc:
        return f"its test render could not start ({exc.strerror or exc})"
    if child.returncode == 0:
        return None
    if child.returncode < 0:
        return f"its test render died ({signal.Signals(-child.returncode).name})"
    lines = [line for line in child.stderr.splitlines() if line.strip()]
    return f"its test render failed ({lines[-1].strip() if lines else f'exit status {child.returncode}'})"


@functools.cache
def variant() -> str:
    """The first variant of VARIANTS that renders here, tested once per process: a vectorised (LLVM) variant by a
    test render in a child process, since a libLLVM that Dr.Jit cannot use aborts the process that renders; when
    it fails, one logged line says why and the next variant is taken."""
    if not available():
        raise MdnError("rendering needs Mitsuba 3 (pip install mitsuba)")
    import mitsuba as mi

    for name in VARIANTS:
        if name.startswith("llvm"):
            failure = probe(name)
            if failure is not None:
                llvm = os.environ.get("DRJIT_LIBLLVM_PATH")
                hint = f"DRJIT_LIBLLVM_PATH={llvm}" if llvm else "it needs libLLVM 19 or newer, DRJIT_LIBLLVM_PATH"
                log.warning("Mitsuba's %s cannot render here: %s (%s); rendering with the slower %s instead",
                            name, failure, hint, VARIANTS[-1])  # fmt: skip
                continue
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
