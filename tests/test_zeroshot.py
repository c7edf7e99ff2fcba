"""Zero-shot denoising: MPI's skip network and iterative fill, and ZS-N2N, on small crops."""

from __future__ import annotations

import copy
import dataclasses
import json

import imagecodecs
import numpy as np
import pytest
import tifffile
import torch
from skimage import data
from typer.testing import CliRunner

from mdn import registry
from mdn.cli import app
from mdn.errors import MdnError
from mdn.inference.engine import MIN_TILE
from mdn.metrics import psnr
from mdn.nets.skip import SkipConfig, SkipNet
from mdn.noise import specimens
from mdn.zeroshot import PRESETS, IterativeFill, Preset, ZeroShot, mpi_tiled, zs_n2n
from mdn.zeroshot import mpi as zeroshot_mpi
from mdn.zeroshot.mpi import Filled, Progress
from mdn.zeroshot.self_check import holdout_mask, noise_variance, self_checked
from mdn.zeroshot.zs_n2n import pair_downsample

GREY = SkipConfig(channels=1, mask_channels=1, width=16, scales=3)
FAST = PRESETS["fast"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These small nets run fastest, and the same on any machine, on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _net(config: SkipConfig = GREY) -> SkipNet:
    torch.manual_seed(0)
    return SkipNet(config)


def _mpi(noisy: np.ndarray, net: SkipNet, preset: Preset, seed: int = 0, dtype=torch.float32, **options) -> Filled:
    """MPI on the whole image as one tile, its forward pass autocast to `dtype`."""
    fill = IterativeFill(net, preset, seed, dtype)
    return mpi_tiled(
        noisy, net, preset, tile=max(*noisy.shape[:2], MIN_TILE), overlap=0, seed=seed, fill=fill, **options
    )


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    return data.camera()[100:164, 100:164, None].astype(np.float32) / 255


@pytest.fixture(scope="module")
def noisy(clean: np.ndarray) -> np.ndarray:
    return (clean + np.random.default_rng(0).normal(0, 25 / 255, clean.shape)).astype(np.float32)


def _rgb_noisy(size: int = 64) -> np.ndarray:
    clean = data.astronaut()[:size, 200 : 200 + size].astype(np.float32) / 255
    return (clean + np.random.default_rng(1).normal(0, 25 / 255, clean.shape)).astype(np.float32)


def test_parameter_counts_match_mpis_checkpoints() -> None:
    assert sum(p.numel() for p in SkipNet(SkipConfig()).parameters()) == 747_395
    assert sum(p.numel() for p in SkipNet(SkipConfig(mask_channels=1)).parameters()) == 746_115


def test_config_round_trips() -> None:
    assert SkipConfig.from_dict(GREY.to_dict()) == GREY


@pytest.mark.parametrize("shape", [(1, 1, 21, 35), (2, 1, 64, 64), (1, 1, 5, 3)])
def test_skip_net_keeps_any_size_and_outputs_in_open_unit_interval(shape: tuple[int, ...]) -> None:
    with torch.no_grad():
        out = _net()(torch.rand(shape), torch.ones(shape))
    assert out.shape == shape
    assert out.min() > 0 and out.max() < 1


def test_mpi_denoises_and_leaves_the_callers_net_untouched(clean: np.ndarray, noisy: np.ndarray) -> None:
    net = _net()
    before = copy.deepcopy(net.state_dict())
    out = _mpi(noisy, net, dataclasses.replace(FAST, iters=60)).image
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert psnr(out, clean) > psnr(noisy, clean) + 4
    assert all(torch.equal(value, net.state_dict()[key]) for key, value in before.items())
    assert net.training


def test_mpi_is_seeded_and_reports_progress(noisy: np.ndarray) -> None:
    preset = dataclasses.replace(FAST, iters=4)
    calls: list[tuple[int, int]] = []
    report = lambda done, total: calls.append((done, total))  # noqa: E731
    a = _mpi(noisy, _net(), preset, seed=3, progress=report, self_check=False).image
    b = _mpi(noisy, _net(), preset, seed=3, self_check=False).image
    c = _mpi(noisy, _net(), preset, seed=4, self_check=False).image
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_one_fill_step_sets_masked_pixels_to_the_prediction_before_the_update() -> None:
    """With beta 0 and one iteration: hidden pixels hold the untrained net's prediction, the rest stay noisy.
    The mask is the first draw of the seeded generator."""
    noisy = _rgb_noisy()
    net = _net(SkipConfig(width=16, scales=3))
    out = _mpi(noisy, net, dataclasses.replace(FAST, iters=1, beta=0.0), seed=5, self_check=False).image
    x = torch.from_numpy(noisy).permute(2, 0, 1)[None]
    hidden = (torch.rand(x.shape, generator=torch.Generator().manual_seed(5)) < FAST.mask_ratio).float()
    with torch.no_grad():
        prediction = copy.deepcopy(net).train()(x * (1 - hidden), hidden)[0].permute(1, 2, 0).numpy()
    hidden = hidden[0].permute(1, 2, 0).numpy().astype(bool)
    assert 0.25 < hidden.mean() < 0.35
    assert np.array_equal(out[~hidden], noisy[~hidden].clip(0, 1))
    np.testing.assert_allclose(out[hidden], prediction[hidden], atol=1e-5)


def test_shared_mask_hides_whole_pixels() -> None:
    noisy = _rgb_noisy()
    net = _net(SkipConfig(mask_channels=1, width=16, scales=3))
    out = _mpi(noisy, net, dataclasses.replace(PRESETS["real"], iters=1, beta=0.0), self_check=False).image
    changed = out != noisy.clip(0, 1)
    assert np.array_equal(changed[..., 0], changed[..., 1]) and np.array_equal(changed[..., 0], changed[..., 2])
    assert 0.8 < changed[..., 0].mean() < 0.9


def test_mismatched_net_and_image_are_user_errors(noisy: np.ndarray) -> None:
    with pytest.raises(MdnError):
        _mpi(_rgb_noisy(), _net(SkipConfig(mask_channels=1, width=16, scales=3)), FAST)
    with pytest.raises(MdnError):
        _mpi(noisy, _net(SkipConfig(width=16, scales=3)), FAST)


@pytest.mark.parametrize("shape", [(3, 3, 1), (2, 40, 1)])
def test_an_image_too_small_to_learn_from_is_refused_by_both_methods(shape: tuple[int, ...]) -> None:
    tiny = np.full(shape, 0.5, np.float32)
    with pytest.raises(MdnError, match="at least 4x4 pixels"):
        _mpi(tiny, _net(), FAST)
    with pytest.raises(MdnError, match="at least 4x4 pixels"):
        zs_n2n(tiny, iters=2)
    out = _mpi(np.random.default_rng(0).random((4, 4, 1), np.float32), _net(), dataclasses.replace(FAST, iters=3))
    assert out.image.shape == (4, 4, 1) and np.isfinite(out.image).all()


def test_a_fit_that_diverges_is_an_error_not_an_image(noisy: np.ndarray, monkeypatch) -> None:
    monkeypatch.setattr(IterativeFill, "run", lambda self, image, *args, **kwargs: np.full_like(image, np.nan))
    with pytest.raises(MdnError, match="zero-shot fitting diverged"):
        _mpi(noisy, _net(), FAST)
    with pytest.raises(MdnError, match=r"zero-shot fitting diverged .* try a lower --lr"):
        zs_n2n(noisy, iters=2, lr=1e12)


def test_mpi_tiled_covers_a_large_image_with_one_continued_run() -> None:
    image = np.random.default_rng(2).random((100, 150, 1), dtype=np.float32)
    calls: list[tuple[int, int]] = []
    preset = dataclasses.replace(FAST, iters=2)
    out = mpi_tiled(image, _net(), preset, tile=64, overlap=16, progress=lambda *call: calls.append(call)).image
    assert out.shape == image.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    assert calls[-1] == (12, 12) and len(calls) == 12  # 2 x 3 tiles


def test_mpi_tiled_on_one_tile_is_mpi(noisy: np.ndarray) -> None:
    preset = dataclasses.replace(FAST, iters=3)
    tiled, single = mpi_tiled(noisy, _net(), preset, tile=64), _mpi(noisy, _net(), preset)
    assert np.array_equal(tiled.image, single.image) and tiled.check == single.check


def test_spent_time_budget_returns_the_noisy_start(noisy: np.ndarray) -> None:
    calls: list[tuple[int, int]] = []
    out, check = _mpi(noisy, _net(), FAST, time_budget=0, progress=lambda *call: calls.append(call))
    tiled = mpi_tiled(noisy, _net(), FAST, tile=64, overlap=16, time_budget=0).image
    assert np.array_equal(out, noisy.clip(0, 1)) and np.array_equal(tiled, out) and check is None
    assert calls == []


def test_self_check_gives_way_to_the_input_when_the_fill_is_worse(clean: np.ndarray) -> None:
    """Light noise and a barely fine-tuned untrained net: the fill alone is far worse than the input."""
    noisy = (clean + np.random.default_rng(0).normal(0, 2 / 255, clean.shape)).astype(np.float32)
    preset = dataclasses.replace(FAST, iters=20)
    raw = _mpi(noisy, _net(), preset, self_check=False).image
    out, check = _mpi(noisy, _net(), preset)
    assert psnr(raw, clean) < psnr(noisy.clip(0, 1), clean) - 3
    assert check.fill_gain_db < 0 and check.weight == 1.0 and check.gain_db == 0.0
    assert np.array_equal(out, noisy.clip(0, 1))


def test_self_check_keeps_a_good_fill_and_estimates_the_noise(clean: np.ndarray, noisy: np.ndarray) -> None:
    out, check = _mpi(noisy, _net(), dataclasses.replace(FAST, iters=60))
    assert psnr(out, clean) > psnr(noisy, clean) + 4
    assert check.weight < 0.3 and check.gain_db > 3
    assert check.to_json()["noise_sigma"] == pytest.approx(25, rel=0.1)


def test_self_check_works_on_the_unshuffled_sub_images(clean: np.ndarray, noisy: np.ndarray) -> None:
    """The `real` preset with its self-check, on an odd-sized crop: the held-out pixels follow the pixels into
    the four sub-images and back."""
    crop, noisy_crop = clean[:63, :61], noisy[:63, :61]
    net = _net(dataclasses.replace(GREY, scales=2))
    out, check = _mpi(noisy_crop, net, dataclasses.replace(PRESETS["real"], iters=60))
    assert out.shape == crop.shape and np.isfinite(out).all()
    assert check.to_json()["noise_sigma"] == pytest.approx(25, rel=0.15)
    assert psnr(out, crop) >= psnr(noisy_crop.clip(0, 1), crop) - 0.1


@pytest.mark.parametrize("memorised", [0.0, 0.25])
def test_self_check_measures_memorised_noise_and_blends_at_the_best_weight(memorised: float) -> None:
    """A synthetic fill: independent error of variance a everywhere, plus a share k of the pixel's own noise where
    it trained. The self-check recovers a and k from the held-out and trained residuals, and its blend is as good
    as the best single weight found by search; with k = 0.25 that weight is 0, and the old rule (which ignored
    memorisation) would have made the result worse than the fill alone."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:256, 0:256] / 256
    clean = (0.5 + 0.2 * np.sin(6 * xx) * np.cos(4 * yy))[..., None].astype(np.float32)
    noise = rng.normal(0, 0.08, clean.shape).astype(np.float32)
    error = rng.normal(0, 0.03, clean.shape).astype(np.float32)
    holdout = holdout_mask(256, 256, 0)
    filled = clean + error + np.where(holdout[..., None], 0, memorised * noise)
    noisy = clean + noise
    out, check = self_checked(noisy, filled, holdout)
    assert check.memorised == pytest.approx(memorised, abs=0.03)
    assert check.fill_error_var == pytest.approx(0.03**2, rel=0.35)

    def mse(image: np.ndarray) -> float:
        return float(np.mean((image - clean)[~holdout] ** 2))

    best = min(mse(w * noisy + (1 - w) * filled) for w in np.linspace(0, 1, 101))
    weighed = check.weight * noisy + (1 - check.weight) * filled
    assert mse(weighed) <= best * 1.03 and mse(weighed) <= mse(filled)
    assert mse(out) <= best * 1.2  # blended pixel by pixel, from 48 neighbours' residuals each
    if memorised:
        assert check.weight == 0.0
        assert check.gain_db == pytest.approx(10 * np.log10(0.08**2 / mse(filled)), abs=0.5)


def test_the_blend_gives_the_input_back_where_the_fill_errs() -> None:
    """A fill right on one half of the image and smooth on the other, textured half (as a fill from neighbours
    misses fine texture): the pixel-by-pixel blend keeps the fill on the first half and gives much of the input
    back on the second, below the error of the best single weight for the whole image."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:256, 0:256] / 256
    texture = np.where(xx > 0.5, 0.08 * np.sin(90 * xx) * np.sin(70 * yy), 0.0)
    clean = (0.5 + 0.1 * np.cos(3 * yy) + texture)[..., None].astype(np.float32)
    filled = (clean - texture[..., None] + rng.normal(0, 0.005, clean.shape)).astype(np.float32)
    noisy = (clean + rng.normal(0, 0.05, clean.shape)).astype(np.float32)
    holdout = holdout_mask(256, 256, 0)
    out, check = self_checked(noisy, filled, holdout)

    def mse(image: np.ndarray, half: np.ndarray | None = None) -> float:
        where = ~holdout if half is None else ~holdout & half
        return float(np.mean((image - clean)[where] ** 2))

    best = min(mse(w * noisy + (1 - w) * filled) for w in np.linspace(0, 1, 101))
    assert 0 < check.weight < 1
    assert mse(out) < 0.85 * best  # 0.77 when written
    smooth, textured = xx <= 0.5, xx > 0.5
    assert mse(out, smooth) < 0.05 * mse(noisy, smooth)  # the fill kept: 0.024
    assert mse(out, textured) < 0.65 * mse(filled, textured)  # the input given back: 0.55


@pytest.mark.parametrize("peak", [160, 10])
def test_self_check_range_is_a_floor_and_the_output_gains_more(peak: int) -> None:
    """The shipped grey fill card on a grey 128x128 crop of a held-back sample, at light and heavy photon noise: the
    point estimate (of the fill blended with one weight) may miss by 1-4 dB, and its range holds that blend's
    measured gain; the output, blended pixel by pixel and refined by the Wiener stage, gains more than the range's
    low end and more than the one-weight blend (+1.7 and +1.3 dB when written)."""
    net = registry.load(registry.find("fill-grey", task="fill"))
    clean = data.astronaut()[:128, 180:308].mean(axis=-1, keepdims=True).astype(np.float32) / 255
    noisy = (np.random.default_rng(0).poisson(peak * clean) / peak).astype(np.float32)
    preset = dataclasses.replace(FAST, iters=40, beta=0.5)
    out, check = _mpi(noisy, net, preset)
    plain, _ = _mpi(noisy, net, preset, self_check=False)
    low, high = check.gain_range_db
    assert low <= check.gain_db <= high
    before = psnr(noisy.clip(0, 1), clean)
    held = holdout_mask(128, 128, 0)[..., None]
    fill = IterativeFill(net, preset, 0).run(noisy, None, Progress(preset.iters, None), held[..., 0])
    one_weight = check.weight * noisy.clip(0, 1) + (1 - check.weight) * fill.clip(0, 1)
    assert low <= psnr(one_weight, clean) - before <= high
    assert psnr(out, clean) > psnr(one_weight, clean) + 0.6
    assert psnr(out, clean) > psnr(plain, clean)
    assert check.to_json()["estimated_gain_db_low"] == round(low, 2)


def test_held_out_pixels_are_never_shown_to_the_net(noisy: np.ndarray) -> None:
    """Nothing else hidden, beta 0, one step: visible pixels stay noisy and held-out pixels hold the prediction
    from an input that hides them."""
    held = holdout_mask(*noisy.shape[:2], 2)
    assert 0.09 < held.mean() < 0.11  # 64 x 64: at least 2000 pixels, at most 10 %
    net = _net()
    fill = IterativeFill(net, dataclasses.replace(FAST, iters=1, beta=0.0, mask_ratio=0.0), seed=2)
    out = fill.run(noisy, None, Progress(1, None), held)
    hidden = torch.from_numpy(held).float()[None, None]
    with torch.no_grad():
        x = torch.from_numpy(noisy).permute(2, 0, 1)[None]
        prediction = copy.deepcopy(net).train()(x * (1 - hidden), hidden)[0].permute(1, 2, 0).numpy()
    assert np.array_equal(out[~held], noisy[~held])
    np.testing.assert_allclose(out[held], prediction[held], atol=1e-5)


def test_noise_variance_follows_signal_dependent_noise() -> None:
    """Photon noise on a ramp: the estimate is the mean variance over the image, not that of a typical pixel."""
    ramp = np.tile(np.linspace(0.02, 1, 256, dtype=np.float32), (256, 1))[..., None]
    noisy = np.random.default_rng(0).poisson(30 * ramp).astype(np.float32) / 30
    assert noise_variance(noisy) == pytest.approx(float(np.mean(ramp / 30)), rel=0.1)
    flat = np.random.default_rng(1).normal(0.5, 0.1, (128, 128, 3)).astype(np.float32)
    assert noise_variance(flat) == pytest.approx(0.01, rel=0.1)


def test_pair_downsample_averages_the_two_diagonals() -> None:
    x = torch.arange(16.0).view(1, 1, 4, 4)
    d1, d2 = pair_downsample(x)
    assert d1.flatten().tolist() == [2.5, 4.5, 10.5, 12.5]
    assert d2.flatten().tolist() == [2.5, 4.5, 10.5, 12.5]
    x = torch.tensor([[1.0, 2.0], [3.0, 5.0]]).view(1, 1, 2, 2)
    assert [d.item() for d in pair_downsample(x)] == [3.0, 2.5]


def test_zs_n2n_denoises(clean: np.ndarray, noisy: np.ndarray) -> None:
    out = zs_n2n(noisy, iters=300)
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert psnr(out, clean) > psnr(noisy, clean) + 6


@pytest.mark.parametrize("method", ["mpi", "zs-n2n"])
def test_bfloat16_autocast_denoises_within_half_a_db_of_float32(method: str, clean, noisy) -> None:
    def run(dtype: torch.dtype) -> np.ndarray:
        if method == "mpi":
            return _mpi(noisy, _net(), dataclasses.replace(FAST, iters=60), dtype=dtype).image
        return zs_n2n(noisy, iters=300, dtype=dtype)

    fp32, bf16 = run(torch.float32), run(torch.bfloat16)
    assert bf16.dtype == np.float32 and not np.array_equal(fp32, bf16)
    assert abs(psnr(bf16, clean) - psnr(fp32, clean)) < 0.5


def test_zs_n2n_is_seeded(noisy: np.ndarray) -> None:
    calls: list[tuple[int, int]] = []
    a = zs_n2n(noisy, iters=5, seed=1, progress=lambda *call: calls.append(call))
    assert np.array_equal(a, zs_n2n(noisy, iters=5, seed=1))
    assert not np.array_equal(a, zs_n2n(noisy, iters=5, seed=2))
    assert calls[-1] == (5, 5)


def test_cli_zeroshot_on_16_bit_stack_keeps_depth_and_metadata(tmp_path) -> None:
    torch.manual_seed(0)
    config = SkipConfig(channels=1, mask_channels=1, width=8, scales=2)
    card = registry.ModelCard("fill-grey", "skip", config.to_dict(), "", "", task="fill")
    registry.save(SkipNet(config), card, registry.user_dir())
    rng = np.random.default_rng(0)
    stack = (rng.poisson(data.camera()[:40, :48].astype(float) * 4 + 400, size=(2, 40, 48))).astype(np.uint16)
    tifffile.imwrite(tmp_path / "cells.tif", stack, imagej=True, metadata={"axes": "ZYX", "spacing": 2.0})
    runner = CliRunner()
    for args in (["--iters", "3", "--share"], ["--method", "zs-n2n", "--iters", "5"]):
        out = tmp_path / f"out{len(args)}.tif"
        result = runner.invoke(app, ["zeroshot", str(tmp_path / "cells.tif"), "-o", str(out), *args, "--quiet"])
        assert result.exit_code == 0, result.output
        with tifffile.TiffFile(out) as tif:
            assert tif.asarray().dtype == np.uint16 and tif.asarray().shape == stack.shape
            assert tif.imagej_metadata["spacing"] == 2.0


def test_a_hot_pixel_neither_stops_the_fit_of_a_16_bit_stack_nor_is_lost(tmp_path) -> None:
    """One hot pixel (65535) in a stack of 200..3200 counts: stretched from its full range, the rest lay in a
    twentieth of [0, 1] and the fill gained nothing on any plane (0.0 dB, with a warning to try another method).
    Its range without outliers gains as the stack without the hot pixel does, and the hot pixel comes back as it
    came."""
    clean = specimens.fluorescence_stack(2, 64, seed=6171)
    camera = specimens.Microscope(counts_per_photon=32.0)
    stack = camera.record(clean, np.random.default_rng(6172))
    hot = stack.copy()
    hot[0, 10, 10] = 65535
    gains = {}
    for name, recording in (("plain", stack), ("hot", hot)):
        tifffile.imwrite(tmp_path / f"{name}.tif", recording, imagej=True, metadata={"axes": "ZYX"})
        args = ["zeroshot", str(tmp_path / f"{name}.tif"), "--iters", "20", "--device", "cpu", "--quiet"]
        assert CliRunner().invoke(app, args).exit_code == 0
        out = tifffile.imread(tmp_path / f"{name}_zeroshot.tif").astype(np.float64)
        keep = np.ones(stack.shape, bool)
        keep[0, 10, 10] = False
        error = {kind: (pixels - camera.signal(clean)) ** 2 for kind, pixels in (("out", out), ("in", stack))}
        gains[name] = [10 * np.log10(error["in"][z][keep[z]].mean() / error["out"][z][keep[z]].mean()) for z in (0, 1)]
        if name == "hot":
            assert out[0, 10, 10] == 65535
    assert min(gains["plain"]) > 3.0, gains
    assert np.allclose(gains["hot"], gains["plain"], atol=0.3), gains


def test_pixels_outside_the_range_are_fitted_as_their_neighbours_median_and_given_back() -> None:
    from mdn.zeroshot.run import in_range

    planes = np.random.default_rng(3).uniform(0.2, 0.3, (2, 6, 6, 1)).astype(np.float32)
    planes[0, 2, 3], planes[1, 0, 0] = 7.0, -1.0  # a hot pixel, a dead one at the corner
    outside = (planes < 0) | (planes > 1)
    filled = in_range(planes, outside)
    assert filled[0, 2, 3, 0] == np.median(np.delete(planes[0, 1:4, 2:5, 0].ravel(), 4))
    assert 0.2 <= filled[1, 0, 0, 0] <= 0.3
    np.testing.assert_array_equal(filled[~outside], planes[~outside])


def test_cli_zeroshot_reports_its_self_check_and_warns_when_it_cannot_help(tmp_path) -> None:
    """Light noise, an untrained fill card and 3 iterations: the fill is worse than the input, so the input comes
    back, the JSON report says why and a warning names the file."""
    torch.manual_seed(0)
    config = SkipConfig(channels=1, mask_channels=1, width=8, scales=2)
    card = registry.ModelCard("fill-grey", "skip", config.to_dict(), "", "", task="fill")
    registry.save(SkipNet(config), card, registry.user_dir())
    image = data.camera()[:64, :64].astype(np.float64) * 64 + np.random.default_rng(0).normal(0, 64, (64, 64))
    tifffile.imwrite(tmp_path / "a.tif", image.clip(0, 65535).astype(np.uint16))
    args = ["zeroshot", str(tmp_path / "a.tif"), "-o", str(tmp_path / "b.tif"), "--iters", "3"]
    result = CliRunner().invoke(app, [*args, "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert "a.tif: self-check: the fine-tuned fill alone looked" in " ".join(result.output.split())
    check = json.loads((tmp_path / "r.json").read_text())["files"][0]["info"]["self_check"][0]
    assert check["input_weight"] == 1.0 and check["fill_gain_db"] < 0 and check["estimated_gain_db"] == 0.0
    assert check["estimated_gain_db_low"] == check["estimated_gain_db_high"] == 0.0
    assert "improves this image by an estimated 0.0 to 0.0 dB only" in " ".join(result.output.split())
    assert np.array_equal(tifffile.imread(tmp_path / "b.tif"), tifffile.imread(tmp_path / "a.tif"))


def test_cli_zeroshot_names_the_file_too_small_for_it_and_writes_nothing(tmp_path) -> None:
    torch.manual_seed(0)
    config = SkipConfig(channels=1, mask_channels=1, width=8, scales=2)
    card = registry.ModelCard("fill-grey", "skip", config.to_dict(), "", "", task="fill")
    registry.save(SkipNet(config), card, registry.user_dir())
    (tmp_path / "tiny.png").write_bytes(imagecodecs.png_encode(data.camera()[:3, :3]))
    (tmp_path / "fine.png").write_bytes(imagecodecs.png_encode(data.camera()[:16, :16]))
    args = ["zeroshot", str(tmp_path / "tiny.png"), str(tmp_path / "fine.png"), "-o", str(tmp_path / "out")]
    result = CliRunner().invoke(app, [*args, "--iters", "2"])
    assert result.exit_code == 1, result.output
    assert f"error: {tmp_path / 'tiny.png'}: zero-shot denoising needs" in " ".join(result.output.split())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["fine.png"]


def test_cli_zeroshot_refuses_a_tile_too_small_before_any_file(tmp_path) -> None:
    (tmp_path / "a.png").write_bytes(imagecodecs.png_encode(data.camera()[:32, :32]))
    result = CliRunner().invoke(app, ["zeroshot", str(tmp_path / "a.png"), "--tile", "7", "-q"])
    assert result.exit_code == 2 and "--tile must be at least 64 pixels, got 7" in result.output
    for options, words in ((["--tile", "64", "--overlap", "64"], "--overlap must be in [0, 32] (half of --tile 64)"),
                           (["--lr", "inf"], "--lr must be a number more than 0, got inf")):  # fmt: skip
        result = CliRunner().invoke(app, ["zeroshot", str(tmp_path / "a.png"), *options, "-q"])
        assert result.exit_code == 2 and words in result.output, result.output  # was a ZeroDivisionError


def test_cli_zeroshot_rejects_an_unknown_precision(tmp_path) -> None:
    (tmp_path / "a.png").write_bytes(imagecodecs.png_encode(data.camera()[:32, :32]))
    result = CliRunner().invoke(app, ["zeroshot", str(tmp_path / "a.png"), "--precision", "fp64"])
    assert result.exit_code == 2 and "unknown precision 'fp64'" in result.output


def test_cli_zeroshot_without_fill_card_says_how_to_get_one(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(registry, "builtin_dir", lambda: tmp_path / "no-models")

    (tmp_path / "a.png").write_bytes(imagecodecs.png_encode(data.camera()[:32, :32]))
    result = CliRunner().invoke(app, ["zeroshot", str(tmp_path / "a.png")])
    assert result.exit_code == 1 and "mdn train --objective fill --config grey" in result.output


def test_zs_n2n_stops_in_its_time_budget_and_gives_the_input_when_no_step_fitted(noisy: np.ndarray) -> None:
    calls: list[tuple[int, int]] = []
    zs_n2n(noisy, iters=10**6, time_budget=0.3, progress=lambda *call: calls.append(call))
    assert 0 < calls[-1][0] < 10**6
    np.testing.assert_array_equal(zs_n2n(noisy, time_budget=0), np.clip(noisy, 0, 1))


def test_cli_zs_n2n_honours_the_time_budget(tmp_path) -> None:
    (tmp_path / "a.png").write_bytes(imagecodecs.png_encode(data.camera()[:32, :32]))
    args = ["zeroshot", str(tmp_path / "a.png"), "-o", str(tmp_path / "b.png"), "--method", "zs-n2n", "-q"]
    result = CliRunner().invoke(app, [*args, "--time-budget", "0", "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(imagecodecs.png_decode((tmp_path / "b.png").read_bytes()), data.camera()[:32, :32])
    assert "the time budget ran out before the first iteration: the input came back as it was" in result.output
    info = json.loads((tmp_path / "r.json").read_text())["files"][0]["info"]
    assert info["iters"] == 2000 and info["iters_run"] == [0]
    full = CliRunner().invoke(app, [*args, "--iters", "3", "--overwrite", "--json", str(tmp_path / "r.json")])
    info = json.loads((tmp_path / "r.json").read_text())["files"][0]["info"]
    assert full.exit_code == 0 and info["iters"] == 3 and "iters_run" not in info and "time budget" not in full.output


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("channels", [3, 1])
def test_cli_every_preset_runs_end_to_end_with_its_self_check(tmp_path, preset: str, channels: int) -> None:
    """Each preset with its shipped fill card, on colour and grey: a file of the input's shape and type."""
    image = data.astronaut()[:34, :30] if channels == 3 else data.camera()[:34, :30]
    (tmp_path / "a.png").write_bytes(imagecodecs.png_encode(image))
    args = ["zeroshot", str(tmp_path / "a.png"), "-o", str(tmp_path / "b.png"), "--preset", preset, "--iters", "3"]
    result = CliRunner().invoke(app, [*args, "-q"])
    assert result.exit_code == 0, result.output
    out = imagecodecs.png_decode((tmp_path / "b.png").read_bytes())
    assert out.shape == image.shape and out.dtype == image.dtype


@pytest.mark.parametrize(
    "option",
    [["--preset", "fast"], ["--model", "fill-grey"], ["--beta", "0.9"], ["--mask-ratio", "0.5"], ["--share"],
     ["--tile", "128"], ["--overlap", "8"], ["--no-self-check"]],
)  # fmt: skip
def test_cli_zs_n2n_refuses_what_only_mpi_has(tmp_path, option: list[str]) -> None:
    (tmp_path / "a.png").write_bytes(imagecodecs.png_encode(data.camera()[:32, :32]))
    result = CliRunner().invoke(app, ["zeroshot", str(tmp_path / "a.png"), "--method", "zs-n2n", *option])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {option[0]} applies to --method mpi only"
    assert not (tmp_path / "a_zeroshot.png").exists()


def test_unshuffle_groups_each_sub_pixel_phase_and_inverts_exactly() -> None:
    image = torch.rand(1, 3, 7, 9)
    phases = zeroshot_mpi.unshuffled(image, 2)
    assert phases.shape == (4, 3, 4, 5)
    for phase, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        assert torch.equal(phases[phase, :, : (8 - dy) // 2, : (10 - dx) // 2], image[0, :, dy::2, dx::2])
    assert torch.equal(zeroshot_mpi.shuffled(phases, 2)[..., :7, :9], image)


def test_real_preset_fills_the_four_sub_images_as_a_batch() -> None:
    noisy = _rgb_noisy()[:31, :29]
    net = _net(SkipConfig(mask_channels=1, width=16, scales=2))
    preset = dataclasses.replace(PRESETS["real"], iters=1, beta=0.0)
    assert preset.unshuffle == 2
    out = _mpi(noisy, net, preset, self_check=False).image
    changed = out != noisy.clip(0, 1)
    assert out.shape == noisy.shape and np.isfinite(out).all()
    assert np.array_equal(changed[..., 0], changed[..., 2]) and 0.85 < changed[..., 0].mean() < 0.95


class _Constant(SkipNet):
    """A fill network that predicts 0.25 everywhere (and still trains: its output depends on its weights)."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return 0.25 + 0.0 * super().forward(x, mask)


def test_the_fill_average_keeps_nothing_of_the_noisy_start() -> None:
    """A pixel filled n times held beta^n of the noisy image the running fill started from; that start is taken
    out, so five steps average their predictions alone: every filled pixel comes out 0.25, where it was 0.95 of
    the noisy value before; a pixel never hidden stays as it came."""
    torch.manual_seed(0)
    net = _Constant(SkipConfig(channels=1, mask_channels=1, width=8, scales=2))
    preset = Preset(mask_ratio=0.3, shared_mask=True, iters=5, beta=0.99)
    noisy = np.random.default_rng(0).uniform(0.5, 1.0, (32, 32, 1)).astype(np.float32)
    out = IterativeFill(net, preset, seed=0).run(noisy, None, Progress(5, None))
    filled = out != noisy
    assert 0.7 < filled.mean() < 0.95  # 1 - 0.7^5 of the pixels were hidden at least once
    np.testing.assert_allclose(out[filled], 0.25, atol=1e-5)


@pytest.mark.parametrize("share", [True, False])
def test_a_continued_slice_runs_a_quarter_of_the_iterations(share: bool) -> None:
    """With `share` each slice after the first continues its network for CONTINUED of the preset's iterations;
    without, every slice starts from the pre-trained weights and runs them all."""
    torch.manual_seed(0)
    net = SkipNet(SkipConfig(channels=1, mask_channels=1, width=8, scales=2))
    preset = dataclasses.replace(PRESETS["microscopy"], iters=8)
    reports: list[tuple[int, int]] = []
    stack = np.random.default_rng(0).uniform(0.2, 0.8, (3, 32, 32, 1)).astype(np.float32)
    runner = ZeroShot(preset, net, share=share, progress=lambda done, total: reports.append((done, total)))
    runner(stack)
    iterations = [8, 2, 2] if share else [8, 8, 8]
    assert runner.iterations == iterations
    assert reports[-1] == (sum(iterations), sum(iterations)) and len(reports) == sum(iterations)


def test_a_hyperstacks_slice_continues_the_slice_before_of_its_own_channel(monkeypatch) -> None:
    """Planes z0c0, z0c1, z1c0, z1c1: each channel's first slice starts from the pre-trained weights and its second
    continues that channel's network (continued from the other channel's, another dye's, a two-channel stack came
    out 0.6 to 0.9 dB worse)."""
    torch.manual_seed(0)
    net = SkipNet(SkipConfig(channels=1, mask_channels=1, width=8, scales=2))
    preset = dataclasses.replace(PRESETS["microscopy"], iters=8)
    used: list[int] = []
    real = zeroshot_mpi.mpi_tiled

    def watched(*args, fill, **kwargs):
        used.append(id(fill))
        return real(*args, fill=fill, **kwargs)

    monkeypatch.setattr("mdn.zeroshot.mpi_tiled", watched)
    stack = np.random.default_rng(0).uniform(0.2, 0.8, (4, 32, 32, 1)).astype(np.float32)
    runner = ZeroShot(preset, net, share=True)
    runner(stack, plane_channels=[0, 1, 0, 1])
    assert runner.iterations == [8, 8, 2, 2]
    assert used[2] == used[0] and used[3] == used[1] and used[0] != used[1]


def test_the_self_checks_verdicts_name_the_planes_of_a_stack_they_concern() -> None:
    from mdn.zeroshot.run import verdicts
    from mdn.zeroshot.self_check import SelfCheck

    worse = SelfCheck(noise_var=1e-3, fill_error_var=2e-3, memorised=0.0, weight=1.0)  # the input given back
    good = SelfCheck(noise_var=1e-3, fill_error_var=1e-4, memorised=0.0, weight=0.1)
    assert good.gain_db > 5 and worse.fill_gain_db < 0
    assert verdicts([good, worse, good, worse], "microscopy") == [
        "self-check: on planes 2, 4 of 4, the fine-tuned fill alone looked 3.0 dB worse than the input; 100% of the "
        "input was blended back",
        "self-check: --preset microscopy improves planes 2, 4 of 4 by an estimated 0.0 to 0.0 dB only; try --method "
        "zs-n2n or another preset",
    ]  # a stack whose first slice was denoised was told "this image" came back unchanged
    assert verdicts([worse], "fast")[1].startswith("self-check: --preset fast improves this image by")
    assert verdicts([good, good], "fast") == []


def test_the_self_checks_verdicts_name_the_channels_a_grey_fill_ran_apart() -> None:
    """A grey fill card runs an RGB photo channel by channel: its warnings spoke of 'plane 1 of 3'."""
    from mdn.zeroshot.run import run_names, verdicts
    from mdn.zeroshot.self_check import SelfCheck

    worse = SelfCheck(noise_var=1e-3, fill_error_var=2e-3, memorised=0.0, weight=1.0)
    good = SelfCheck(noise_var=1e-3, fill_error_var=1e-4, memorised=0.0, weight=0.1)
    photo = run_names([(0, [0]), (0, [1]), (0, [2])], 3)
    assert photo == ["the red channel", "the green channel", "the blue channel"]
    assert verdicts([worse, good, worse], "real", photo)[0].startswith(
        "self-check: on the red channel, the blue channel, the fine-tuned fill alone looked 3.0 dB worse"
    )
    stack = run_names([(p, [c]) for p in range(2) for c in range(3)], 3)
    assert stack[4] == "plane 2's green channel"
    assert run_names([(0, [0, 1, 2]), (1, [0, 1, 2])], 3) is None  # whole planes: the stack's numbering
    assert run_names([(0, [0]), (1, [1])], 2) == ["plane 1's channel 1", "plane 2's channel 2"]


def test_a_zs_n2n_fit_that_collapses_to_black_or_white_is_an_error(noisy: np.ndarray) -> None:
    from mdn.zeroshot.zs_n2n import collapsed

    assert collapsed(np.zeros_like(noisy), noisy) and collapsed(np.ones_like(noisy), noisy)
    assert collapsed((noisy > 0.5).astype(np.float32), noisy)  # black and white alone: --lr 3000 wrote this
    assert not collapsed(np.zeros_like(noisy), np.zeros_like(noisy))  # a black picture stays black
    assert not collapsed(np.clip(noisy, 0.01, 1), noisy)


def test_the_wrote_line_names_zs_n2n_as_it_names_a_card(tmp_path) -> None:
    """`wrote b.png (1.0 s)`: ZS-N2N has no card, and the line named nothing."""
    (tmp_path / "a.png").write_bytes(imagecodecs.png_encode(data.camera()[:32, :32]))
    args = ["zeroshot", str(tmp_path / "a.png"), "-o", str(tmp_path / "b.png"), "--method", "zs-n2n", "--iters", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0 and "b.png (zs-n2n, " in result.output, result.output


def test_a_time_budget_spent_names_the_planes_that_came_back_as_they_were() -> None:
    """The warning said 'the input came back as it was' when the first plane had been denoised and the rest not."""
    from mdn.zeroshot.run import _budget_spent

    stack = [(plane, [0]) for plane in range(4)]
    assert _budget_spent([20, 5, 5, 5], 1, stack) == []
    assert _budget_spent([20, 0, 0, 0], 1, stack) == [
        "the time budget ran out before planes 2, 3, 4 of 4 began: they came back as they were (give more time)"
    ]
    assert _budget_spent([0, 0, 0, 0], 1, stack) == [
        "the time budget ran out before the first iteration: the input came back as it was"
    ]
    assert "before plane 3 of 4 began: it came back as it was" in _budget_spent([20, 5, 0, 5], 1, stack)[0]
    photo = [(0, [c]) for c in range(3)]
    assert "before the green channel, the blue channel began" in _budget_spent([9, 0, 0], 3, photo)[0]
