"""Where and how mdn computes: the device (CUDA, Apple MPS or the CPU), the compute type and its autocast, the
CPU threads, and memory sizes as users write them. Every job needs these; they import nothing of mdn's but its
error."""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Iterator

import torch

from mdn.errors import MdnError
from mdn.units import is_kind

PRECISIONS: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
"""Compute types by option name; "auto" (see `pick_dtype`) chooses between fp32 and bf16."""


def parse_size(text: str) -> int:
    """'512M', '4G', '2GiB' or a number of bytes -> bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text.lower())
    if not match:
        raise MdnError(f"not a memory size: {text!r} (e.g. 512M, 4G)")
    number, unit = match.groups()
    return int(float(number) * 1024 ** "kmgt".find(unit) * 1024) if unit else int(float(number))


@contextlib.contextmanager
def threads(count: int, stacklevel: int = 1) -> Iterator[None]:
    """Compute with `count` CPU threads while inside (0: as before), then go back to the count before; a warning
    of more threads than cores points where `warnings.warn(..., stacklevel)` at the `with` would."""
    before = torch.get_num_threads()
    use_threads(count, stacklevel=stacklevel + 3)  # past use_threads, this generator and contextlib
    try:
        yield
    finally:
        if count:
            torch.set_num_threads(before)


def usable_threads(count: int) -> int:
    """A thread count as this machine runs it: 0 (one per core) and up to the cores this process may use as
    given, more as that many (a script written on a workstation runs on a 2-core runner; threads past the cores
    only slow torch down). An MdnError for anything but a whole number from 0."""
    if not is_kind(count, int) or count < 0:
        raise MdnError(f"--threads must be a whole number from 0 (one per core), got {count!r}")
    return min(count, usable_cores())


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system says, as a batch slot's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def use_threads(count: int, stacklevel: int = 2) -> None:
    """Compute with `count` CPU threads from now on (0: as it is, by default one per core torch sees); more than
    the cores as many as the cores, with a warning pointing `stacklevel` frames up (the CLI says it first, in a
    note: `usable_threads`)."""
    used = usable_threads(count)
    if used < count:
        warnings.warn(f"threads={count}: {used} cores here, using {used}", stacklevel=stacklevel)
    if used:
        torch.set_num_threads(used)


def pick_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise MdnError(f"unknown device {name!r} (auto, cpu, cuda, cuda:N, mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MdnError("--device cuda asked for, but no CUDA GPU is available")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise MdnError("--device mps asked for, but no Apple GPU is available")
    return device


def pick_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The autocast type for a --precision name; 'auto' is bfloat16 where the device computes it natively
    (a CUDA GPU with bf16, a CPU with AVX-512 BF16 or AMX), else float32."""
    if precision != "auto":
        if precision not in PRECISIONS:
            raise MdnError(f"unknown precision {precision!r} (auto, {', '.join(PRECISIONS)})")
        return PRECISIONS[precision]
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported()
    else:
        native = device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return torch.bfloat16 if native else torch.float32


def autocast(device: torch.device, dtype: torch.dtype) -> torch.autocast:
    """Autocast to `dtype` on `device`; a no-op for float32."""
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
