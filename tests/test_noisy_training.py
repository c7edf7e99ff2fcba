"""Learning from a camera's noisy images alone: the noise fit, the stabilising transform, `mdn train --noisy` and
its card on new acquisitions."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from typer.testing import CliRunner

import mdn
from mdn import registry, volumes
from mdn.cli import app
from mdn.errors import MdnError
from mdn.io import images, tonemap
from mdn.noise import specimens
from mdn.stabilise import PoissonGaussian, Stabiliser, stabiliser_for
from mdn.training import Trainer, TrainOptions
from mdn.training.self_supervised import run, sure

COUNTS = 65535.0


def _recording(frames: int, size: int, seed: int, gain: float = 64.0) -> tuple[np.ndarray, np.ndarray]:
    """A clean signal (counts, float32) and its noisy uint16 recording."""
    clean = specimens.fluorescence_stack(frames, size, seed)
    camera = specimens.Microscope(counts_per_photon=gain)
    return camera.signal(clean), camera.record(clean, np.random.default_rng(seed))


def _psnr(out: np.ndarray, clean: np.ndarray) -> float:
    """Mean per-frame PSNR on the clean stack's range."""
    span = float(clean.max() - clean.min())
    return float(np.mean([10 * np.log10(span**2 / np.mean((o - c) ** 2)) for o, c in zip(out, clean, strict=True)]))


@pytest.mark.parametrize("gain", [32.0, 128.0])
def test_the_fit_finds_the_cameras_gain_from_noisy_frames_alone(gain: float) -> None:
    _, noisy = _recording(6, 256, seed=3, gain=gain)
    fit = PoissonGaussian.fit([frame / COUNTS for frame in noisy])
    assert fit.gain * COUNTS == pytest.approx(gain, rel=0.1)


def test_the_fit_leaves_saturated_pixels_out() -> None:
    """Clipped highlights (5 % of pixels) halved the fitted gain, and one saturated plane of four made the fit
    fail: pixels at a clip have no noise."""
    _, noisy = _recording(4, 256, seed=3, gain=32.0)
    clip = np.percentile(noisy, 95)
    clipped = np.minimum(noisy, clip)
    saturated = noisy.copy()
    saturated[1] = 65535
    for frames in (clipped, saturated):
        fit = PoissonGaussian.fit([frame / COUNTS for frame in frames])
        assert fit.gain * COUNTS == pytest.approx(32.0, rel=0.1)
    with pytest.raises(MdnError, match="saturated everywhere"):
        PoissonGaussian.fit([np.ones((64, 64))])


def test_the_fit_refuses_noise_that_does_not_grow_with_the_signal() -> None:
    rng = np.random.default_rng(0)
    ramp = np.linspace(0.1, 0.9, 128)[None, :].repeat(128, 0)
    with pytest.raises(MdnError, match="does not grow"):
        PoissonGaussian.fit([ramp + rng.normal(0, 0.02, ramp.shape) * (1.2 - ramp)])


def test_stabilised_noise_has_one_spread_at_every_brightness_and_the_inverse_is_unbiased() -> None:
    noise = PoissonGaussian(gain=50 / COUNTS, offset=400 / COUNTS**2)
    rng = np.random.default_rng(1)
    levels = np.array([300, 1000, 3000, 10000]) / COUNTS
    signal = np.repeat(levels[:, None], 200_000, axis=1)
    noisy = noise.sample(signal, rng)
    stabiliser = Stabiliser(noise, low=0.0, high=40.0)
    stabilised = stabiliser.forward(noisy)
    assert stabilised.std(axis=1) == pytest.approx([stabiliser.sigma] * 4, rel=0.03)
    restored = stabiliser.inverse(stabilised.mean(axis=1, keepdims=True))[:, 0]
    assert restored == pytest.approx(levels, rel=0.005)


