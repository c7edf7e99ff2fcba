"""The one exception type for problems a user can fix."""

from __future__ import annotations

from pathlib import Path


class MdnError(Exception):
    """A user-facing error: bad input, bad option or a file that cannot be written.

    The message is one line and names the file when there is one.
    """

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.message, self.path = message, Path(path) if path is not None else None
        super().__init__(f"{path}: {message}" if path is not None else message)
