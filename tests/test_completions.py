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


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
@pytest.mark.parametrize(
    ("words", "offered"),
    [("mdn denoise --precision b", ["bf16"]), ("mdn zeroshot --preset m", ["microscopy"]),
     ("mdn denoise --device c", ["cpu", "cuda"]), ("mdn noise --type salt", ["saltpepper"]),
     ("mdn models -", ["--help", "-h"]), ("mdn models show --j", ["--json"]), ("mdn models s", ["show"])],
)  # fmt: skip
def test_bash_offers_the_choices_an_option_lists(words: str, offered: list[str]) -> None:
    script = (
        f"source {ROOT / 'completions' / 'mdn.bash'}; COMP_WORDS=({words}); COMP_CWORD={len(words.split()) - 1}; "
        'complete() { :; }; _mdn; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert sorted(result.stdout.split()) == offered