def test_train_noisy_writes_a_card_that_denoises_new_acquisitions_of_the_camera(tmp_path: Path) -> None:
    _, noisy = _recording(3, 128, seed=5)
    tifffile.imwrite(tmp_path / "stack.tif", noisy, photometric="minisblack")
    runner = CliRunner()
    args = ["train", "--noisy", str(tmp_path / "stack.tif"), "--name", "scope", "--iters", "4", "--batch", "2",
            "--validate-every", "2", "--threads", "1", "-o", str(tmp_path / "cards")]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "training on 3 pictures (0.05 megapixels)\n" in result.output  # no procedural ones: the files alone
    card = registry.ModelCard.from_file(tmp_path / "cards" / "scope.json")
    assert card.task == "denoise" and card.training["iterations"] == 4
    assert card.training["initialised_from"]["card"] == "unet-dct-practical"
    assert card.inference["impulses"] and card.inference["detail"]  # the default's stages come with it
    assert card.training["command"].startswith(f"mdn train --name scope --noisy {tmp_path / 'stack.tif'}")
    (record,) = card.training["noisy_data"]
    assert record["shape"] == [3, 128, 128] and record["dtype"] == "uint16" and len(record["sha256"]) == 64
    assert card.training["noise_fit"]["gain"] * COUNTS == pytest.approx(64, rel=0.1)
    scores = card.scores["validation_self_supervised"]
    assert scores["psnr"] > scores["noisy_psnr"] + 3

    later_clean, later = _recording(2, 128, seed=6)  # a new acquisition of the same camera
    tifffile.imwrite(tmp_path / "later.tif", later, photometric="minisblack")
    out = tmp_path / "later_clean.tif"
    denoised = runner.invoke(app, ["denoise", str(tmp_path / "later.tif"), "-o", str(out), "--model", str(card.path)])
    assert denoised.exit_code == 0, denoised.output
    result_stack = tifffile.imread(out)
    assert result_stack.dtype == np.uint16 and result_stack.shape == later.shape
    assert _psnr(result_stack.astype(np.float64), later_clean) > _psnr(later.astype(np.float64), later_clean) + 6
    assert "warning" not in denoised.output

    other = _recording(2, 128, seed=9, gain=1024.0)[1]  # another camera's: the card runs, and says so
    tifffile.imwrite(tmp_path / "other.tif", other, photometric="minisblack")
    report = tmp_path / "other.json"
    args = ["denoise", str(tmp_path / "other.tif"), "--model", str(card.path), "--json", str(report)]
    denoised = runner.invoke(app, args)
    assert denoised.exit_code == 0 and "times the noise of the camera the model was fitted to" in denoised.output
    assert json.loads(report.read_text())["files"][0]["info"]["camera_noise"] > 3
    with pytest.warns(UserWarning, match="times the noise of the camera the model was fitted to"):
        mdn.denoise(other, card.path, axes="ZYX")
    reused = {"camera_noise": 5.2}  # an earlier call's report, reused with a card fitted to no camera
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mdn.denoise(other, "unet", axes="ZYX", info=reused)


def test_a_camera_card_on_another_cameras_data_says_so_for_files_and_volumes(tmp_path: Path) -> None:
    """How many times a card's camera's noise an input's is: about 1 on the camera's own, the square root of the
    gains' ratio on another's; a volume's the file's."""
    stabiliser = stabiliser_for(list(_recording(3, 128, seed=7, gain=32.0)[1] / COUNTS))
    assert stabiliser is not None
    fixed = tonemap.fitter({"stabiliser": stabiliser.to_dict(), "dtype": "uint16"})
    zarr = pytest.importorskip("zarr")
    for gain, expected in ((32.0, (0.9, 1.1)), (8.0, (0.4, 0.6)), (512.0, (3.5, 4.5))):  # about sqrt(gain / 32)
        stack = _recording(2, 128, seed=8, gain=gain)[1]
        tifffile.imwrite(tmp_path / f"g{gain:.0f}.tif", stack, photometric="minisblack")
        image = images.read(tmp_path / f"g{gain:.0f}.tif")
        ratio = tonemap.camera_noise(fixed(image), list(image.pixels[..., 0]))
        assert ratio is not None and expected[0] < ratio < expected[1], (gain, ratio)
        assert (tonemap.other_camera(ratio) is None) == (gain == 32.0)
        zarr.create_array(str(tmp_path / f"g{gain:.0f}.zarr"), data=stack, chunks=(1, 64, 64))
        volume = zarr.open(str(tmp_path / f"g{gain:.0f}.zarr"), mode="r")
        assert volumes.store.camera_noise(volume, fixed(image)) == ratio  # a volume reads the pixels a file's does
    assert tonemap.camera_noise(stabiliser, list(image.pixels[..., 0])) is None  # fitted to the file: no camera


