"""The cards in models/: intact, documented, and doing their job on images held back from their training."""

from __future__ import annotations

import json
from pathlib import Path

import imagecodecs
import pytest
from skimage import data
from typer.testing import CliRunner

import mdn
from mdn import bench, metrics, registry, training
from mdn.cli import app
from mdn.inference.engine import Engine, EngineOptions

SHIPPED = sorted(registry.builtin_dir().glob("*.json"))

MIN_GAIN_DB = 6.0
"""The training issue's bar for the default card on held-back images with Gaussian sigma 15 (measured on
astronaut: 8.3 with `unet`, 6.4 with `small-baseline`)."""


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_card_loads_and_records_how_it_was_made(path) -> None:
    card = registry.ModelCard.from_file(path)
    model = registry.load(card)
    assert sum(p.numel() for p in model.parameters()) == card.training["parameters"]
    for key in ("command", "data", "iterations", "seconds", "hardware", "recipe"):
        assert card.training[key], key
    assert card.training["command"].startswith("mdn train")
    assert card.weights_path.stat().st_size < 5 << 20
    assert json.loads(path.read_text())["sha256"] == registry.sha256(card.weights_path)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_recorded_recipe_loads_and_gives_the_recorded_command(path) -> None:
    """Recipes from before `precision` recorded `bf16`; they load as the precision it meant."""
    record = registry.ModelCard.from_file(path).training
    options = training.TrainOptions.from_recipe(record["recipe"])
    recorded = record["recipe"].get("precision") or ("bf16" if record["recipe"].get("bf16") else "fp32")
    assert options.precision == recorded
    assert options.command() == record["command"].replace("--bf16", "--precision bf16")


def test_there_is_one_default_denoiser() -> None:
    defaults = [c for c in registry.cards().values() if c.default and c.task == "denoise"]
    assert len(defaults) == 1


def test_default_denoiser_gains_on_held_back_gaussian_15() -> None:
    clean = bench.load_references(None)["astronaut"]
    noisy = bench.noisy_input(clean, "astronaut", "gaussian", 15, seed=0)
    out = Engine(registry.load(registry.default_card()), EngineOptions(tile=256))(noisy[None])[0]
    gain = metrics.psnr(out, clean) - metrics.psnr(noisy, clean)
    assert gain >= MIN_GAIN_DB, gain


def test_the_defaults_grey_network_gains_on_a_held_back_grey_picture() -> None:
    """Its own weights for grey pictures (`ModelCard.grey`) beat the colour network's on astronaut in grey at
    Gaussian sigma 25, the network alone (29.52 against 29.45 dB when it shipped)."""
    model = registry.load_model(None)
    assert model.grey_net is not None
    clean = bench.load_references(None)["astronaut"].mean(axis=-1, keepdims=True)
    noisy = bench.noisy_input(clean, "astronaut", "gaussian", 25, seed=0)
    colour, grey = (Engine(model.net, EngineOptions(tile=256), net)(noisy[None])[0] for net in (None, model.grey_net))
    assert metrics.psnr(grey, clean) >= metrics.psnr(colour, clean) + 0.03


def test_bundled_example_is_denoised(tmp_path: Path) -> None:
    """The README's first command: Poisson (alpha 2) noise on a crop of scikit-image's astronaut."""
    example = Path(__file__).resolve().parent.parent / "examples" / "astronaut_poisson.png"
    result = CliRunner().invoke(app, ["denoise", str(example), "-o", str(tmp_path / "out.png"), "--quiet"])
    assert result.exit_code == 0, result.output
    clean = data.astronaut()[:320, 96:416] / 255.0
    noisy = imagecodecs.png_decode(example.read_bytes()) / 255.0
    out = imagecodecs.png_decode((tmp_path / "out.png").read_bytes()) / 255.0
    assert metrics.psnr(out, clean) > metrics.psnr(noisy, clean) + 2.0


@pytest.mark.parametrize("masked", ["unet-masked-s15", "unet-kpn-s15"])
def test_masked_card_beats_its_twin_on_noise_neither_trained_on(masked: str) -> None:
    """All trained on Gaussian sigma 15 alone; masking keeps the masked cards off the training noise (the
    kernel-predicting one by 6.6 dB here, its output a weighted average of input pixels)."""
    clean = bench.load_references(None)["kodim23"]
    noisy = bench.noisy_input(clean, "kodim23", "poisson", 3.0, seed=0)
    masked_out, twin = (
        Engine(registry.load(card), EngineOptions(tile=256))(noisy[None])[0]
        for card in (registry.find(masked), registry.find("unet-twin-s15"))
    )
    assert metrics.psnr(masked_out, clean) > metrics.psnr(twin, clean) + 1.0


def test_kernel_card_runs_the_defaults_stages_and_gains_from_them() -> None:
    """The kernel card (sigma 15 alone) puts back texture and filters groups of patches after its network, as the
    default does: on Poisson noise it never saw that gains more than 0.5 dB over its network alone (0.79 dB on
    kodim23 when it shipped)."""
    card = registry.find("unet-kpn-s15")
    assert card.inference["detail"]
    clean = bench.load_references(None)["kodim23"]
    noisy = bench.noisy_input(clean, "kodim23", "poisson", 3.0, seed=0)
    staged, alone = (mdn.denoise(noisy, "unet-kpn-s15", detail=detail) for detail in (None, False))
    assert metrics.psnr(staged, clean) > metrics.psnr(alone, clean) + 0.5
