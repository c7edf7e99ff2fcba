"""The code's layout holds: mdn's modules import one another without a circle, counting imports inside functions
and for type checking too (`scripts/import_graph.py`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_no_import_circle() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "import_graph.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout
    assert "floors" in result.stdout and "circle" not in result.stdout
