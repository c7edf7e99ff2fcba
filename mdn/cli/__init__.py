"""The `mdn` command line: `commands` (the Typer app), the per-file run around the library (`per_file`), what it
prints (`report`, `display`) and the options' former names (`former_options`).

`main` answers `mdn --version` before importing the app (and with it torch), so that it comes back at once.
"""

from __future__ import annotations

import sys
from typing import Any


def main() -> None:
    """Console entry point."""
    if sys.argv[1:] == ["--version"]:
        from mdn import __version__

        print(f"mdn {__version__}")
        return
    try:
        from mdn.cli.commands import app
    except KeyboardInterrupt:  # Ctrl-C while torch loads: before any work, nothing to keep
        print("interrupted before any work", file=sys.stderr)
        sys.exit(130)
    app()


def __getattr__(name: str) -> Any:
    """`app`, the Typer application, imported when first asked for."""
    if name == "app":
        from mdn.cli.commands import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
