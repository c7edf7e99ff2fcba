"""Ctrl-C (or SIGTERM: `kill`, a batch system's stop) in a batch: what was done is reported and kept, nothing
half-written is left, exit 130 (143)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import imagecodecs
import numpy as np
import pytest

RNG = np.random.default_rng(5)


def _start(*args: str | Path) -> subprocess.Popen[str]:
    env = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "mdn", *map(str, args)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _when(condition: Callable[[], bool], process: subprocess.Popen[str], limit: float = 120.0) -> None:
    """Wait until `condition` holds (polling), failing if the process ends first or the limit passes."""
    end = time.monotonic() + limit
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < end, "timed out"
        time.sleep(0.002)


def _hidden(folder: Path) -> list[str]:
    return [p.name for p in folder.glob(".*")] if folder.is_dir() else []


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_in_a_batch_reports_what_was_done_and_exits_130(tmp_path: Path, stop: signal.Signals) -> None:
    sources = []
    for i in range(4):
        sources.append(tmp_path / f"{i}.png")
        sources[-1].write_bytes(imagecodecs.png_encode(RNG.integers(0, 255, (48, 48, 3), dtype=np.uint8)))
    out, report = tmp_path / "out", tmp_path / "report.json"
    process = _start(
        "zeroshot", *sources, "-o", out, "--method", "zs-n2n", "--iters", "150", "--device", "cpu",
        "--precision", "fp32", "--json", report,
    )  # fmt: skip
    _when(lambda: (out / "0.png").exists(), process)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + stop, stderr
    files = json.loads(report.read_text())
    done = [Path(f["output"]).name for f in files["files"] if f["status"] == "done"]
    assert 1 <= len(done) < 4 and files["interrupted"] and files["planned"] == 4
    assert f"interrupted after {len(files['files'])} of 4 files" in stderr
    assert "summary" in stderr and "Traceback" not in stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(done)


@pytest.fixture(scope="module")
def large_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24 MP photo-sized PNG, whose write takes long enough to be interrupted."""
    path = tmp_path_factory.mktemp("large") / "large.png"
    path.write_bytes(imagecodecs.png_encode(RNG.integers(0, 255, (4000, 6000, 3), dtype=np.uint8), level=1))
    return path


@pytest.mark.parametrize(("presses", "stop"), [(1, signal.SIGINT), (2, signal.SIGINT), (1, signal.SIGTERM)])
def test_ctrl_c_during_a_large_write_leaves_no_temporary_file(
    large_png: Path, tmp_path: Path, presses: int, stop: signal.Signals
) -> None:
    out = tmp_path / "out"
    process = _start("noise", large_png, "-o", out / "noisy.png", "--json", tmp_path / "report.json")
    _when(lambda: bool(_hidden(out)), process)
    for _ in range(presses):
        process.send_signal(stop)
        time.sleep(0.05)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + stop, stderr
    assert _hidden(out) == [] and "Traceback" not in stderr
    if presses == 1:  # the write in flight is finished and reported
        assert "interrupted after 1 of 1 files" in stderr
        assert json.loads((tmp_path / "report.json").read_text())["done"] == 1
    if (out / "noisy.png").exists():
        assert imagecodecs.png_decode((out / "noisy.png").read_bytes()).shape == (4000, 6000, 3)


LATE_CTRL_C = """
import signal
from mdn.cli import per_file

with per_file.interrupts() as stop:
    stop.set()  # the work is done
    signal.raise_signal(signal.SIGINT)  # a Ctrl-C as the summary is printed
    print("summary and report finished", stop.signalled, stop.status)
    signal.raise_signal(signal.SIGINT)  # a second one: at once
    print("not reached")
"""


def test_a_ctrl_c_after_the_work_lets_the_summary_and_report_finish() -> None:
    """One Ctrl-C just after the last file said 'interrupted again: stopped at once' and cut the report."""
    done = subprocess.run([sys.executable, "-c", LATE_CTRL_C], capture_output=True, text=True, timeout=120)
    assert done.stdout == "summary and report finished True 130\n", done.stdout + done.stderr
    assert done.returncode == 130 and done.stderr.strip() == "interrupted again: stopped at once"
