"""Training: resumes bit for bit, writes a usable card, skips bad data, runs under torchrun."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import numpy as np
import OpenEXR
import pytest
import tifffile
import torch
from rich.console import Console
from skimage import data
from typer.testing import CliRunner

from mdn import noise, registry, training
from mdn.cli import app, display
from mdn.device import pick_dtype
from mdn.errors import MdnError
from mdn.noise import degrade
from mdn.training import devices, objectives


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Training images as TIFF (read without imagecodecs, which GPU machines may lack) and one broken PNG."""
    folder = tmp_path_factory.mktemp("photos")
    (folder / "nested").mkdir()
    tifffile.imwrite(folder / "coffee.tif", data.coffee()[:96, :128])
    tifffile.imwrite(folder / "nested" / "camera.tif", data.camera()[:80, :80])
    tifffile.imwrite(folder / "tiny.tif", data.camera()[:20, :20])
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    return folder


def _options(photos: Path, **changes) -> training.TrainOptions:
    """A tiny run on the CPU, where every step is bit for bit reproducible (GPU kernels may sum in any order)."""
    base = dict(name="t", data=[str(photos)], config="tiny", iters=4, batch=2, crop=32, lr=1e-3, device="cpu",
                validate_every=2, checkpoint_every=2, validation=[str(photos / "coffee.tif")])  # fmt: skip
    return training.TrainOptions(**{**base, **changes})


def _straight_and_resumed(
    options: training.TrainOptions, folder: Path
) -> tuple[training.Trainer, training.Trainer, list[training.Progress]]:
    """The run straight through (in folder/a, with its reports) and stopped at step 2 then resumed (folder/b)."""
    (folder / "a").mkdir()
    straight = training.Trainer(options, folder / "a", log=lambda _: None)
    reports = list(straight.run())
    (folder / "b").mkdir()
    list(training.Trainer(options, folder / "b", log=lambda _: None).run(until=2))
    resumed = training.Trainer(options, folder / "b", log=lambda _: None)
    resumed.resume()
    list(resumed.run())
    return straight, resumed, reports


def test_resume_continues_bit_for_bit(photos: Path, tmp_path: Path) -> None:
    straight = training.Trainer(_options(photos), tmp_path / "a", log=lambda _: None)
    (tmp_path / "a").mkdir()
    list(straight.run())

    (tmp_path / "b").mkdir()
    first = training.Trainer(_options(photos), tmp_path / "b", log=lambda _: None)
    list(first.run(until=2))
    second = training.Trainer(_options(photos), tmp_path / "b", log=lambda _: None)
    second.resume()
    assert second.iteration == 2
    list(second.run())
    for (name, a), b in zip(straight.ema.state_dict().items(), second.ema.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    sittings = second.sittings()
    assert [(h["from"], h["to"]) for h in sittings] == [(0, 2), (2, 4)]
    log = (tmp_path / "b" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in log] == [0, 2, 4]
    assert '"psnr"' in log[-1] and '"offset"' in log[-1]
    record = json.loads(log[-1])
    unseen = [record[f"{name}_psnr"] for name, _ in objectives.UNSEEN_NOISES]
    assert record["unseen_psnr"] == pytest.approx(sum(unseen) / len(unseen))


def test_baseline_trains_without_masks(photos: Path, tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    trainer = training.Trainer(_options(photos, mask=False), tmp_path / "run", log=lambda _: None)
    assert trainer.model.config.attention_mask_ratio == 0.0 and trainer.objective.inference() == {}
    before = [p.clone() for p in trainer.model.parameters()]
    list(trainer.run(until=1))
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters(), strict=True))


def test_crops_take_all_eight_orientations_weighted_by_area() -> None:
    image = torch.arange(3 * 16 * 16, dtype=torch.float32).view(3, 16, 16)
    orientations = {
        torch.rot90(flipped, k, dims=(1, 2)).flatten().tolist().__repr__()
        for flipped in (image, image.flip(2)) for k in range(4)
    }  # fmt: skip
    crops = training.sample_batch([image], 64, 16, torch.Generator().manual_seed(0))
    assert crops.shape == (64, 3, 16, 16)
    assert {crop.flatten().tolist().__repr__() for crop in crops} == orientations
    pool = [torch.rand(3, 40, 50), torch.rand(3, 64, 36)]
    expected, generator = [], torch.Generator().manual_seed(2)
    for i in torch.multinomial(torch.tensor([2000.0, 2304.0], dtype=torch.float64), 32, True, generator=generator):
        y, x = (int(torch.randint(n - 16 + 1, (1,), generator=generator)) for n in pool[i].shape[1:])
        turns, flip = torch.randint(4, (2,), generator=generator).tolist()
        patch = torch.rot90(pool[i][:, y : y + 16, x : x + 16], turns, dims=(1, 2))
        expected.append(patch.flip(2) if flip % 2 else patch)
    assert torch.equal(training.sample_batch(pool, 32, 16, torch.Generator().manual_seed(2)), torch.stack(expected))
    small, large = torch.zeros(3, 32, 32), torch.ones(3, 128, 128)
    picks = training.sample_batch([small, large], 400, 32, torch.Generator().manual_seed(1)).mean(dim=(1, 2, 3))
    assert 0.9 < float(picks.mean()) < 0.97  # large holds 16/17 of the area


