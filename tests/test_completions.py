"""The committed shell completion scripts match the app."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _generator():
    spec = importlib.util.spec_from_file_location("completions", ROOT / "scripts" / "completions.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_completion_scripts_are_up_to_date() -> None:
    for name, text in _generator().render().items():
        committed = (ROOT / "completions" / name).read_text()
        assert committed == text, f"completions/{name} is stale: run python scripts/completions.py"


def test_completions_name_every_option_of_every_command() -> None:
    import typer.main

    from mdn.cli import app

    bash = (ROOT / "completions" / "mdn.bash").read_text()
    for name, command in typer.main.get_command(app).commands.items():
        assert f"{name})" in bash
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("-"):
                    assert opt in bash, (name, opt)


@pytest.mark.parametrize(("shell", "name"), [("bash", "mdn.bash"), ("zsh", "_mdn"), ("fish", "mdn.fish")])
def test_completion_scripts_parse(shell: str, name: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    flag = ["--no-execute"] if shell == "fish" else ["-n"]
    subprocess.run([shell, *flag, str(ROOT / "completions" / name)], check=True)
