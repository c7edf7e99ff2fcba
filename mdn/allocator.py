"""Keep freed tensor memory in the process instead of handing it back to the kernel after every operator, or
hand it back in batches.

PyTorch's CPU allocator frees each intermediate tensor straight to glibc's malloc, which serves large blocks
with mmap and hands them back with munmap (or trims the heap), so every step of a network pays again for fresh
zeroed pages, one page fault per 4 KB. Raising malloc's mmap and trim thresholds keeps those blocks in the
heap for reuse: a zero-shot fine-tuning step at 512x512 went from 44,000 page faults to 365 and ran 1.5x
faster on a 2-core CPU. Freed memory is then returned to the system only at exit.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
LARGEST_THRESHOLD = 2**31 - 1
"""mallopt takes an int; blocks larger than this (2 GiB) still come from mmap."""


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library, where ctypes finds one."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


@functools.cache
def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; False where the C library is not glibc."""
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, LARGEST_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, LARGEST_THRESHOLD))


def release_freed_memory() -> None:
    """Hand the heap's free pages back to the kernel (glibc's malloc_trim; a no-op elsewhere): for networks whose
    large feature maps leave holes that malloc does not reuse, every few tiles
    (`mdn.inference.engine.TILES_PER_RELEASE`)."""
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None)
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
        trim(0)