def test_stripe_and_textile_images_hold_fine_periodic_texture_that_dead_leaves_lack() -> None:
    def peaked(image: np.ndarray) -> float:
        """The share of the fine band's energy (above 0.2 cycles per pixel) in its 1 % strongest frequencies:
        high for gratings, low for the broadband spectrum of edges."""
        spectrum = np.abs(np.fft.fft2(image.mean(axis=-1) - image.mean())) ** 2
        frequency = np.hypot(*np.meshgrid(np.fft.fftfreq(image.shape[0]), np.fft.fftfreq(image.shape[1])))
        band = np.sort(spectrum[frequency > 0.2])[::-1]
        return float(band[: len(band) // 100].sum() / band.sum())

    striped = training.stripes(4, 128, np.random.default_rng(0))
    leaves = training.dead_leaves(4, 128, np.random.default_rng(0))
    assert all(s.shape == (128, 128, 3) and s.dtype == np.float32 and 0 <= s.min() <= s.max() <= 1 for s in striped)
    assert np.mean([peaked(s) for s in striped]) > 2 * np.mean([peaked(d) for d in leaves])
    np.testing.assert_array_equal(striped[0], training.stripes(1, 128, np.random.default_rng(0))[0])
    cloth = training.textiles(4, 128, np.random.default_rng(0))
    assert all(c.shape == (128, 128, 3) and c.dtype == np.float32 and 0 <= c.min() <= c.max() <= 1 for c in cloth)
    assert np.mean([peaked(c) for c in cloth]) > 2 * np.mean([peaked(d) for d in leaves])


@pytest.mark.parametrize("kind", [k for k in noise.NOISE_TYPES if k != "practical"])  # practical: the next test
def test_every_training_noise_is_drawn_on_the_device_never_in_numpy(photos: Path, tmp_path: Path, kind: str) -> None:
    level = noise.NOISE_TYPES[kind].default_level
    trainer = training.Trainer(_options(photos, noise=kind, level=level, validation=[]), tmp_path, log=lambda _: None)
    model = type(trainer.objective.noise)
    drawn_on_device = model.on_device
    drawn: list[torch.Tensor] = []

    def recorded(self: noise.NoiseModel, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        drawn.append(x)
        assert generator.device == x.device
        return drawn_on_device(self, x, generator)

    def numpy_noise(*_: object) -> None:
        raise AssertionError("numpy noise drawn in a training step")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model, "on_device", recorded)
        patch.setattr(noise.NoiseModel, "__call__", numpy_noise)
        patch.setattr(np.random, "default_rng", numpy_noise)
        assert math.isfinite(trainer.step())
    assert [(x.device, tuple(x.shape)) for x in drawn] == [(trainer.device, (2, 3, 32, 32))]


def test_practical_training_shrinks_twice_larger_crops_and_noises_them_on_the_device(
    photos: Path, tmp_path: Path
) -> None:
    options = _options(
        photos, noise="practical", level_range=(0.5, 1.5), grey_share=0.5, thumbnail_share=0.2, validation=[]
    )
    trainer = training.Trainer(options, tmp_path, log=lambda _: None)
    pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
    practical_pair = degrade.practical_pair

    def recorded(x: torch.Tensor, size: int, generator: torch.Generator, strength: float, thumbnails: float):
        assert 0.5 <= strength <= 1.5 and generator.device == x.device and thumbnails == 0.2
        pairs.append(practical_pair(x, size, generator, strength, thumbnails))
        return pairs[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(degrade, "practical_pair", recorded)
        patch.setattr(np.random, "default_rng", lambda *_: pytest.fail("numpy noise drawn in a training step"))
        for _ in range(3):
            assert math.isfinite(trainer.step())
    assert "practical noise at strengths 0.5-1.5, web-resized, 50% of crops grey, 20% web thumbnails" in (
        trainer.objective.describe()
    )
    assert "--thumbnail-share 0.2" in trainer.options.command()
    with pytest.raises(MdnError, match="--thumbnail-share needs the practical noise"):
        training.Trainer(_options(photos, thumbnail_share=0.2), tmp_path, log=lambda _: None)
    with pytest.raises(MdnError, match="--thumbnail-share must be in"):
        _options(photos, noise="practical", thumbnail_share=1.5)
    for clean, noisy in pairs:
        assert clean.shape == noisy.shape == (2, 3, 32, 32) and clean.device == trainer.device
    noisy_crops = [trainer.objective.pairs(c, torch.Generator().manual_seed(i)) for i, c in enumerate(
        [training.sample_batch(trainer.pool, 16, 64, torch.Generator().manual_seed(9))] * 2)]  # fmt: skip
    for clean, noisy in noisy_crops:
        grey = (clean == clean[:, :1]).flatten(1).all(dim=1)
        assert grey.any() and (noisy[grey] == noisy[grey][:, :1]).all()  # grey crops: one noise in every channel


def test_compiled_training_is_recorded_and_resumes_bit_for_bit(photos: Path, tmp_path: Path, monkeypatch) -> None:
    compile_ = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **options: compile_(fn, backend="aot_eager", **options))
    options = _options(photos, compile=True, validation=[])
    straight, resumed, _ = _straight_and_resumed(options, tmp_path)
    for (name, a), b in zip(straight.ema.state_dict().items(), resumed.ema.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    card = resumed.write_card(tmp_path / "cards")
    assert card.training["recipe"]["compile"] is True and "--compile" in card.training["command"]
    assert registry.load(card).state_dict().keys() == straight.model.state_dict().keys()


def test_warmup_then_schedule() -> None:
    cosine = training.TrainOptions(name="t", data=[], iters=100, lr=1e-3, warmup=10, schedule="cosine")
    rates = [training.scheduled_rate(cosine, i) for i in range(101)]
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3, rel=0.03)
    assert all(a >= b for a, b in itertools.pairwise(rates[9:])) and rates[100] == pytest.approx(5e-6)
    step = training.TrainOptions(name="t", data=[], iters=100, lr=1e-3)
    rates = [training.scheduled_rate(step, i) for i in (0, 49, 50, 74, 75, 99)]
    assert rates == [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4]


def test_init_starts_from_a_card_and_records_it(photos: Path, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    first = training.Trainer(_options(photos, iters=2), tmp_path / "a", log=lambda _: None)
    list(first.run())
    card = first.write_card(tmp_path / "cards")
    (tmp_path / "b").mkdir()
    second = training.Trainer(_options(photos, init=str(card.path), name="t2"), tmp_path / "b", log=lambda _: None)
    for name, value in first.ema.state_dict().items():
        assert torch.equal(second.model.state_dict()[name], value), name
        assert torch.equal(second.ema.state_dict()[name], value), name
    list(second.run(until=1))
    recorded = second.write_card(tmp_path / "cards").training["initialised_from"]
    assert recorded == {"card": "t", "sha256": card.sha256, "iterations": 2}
    with pytest.raises(MdnError, match="differs"):
        training.Trainer(_options(photos, init=str(card.path), config="small"), tmp_path / "b", log=lambda _: None)


def test_a_card_started_from_one_with_the_stages_runs_them_too(photos: Path, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    first = training.Trainer(_options(photos, iters=2), tmp_path / "a", log=lambda _: None)
    list(first.run())
    card = first.write_card(tmp_path / "cards")
    assert "detail" not in card.inference
    text = json.loads(card.path.read_text())
    card.path.write_text(json.dumps({**text, "inference": {"detail": True, "impulses": True, "quality": "high"}}))
    (tmp_path / "b").mkdir()
    second = training.Trainer(_options(photos, init=str(card.path), name="t2"), tmp_path / "b", log=lambda _: None)
    list(second.run(until=1))
    inference = second.write_card(tmp_path / "cards").inference
    assert inference == {**card.inference, "detail": True, "impulses": True}  # the objective's own kept beside


def test_cli_writes_a_card_that_denoise_uses(photos: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["train", "--data", str(photos), "--name", "smoke", "--config", "tiny", "--iters", "2", "--batch", "2",
            "--crop", "32", "--workdir", str(tmp_path / "run"), "--output", str(tmp_path / "cards")]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "broken.png" in result.output and "smaller than 32x32 pixels" in result.output
    card = registry.ModelCard.from_file(tmp_path / "cards" / "smoke.json")
    assert card.training["iterations"] == 2 and card.training["command"].startswith("mdn train")
    assert card.training["recipe"]["input_mask"] == [0.75, 0.85] and card.training["hardware"]
    assert card.inference["input_mask"] == pytest.approx(sum(card.training["recipe"]["input_mask"]) / 2)
    out = tmp_path / "out.png"
    result = runner.invoke(app, ["denoise", str(photos / "coffee.tif"), "-o", str(out), "--model", str(card.path)])
    assert result.exit_code == 0, result.output
    assert out.exists()
    longer = [*args[:8], "4", *args[9:], "--until", "3", "--resume"]
    assert runner.invoke(app, longer).exit_code == 0
    assert runner.invoke(app, [*args[:8], "4", *args[9:], "--finish"]).exit_code == 0
    card = registry.ModelCard.from_file(tmp_path / "cards" / "smoke.json")
    assert card.training["iterations"] == 3
    assert [(h["from"], h["to"]) for h in card.training["sittings"]] == [(0, 2), (2, 3)]
    assert "--iters 4" in card.training["sittings"][1]["command"]
    assert {h["hardware"] for h in card.training["sittings"]} == {card.training["hardware"]}


def test_hardware_names_the_gpu_a_run_trained_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: f"Fake GPU {device.index}")
    assert devices.hardware(torch.device("cuda", 1), 1) == "Fake GPU 1"
    assert devices.hardware(torch.device("cuda", 0), 2) == "2 x Fake GPU 0"


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun not installed")
def test_torchrun_two_cpu_processes(photos: Path, tmp_path: Path) -> None:
    command = ["torchrun", "--nproc-per-node", "2", "--master-port", "29533", "-m", "mdn", "train",
               "--data", str(photos), "--name", "ddp", "--config", "tiny", "--iters", "2", "--batch", "1",
               "--crop", "32", "--threads", "1", "--workdir", str(tmp_path / "run"),
               "--output", str(tmp_path / "cards"), "--device", "cpu", "--quiet"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[:1500] + "\n...\n" + result.stderr[-1000:]
    card = registry.ModelCard.from_file(tmp_path / "cards" / "ddp.json")
    assert card.training["hardware"].startswith("2 x")
    registry.load(card)


def test_python_m_mdn_runs() -> None:
    result = subprocess.run([sys.executable, "-m", "mdn", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and "mdn" in result.stdout


def test_device_and_attention_kernel_are_options(photos: Path, tmp_path: Path) -> None:
    trainer = training.Trainer(_options(photos, device="cpu", attention_kernel="sdpa"), tmp_path, log=lambda _: None)
    assert trainer.device == torch.device("cpu")
    assert {m.kernel for m in trainer.model.modules() if hasattr(m, "kernel")} == {"sdpa"}
    assert trainer.ema.attention_kernel == "sdpa"
    assert "--device cpu --attention-kernel sdpa" in trainer.options.command()
    for changes, message in (
        ({"device": "cpu", "attention_kernel": "flex"}, "no backward pass on the CPU"),
        ({"attention_kernel": "fast"}, "unknown attention kernel"),
        ({"device": "tpu"}, "unknown device"),
        ({"objective": "fill", "config": "grey-fast", "attention_kernel": "sdpa"}, "fill network has no attention"),
    ):
        with pytest.raises(MdnError, match=message):
            training.Trainer(_options(photos, **changes), tmp_path, log=lambda _: None)


def test_loss_is_read_back_every_few_steps_as_their_mean(photos: Path, tmp_path: Path) -> None:
    options = _options(photos, iters=training.LOSS_EVERY + 3, validate_every=1000, checkpoint_every=1000, validation=[])
    (tmp_path / "a").mkdir()
    reports = list(training.Trainer(options, tmp_path / "a", log=lambda _: None).run())
    replay = training.Trainer(options, tmp_path / "b", log=lambda _: None)
    losses = [float(replay.step()) for _ in range(options.iters)]
    assert all(math.isnan(r.loss) for r in reports[: training.LOSS_EVERY - 1])
    first, last = reports[training.LOSS_EVERY - 1].loss, reports[-1].loss
    assert first == pytest.approx(np.mean(losses[: training.LOSS_EVERY]), rel=1e-6)
    assert all(r.loss == first for r in reports[training.LOSS_EVERY : -1])
    assert last == pytest.approx(np.mean(losses[training.LOSS_EVERY :]), rel=1e-6)


def test_fill_pretraining_scores_the_same_hidden_pixels_every_time(photos: Path, tmp_path: Path) -> None:
    options = _options(photos, objective="fill", config="grey-fast", crop=32, lr=2e-3)
    (tmp_path / "run").mkdir()
    trainer = training.Trainer(options, tmp_path / "run", log=lambda _: None)
    first = trainer.validate()
    assert first == trainer.validate() and 5 < first["psnr"] < 40
    reports = list(trainer.run())
    assert reports[-1].validation is not None and math.isfinite(reports[-1].validation["psnr"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("kernel", ["sdpa", "flex"])
def test_cuda_training_validates_resumes_and_writes_a_card(photos: Path, tmp_path: Path, kernel: str) -> None:
    options = _options(photos, device="cuda", attention_kernel=kernel, precision="bf16")
    straight, resumed, reports = _straight_and_resumed(options, tmp_path)
    assert straight.device.type == "cuda" and math.isfinite(reports[-1].validation["psnr"])
    for (name, a), b in zip(straight.ema.state_dict().items(), resumed.ema.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4, msg=name)
    card = resumed.write_card(tmp_path / "cards")
    assert registry.load(card).state_dict().keys() == straight.model.state_dict().keys()


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_time_budget_stops_in_time_and_resumes_bit_for_bit(photos: Path, tmp_path: Path, monkeypatch) -> None:
    """On a clock where a step takes 0.1 s and a validation 0.5 s, a budget ends the run before its deadline
    with room for the last validation, and two budgeted sittings equal one straight run."""
    clock = [0.0]
    step, validate = training.Trainer.step, training.Trainer.validate

    def timed(method, seconds: float):
        def run(self, *args):
            clock[0] += seconds
            return method(self, *args)

        return run

    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(training.Trainer, "step", timed(step, 0.1))
    monkeypatch.setattr(training.Trainer, "validate", timed(validate, 0.5))
    options = _options(photos, iters=100_000, validate_every=10, checkpoint_every=10_000)
    (tmp_path / "b").mkdir()
    first = training.Trainer(options, tmp_path / "b", log=lambda _: None)
    list(first.run(deadline=5.0))
    assert first.stopped_early and 3.5 < clock[0] <= 5.0
    second = training.Trainer(options, tmp_path / "b", log=lambda _: None)
    second.resume()
    assert second.iteration == first.iteration
    list(second.run(deadline=clock[0] + 3.0))
    assert second.iteration > first.iteration and second.stopped_early
    (tmp_path / "a").mkdir()
    straight = training.Trainer(options, tmp_path / "a", log=lambda _: None)
    list(straight.run(until=second.iteration))
    assert not straight.stopped_early
    assert _same_weights(straight.model, second.model) and _same_weights(straight.ema, second.ema)
    sittings = [(h["from"], h["to"]) for h in second.sittings()]
    assert sittings == [(0, first.iteration), (first.iteration, second.iteration)]


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("9m", 540), ("1h30m", 5400), ("2.5h", 9000), ("1m30s", 90)]
)
def test_durations(text: str, seconds: float) -> None:
    assert training.parse_duration(text) == seconds


def _train_args(photos: Path, tmp_path: Path, *more: str) -> list[str]:
    return ["train", "--data", str(photos), "--name", "budget", "--config", "tiny", "--batch", "2", "--crop", "32",
            "--iters", "100000", "--device", "cpu", "--workdir", str(tmp_path / "run"),
            "--output", str(tmp_path / "cards"), "--quiet", *more]  # fmt: skip


def test_cli_time_budget_writes_a_usable_card_and_says_how_to_go_on(photos: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, _train_args(photos, tmp_path, "--time-budget", "8s"))
    assert result.exit_code == 0, result.output
    card = registry.ModelCard.from_file(tmp_path / "cards" / "budget.json")
    assert 0 < card.training["iterations"] < 100_000
    assert f"step {card.training['iterations']:,} of 100,000" in result.output
    assert "--resume" in result.output.split("continue with:")[1]
    out = tmp_path / "out.tif"
    denoised = runner.invoke(app, ["denoise", str(photos / "coffee.tif"), "-o", str(out), "--model", str(card.path)])
    assert denoised.exit_code == 0, denoised.output
    assert tifffile.imread(out).shape == (96, 128, 3)
    resumed = runner.invoke(app, _train_args(photos, tmp_path, "--time-budget", "6s", "--resume"))
    assert resumed.exit_code == 0, resumed.output
    assert registry.ModelCard.from_file(card.path).training["iterations"] > card.training["iterations"]


def test_cli_refuses_a_taken_name_unless_resumed_or_overwritten(photos: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    args = [*_train_args(photos, tmp_path), "--iters", "2"]
    assert runner.invoke(app, args).exit_code == 0
    card = registry.ModelCard.from_file(tmp_path / "cards" / "budget.json")
    taken = runner.invoke(app, args)
    assert taken.exit_code == 2
    assert "--name budget is taken" in taken.output and "--resume" in taken.output and "--overwrite" in taken.output
    assert registry.ModelCard.from_file(card.path).sha256 == card.sha256
    again = runner.invoke(app, [*args, "--overwrite", "--seed", "1"])
    assert again.exit_code == 0, again.output
    assert registry.ModelCard.from_file(card.path).sha256 != card.sha256
    assert [json.loads(line)["iteration"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()] == [2]
    behind = runner.invoke(app, [*args, "--resume", "--seed", "1", "--until", "2"])
    assert behind.exit_code == 2 and "--until 2: the run is at step 2 already" in behind.output
    shorter = runner.invoke(app, [*args, "--iters", "1", "--resume", "--seed", "1"])
    assert shorter.exit_code == 2 and "--iters 1: the run is at step 2 already" in shorter.output
    longer = runner.invoke(app, [*args, "--iters", "3", "--resume", "--threads", "1", "--seed", "1"])
    assert longer.exit_code == 0 and "other options" not in longer.output  # a longer run, another machine
    noisier = runner.invoke(
        app, [*args, "--iters", "4", "--resume", "--seed", "1", "--noise", "poisson", "--level", "2"]
    )
    assert noisier.exit_code == 0, noisier.output
    assert "resumed at step 3 with other options than the run's: --noise poisson (was gaussian), --level 2.0 (was " in (
        noisier.output
    )
    other = runner.invoke(app, [*args, "--iters", "5", "--resume", "--config", "small"])
    assert other.exit_code == 2 and "Traceback" not in other.output and "size mismatch" not in other.output
    assert "its checkpoint holds a network of --config tiny, not small" in other.output


def test_ctrl_c_saves_and_prints_the_resume_command(photos: Path, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "mdn", *_train_args(photos, tmp_path), "--checkpoint-every", "100000"]
    # A shell's background job starts with SIGINT ignored, and Python then installs no KeyboardInterrupt handler:
    # the child gets the default disposition back, as in a terminal.
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (tmp_path / "run" / "log.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    try:
        output, _ = process.communicate(timeout=60)
    finally:
        process.kill()  # never left training in the background
    assert process.returncode == 130, output
    assert "interrupted at step" in output and "continue with: mdn train" in output and "--resume" in output
    assert "Traceback" not in output
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["iteration"] > 0
    card = registry.ModelCard.from_file(tmp_path / "cards" / "budget.json")  # the weights so far, as README says
    assert card.training["iterations"] == state["iteration"] and f"weights so far: {card.path}" in output


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_between_steps_ends_the_run_at_its_next_step_with_a_checkpoint(
    photos: Path, tmp_path: Path, signum: int
) -> None:
    """The signal lands while the caller (a progress bar) holds control, not the loop: the loop still saves."""
    trainer = training.Trainer(_options(photos, iters=50, checkpoint_every=1000), tmp_path, log=lambda _: None)
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}  # SIG_IGN under nohup or `&`
    seen = []
    with pytest.raises(KeyboardInterrupt):
        for report in trainer.run():
            seen.append(report.iteration)
            if report.iteration == 3:
                os.kill(os.getpid(), signum)
    assert seen == [1, 2, 3]
    assert torch.load(trainer.checkpoint_path, weights_only=True)["iteration"] == 4
    assert (trainer.saved_iteration, trainer.stopped_by) == (4, signum)  # the CLI's message and exit status
    assert {s: signal.getsignal(s) for s in before} == before  # handlers given back as they were


def test_a_second_signal_stops_at_once_and_the_checkpoint_step_is_the_one_saved(photos: Path, tmp_path: Path) -> None:
    trainer = training.Trainer(_options(photos, iters=50, checkpoint_every=2), tmp_path, log=lambda _: None)
    with pytest.raises(KeyboardInterrupt):
        for report in trainer.run():
            if report.iteration == 3:
                os.kill(os.getpid(), signal.SIGTERM)
                os.kill(os.getpid(), signal.SIGTERM)  # raises here, in the caller, before the loop saves step 3
    assert trainer.iteration == 3 and trainer.stopped_by == signal.SIGTERM
    assert trainer.saved_iteration == torch.load(trainer.checkpoint_path, weights_only=True)["iteration"] == 2


def test_the_card_scores_the_weights_it_saves(photos: Path, tmp_path: Path) -> None:
    """The card's score is the last validation (of the EMA weights it saves), not the best one seen."""
    (tmp_path / "run").mkdir()
    trainer = training.Trainer(_options(photos), tmp_path / "run", log=lambda _: None)
    list(trainer.run())
    card = trainer.write_card(tmp_path / "cards")
    last = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])
    assert last["iteration"] == 4
    assert card.scores[trainer.objective.score_name]["psnr"] == pytest.approx(last["psnr"])


def test_precision_autocasts_the_forward_pass_and_refuses_fp16(photos: Path, tmp_path: Path) -> None:
    losses = {}
    for precision in ("fp32", "bf16"):
        trainer = training.Trainer(_options(photos, precision=precision, validation=[]), tmp_path, log=lambda _: None)
        losses[precision] = float(trainer.step())
    assert trainer.dtype == torch.bfloat16 and losses["bf16"] != losses["fp32"]
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.05)
    auto = training.Trainer(_options(photos, precision="auto", validation=[]), tmp_path, log=lambda _: None)
    assert auto.dtype == pick_dtype("auto", torch.device("cpu"))
    with pytest.raises(MdnError, match="fp16 cannot train"):
        training.Trainer(_options(photos, precision="fp16"), tmp_path, log=lambda _: None)


def test_cli_refuses_bad_settings_in_one_line(photos: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    for more, message in (
        (["--objective", "sharpen"], "unknown objective 'sharpen'"),
        (["--input-mask-range", "0.9,0.5"], "0 <= LOW <= HIGH < 1"),
        (["--input-mask-range", "most"], "expected LOW,HIGH numbers"),
        (["--precision", "fp16"], "fp16 cannot train"),
        (["--lr", "-0.001"], "--lr must be more than 0, got -0.001"),
        (["--lr", "inf"], "--lr must be finite, got inf"),
        (["--level-range", "5,inf"], "--level-range must be finite, got 5,inf"),
        (
            ["--config", "unet-tiny", "--no-mask", "--crop", "33"],
            "--crop must be a multiple of 2 for --config unet-tiny, got 33 (32 or 34 would do)",
        ),
        (["--iters", "0"], "--iters must be 1 or more, got 0"),
        (["--until", "-1"], "--until must be 1 or more, got -1"),
        (["--until", "200000"], "--until 200,000 is past --iters 100,000"),
        (["--batch", "0"], "--batch must be 1 or more"),
        (["--crop", "0"], "--crop must be 16 or more"),
        (["--validate-every", "0"], "--validate-every must be 1 or more"),
        (["--checkpoint-every", "0"], "--checkpoint-every must be 1 or more"),
        (["--warmup", "-5"], "--warmup must be 0 or more"),
        (["--dead-leaves", "-3"], "--dead-leaves must be 0 or more"),
        (["--ema", "1.5"], "--ema must be in [0, 1)"),
        (["--grey-share", "2"], "--grey-share must be in [0, 1]"),
        (["--name", "runs/x"], "--name must be a plain file name"),
        (["--name", "../x"], "--name must be a plain file name"),
        (["--name", "unet-dct-practical"], "--name unet-dct-practical is a shipped card's name"),
        (["--name", " "], "--name must not be blank nor begin or end with spaces, got ' '"),
        (["--name", "foo.json"], "--name foo.json ends in .json, which mdn reads as a card file's path: name it foo"),
        (["--name", "bar.PT"], "--name bar.PT ends in .PT"),
        (["--name", "a" * 251], "--name is 251 bytes long: its card's file names allow 250 at most"),
        (["--name", "é" * 126], "--name is 252 bytes long"),
        (["--resume", "--overwrite"], "--resume and --overwrite: give one"),
        (["--finish", "--overwrite"], "--finish and --overwrite: give one"),
        (["--time-budget", ""], "--time-budget: expected a duration such as 90s"),
        (["--precision", "foo"], "unknown --precision 'foo' (training takes auto, fp32, bf16)"),
        (["--schedule", "bar"], "--schedule must be one of step, cosine, got 'bar'"),
        (["--attention-kernel", "flex"], "--attention-kernel flex has no backward pass on the CPU"),
        (
            ["--objective", "fill", "--config", "grey-fast", "--noise", "poisson", "--level", "30", "--grey-share",
             "0.5", "--no-mask", "--attention-mask-ratio", "0.1"],
            "--noise poisson, --level 30, --grey-share 0.5, --no-mask, --attention-mask-ratio 0.1: not used by "
            "objective fill",
        ),
        (
            ["--aux-share", "0.5", "--headroom", "4", "--headroom-percentile", "60"],
            "--aux-share 0.5, --headroom 4, --headroom-percentile 60: not used by objective denoise",
        ),
        (
            ["--no-mask", "--input-mask-range", "0.1,0.2", "--attention-mask-ratio", "0.3"],
            "--input-mask-range 0.1,0.2, --attention-mask-ratio 0.3: not used with --no-mask",
        ),
        (
            ["--config", "unet-tiny", "--no-mask", "--noise", "practical", "--level", "0.3"],
            "--level 0.3: not used by practical noise (its strengths are --level-range) without --val; leave it out",
        ),
    ):  # fmt: skip
        result = runner.invoke(app, _train_args(photos, tmp_path, *more))
        assert result.exit_code == 2 and result.output.startswith("error: ") and message in result.output, more
        assert "\n" not in result.output.strip() and not (tmp_path / "cards").exists(), more
        assert not (tmp_path / "run").exists(), more


def test_options_the_network_or_objective_never_reads_are_refused(photos: Path, tmp_path: Path) -> None:
    """The fill network trains in float32 whatever --precision says; networks without attention or feature masks
    (partial convolutions, partial filters) never read the attention mask's ratio."""
    for more, message in (
        (
            ["--objective", "fill", "--config", "grey-fast", "--precision", "bf16"],
            "--precision bf16: not used by objective fill, which hides pixels of clean crops and trains in float32",
        ),
        (
            ["--config", "unet-partial", "--attention-mask-ratio", "0.5"],
            "--attention-mask-ratio 0.5: not used by --config unet-partial, which has no attention or feature masks",
        ),
        (
            ["--config", "dynamic-partial", "--attention-mask-ratio", "0.5"],
            "--attention-mask-ratio 0.5: not used by --config dynamic-partial",
        ),
    ):  # fmt: skip
        result = CliRunner().invoke(app, _train_args(photos, tmp_path, "--iters", "1", *more))
        assert result.exit_code == 2 and result.output.startswith("error: ") and message in result.output, more
        assert "\n" not in result.output.strip() and not (tmp_path / "run").exists(), more


def test_the_longest_name_that_fits_writes_its_card(photos: Path, tmp_path: Path) -> None:
    """250 bytes: the card, NAME.json, is the longest file a name gives (its temporary's name is cut to fit)."""
    name = "n" * 250
    result = CliRunner().invoke(app, _train_args(photos, tmp_path, "--iters", "1", "--name", name))
    assert result.exit_code == 0, result.output
    assert registry.ModelCard.from_file(tmp_path / "cards" / f"{name}.json").name == name


def test_options_the_objective_uses_are_taken(photos: Path, tmp_path: Path) -> None:
    """Options at their defaults are never refused as unused, and --level is practical noise's validation level."""
    practical = _options(photos, config="unet-tiny", mask=False, noise="practical", level=5.0)
    assert training.Trainer(practical, tmp_path, log=lambda _: None).objective.practical
    fill = _options(photos, objective="fill", config="grey-fast", validation=[], input_mask=(0.2, 0.3))
    assert training.Trainer(fill, tmp_path, log=lambda _: None).objective.name == "fill"
    feature_masks = _options(photos, config="unet-feature-mask", validation=[], attention_mask=0.5)
    assert training.Trainer(feature_masks, tmp_path, log=lambda _: None).model.config.feature_mask == 0.5


def test_cli_refuses_noisy_training_with_clean_data_or_another_objective(photos: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    both = runner.invoke(app, _train_args(photos, tmp_path, "--noisy", str(photos)))
    assert both.exit_code == 2 and "--data and --noisy: give one" in both.output
    args = _train_args(photos, tmp_path, "--objective", "render")
    args[args.index("--data")] = "--noisy"
    other = runner.invoke(app, args)
    assert (
        other.exit_code == 2 and "--noisy trains the self-supervised objective, not --objective render" in other.output
    )


def test_a_fresh_run_leaves_weights_of_its_name_alone_and_needs_a_folder_for_cards(
    photos: Path, tmp_path: Path
) -> None:
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "budget.pt").write_bytes(b"the user's own weights")
    runner = CliRunner()
    taken = runner.invoke(app, _train_args(photos, tmp_path, "--iters", "2"))
    assert taken.exit_code == 2 and "budget.pt" in taken.output
    assert (cards / "budget.pt").read_bytes() == b"the user's own weights"
    args = _train_args(photos, tmp_path, "--iters", "2")
    args[args.index("--output") + 1] = str(cards / "budget.pt")
    blocked = runner.invoke(app, args)
    assert blocked.exit_code == 2 and "budget.pt: is a file; the model cards need a folder there" in blocked.output


def test_a_failed_overwrite_leaves_the_old_run_as_it_was(photos: Path, tmp_path: Path) -> None:
    """--overwrite with a mistyped --data: the old card and checkpoint go only once the new run can start."""
    runner = CliRunner()
    args = [*_train_args(photos, tmp_path), "--iters", "2"]
    assert runner.invoke(app, args).exit_code == 0
    card = registry.ModelCard.from_file(tmp_path / "cards" / "budget.json")
    (tmp_path / "typo").mkdir()
    args[args.index("--data") + 1] = str(tmp_path / "typo")
    failed = runner.invoke(app, [*args, "--overwrite"])
    assert failed.exit_code == 2 and "no image files found in" in failed.output
    assert registry.ModelCard.from_file(card.path).sha256 == card.sha256
    assert (tmp_path / "run" / "checkpoint.pt").is_file() and (tmp_path / "run" / "log.jsonl").is_file()


def test_a_run_that_diverges_stops_with_one_line_and_writes_no_card(photos: Path, tmp_path: Path) -> None:
    """Its NaN weights would write black pictures; with --overwrite, the card it was to replace stays."""
    runner = CliRunner()
    args = _train_args(photos, tmp_path, "--iters", "60", "--config", "unet-tiny", "--no-mask")
    assert runner.invoke(app, [*args, "--until", "2"]).exit_code == 0
    before = registry.ModelCard.from_file(tmp_path / "cards" / "budget.json")
    result = runner.invoke(app, [*args, "--lr", "1e6", "--overwrite", "--init", str(before.path)])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "training diverged by step" in result.output and "a lower --lr (it was 1e+06) and --overwrite" in (
        result.output
    )
    assert "no card written (an earlier card of this name stays)" in result.output
    assert registry.ModelCard.from_file(tmp_path / "cards" / "budget.json").sha256 == before.sha256


def test_nan_in_clean_training_data_is_replaced_and_said_so(tmp_path: Path) -> None:
    render = np.random.default_rng(0).random((64, 64, 3)).astype(np.float32)
    render[8:20, 8:20] = np.nan  # zeros where a renderer failed: no clean content, whatever the network learns
    with OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION}, {"RGB": render}) as exr:
        exr.write(str(tmp_path / "render.exr"))
    said: list[str] = []
    found = training.load_images([str(tmp_path / "render.exr")], 32, said.append)
    assert len(found) == 1 and np.isfinite(found[0]).all()
    assert said == [f"{tmp_path / 'render.exr'}: 432 NaN/Inf values replaced"]


def test_weights_that_went_nan_are_never_saved_though_the_loss_read_back_was_finite(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step whose loss was finite can overflow its update, and the loss is read back every few steps: the
    weights themselves are checked before a checkpoint or a card keeps them."""
    from mdn.training import loop

    def overflowing(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
        with torch.no_grad():
            next(iter(ema.parameters())).fill_(float("nan"))

    monkeypatch.setattr(loop, "update_ema", overflowing)
    (tmp_path / "run").mkdir()
    trainer = training.Trainer(_options(photos), tmp_path / "run", log=lambda _: None)
    with pytest.raises(training.Diverged, match="its weights went NaN or Inf"):
        list(trainer.run())
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_validation_takes_images_of_the_runs_crop(photos: Path, tmp_path: Path) -> None:
    (tmp_path / "val").mkdir()
    tifffile.imwrite(tmp_path / "val" / "small.tif", data.camera()[:48, :48])
    args = _train_args(photos, tmp_path, "--iters", "2", "--val", str(tmp_path / "val"))
    result = CliRunner().invoke(app, [a for a in args if a != "--quiet"])  # the count is said unless quiet
    assert result.exit_code == 0 and "small.tif" not in result.output, result.output
    assert "training on 2 pictures (0.02 megapixels)\n" in result.output  # tiny.tif skipped; none drawn
    scores = registry.ModelCard.from_file(tmp_path / "cards" / "budget.json").scores
    assert scores["validation_gaussian"]["psnr"] > 0


def test_a_run_refused_for_its_data_leaves_no_run_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    args = _train_args(tmp_path / "empty", tmp_path)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and result.output.startswith("error: ")
    assert not (tmp_path / "run").exists()


def test_cli_fails_when_the_budget_ends_before_the_first_step(photos: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, _train_args(photos, tmp_path, "--time-budget", "0s"))
    assert result.exit_code == 1 and "the time budget ran out before the first step" in result.output
    assert not (tmp_path / "cards" / "budget.json").exists() and not (tmp_path / "run").exists()


def test_ctrl_c_while_the_images_load_says_so_and_leaves_no_run_folder(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mdn.training import data as training_data

    def interrupted(*_: object) -> list[np.ndarray]:
        raise KeyboardInterrupt

    monkeypatch.setattr(training_data, "load_images", interrupted)
    result = CliRunner().invoke(app, _train_args(photos, tmp_path))
    assert result.exit_code == 130 and result.output == "interrupted before training: nothing written\n"
    assert not (tmp_path / "run").exists() and not (tmp_path / "cards").exists()


def test_a_damaged_checkpoint_is_named_in_one_line(photos: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    args = [*_train_args(photos, tmp_path), "--iters", "4"]
    assert runner.invoke(app, [*args, "--until", "2"]).exit_code == 0
    path = tmp_path / "run" / "checkpoint.pt"
    good = path.read_bytes()
    foreign = tmp_path / "foreign.pt"
    torch.save({"a": 1}, foreign)
    weights = tmp_path / "weights.pt"
    torch.save({**torch.load(path, weights_only=True), "model": {"a": 1}}, weights)
    for damaged, how, reason in (
        (good[:1000], "--resume", "cut short or empty"),
        (b"", "--resume", "cut short or empty"),
        (b"garbage\n", "--finish", "not a file of PyTorch tensors"),
        (foreign.read_bytes(), "--resume", "it lacks iteration, seconds, model, ema, optimizer"),
        (weights.read_bytes(), "--finish", "its model holds no weights"),
    ):
        path.write_bytes(damaged)
        result = runner.invoke(app, [*args, how])
        assert result.exit_code == 2 and "\n" not in result.output.strip(), (how, reason, result.output)
        assert result.output.startswith(f"error: {path}: is not a readable mdn checkpoint ({reason}"), result.output
        assert result.output.strip().endswith("): --overwrite starts the run afresh"), result.output
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0


def test_the_resume_command_and_the_card_record_paths_whole_and_quoted(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name or path with a space pastes as one argument, and relative paths mean the same from any folder."""
    (tmp_path / "my photos").mkdir()
    shutil.copy(photos / "coffee.tif", tmp_path / "my photos")
    monkeypatch.chdir(tmp_path)
    args = ["train", "--data", "my photos", "--val", "my photos/coffee.tif", "--name", "my run", "--config", "tiny",
            "--batch", "2", "--crop", "32", "--iters", "4", "--device", "cpu", "--workdir", "runs/my run",
            "--output", "my cards", "--quiet"]  # fmt: skip
    result = CliRunner().invoke(app, [*args, "--until", "2"])
    assert result.exit_code == 0, result.output
    command = shlex.split(result.output.split("continue with: ")[1])
    given = dict(zip(command[2::2], command[3::2], strict=False))
    assert given["--data"] == str(tmp_path / "my photos") and given["--name"] == "my run"
    assert given["--val"] == str(tmp_path / "my photos" / "coffee.tif")
    assert (given["--workdir"], given["--output"]) == (str(tmp_path / "runs" / "my run"), str(tmp_path / "my cards"))
    card = registry.ModelCard.from_file(tmp_path / "my cards" / "my run.json")
    assert shlex.split(card.training["command"])[:6] == ["mdn", "train", "--name", "my run", "--data", given["--data"]]
    assert card.training["data"] == [given["--data"]]
    monkeypatch.chdir(tmp_path / "runs")  # the printed command, pasted elsewhere
    resumed = CliRunner().invoke(app, command[1:])
    assert resumed.exit_code == 0 and "other options" not in resumed.output, resumed.output
    assert registry.ModelCard.from_file(card.path).training["iterations"] == 4


def test_a_fresh_run_that_diverges_leaves_nothing_and_needs_no_overwrite(photos: Path, tmp_path: Path) -> None:
    args = _train_args(photos, tmp_path, "--iters", "60", "--config", "unet-tiny", "--no-mask", "--lr", "1e6")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "training diverged by step" in result.output, result.output
    assert "nothing saved; start again with a lower --lr (it was 1e+06)\n" in result.output
    assert "--overwrite" not in result.output and "earlier card" not in result.output
    assert not (tmp_path / "run").exists() and not (tmp_path / "cards" / "budget.json").exists()


def test_a_run_in_progress_is_not_started_again_and_a_dead_ones_lock_is_taken_over(
    photos: Path, tmp_path: Path
) -> None:
    """Two commands of one run would overwrite each other's checkpoint, log and card. A lock file of a process that
    ended (its pid since reused by another) stops nothing."""
    (tmp_path / "run").mkdir()
    lock = tmp_path / "run" / "lock"
    holding = "import fcntl, os, sys, time; d = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); fcntl.flock(d, 2); "
    holding += "os.write(d, f'{os.getpid()}\\n'.encode()); print('held', flush=True); time.sleep(60)"
    other = subprocess.Popen([sys.executable, "-c", holding, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline() == "held\n"
        result = CliRunner().invoke(app, _train_args(photos, tmp_path, "--iters", "1"))
        assert result.exit_code == 2 and "\n" not in result.output.strip(), result.output
        assert result.output.startswith(f"error: {tmp_path / 'run'}: a run of budget is in progress (pid {other.pid})")
        assert (tmp_path / "run" / "lock").read_text() == f"{other.pid}\n" and not (tmp_path / "cards").exists()
    finally:
        other.kill()
        other.wait()
    lock.write_text(f"{os.getpid()}\n")  # a live pid, but no lock held
    taken_over = CliRunner().invoke(app, _train_args(photos, tmp_path, "--iters", "1"))
    assert taken_over.exit_code == 0, taken_over.output
    assert not (tmp_path / "run" / "lock").exists() and (tmp_path / "run" / "checkpoint.pt").is_file()


def test_a_cpu_card_says_thread_or_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert devices.hardware(torch.device("cpu"), 1).endswith("CPU, 1 thread")
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    assert devices.hardware(torch.device("cpu"), 1).endswith("CPU, 4 threads")


def test_practical_training_says_why_it_needs_twice_the_crop(photos: Path) -> None:
    options = _options(photos, config="unet-tiny", mask=False, noise="practical", crop=48, validation=[])
    said: list[str] = []
    objectives.MaskedDenoising(options, torch.float32).images(said.append)
    reason = "smaller than 96x96 pixels (2 x --crop 48: crops are drawn 2x larger, then shrunk)"
    assert f"skipped: {photos / 'nested' / 'camera.tif'}: {reason}" in said


def test_cli_takes_the_former_option_names(photos: Path, tmp_path: Path) -> None:
    args = [
        *_train_args(photos, tmp_path, "--iters", "1", "--bf16", "--input-mask", "0.6,0.7", "--attention-mask", "0.5")
    ]
    args[args.index("--output")] = "--out"
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "warning: --out is now --output" in result.output
    recipe = registry.ModelCard.from_file(tmp_path / "cards" / "budget.json").training["recipe"]
    assert (recipe["precision"], recipe["input_mask"], recipe["attention_mask"]) == ("bf16", [0.6, 0.7], 0.5)


def test_the_run_says_how_many_of_its_pictures_are_drawn() -> None:
    """Every run said 'procedural ones included', though none are unless --dead-leaves, --stripes or --textiles
    asks for them, and a camera's or a render set's fine-tuning never draws any."""
    from mdn.training import objectives
    from mdn.training.self_supervised import SelfSupervised

    options = training.TrainOptions(name="d", data=[], config="unet-tiny", iters=1, batch=2, crop=32, mask=False)
    assert objectives.MaskedDenoising(options, torch.float32).procedural() == 0
    drawn = dataclasses.replace(options, dead_leaves=3, stripes=2)
    assert objectives.MaskedDenoising(drawn, torch.float32).procedural() == 5
    assert SelfSupervised.procedural(object.__new__(SelfSupervised)) == 0


@pytest.mark.parametrize("terminal", [False, True])
def test_a_run_into_a_log_prints_a_line_per_validation_and_checkpoint(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, terminal: bool
) -> None:
    """In a log or a pipe, one plain line per validation and checkpoint (a log had shown the bar's last state
    alone, at the end); on a terminal the bar, and no such lines."""
    shown = StringIO()
    console = Console(file=shown, force_terminal=terminal, width=120, color_system=None, highlight=False)
    monkeypatch.setattr(display, "console", console)
    args = [a for a in _train_args(photos, tmp_path, "--iters", "4", "--validate-every", "2") if a != "--quiet"]
    result = CliRunner().invoke(app, [*args, "--checkpoint-every", "3", "--val", str(photos / "coffee.tif")])
    assert result.exit_code == 0, result.output
    lines = [line for line in shown.getvalue().splitlines() if line.startswith("step ")]
    if terminal:
        assert not lines and "━" in shown.getvalue()
        return
    assert "━" not in shown.getvalue()
    assert [line.split(",")[0] for line in lines] == ["step 2/4", "step 3/4", "step 4/4"]
    validated, saved, last = lines
    assert validated.startswith("step 2/4, loss ") and ", val " in validated and " dB (noisy " in validated
    assert "checkpoint saved" not in validated and saved.split(", ")[2] == "checkpoint saved"
    assert ", val " in last and ", checkpoint saved, " in last and last.split(", ")[-1].endswith("s")
