"""The convolutional U-Net: seamless tiles, its window, its memory, training it unmasked (blind over a level
range), and a card the CLI runs."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import torch
import torch.nn.functional as F
from skimage import data
from typer.testing import CliRunner

from mdn import allocator, metrics, noise, registry, training
from mdn.cli import app
from mdn.errors import MdnError
from mdn.inference.engine import TILES_PER_RELEASE, Engine, EngineOptions
from mdn.nets.dynamic_filter import DynamicFilter, neighbours
from mdn.nets.swinir import MASK_VALUE, MaskedSwinIR, SwinIRConfig
from mdn.nets.unet import UNET_SIZES, KernelFilter, PartialConv, UNet, UNetConfig, neighbour_masked
from mdn.training import objectives

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
    options = training.TrainOptions(
        name="u", data=[str(photos)], config="unet-tiny", mask=False, iters=300, batch=8, crop=32, lr=3e-3, ema=0.9,
        device="cpu", validate_every=300, checkpoint_every=300, validation=[str(photos / "coffee.tif")],
    )  # fmt: skip
    trainer = training.Trainer(options, tmp_path, log=lambda _: None)
    last = list(trainer.run())[-1].validation
    assert last is not None and last["psnr"] > last["noisy_psnr"] + 1
    assert trainer.model.config == UNET_SIZES["unet-tiny"]


def test_a_partial_first_convolution_sees_only_visible_pixels_and_is_plain_inside_whole_images() -> None:
    torch.manual_seed(0)
    partial = PartialConv(3, 4)
    x = torch.rand(2, 3, 16, 16)
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))  # the image border counts as hidden
    torch.testing.assert_close(partial(x)[inner], F.conv2d(x, partial.weight, partial.bias, padding=1)[inner])
    hidden = torch.rand(2, 1, 16, 16) < 0.8
    masked = torch.where(hidden, torch.full_like(x, MASK_VALUE), x)
    changed = torch.where(hidden, torch.rand_like(x), x)  # other values under the hidden pixels
    out = partial(masked)
    torch.testing.assert_close(out, partial(torch.where(hidden, torch.full_like(x, MASK_VALUE), changed)))
    none_visible = F.max_pool2d((~hidden).float(), 3, 1, 1) == 0
    assert none_visible.any() and torch.all(out[none_visible.expand_as(out)] == 0)
    y, x0 = 5, 7  # a window's output is the visible pixels' weighted sum scaled by 9 / their count
    window = (~hidden)[0, :, y - 1 : y + 2, x0 - 1 : x0 + 2].float()
    patch = masked[0, :, y - 1 : y + 2, x0 - 1 : x0 + 2] * window
    expected = (partial.weight * patch).sum(dim=(1, 2, 3)) * 9 / window.sum().clamp(min=1) + partial.bias
    torch.testing.assert_close(out[0, :, y, x0], expected * (window.sum() > 0))


def test_a_hidden_position_is_invisible_to_its_neighbours_but_not_to_itself() -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(2, 3, 3, padding=1)
    x = torch.rand(1, 2, 8, 8)
    hidden = torch.zeros(1, 1, 8, 8)
    hidden[0, 0, 4, 4] = 1
    changed = x.clone()
    changed[0, :, 4, 4] += 1
    moved = neighbour_masked(conv, changed, hidden) - neighbour_masked(conv, x, hidden)
    assert moved[0, :, 4, 4].abs().min() > 0  # its own output follows it
    moved[0, :, 4, 4] = 0
    assert moved.abs().max() < 1e-6  # no neighbour's does
    torch.testing.assert_close(neighbour_masked(conv, x, torch.zeros_like(hidden)), conv(x))


def test_feature_masks_are_drawn_from_the_generator_and_switch_off() -> None:
    torch.manual_seed(0)
    net = UNet(UNetConfig(widths=(8, 16), residual=False, feature_mask=0.75)).eval()
    x = torch.rand(2, 3, 32, 32)
    first = net(x, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(first, net(x, generator=torch.Generator().manual_seed(1)))
    assert not torch.allclose(first, net(x, generator=torch.Generator().manual_seed(2)))
    torch.testing.assert_close(net(x, attention_mask=False), net(x, attention_mask=False))
    assert net.config.stochastic and not UNET_SIZES["unet-partial"].stochastic


def test_predicted_kernels_average_the_visible_pixels_and_nothing_else() -> None:
    """Equal logits make one pass a box mean over the pixels shown (the image border and hidden pixels left
    out); any logits give a convex combination of the pixels shown, whatever lies under the hidden ones."""
    torch.manual_seed(0)
    x = torch.rand(2, 3, 12, 12)
    box = KernelFilter(3)(x, torch.zeros(2, 9, 12, 12))
    torch.testing.assert_close(box, F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
    hidden = torch.rand(2, 1, 12, 12) < 0.7
    masked = torch.where(hidden, torch.full_like(x, MASK_VALUE), x)
    logits = torch.randn(2, 2 * 25, 12, 12) * 3
    out = KernelFilter(5)(masked, logits)
    shown = x[~hidden.expand_as(x)]
    assert out.min() >= shown.min() - 1e-6 and out.max() <= shown.max() + 1e-6
    constant = torch.where(hidden, torch.full_like(x, MASK_VALUE), torch.full_like(x, 0.3))
    torch.testing.assert_close(KernelFilter(5)(constant, logits), torch.full_like(x, 0.3))
    one = KernelFilter(3)(masked, torch.zeros(2, 9, 12, 12))
    y, x0 = 6, 4
    window = (~hidden)[0, 0, y - 1 : y + 2, x0 - 1 : x0 + 2]
    if window.any():
        torch.testing.assert_close(one[0, :, y, x0], x[0, :, y - 1 : y + 2, x0 - 1 : x0 + 2][:, window].mean(dim=1))


def test_a_kernel_predicting_unet_outputs_an_image_within_its_input_range() -> None:
    torch.manual_seed(0)
    net = UNet(replace(UNET_SIZES["unet-kpn"], widths=(8, 16)))
    assert net.last.out_channels == 2 * 25
    x = torch.rand(1, 3, 16, 16) * 0.5 + 0.25
    out = net(x)
    assert out.shape == x.shape and out.min() >= 0.25 - 1e-6 and out.max() <= 0.75 + 1e-6


def test_a_dynamic_filter_averages_neighbours_and_mixes_with_its_input_only_in_training() -> None:
    """Any weights give, per pixel, a convex combination of its neighbours (the output within their range, a
    flat image unchanged); training mixes each iteration with its input by a share drawn from the generator,
    so the same seed gives the same output and another seed another."""
    torch.manual_seed(0)
    block = DynamicFilter(channels=3, width=8, iterations=1).eval()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        out = block(x)
        taps = neighbours(x, 2)
        assert (out >= taps.amin(dim=2) - 1e-6).all() and (out <= taps.amax(dim=2) + 1e-6).all()
        assert not torch.allclose(out, x)
        flat = torch.full_like(x, 0.4)
        torch.testing.assert_close(DynamicFilter(3, 8, 4).eval()(flat), flat)
        block.train()
        first = block(x, torch.Generator().manual_seed(1))
        torch.testing.assert_close(block(x, torch.Generator().manual_seed(1)), first)
        assert not torch.allclose(block(x, torch.Generator().manual_seed(2)), first)
    assert neighbours(x, 1)[:, :, 4].equal(x) and neighbours(x, 2)[0, :, 0, 5, 5].equal(x[0, :, 3, 3])


def test_a_refined_kernel_unet_keeps_its_configuration_and_its_input_range() -> None:
    torch.manual_seed(0)
    config = replace(UNET_SIZES["unet-kpn-refine"], widths=(8, 16), refine_width=8)
    net = UNet(UNetConfig.from_dict(config.to_dict())).eval()
    assert net.config == config and net.refine is not None and net.refine.iterations == 6
    x = torch.rand(1, 3, 16, 16) * 0.5 + 0.25
    with torch.no_grad():
        out = net(x)
    assert out.shape == x.shape and out.min() >= 0.25 - 1e-6 and out.max() <= 0.75 + 1e-6


def test_a_kernel_output_starts_afresh_on_the_features_of_a_card_that_predicted_pixels(tmp_path: Path) -> None:
    """`--init` from a pixel-predicting card: every layer but the output convolution (3 channels there, 50 here)
    comes from the card; the output keeps its own start, and a card of another shape is still refused."""
    from mdn.training.checkpoint import start_weights

    pixels = UNet(replace(UNET_SIZES["unet"], widths=(8, 16)))
    card = registry.save(pixels, registry.ModelCard("pixels", "unet", pixels.config.to_dict(), "", ""), tmp_path)
    kernels = UNet(replace(UNET_SIZES["unet"], widths=(8, 16), residual=False, kernel=5, kernel_passes=2))
    own_last = kernels.last.weight.detach().clone()
    options = training.TrainOptions(name="k", data=[], config="unet", mask=False)
    start_weights(kernels, str(card.path), objectives.MaskedDenoising(options, torch.float32), "unet-kpn")
    torch.testing.assert_close(kernels.first[0].weight, pixels.first[0].weight)
    torch.testing.assert_close(kernels.last.weight, own_last)
    wider = UNet(replace(UNET_SIZES["unet"], widths=(8, 24)))
    with pytest.raises(MdnError, match="differs"):
        start_weights(wider, str(card.path), objectives.MaskedDenoising(options, torch.float32), "unet")


@pytest.mark.parametrize("config", ["unet-tiny", "unet", "unet-dropout"])
def test_a_masked_run_of_a_unet_without_an_in_network_mask_is_refused(config: str) -> None:
    options = training.TrainOptions(name="u", data=[], config=config)
    with pytest.raises(MdnError, match="no in-network mask"):
        objectives.MaskedDenoising(options, torch.float32)


@pytest.mark.parametrize(("config", "passes"), [("unet-feature-mask", 4), ("unet-partial", 1)])
def test_a_masked_unet_run_and_its_twin_record_their_masks(config: str, passes: int) -> None:
    """The masked run hides input pixels and keeps its in-network mask; its twin is the same network without
    either; the card's inference settings say how many passes the masked one averages."""
    options = training.TrainOptions(name="u", data=[], config=config)
    masked = objectives.MaskedDenoising(options, torch.float32)
    twin = objectives.MaskedDenoising(replace(options, mask=False), torch.float32)
    built, plain = masked.build(), twin.build()
    assert built.config.feature_mask == (0.75 if config == "unet-feature-mask" else 0) and built.config.partial == (
        config == "unet-partial"
    )
    assert plain.config == UNetConfig(residual=False)
    assert masked.inference() == ({"passes": passes} if passes > 1 else {}) and twin.inference() == {}
    assert "Masked U-Net" in masked.describe() and "no-mask baseline) U-Net" in twin.describe()
    clean = torch.full((4, 3, 32, 32), 0.5)
    seen: list[torch.Tensor] = []
    masked.loss(lambda x, **_: seen.append(x) or x, clean, torch.Generator().manual_seed(0))
    assert 0.7 < float((seen[0] == MASK_VALUE).all(dim=1).float().mean()) < 0.9


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


