"""Messages a C library writes to the process's own standard output and error, kept from the user's terminal.

OpenEXR reports a damaged file line by line (`(EXR_ERR_BAD_CHUNK_LEADER) ...` on stderr, `Warning: Exception raised
reading pixel data ...` on stdout) before it fails, and mdn then names the file and the problem in one line of its
own: the library's lines are the same problem said again, in a form a user cannot act on. `quiet` captures what is
written to the process's standard output and error while it runs and writes the rest back (a progress bar's
refresh, another thread's message), without the lines the library wrote.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator

OPENEXR_LINE = re.compile(rb"^(?:.*\(EXR_ERR_[A-Z_]+\) |Warning: Exception raised reading )")
"""A line OpenEXR's core or its Python binding writes about a file it cannot read."""

_LOCK = threading.Lock()
"""One capture at a time: the descriptors are the process's."""


@contextlib.contextmanager
def quiet(pattern: re.Pattern[bytes] = OPENEXR_LINE) -> Iterator[None]:
    """Run the block with what is written to file descriptors 1 and 2 captured (a binding's prints reach them
    through Python's streams, flushed), then write back what each captured but the lines that match `pattern`.
    Python's `sys.stdout` and `sys.stderr` are never swapped: another thread may be swapping them itself. A
    descriptor that cannot be duplicated (closed) is left as it is."""
    with _LOCK, contextlib.ExitStack() as stack:
        captures = []
        _flush()
        for descriptor in (1, 2):
            try:
                saved = os.dup(descriptor)
            except OSError:
                continue
            capture = stack.enter_context(tempfile.TemporaryFile())
            os.dup2(capture.fileno(), descriptor)
            captures.append((descriptor, saved, capture))
        try:
            yield
        finally:
            _flush()
            for descriptor, saved, capture in captures:
                os.dup2(saved, descriptor)
                os.close(saved)
                capture.seek(0)
                _write_all(descriptor, _kept(capture.read(), pattern))


def _kept(data: bytes, pattern: re.Pattern[bytes]) -> bytes:
    return b"".join(line for line in data.splitlines(keepends=True) if not pattern.match(line))


def _flush() -> None:
    """Python's and C's buffered output written to the descriptors now (a library's C++ stream goes through C's
    stdio, fully buffered when stdout is a pipe or a file)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).fflush(None)


def _write_all(descriptor: int, data: bytes) -> None:
    while data:
        data = data[os.write(descriptor, data) :]
