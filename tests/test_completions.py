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
            for opt in () if getattr(param, "hidden", False) else param.opts:
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


def _bash_completes(words: str, cwd: Path) -> list[str]:
    script = (
        f"source {ROOT / 'completions' / 'mdn.bash'}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); "
        'complete() { :; }; _mdn; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True, cwd=cwd)
    return [line for line in result.stdout.splitlines() if line]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completes_names_with_spaces_and_after_a_double_dash(tmp_path: Path) -> None:
    for name in ("my photo.png", "-odd.png", "other.png"):
        (tmp_path / name).touch()
    assert _bash_completes("mdn denoise my", tmp_path) == ["my photo.png"]
    assert _bash_completes("mdn denoise 'my\\ ph'", tmp_path) == ["my photo.png"]
    assert _bash_completes("mdn denoise '\"my ph'", tmp_path) == ["my photo.png"]
    assert _bash_completes("mdn denoise -- -o", tmp_path) == ["-odd.png"]
    assert "--output" in _bash_completes("mdn denoise --ou", tmp_path)


def test_hidden_options_are_not_offered() -> None:
    for name in ("mdn.bash", "_mdn", "mdn.fish"):
        text = (ROOT / "completions" / name).read_text()
        assert "-wiener" not in text, name


def test_command_descriptions_are_whole_sentences() -> None:
    zsh = (ROOT / "completions" / "_mdn").read_text()
    assert "'train:Train a denoiser, or fit one to a camera'\\''s noisy images'" in zsh


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_offers_a_groups_command_first(tmp_path: Path) -> None:
    """`mdn models <TAB>` completes `show` (the card names come after it); driven through a real zsh line editor."""
    script = f"""
zmodload zsh/zpty
zpty z 'zsh -f -i'
zpty -w z 'PS1="> "; fpath=({ROOT / "completions"} $fpath); autoload -U compinit; compinit -u -d {tmp_path}/dump'
zpty -w -n z $'mdn models \\t'
zpty -r z line '*models show*'
zpty -w -n z $'unet-r\\t'
zpty -r z line '*unet-r*ender*'
zpty -d z
"""
    subprocess.run(["zsh", "-f", "-c", script], check=True, timeout=60, capture_output=True)