def test_a_level_range_draws_each_crops_level_and_is_recorded(tmp_path: Path) -> None:
    """Blind training: every crop at its own Gaussian sigma from the range; validation stays at `level`."""
    iio.imwrite(tmp_path / "grey.png", np.full((64, 64, 3), 128, np.uint8))
    options = training.TrainOptions(
        name="u", data=[], config="unet-tiny", mask=False, level_range=(5.0, 50.0), validation=[str(tmp_path)]
    )
    objective = objectives.MaskedDenoising(options, torch.float32)
    clean = torch.full((64, 3, 32, 32), 0.5)
    sigmas = (objective.noisy(clean, torch.Generator().manual_seed(0)) - clean).std(dim=(1, 2, 3)) * 255
    assert 4 < sigmas.min() < 10 and 45 < sigmas.max() < 52 and sigmas.std() > 8
    validation = objective.validation(print)
    assert np.std(validation.noisy["gaussian"][0] - 128 / 255) * 255 == pytest.approx(15, rel=0.1)
    assert "levels 5-50" in objective.describe() and "--level-range 5,50" in options.command()
    assert training.TrainOptions.from_recipe(json.loads(json.dumps(asdict(options)))) == options
    with pytest.raises(MdnError, match="--level-range must be"):
        training.TrainOptions(name="u", data=[], level_range=(50.0, 5.0))


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
    options = training.TrainOptions(name="u", data=[], config="unet-tiny", mask=False, level_range=(5.0, 50.0),
                                 grey_share=0.25)  # fmt: skip
    objective = objectives.MaskedDenoising(options, torch.float32)
    generator = torch.Generator().manual_seed(0)
    clean, noisy = objective.pairs(torch.rand(400, 3, 8, 8), generator)
    grey = (clean == clean[:, :1]).flatten(1).all(dim=1)
    same_noise = (noisy == noisy[:, :1]).flatten(1).all(dim=1)
    assert torch.equal(grey, same_noise) and 0.18 < grey.float().mean() < 0.32
    assert "--grey-share 0.25" in options.command()
    with pytest.raises(MdnError, match="--grey-share must be in"):
        training.TrainOptions(name="u", data=[], grey_share=1.5)
