"""Resuming and finishing a run: the card tells every sitting's recipe, and needs neither the --init card nor the
training data that the checkpoint already holds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import tifffile
from skimage import data
from typer.testing import CliRunner

from mdn import registry
from mdn.cli import app


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Two small training images, in a folder of their own that a test may move away."""
    folder = tmp_path / "photos"
    folder.mkdir()
    tifffile.imwrite(folder / "coffee.tif", data.coffee()[:64, :96])
    tifffile.imwrite(folder / "camera.tif", data.camera()[:64, :64])
    return folder


def _args(photos: Path, tmp_path: Path, name: str, *more: str) -> list[str]:
    """A tiny run on the CPU, its checkpoint in tmp_path/runs/NAME and its card in tmp_path/cards."""
    return ["train", "--data", str(photos), "--name", name, "--config", "tiny", "--batch", "2", "--crop", "32",
            "--iters", "4", "--device", "cpu", "--validate-every", "2", "--workdir", str(tmp_path / "runs" / name),
            "--output", str(tmp_path / "cards"), "--quiet", *more]  # fmt: skip


def _card(tmp_path: Path, name: str) -> registry.ModelCard:
    return registry.ModelCard.from_file(tmp_path / "cards" / f"{name}.json")


def test_a_card_resumed_on_other_noise_records_each_sittings_recipe(photos: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, _args(photos, tmp_path, "mixed", "--until", "2")).exit_code == 0
    poisson = runner.invoke(app, _args(photos, tmp_path, "mixed", "--until", "3", "--resume", "--noise", "poisson",
                                       "--level", "2"))  # fmt: skip
    assert poisson.exit_code == 0, poisson.output
    card = _card(tmp_path, "mixed")
    first, second = card.training["sittings"]
    assert (first["from"], first["to"], second["from"], second["to"]) == (0, 2, 2, 3)
    assert "changed" not in first
    assert second["changed"] == ["--noise poisson (was gaussian)", "--level 2.0 (was 15.0)"]
    assert "poisson noise at level 2 (changed on resuming: at step 2 --noise poisson (was gaussian)" in card.description

    # a card written without training on describes the steps that made it, not the options the command gave
    finished = runner.invoke(app, _args(photos, tmp_path, "mixed", "--finish", "--noise", "speckle", "--level", "0.03"))
    assert finished.exit_code == 0, finished.output
    again = _card(tmp_path, "mixed")
    assert again.training["recipe"]["noise"] == "poisson" and "speckle" not in again.training["command"]
    assert again.description == card.description and again.training["sittings"] == card.training["sittings"]


def test_a_run_started_from_a_card_resumes_once_that_card_is_gone(photos: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, _args(photos, tmp_path, "base", "--iters", "1")).exit_code == 0
    base = _card(tmp_path, "base")
    init = str(base.path)
    assert runner.invoke(app, _args(photos, tmp_path, "child", "--init", init, "--until", "2")).exit_code == 0
    base.path.rename(base.path.with_name("renamed.json"))
    resumed = runner.invoke(app, _args(photos, tmp_path, "child", "--init", init, "--resume"))
    assert resumed.exit_code == 0, resumed.output
    child = _card(tmp_path, "child")
    assert child.training["iterations"] == 4
    assert child.training["initialised_from"] == {"card": "base", "sha256": base.sha256, "iterations": 1}
    assert f"--init {init}" in child.training["command"]

    other = runner.invoke(app, _args(photos, tmp_path, "child", "--init", "unet", "--resume", "--iters", "5"))
    assert other.exit_code == 2 and "\n" not in other.output.strip(), other.output
    assert other.output.startswith(f"error: --init unet: this run started from {init}'s weights"), other.output


def test_finish_writes_the_card_without_the_training_data(photos: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    validated = ["--val", str(photos / "coffee.tif")]
    assert runner.invoke(app, _args(photos, tmp_path, "moved", *validated, "--until", "3")).exit_code == 0
    written = _card(tmp_path, "moved")
    shutil.move(photos, tmp_path / "elsewhere")
    finished = runner.invoke(app, _args(photos, tmp_path, "moved", *validated, "--finish"))
    assert finished.exit_code == 0, finished.output
    assert "wrote model card" in finished.output and "warning" not in finished.output
    card = _card(tmp_path, "moved")
    assert card.training["iterations"] == 3 and card.scores == written.scores
    assert card.description == written.description and card.training["data"] == [str(photos)]

    resumed = runner.invoke(app, _args(photos, tmp_path, "moved", *validated, "--resume"))
    assert resumed.exit_code == 2 and "Traceback" not in resumed.output, resumed.output
    assert resumed.output.strip().splitlines()[-1] == f"error: no usable training images in {photos}"
