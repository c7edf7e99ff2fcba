"""Writing a file safely: through a temporary file in the target folder and a rename (a device, a pipe or
/dev/stdout written through), every failure one error naming the file, a file's existing name never taken by
accident, and the temporary files of writes in flight removed when the process must exit at once."""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

from mdn.errors import MdnError


class OutputExists(MdnError):
    """The output file exists and was not to be replaced (it may have appeared while the work ran)."""

    def __init__(self, path: Path, remedy: str = "--overwrite") -> None:
        super().__init__(f"exists; refusing to overwrite it (use {remedy})", path)


def write_atomic(path: Path, write_to: Callable[[Path], None], *, replace: bool = True) -> None:
    """Write through a temporary file in the target folder, then rename it into place; any failure (read-only or
    full disk, a file where a folder should be, no permission) is one MdnError naming `path`, and leaves no
    temporary file behind. With `replace` False an existing file is never replaced, even one that another
    process wrote while this one worked: OutputExists.

    The result gets the permissions of the file it replaces, or the usual ones for a new file (0666 less the
    umask) rather than the private mode of a temporary file. A device, a pipe or /dev/stdout (`is_stream`) is
    written through: there is no file to replace, and a rename would put a file in its place.
    """
    if is_stream(path):
        try:
            _write_through(path, write_to)
        except (OSError, RuntimeError) as exc:
            raise MdnError(f"cannot write: {_write_failure(path, exc)}", path) from None
        return
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temporary(path)
        write_to(tmp)
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask())
        if replace:
            os.replace(tmp, path)
        else:
            _publish_new(tmp, path)
    except (OSError, RuntimeError) as exc:  # OpenEXR reports a file it cannot open as a RuntimeError
        raise MdnError(f"cannot write: {_write_failure(path, exc)}", path) from None
    finally:
        if tmp is not None:
            _discard(tmp)


def is_stream(path: Path) -> bool:
    """Whether `path` (or what its links lead to) is a device, a pipe or a socket rather than a file or folder, or
    a process's open descriptor (/dev/stdout, /dev/fd/1: a link into /proc, whatever it is open on): written
    through, never replaced."""
    try:
        mode = path.stat().st_mode
    except OSError:  # nothing there yet (or a dangling link): a file is made
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)) or _leads_into_proc(path)


def _leads_into_proc(path: Path) -> bool:
    """Whether `path` or a link on its way lies in /proc (a descriptor's link, which resolves to the file it is
    open on: /dev/stdout of a command whose output goes to a log resolves to the log)."""
    place = Path(os.path.abspath(path))
    for _ in range(40):  # the kernel's limit on links in a row
        place = Path(os.path.realpath(place.parent)) / place.name
        if place.is_relative_to("/proc"):
            return True
        if not place.is_symlink():
            return False
        place = Path(os.path.normpath(place.parent / os.readlink(place)))
    return False


def _write_through(path: Path, write_to: Callable[[Path], None]) -> None:
    """Write into a stream (`is_stream`): through a temporary file, whose bytes are then appended to it (a log
    that /dev/stdout leads to keeps the lines before them)."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mdn-") as folder:
        tmp = Path(folder) / path.name
        write_to(tmp)
        with tmp.open("rb") as written, path.open("ab") as stream:
            shutil.copyfileobj(written, stream)


def _publish_new(tmp: Path, path: Path) -> None:
    """Give the finished `tmp` the name `path` only where no file has it: a hard link, which fails where the name
    is taken (the rename of `os.replace` would replace it); where the file system has no hard links, a check
    before the rename."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        if path.is_symlink() and not path.exists():  # a dangling link takes the result, as a rename gives it
            os.replace(tmp, path)
            return
        raise OutputExists(path) from None
    except OSError:  # no hard links here (FAT, some network shares)
        if path.exists():
            raise OutputExists(path) from None
        os.replace(tmp, path)


def check_writable(path: Path) -> None:
    """An MdnError naming `path` now where a file could not be written there later (a folder in its place, a
    file where a folder should be, no permission, a read-only disk): a report checked before the batch, not after
    its hours of work. Folders missing on the way are made, as the write would make them."""
    if path.is_dir():
        raise MdnError("is a directory, expected a file name", path)
    if is_stream(path):  # opened when written (a pipe's open waits for its reader)
        if not os.access(path, os.W_OK):
            raise MdnError("cannot write: permission denied", path)
        return
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temporary(path)
    except OSError as exc:
        raise MdnError(f"cannot write: {_write_failure(path, exc)}", path) from None
    finally:
        if tmp is not None:
            _discard(tmp)


_PENDING: set[Path] = set()
"""Temporary files of writes in flight, for `remove_partial_writes`."""
_PENDING_LOCK = threading.Lock()


NAME_MAX = 255
"""The longest file name, in bytes, that common file systems take (ext4, XFS, APFS, NTFS in characters)."""


def _temporary(path: Path) -> Path:
    """Create a new hidden, private file beside `path`, registered in `_PENDING` before it exists; its name as
    long as the file system takes (a name near the limit had no room for the temporary's 14 more bytes)."""
    mark = f".{os.urandom(6).hex()}{path.suffix}"
    room = NAME_MAX - 1 - len(os.fsencode(mark))
    stem = os.fsdecode(os.fsencode(path.stem)[:room])  # the name's own bytes, whatever their encoding
    tmp = path.with_name(f".{stem}{mark}")
    with _PENDING_LOCK:
        _PENDING.add(tmp)
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError:
            _PENDING.discard(tmp)
            raise
    return tmp


def _discard(tmp: Path) -> None:
    """Remove a temporary file (gone already once renamed into place) and forget it."""
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    _PENDING.discard(tmp)


def remove_partial_writes() -> None:
    """Remove the temporary files of every write in flight, on any thread: for a process about to exit at once.
    Holds off new ones, so that no write can start one after this."""
    _PENDING_LOCK.acquire(timeout=1.0)  # the calling thread may hold it itself: then go on after a second
    for tmp in list(_PENDING):
        with contextlib.suppress(OSError):
            tmp.unlink()


def file_in_the_way(folder: Path) -> Path | None:
    """The file that stands where `folder` (or a folder on the way to it) would be: `folder` itself or its
    nearest existing parent when that is not a folder; None where the folder is or can be made."""
    nearest = next((p for p in (folder, *folder.parents) if p.exists()), None)
    return nearest if nearest is not None and not nearest.is_dir() else None


def _write_failure(path: Path, exc: OSError | RuntimeError) -> str:
    """Why a write failed, in words: a file standing where a folder is needed, else the system's reason."""
    blocking = file_in_the_way(path.parent)
    if blocking is not None:
        return f"{blocking} is a file, not a folder"
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