def test_data_no_noise_fit_holds_is_named_in_the_refusal(tmp_path: Path) -> None:
    """`error: the noise does not grow with the signal...` named no file."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(6000, 50000, 96)[None, :].repeat(96, 0)
    frames = np.stack([ramp + rng.normal(0, 900, ramp.shape) * (1.2 - ramp / 65535) for _ in range(2)])
    tifffile.imwrite(tmp_path / "gauss.tif", frames.astype(np.uint16), photometric="minisblack")
    args = ["train", "--noisy", str(tmp_path / "gauss.tif"), "--name", "g", "--iters", "2", "--batch", "2",
            "--crop", "32", "--threads", "1", "-o", str(tmp_path / "cards"),
            "--workdir", str(tmp_path / "run")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "gauss.tif: the noise does not grow" in result.output, result.output


def test_two_detectors_in_one_hyperstack_are_refused_not_fitted_as_one(tmp_path: Path) -> None:
    """A channel at 2 counts a photon and one at 60 (ZCYX): one fit for both put the dim channel at 10 dB, far
    below its noisy input; a card learns one camera's noise, so such a stack is refused, naming it."""
    dim, bright = (_recording(3, 96, seed=7, gain=gain)[1] for gain in (2.0, 60.0))
    tifffile.imwrite(tmp_path / "h.tif", np.stack([dim, bright], axis=1), imagej=True, metadata={"axes": "ZCYX"})
    args = ["train", "--noisy", str(tmp_path / "h.tif"), "--name", "two", "--iters", "2", "--batch", "2",
            "--crop", "32", "--threads", "1", "-o", str(tmp_path / "cards"),
            "--workdir", str(tmp_path / "run")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and result.output.startswith("error: "), result.output
    assert "h.tif: its 2 channels carry different noise" in result.output and "two detectors?" in result.output
    assert not (tmp_path / "cards" / "two.json").exists()
    tifffile.imwrite(tmp_path / "one.tif", dim, photometric="minisblack")
    args[args.index(str(tmp_path / "h.tif"))] = str(tmp_path / "one.tif")
    odd = CliRunner().invoke(app, [*args[: args.index("--crop")], "--crop", "40", *args[args.index("--crop") + 2 :]])
    assert odd.exit_code == 2 and "--crop must be a multiple of 16 for unet-dct-practical's network, got 40" in (
        odd.output
    )


def test_pictures_of_any_size_from_the_crop_up_validate(tmp_path: Path) -> None:
    """A 44 x 44 recording at --crop 32: its validation crops are cut to the network's multiple (16), not 8."""
    _, noisy = _recording(1, 44, seed=3)
    tifffile.imwrite(tmp_path / "small.tif", noisy, photometric="minisblack")
    args = ["train", "--noisy", str(tmp_path / "small.tif"), "--name", "small", "--iters", "2", "--batch", "2",
            "--crop", "32", "--threads", "1", "-o", str(tmp_path / "cards"),
            "--workdir", str(tmp_path / "run")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    scores = registry.ModelCard.from_file(tmp_path / "cards" / "small.json").scores  # it validated (it crashed)
    assert "noisy_psnr" in scores["validation_self_supervised"]


def test_sure_below_zero_gives_no_psnr_rather_than_a_clamped_one(tmp_path: Path) -> None:
    """An 8-bit camera picture whose fitted noise exceeds what it holds: SURE's error comes out negative, and the
    run shows and records no PSNR (it showed 120 dB, the clamp, before any step)."""
    rng, y, x = np.random.default_rng(1), *np.mgrid[0:128, 0:128]
    blobs = sum(np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 50.0) for cy, cx in rng.uniform(0, 128, (30, 2)))
    picture = rng.poisson(blobs / blobs.max() * 60 + 5) * 3 + 20 + rng.normal(0, 2, blobs.shape)
    tifffile.imwrite(tmp_path / "cam.tif", picture.clip(0, 255).astype(np.uint8))
    args = ["train", "--noisy", str(tmp_path / "cam.tif"), "--name", "cam", "--iters", "2", "--batch", "2",
            "--crop", "32", "--threads", "1", "-o", str(tmp_path / "cards"),
            "--workdir", str(tmp_path / "run")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    scores = registry.ModelCard.from_file(tmp_path / "cards" / "cam.json").scores["validation_self_supervised"]
    assert "psnr" not in scores and scores["sure_mse"] < 0 and scores["noisy_psnr"] > 0
    assert "120.00" not in result.output


def test_a_camera_card_refuses_images_of_another_sample_type(tmp_path: Path) -> None:
    stabiliser = Stabiliser(PoissonGaussian(1e-3, 0.0), 0.0, 30.0)
    fixed = tonemap.fitter({"stabiliser": stabiliser.to_dict(), "dtype": "uint16"})
    photo = tmp_path / "photo.png"
    images.write(images.from_array(np.zeros((16, 16, 3), np.uint8)), photo)
    with pytest.raises(MdnError, match="fitted to a camera's uint16 images; this one holds uint8"):
        fixed(images.read(photo))


def test_sure_estimates_the_error_it_cannot_measure() -> None:
    """The validation's estimate from a noisy image alone, against the error measured on the clean one."""
    clean = torch.from_numpy(specimens.fluorescence_stack(1, 192, seed=8)[0])[None, None]
    model = registry.load_model("unet").net.to(memory_format=torch.channels_last)
    for sigma in (0.03, 0.08):
        noisy = clean + torch.randn(clean.shape, generator=torch.Generator().manual_seed(0)) * sigma
        with torch.no_grad():
            measured = float(((run(model, noisy) - clean) ** 2).mean())
        estimated = sure(model, noisy, sigma, torch.Generator().manual_seed(1))
        assert 10 * np.log10(estimated / measured) == pytest.approx(0, abs=0.3)


def test_specimens_move_from_frame_to_frame_and_the_camera_records_their_photon_noise() -> None:
    stack = specimens.fluorescence_stack(3, 96, seed=4)
    assert stack.shape == (3, 96, 96) and stack.dtype == np.float32 and stack.min() >= 0 and stack.max() == 1
    assert np.array_equal(stack, specimens.fluorescence_stack(3, 96, seed=4))
    neighbours = np.corrcoef(stack[0].ravel(), stack[1].ravel())[0, 1]
    assert 0.5 < neighbours < 0.999  # the same specimen, moved
    camera = specimens.Microscope(counts_per_photon=50, read_noise=20)
    flat = np.full((400, 400), 0.5, np.float32)
    counts = camera.record(flat, np.random.default_rng(0)).astype(np.float64)
    signal = float(camera.signal(flat)[0, 0])
    assert counts.mean() == pytest.approx(signal, rel=0.002)
    assert counts.var() == pytest.approx(50 * signal + 20**2, rel=0.02)


def test_noisy_training_resumes_bit_for_bit(tmp_path: Path) -> None:
    _, noisy = _recording(2, 96, seed=9)
    tifffile.imwrite(tmp_path / "stack.tif", noisy, photometric="minisblack")
    options = TrainOptions.create(
        name="t", data=[str(tmp_path / "stack.tif")], objective="self-supervised", iters=4, batch=2, threads=1,
        validate_every=2,
    )  # fmt: skip
    folders = [tmp_path / "straight", tmp_path / "resumed"]
    for folder in folders:
        folder.mkdir()
    straight = Trainer(options, folders[0], log=lambda _: None)
    list(straight.run())
    list(Trainer(options, folders[1], log=lambda _: None).run(until=2))
    resumed = Trainer(options, folders[1], log=lambda _: None)
    resumed.resume()
    list(resumed.run())
    for (name, a), b in zip(straight.ema.state_dict().items(), resumed.ema.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_a_noisy_run_resumes_without_its_init_card_and_finishes_without_its_data(tmp_path: Path) -> None:
    """The checkpoint keeps the card it fine-tunes and the noise fit its card records: --resume needs no --init
    card and --finish no data; a checkpoint from before it kept the fit says what the data is needed for."""
    tifffile.imwrite(tmp_path / "clean.tif", (specimens.fluorescence_stack(1, 64, 3)[0] * 255).astype(np.uint8))
    runner = CliRunner()
    common = ["--batch", "2", "--crop", "32", "--threads", "1", "--device", "cpu", "-o", str(tmp_path / "cards"),
              "--quiet"]  # fmt: skip
    base = ["train", "--data", str(tmp_path / "clean.tif"), "--name", "base", "--config", "unet-tiny", "--no-mask",
            "--iters", "1", *common]  # fmt: skip
    assert runner.invoke(app, base).exit_code == 0
    _, noisy = _recording(2, 64, seed=9)
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, noisy, photometric="minisblack")
    init = tmp_path / "cards" / "base.json"
    args = ["train", "--noisy", str(stack), "--name", "scope", "--init", str(init), "--iters", "4",
            "--validate-every", "2", "--workdir", str(tmp_path / "run"), *common]  # fmt: skip
    assert runner.invoke(app, [*args, "--until", "2"]).exit_code == 0
    written = registry.ModelCard.from_file(tmp_path / "cards" / "scope.json")
    init.rename(init.with_name("renamed.json"))
    stack.rename(tmp_path / "moved.tif")

    finished = runner.invoke(app, [*args, "--finish"])
    assert finished.exit_code == 0, finished.output
    card = registry.ModelCard.from_file(written.path)
    assert card.transform == written.transform and card.transform["stabiliser"]
    assert card.training["noise_fit"] == written.training["noise_fit"]
    assert card.training["noisy_data"] == written.training["noisy_data"] and card.description == written.description
    gone = runner.invoke(app, [*args, "--resume"])
    assert gone.exit_code == 2 and gone.output.strip().splitlines()[-1] == f"error: no usable noisy images in {stack}"

    (tmp_path / "moved.tif").rename(stack)
    resumed = runner.invoke(app, [*args, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    card = registry.ModelCard.from_file(written.path)
    assert card.training["iterations"] == 4 and card.training["initialised_from"]["card"] == "base"

    saved = tmp_path / "run" / "checkpoint.pt"
    state = torch.load(saved, weights_only=True)
    del state["card_fields"]  # as checkpoints were written before they kept it
    torch.save(state, saved)
    stack.rename(tmp_path / "moved.tif")
    old = runner.invoke(app, [*args, "--finish"])
    assert old.exit_code == 2 and "\n" not in old.output.strip(), old.output
    assert old.output.startswith("error: its card needs the training data for the camera's noise fit"), old.output
