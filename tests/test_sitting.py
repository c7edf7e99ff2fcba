"""The GPU sitting's exact path, dry-run on the CPU: the pack, budgeted runs side by side, the trip back and
forth between slots, resuming, and the cards written at the end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from mdn import registry, training

ROOT = Path(__file__).resolve().parent.parent
SLOT_FILE_LIMIT = 16 * 2**20


def _script(*args: str | Path, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run a script to its end; `timeout` only guards against a hang (a busy 2-core machine took over 300 s for a
    side-by-side plan's speed measurements)."""
    command = [sys.executable, *map(str, args)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pack of a few scikit-image photos (one grey) from a source folder laid out as the data scripts write."""
    source = tmp_path_factory.mktemp("source")
    entries = []
    for split, name, pixels in (
        ("train", "coffee", data.coffee()[:160, :200]),
        ("train", "camera", data.camera()[:128, :128]),
        ("train", "chelsea", data.chelsea()[:128, :160]),
        ("val", "astronaut", data.astronaut()[:96, :96]),
    ):
        (source / split).mkdir(exist_ok=True)
        Image.fromarray(pixels).save(source / split / f"{name}.png")
        entries.append({"file": f"{split}/{name}.png", "package": "scikit-image", "licence": "CC0-1.0"})
    (source / "manifest.json").write_text(json.dumps(entries))
    folder = tmp_path_factory.mktemp("packs") / "pack"
    _script(ROOT / "scripts" / "training_pack.py", folder, source, "--max-mib", "0.2")
    return folder


def test_pack_is_jpeg_within_its_limit_with_sources_and_licences(pack: Path) -> None:
    manifest = json.loads((pack / "manifest.json").read_text())
    files = sorted(p for p in pack.rglob("*.jpg"))
    assert len(files) == 4 and manifest["splits"] == {"train": 3, "val": 1}
    assert sum(p.stat().st_size for p in files) <= 0.2 * 2**20
    assert manifest["format"].startswith("JPEG quality ") and "4:4:4" in manifest["format"]
    camera = next(f for f in manifest["files"] if "camera" in f["file"])
    assert camera["channels"] == 1 and Image.open(pack / camera["file"]).mode == "L"
    assert all(f["licence"] == "CC0-1.0" and f["psnr_vs_source"] > 38 for f in manifest["files"])
    loaded = training.load_images([str(pack / "train")], 32, warn=pytest.fail)
    assert len(loaded) == 3 and all(image.shape[-1] == 3 for image in loaded)


def test_a_sitting_dry_run_on_the_cpu(pack: Path, tmp_path: Path) -> None:
    carried = tmp_path / "carried"
    settings = ["--device", "cpu", "--config", "tiny", "--fill-config", "grey-fast", "--batch", "2", "--crop", "32",
                "--no-compile", "--pack", pack, "--carried", carried, "--runs", "paper-masked,fill-mpi"]  # fmt: skip
    steps = []
    first = ["check", "--speed-configs", "tiny", "--speed-kernels", "explicit,sdpa", "--train-at-least", "30s"]
    first += ["--photo-size", "96x64", "--slack", "5"]  # its steps' limits with room for a slow, busy machine
    for slot, step, budget in (("slot1", first, "60s"), ("slot2", ["train"], "35s")):
        out = tmp_path / slot
        _script(
            ROOT / "scripts" / "gpu_sitting.py", *step, "--output", out, "--budget", budget, "--margin", "0s", *settings
        )
        for run in ("paper-masked", "fill-mpi"):
            returned = sorted(p.relative_to(out).as_posix() for p in (out / run).iterdir())
            assert returned == [f"{run}/checkpoint.pt", f"{run}/log.jsonl"]
            assert (out / run / "checkpoint.pt").stat().st_size < SLOT_FILE_LIMIT
        _script(ROOT / "scripts" / "gpu_sitting.py", "collect", out, "--carried", carried)
        if slot == "slot1":
            inference = json.loads((out / "inference.json").read_text())
            runs = {label: len(seconds) for label, seconds in inference["denoise_seconds"].items()}
            assert runs == {"default": 3, "fast": 2, "network": 2}
            assert all(None not in seconds for seconds in inference["denoise_seconds"].values())
            default = "unet-dct-practical"
            assert {row["model"] for row in inference["engine"]} == {
                default,
                f"{default}+fast",
                f"{default}+no-detail",
                "unet",
            }
        steps.append(torch.load(carried / "paper-masked" / "checkpoint.pt", weights_only=True)["iteration"])
    speed = json.loads(next(carried.glob("speed-*.json")).read_text())
    assert {(r["config"], r["kernel"], r["masked"]) for r in speed} == {
        ("tiny", kernel, masked) for kernel in ("explicit", "sdpa") for masked in (True, False)
    }
    assert 0 < steps[0] < steps[1]
    cards = tmp_path / "cards"
    _script(ROOT / "scripts" / "gpu_sitting.py", "finish", "--cards", cards, *settings)
    masked = registry.ModelCard.from_file(cards / "paper-masked.json")
    assert masked.training["iterations"] == steps[1]
    assert [(s["from"], s["to"]) for s in masked.training["sittings"]] == [(0, steps[0]), (steps[0], steps[1])]
    assert masked.inference["input_mask"] == pytest.approx(sum(masked.training["recipe"]["input_mask"]) / 2)
    assert masked.scores
    fill = registry.ModelCard.from_file(cards / "fill-mpi.json")
    assert fill.task == "fill" and fill.training["iterations"] > 0
    model = registry.load(masked)
    with torch.no_grad():
        assert np.isfinite(model(torch.rand(1, 3, 32, 32)).numpy()).all()


def test_a_plan_fixes_the_step_count_that_every_slot_follows(pack: Path, tmp_path: Path) -> None:
    carried, out = tmp_path / "carried", tmp_path / "slot"
    settings = ["--device", "cpu", "--config", "tiny", "--batch", "2", "--crop", "32", "--no-compile",
                "--pack", pack, "--carried", carried, "--output", out]  # fmt: skip
    script = ROOT / "scripts" / "gpu_sitting.py"
    # a 100-hour slot: more steps than 15 s of training reach however busy the machine is when it plans
    _script(script, "plan", "--runs", "unet-masked,unet-twin", "--budget", "100h", *settings)
    planned = json.loads((out / "plan.json").read_text())
    assert planned["compile"] is False and {row["run"] for row in planned["speed"]} == {"unet-masked", "unet-twin"}
    seconds_per_step = sum(1 / row["it_per_s"] for row in planned["speed"])
    assert planned["iters"] % 1000 == 0 and 1000 <= planned["iters"] <= 100_000
    assert planned["iters"] == min(100_000, max(1000, int(360_000 / seconds_per_step) // 1000 * 1000))
    _script(script, "collect", out, "--carried", carried)
    _script(script, "train", "--runs", "unet-twin", "--budget", "15s", "--margin", "0s", *settings)
    state = torch.load(out / "unet-twin" / "checkpoint.pt", weights_only=True)
    assert state["options"]["iters"] == planned["iters"] and state["options"]["mask"] is False
    assert 0 < state["iteration"] < planned["iters"]


def test_a_side_by_side_plan_sizes_the_slowest_run_at_its_share_of_its_speed(pack: Path, tmp_path: Path) -> None:
    out = tmp_path / "slot"
    script = ROOT / "scripts" / "gpu_sitting.py"
    _script(script, "plan", "--runs", "dynamic-twin,dynamic-masked", "--budget", "1h", "--side-by-side", "0.5",
            "--device", "cpu", "--config", "tiny", "--batch", "2", "--crop", "32", "--no-compile", "--pack", pack,
            "--output", out)  # fmt: skip
    planned = json.loads((out / "plan.json").read_text())
    assert [row["masked"] for row in planned["speed"]] == [False, True]
    seconds_per_step = max(1 / (0.5 * row["it_per_s"]) for row in planned["speed"])
    assert planned["iters"] == min(20_000, max(1000, int(3600 / seconds_per_step) // 1000 * 1000))
