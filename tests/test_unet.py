"""The convolutional U-Net: seamless tiles, its window, its memory, training it unmasked (blind over a level
range), and a card the CLI runs."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from skimage import data
from typer.testing import CliRunner

from mdn import allocator, metrics, noise, objectives, registry, train
from mdn.cli import app
from mdn.engine import TILES_PER_RELEASE, Engine, EngineOptions
from mdn.errors import MdnError
from mdn.nets.swinir import MaskedSwinIR, SwinIRConfig
from mdn.nets.unet import UNET_SIZES, UNet, UNetConfig

SMALL = UNetConfig(widths=(8, 16, 24))


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return (data.astronaut()[100:250, 150:323] / 255).astype(np.float32)[None]


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    tifffile.imwrite(folder / "coffee.tif", data.coffee()[:160, :192])
    tifffile.imwrite(folder / "camera.tif", data.camera()[:128, :128])
    return folder


@pytest.mark.parametrize(("tile", "overlap"), [(64, 32), (96, 16)])
def test_tiled_equals_whole_image_within_3e_3(photo: np.ndarray, tile: int, overlap: int) -> None:
    torch.manual_seed(0)
    net = UNet(SMALL).eval()
    whole = Engine(net, EngineOptions(device="cpu", precision="fp32", tile=512))(photo)
    engine = Engine(net, EngineOptions(device="cpu", precision="fp32", tile=tile, overlap=overlap))
    tiled = engine(photo)
    assert engine.tiles_run > 2 and whole.shape == photo.shape
    assert np.abs(tiled - whole).max() <= 3e-3


def test_window_is_the_coarsest_downscaling_and_tiles_must_fit_it() -> None:
    assert SMALL.window == 4 and UNET_SIZES["unet"].window == 16
    with pytest.raises(MdnError, match="multiple of 16"):
        Engine(UNet(UNET_SIZES["unet"]), EngineOptions(device="cpu", tile=72))
    assert UNetConfig.from_dict(SMALL.to_dict()) == SMALL


def test_a_card_keeps_the_weights_and_the_fast_layout(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = UNet(SMALL)
    card = registry.ModelCard("u", "unet", SMALL.to_dict(), "", "", description="random, for tests")
    loaded = registry.load(registry.save(net, card, tmp_path))
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(loaded(x), net.eval()(x))
    assert loaded.first[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_training_unmasked_learns_to_denoise(photos: Path, tmp_path: Path) -> None:
    """A few hundred steps on two photos take a tiny U-Net over 1 dB above its noisy input at the training level."""
    options = train.TrainOptions(
        name="u", data=[str(photos)], config="unet-tiny", mask=False, iters=300, batch=8, crop=32, lr=3e-3, ema=0.9,
        device="cpu", validate_every=300, checkpoint_every=300, validation=[str(photos / "coffee.tif")],
    )  # fmt: skip
    trainer = train.Trainer(options, tmp_path, log=lambda _: None)
    last = list(trainer.run())[-1].validation
    assert last is not None and last["psnr"] > last["noisy_psnr"] + 1
    assert trainer.model.config == UNET_SIZES["unet-tiny"]


def test_a_masked_unet_run_is_refused(photos: Path, tmp_path: Path) -> None:
    options = train.TrainOptions(name="u", data=[str(photos)], config="unet-tiny", device="cpu")
    with pytest.raises(MdnError, match="no tokens to mask"):
        train.Trainer(options, tmp_path, log=lambda _: None)


def test_the_cli_trains_a_card_that_denoise_runs(photos: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["train", "--data", str(photos), "--name", "u", "--config", "unet-tiny", "--no-mask", "--iters", "2",
            "--batch", "2", "--crop", "32", "--workdir", str(tmp_path / "run"), "--output", str(tmp_path / "cards"),
            "--device", "cpu", "--quiet"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    card = registry.find(str(tmp_path / "cards" / "u.json"))
    assert card.architecture == "unet" and "U-Net" in card.description
    clean = data.camera()[:100, :120] / 255
    noisy = noise.make_noise("gaussian", 15)(clean[..., None], np.random.default_rng(0))[..., 0]
    tifffile.imwrite(tmp_path / "noisy.tif", (noisy * 65535).round().astype(np.uint16))
    out = tmp_path / "out.tif"
    result = runner.invoke(
        app, ["denoise", str(tmp_path / "noisy.tif"), "-o", str(out), "--model", card.path.as_posix()]
    )
    assert result.exit_code == 0, result.output
    denoised = tifffile.imread(out)
    assert denoised.dtype == np.uint16 and denoised.shape == noisy.shape
    assert np.isfinite(metrics.psnr(denoised / 65535, clean))


def test_a_level_range_draws_each_crops_level_and_is_recorded() -> None:
    """Blind training: every crop at its own Gaussian sigma from the range; validation stays at `level`."""
    options = train.TrainOptions(name="u", data=[], config="unet-tiny", mask=False, level_range=(5.0, 50.0))
    objective = objectives.MaskedDenoising(options, torch.float32)
    clean = torch.full((64, 3, 32, 32), 0.5)
    sigmas = (objective.noisy(clean, torch.Generator().manual_seed(0)) - clean).std(dim=(1, 2, 3)) * 255
    assert 4 < sigmas.min() < 10 and 45 < sigmas.max() < 52 and sigmas.std() > 8
    validation = objective.validation([np.full((64, 64, 3), 0.5, np.float32)])
    assert np.std(validation.noisy["gaussian"][0] - 0.5) * 255 == pytest.approx(15, rel=0.1)
    assert "levels 5-50" in objective.describe() and "--level-range 5,50" in options.command()
    assert train.TrainOptions.from_recipe(json.loads(json.dumps(asdict(options)))) == options
    with pytest.raises(MdnError, match="level_range"):
        train.TrainOptions(name="u", data=[], level_range=(50.0, 5.0))


@pytest.mark.parametrize(
    ("network", "releases"), [(UNet(SMALL), True), (MaskedSwinIR(SwinIRConfig(12, (2,), 2)), False)]
)
def test_the_cpu_engine_hands_freed_memory_back_every_few_tiles_for_a_unet(
    network: torch.nn.Module, releases: bool, photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The U-Net's feature maps leave heap holes malloc does not reuse, so the engine trims the heap every
    TILES_PER_RELEASE tiles; the SwinIR keeps freed memory for reuse instead."""
    calls = []
    monkeypatch.setattr(allocator, "release_freed_memory", lambda: calls.append(1))
    engine = Engine(network.eval(), EngineOptions(device="cpu", precision="fp32", tile=64, overlap=16))
    engine(np.concatenate([photo, photo]))
    assert engine.tiles_run >= 2 * TILES_PER_RELEASE
    assert len(calls) == (engine.tiles_run // TILES_PER_RELEASE if releases else 0)


def test_a_grey_share_trains_on_grey_crops_with_the_same_noise_in_every_channel() -> None:
    """Grey images reach a colour network replicated, their noise equal across channels: a share of the crops
    is made grey that way, the rest keeps independent noise per channel."""
    options = train.TrainOptions(name="u", data=[], config="unet-tiny", mask=False, level_range=(5.0, 50.0),
                                 grey_share=0.25)  # fmt: skip
    objective = objectives.MaskedDenoising(options, torch.float32)
    generator = torch.Generator().manual_seed(0)
    clean = objective.greyed(torch.rand(400, 3, 8, 8), generator)
    noisy = objective.noisy(clean, generator)
    grey = (clean == clean[:, :1]).flatten(1).all(dim=1)
    same_noise = (noisy == noisy[:, :1]).flatten(1).all(dim=1)
    assert torch.equal(grey, same_noise) and 0.18 < grey.float().mean() < 0.32
    assert "--grey-share 0.25" in options.command()
    with pytest.raises(MdnError, match="grey_share"):
        train.TrainOptions(name="u", data=[], grey_share=1.5)
