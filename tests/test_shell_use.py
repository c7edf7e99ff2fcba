"""mdn as shell scripts, cron jobs and CI drive it: an exit status a script can trust, empty inboxes, outputs
spelt as the shell spells them, thread counts from another machine, stdout kept for data, help that reads at
80 columns and a summary that reads in a narrow terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import typer.main
from typer.testing import CliRunner

from mdn.cli import app
from mdn.errors import MdnError
from mdn.io import batch

COMMANDS = ["denoise", "zeroshot", "noise", "train", "bench", "models", "models show"]
"""Every command, as typed after `mdn`."""


def _png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(imagecodecs.png_encode(np.random.default_rng(0).integers(60, 200, (64, 64, 3), dtype=np.uint8)))
    return path


def _invoke(*args: object, columns: int | None = 80):
    """`mdn ARGS` in this process, at `columns` (None: COLUMNS unset)."""
    env = {"COLUMNS": str(columns) if columns else None, "NO_COLOR": "1"}
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def _mdn(*args: object, columns: int, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`mdn ARGS` in a child process, its output piped, with COLUMNS set to `columns`."""
    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    env |= {"COLUMNS": str(columns), "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "mdn", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


# ------------------------------------------------------------------------------------------- no inputs


@pytest.mark.parametrize("command", [[], ["denoise"], ["zeroshot"], ["noise"], ["train"]])
def test_a_command_given_no_inputs_fails_with_its_help_or_one_line(tmp_path: Path, command: list[str]) -> None:
    """`mdn denoise $FILES` with no files printed the help and exited 0: the script went on as if it had run."""
    result = _invoke(*command)
    assert result.exit_code == 2 and result.stdout == "", result.output
    assert result.stderr.startswith(f"Usage: mdn {' '.join(command)}".rstrip()), result.stderr
    if command in (["denoise"], ["zeroshot"], ["noise"]):  # `mdn denoise $FILES -o out`: one line
        given = _invoke(*command, "-o", tmp_path / "out", "--quiet")
        assert given.exit_code == 2 and given.stderr == "error: no inputs given (see --help)\n", given.output
        assert not (tmp_path / "out").exists()


def test_an_empty_folder_is_nothing_to_do_and_a_missing_one_is_an_error(tmp_path: Path) -> None:
    """A cron job over an inbox folder failed with exit 2 whenever the inbox was empty, as for a mistyped path."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    report = tmp_path / "report.json"
    result = _invoke("noise", inbox, "-o", tmp_path / "out", "--json", report)
    assert result.exit_code == 0 and result.stdout == "", result.output
    assert result.stderr == f"nothing to add noise to in {inbox}: no image files\n"
    assert json.loads(report.read_text())["files"] == []  # a script reading it finds this run's, not the last one's
    assert _invoke("denoise", inbox, "--quiet").output == ""  # nothing to say to a quiet cron job
    (inbox / "IMG_0001.HEIC").write_bytes(b"heic")  # a picture mdn does not read is still named
    named = _invoke("denoise", inbox, "--quiet")
    assert named.exit_code == 0 and named.stderr.count("\n") == 1, named.stderr
    assert named.stderr.startswith(f"warning: nothing to denoise in {inbox}: left out 1 picture")
    assert "IMG_0001.HEIC" in named.stderr
    missing = _invoke("noise", tmp_path / "no-such-folder")
    assert missing.exit_code == 1 and "no-such-folder: does not exist" in missing.stderr
    assert _invoke("noise", tmp_path / "typo*.png").exit_code == 2  # a pattern that matches nothing stays an error


# ---------------------------------------------------------------------------------------------- output


def test_an_output_with_a_trailing_slash_is_a_folder_whatever_its_name(tmp_path: Path) -> None:
    """`-o results.png/` wrote a file named results.png: pathlib had dropped the slash."""
    photo = _png(tmp_path / "photo.png")
    result = _invoke("noise", photo, "-o", f"{tmp_path / 'results.png'}/")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "results.png").is_dir() and (tmp_path / "results.png" / "photo.png").is_file()
    assert _invoke("noise", photo, "-o", tmp_path / "single.png").exit_code == 0
    assert (tmp_path / "single.png").is_file()  # without the slash, a file as before
    (tmp_path / "taken.png").write_bytes(b"a file")
    blocked = _invoke("noise", photo, "-o", f"{tmp_path / 'taken.png'}/")
    assert blocked.exit_code == 2 and "taken.png: is a file" in blocked.stderr


def test_stdout_is_left_for_data(tmp_path: Path) -> None:
    """One file's `wrote` line went to stdout, a batch's summary to stderr."""
    photo = _png(tmp_path / "photo.png")
    one = _invoke("noise", photo, "-o", tmp_path / "one.png")
    assert one.exit_code == 0 and one.stdout == "" and one.stderr.startswith(f"wrote {tmp_path / 'one.png'} (")
    again = _invoke("noise", photo, "-o", tmp_path / "one.png", "--skip-existing")
    assert again.stdout == "" and again.stderr.startswith("skipped, exists: ")
    several = _invoke("noise", photo, _png(tmp_path / "other.png"), "-o", tmp_path / "out")
    assert several.exit_code == 0 and several.stdout == "" and "2 done" in several.stderr
    piped = _mdn("noise", "photo.png", "-o", "piped.png", "--json", "/dev/stdout", columns=80, cwd=tmp_path)
    assert piped.returncode == 0 and json.loads(piped.stdout)["done"] == 1, piped.stdout  # `| jq` reads it whole
    assert piped.stderr.startswith("wrote piped.png (")


# --------------------------------------------------------------------------------------------- threads


def test_threads_past_the_cores_run_on_the_cores_with_one_note(tmp_path: Path) -> None:
    """`--threads 16` from a workstation's script failed on a 2-core runner as a usage error."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    before = torch.get_num_threads()
    try:
        result = _invoke("noise", _png(tmp_path / "photo.png"), "--threads", 1_000_000)
        assert result.exit_code == 0, result.output
        notes = [line for line in result.stderr.splitlines() if line.startswith("note: ")]
        assert notes == [f"note: --threads 1000000: {cores} cores here, using {cores}"], result.stderr
        assert torch.get_num_threads() == cores
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------------------------------------ help


def _examples(command: str) -> list[str]:
    """The example command lines of `mdn COMMAND`'s docstring."""
    group = typer.main.get_command(app)
    words = command.split()
    found = group.commands[words[0]]
    for word in words[1:]:
        found = found.commands[word]  # type: ignore[attr-defined]
    paragraphs = (found.help or "").split("\n\n")
    return [" ".join(p.split()[1:]) for p in paragraphs if p.strip().startswith("Example:")]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_fits_80_columns_with_each_example_whole_on_its_line(command: str) -> None:
    """`mdn noise --help` was 103 columns wide; examples broke mid-command; `[default: (balanced)]`; `<str>`."""
    for columns in (None, 80, 200, 40):
        text = _invoke(*command.split(), "--help", columns=columns).stdout
        lines = text.splitlines()
        assert max(map(len, lines)) <= 80, f"mdn {command} --help at COLUMNS={columns}"
        stripped = {line.strip() for line in lines}
        assert all(example in stripped for example in _examples(command)), text  # never wrapped, even at 40
        for wrong in ("[default: (", "<str>", "<int>", "<float>", "<bool>"):
            assert wrong not in text, f"mdn {command} --help shows {wrong}"
    assert _examples(command)


def test_help_shows_a_default_given_in_words_without_brackets_and_long_choices_in_the_text() -> None:
    denoise = " ".join(_invoke("denoise", "--help").stdout.split())
    assert "[default: balanced]" in denoise and "-o, --output <file/folder>" in denoise
    noise = " ".join(_invoke("noise", "--help").stdout.split())
    assert "-t, --type <type>" in noise and "[choices: gaussian, speckle, poisson, photon," in noise


# --------------------------------------------------------------------------------------------- summary


@pytest.mark.parametrize("columns", [20, 30])
def test_a_narrow_terminal_reads_each_files_status_whole(tmp_path: Path, columns: int) -> None:
    """At 20-30 columns the summary table cut its status column to `f…`."""
    _png(tmp_path / "a.png")
    _png(tmp_path / "out" / "b.png")
    _png(tmp_path / "b.png")
    result = _mdn("noise", "a.png", "b.png", "gone.png", "-o", "out", "--skip-existing", columns=columns, cwd=tmp_path)
    assert result.returncode == 1 and "…" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    for name, status in (("a.png", "done"), ("b.png", "skipped"), ("gone.png", "failed")):
        assert any(line.startswith(f"{name}: {status}") for line in lines), result.stderr
    assert " ".join(result.stderr.split()).endswith("1 done, 1 skipped, 1 failed")


# ----------------------------------------------------------------------------------------------- batch


def test_the_batch_plan_takes_a_folder_named_like_a_file_when_told(tmp_path: Path) -> None:
    photo = _png(tmp_path / "photo.png")
    assert batch.plan([photo], tmp_path / "results.png", "")[0].output == tmp_path / "results.png"
    inside = batch.plan([photo], tmp_path / "results.png", "", folder=True)[0].output
    assert inside == tmp_path / "results.png" / "photo.png"
    (tmp_path / "empty").mkdir()
    assert batch.expand_inputs([tmp_path / "empty"], empty_folders=True) == []
    with pytest.raises(MdnError, match="no image files found in"):
        batch.expand_inputs([tmp_path / "empty", tmp_path / "typo*.png"], empty_folders=True)


def test_quiet_keeps_the_threads_note_back(tmp_path: Path) -> None:
    """-q promises errors and warnings only; the note that more threads than cores run on the cores is neither."""
    import PIL.Image

    PIL.Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "a.png")
    code = "import sys; from mdn.cli import app; sys.argv = ['mdn', *sys.argv[1:]]; app()"
    args = [sys.executable, "-c", code, "noise", str(tmp_path / "a.png"), "-o", str(tmp_path / "b.png")]
    quiet = subprocess.run([*args, "--threads", "100000", "-q"], capture_output=True, text=True)
    loud = subprocess.run([*args, "--threads", "100000", "--overwrite"], capture_output=True, text=True)
    assert quiet.returncode == loud.returncode == 0
    assert "note: --threads" not in quiet.stderr + quiet.stdout and "note: --threads" in loud.stderr
