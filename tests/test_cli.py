"""The command line end to end: outputs, formats, exit codes, reports, reproducibility."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import imagecodecs
import numpy as np
import OpenEXR
import pytest
import tifffile
from typer.testing import CliRunner

from mdn import __version__
from mdn.cli import app
from mdn.errors import MdnError
from mdn.io import batch
from mdn.noise import NOISE_TYPES

runner = CliRunner()
RNG = np.random.default_rng(11)


def _png(path: Path, shape=(48, 40, 3), dtype="uint8") -> Path:
    top = np.iinfo(dtype).max
    path.write_bytes(imagecodecs.png_encode(RNG.integers(top // 4, 3 * top // 4, size=shape).astype(dtype)))
    return path


def _invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_version_and_help_list_commands() -> None:
    assert __version__ in _invoke("--version").output
    result = _invoke("--help")
    assert result.exit_code == 0 and "noise" in result.output


def test_every_command_help_has_an_example() -> None:
    import typer.main

    for name, command in typer.main.get_command(app).commands.items():
        assert f"Example: mdn {name}" in (command.help or ""), name


def test_noise_writes_next_to_input_with_suffix_and_is_reproducible(tmp_path: Path) -> None:
    source = _png(tmp_path / "photo.png")
    result = _invoke("noise", source, "--type", "gaussian", "--level", "25", "--seed", "4")
    assert result.exit_code == 0 and f"wrote {tmp_path / 'photo_noisy.png'}" in result.stderr
    first = (tmp_path / "photo_noisy.png").read_bytes()
    assert _invoke("noise", source, "--seed", "4", "--level", "25", "--overwrite").exit_code == 0
    assert (tmp_path / "photo_noisy.png").read_bytes() == first
    assert _invoke("noise", source, "--seed", "5", "--level", "25", "--overwrite").exit_code == 0
    assert (tmp_path / "photo_noisy.png").read_bytes() != first
    noisy = imagecodecs.png_decode(first).astype(float)
    clean = imagecodecs.png_decode(source.read_bytes()).astype(float)
    assert abs((noisy - clean).std() - 25) < 1.0


def test_noise_keeps_16_bit_tiff_stack_and_its_metadata(tmp_path: Path) -> None:
    stack = RNG.integers(1000, 3000, size=(3, 32, 32)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "cells.tif", stack, imagej=True, metadata={"axes": "ZYX", "spacing": 0.5})
    result = _invoke("noise", tmp_path / "cells.tif", "-o", tmp_path / "noisy.tif", "--type", "poisson")
    assert result.exit_code == 0, result.output
    with tifffile.TiffFile(tmp_path / "noisy.tif") as tif:
        noisy = tif.asarray()
        assert tif.imagej_metadata["spacing"] == 0.5 and tif.series[0].axes == "ZYX"
    assert noisy.dtype == np.uint16 and noisy.shape == stack.shape
    assert noisy.min() >= stack.min() and noisy.max() <= stack.max()
    assert 10 < np.abs(noisy.astype(int) - stack).mean() < 1000


def test_shards_of_a_folder_write_every_file_once_as_the_whole_batch_does(tmp_path: Path) -> None:
    shoot = tmp_path / "shoot"
    (shoot / "day2").mkdir(parents=True)
    for name in ("a", "b", "c", "d", "day2/e"):
        _png(shoot / f"{name}.png")
    assert _invoke("noise", shoot, "-r", "-o", tmp_path / "whole", "--seed", "3").exit_code == 0
    reports = []
    for k in range(2):
        report = tmp_path / f"shard{k}.json"
        result = _invoke("noise", shoot, "-r", "-o", tmp_path / "sharded", "--seed", "3", "--shard", f"{k}/2",
                         "--json", report)  # fmt: skip
        assert result.exit_code == 0, result.output
        reports.append(json.loads(report.read_text()))
    assert [r["done"] for r in reports] == [3, 2] and {r["shard"] for r in reports} == {"0/2", "1/2"}
    whole = sorted(p.relative_to(tmp_path / "whole") for p in (tmp_path / "whole").rglob("*.png"))
    assert sorted(p.relative_to(tmp_path / "sharded") for p in (tmp_path / "sharded").rglob("*.png")) == whole
    for name in whole:
        assert (tmp_path / "sharded" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
    merged = batch.merge_reports(reports)
    assert merged["done"] == merged["planned"] == 5 and len({f["input"] for f in merged["files"]}) == 5
    empty = _invoke("noise", shoot, "-r", "-o", tmp_path / "none", "--shard", "7/8")
    assert empty.exit_code == 0 and empty.output == "shard 7/8: none of the 5 inputs falls to it\n", empty.output
    for bad in ("2/2", "1", "-1/3", "a/b"):
        result = _invoke("noise", shoot, "--shard", bad)
        assert result.exit_code == 2 and "--shard must be K/N" in result.output


def test_aliased_noise_writes_the_thumbnail_with_its_alpha_and_stack(tmp_path: Path) -> None:
    rgba = _png(tmp_path / "logo.png", shape=(48, 40, 4))
    assert _invoke("noise", rgba, "--type", "aliased", "-o", tmp_path / "thumb.png").exit_code == 0
    thumb = imagecodecs.png_decode((tmp_path / "thumb.png").read_bytes())
    source = imagecodecs.png_decode(rgba.read_bytes())
    assert thumb.shape == (24, 20, 4) and np.array_equal(thumb[..., 3], source[::2, ::2, 3])
    assert abs((thumb[..., :3].astype(float) - source[::2, ::2, :3]).std() - 15) < 1.5
    stack = RNG.integers(1000, 3000, size=(3, 32, 30)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "cells.tif", stack, imagej=True, metadata={"axes": "ZYX"})
    result = _invoke("noise", tmp_path / "cells.tif", "-o", tmp_path / "small.tif", "--type", "aliased")
    assert result.exit_code == 0, result.output
    small = tifffile.imread(tmp_path / "small.tif")
    assert small.dtype == np.uint16 and small.shape == (3, 16, 15)


def test_noise_on_exr_with_nan_warns_and_writes_finite_half_floats(tmp_path: Path) -> None:
    channels = {c: np.full((16, 16), 2.0, np.float16) for c in "RGB"}
    channels["G"][3, 4] = np.nan
    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION}, dict(channels)).write(str(tmp_path / "render.exr"))
    result = _invoke("noise", tmp_path / "render.exr", "-o", tmp_path / "out.exr")
    assert result.exit_code == 0, result.output
    assert "1 NaN/Inf values replaced" in result.output
    out = OpenEXR.File(str(tmp_path / "out.exr"), separate_channels=True).channels()
    assert out["R"].pixels.dtype == np.float16 and np.isfinite(out["G"].pixels).all()
    assert out["R"].pixels.std() > 0


def test_batch_keeps_going_summarises_and_exits_1(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    _png(folder / "a.png")
    _png(folder / "b.png", shape=(20, 20), dtype="uint16")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot a png at all")
    report = tmp_path / "report.json"
    result = _invoke("noise", folder, "-o", tmp_path / "out", "--json", report)
    assert result.exit_code == 1
    assert "broken.png" in result.output and "2 done, 1 failed" in result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    files = {Path(f["input"]).name: f for f in json.loads(report.read_text())["files"]}
    assert files["a.png"]["status"] == "done" and files["broken.png"]["status"] == "failed"
    assert "cannot read PNG" in files["broken.png"]["error"]
    assert imagecodecs.png_decode((tmp_path / "out" / "b.png").read_bytes()).dtype == np.uint16


def test_a_report_that_cannot_be_written_is_refused_before_any_file(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    _png(folder / "a.png")
    (tmp_path / "blocker").write_text("a file where the report's folder should be")
    result = _invoke("noise", folder, "-o", tmp_path / "out", "--json", tmp_path / "blocker" / "report.json")
    assert result.exit_code == 2 and not (tmp_path / "out").exists()
    assert f"{tmp_path / 'blocker'} is a file, not a folder" in result.output
    result = _invoke("noise", folder, "-o", tmp_path / "out", "--json", tmp_path)
    assert result.exit_code == 2 and "is a directory, expected a file name" in result.output
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".*"))


def test_a_report_never_replaces_an_input_or_a_file_that_holds_no_report(tmp_path: Path) -> None:
    source = _png(tmp_path / "a.png")
    before = source.read_bytes()
    for report in (source, tmp_path / "a_noisy.png"):  # an input, or the output it would replace
        result = _invoke("noise", source, "--json", report, "--overwrite")
        assert result.exit_code == 2 and "refusing to write a report over it" in result.output
    assert source.read_bytes() == before and not (tmp_path / "a_noisy.png").exists()
    notes = tmp_path / "notes.json"
    notes.write_text("my notes, not JSON")
    result = _invoke("noise", source, "--json", notes)
    assert result.exit_code == 2 and "exists and holds no report" in result.output
    assert notes.read_text() == "my notes, not JSON"
    assert _invoke("noise", source, "--json", notes, "--overwrite").exit_code == 0
    assert _invoke("noise", source, "--json", notes, "--overwrite").exit_code == 0  # an earlier report: replaced
    assert json.loads(notes.read_text())["done"] == 1
    other = _png(tmp_path / "b.png")  # `--json *.png`: the shell gave the first photo as the report's name
    photo = other.read_bytes()
    for more in ([], ["--overwrite"]):
        result = _invoke("noise", source, "--json", other, *more)
        assert result.exit_code == 2 and "exists and is not a text file; refusing to write a report" in result.output
    assert other.read_bytes() == photo
    text = tmp_path / "notes.txt"
    text.write_text("my notes, with commas")
    result = _invoke("noise", source, "--json", text)
    assert result.exit_code == 2 and "holds no report" in result.output and text.read_text().startswith("my")


def test_recursive_batch_mirrors_the_tree_under_the_output_folder(tmp_path: Path) -> None:
    for name in ("shoot/a.png", "shoot/day1/a.png", "shoot/day2/deep/b.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        _png(tmp_path / name)
    assert _invoke("noise", tmp_path / "shoot", "-o", tmp_path / "out", "--recursive").exit_code == 0
    written = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png"))
    assert written == ["a.png", "day1/a.png", "day2/deep/b.png"]


def test_skip_existing_and_refusal_to_overwrite(tmp_path: Path) -> None:
    source = _png(tmp_path / "a.png")
    (tmp_path / "a_noisy.png").write_bytes(b"keep me")
    assert _invoke("noise", source, "--skip-existing").exit_code == 0
    result = _invoke("noise", source)
    assert result.exit_code == 1 and "refusing to overwrite" in result.output
    assert (tmp_path / "a_noisy.png").read_bytes() == b"keep me"


def test_usage_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    source = _png(tmp_path / "a.png")
    result = subprocess.run(
        [sys.executable, "-m", "mdn", "noise", str(source), "--type", "gausian"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: unknown noise type 'gausian'; did you mean gaussian?"
    missing = _invoke("noise", tmp_path / "nothing-here")
    assert missing.exit_code == 1 and f"{tmp_path / 'nothing-here'}: does not exist" in missing.output
    assert _invoke("noise", tmp_path / "*.jpg").exit_code == 2
    assert _invoke("noise", "--level", "-3", source).exit_code == 2


def test_noise_list_shows_every_type_with_its_parameter_and_default() -> None:
    result = _invoke("noise", "--list")
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in result.output.splitlines() if "│" in line]
    rows = {row[0]: row[1:] for row in cells if row[0]}
    assert result.exit_code == 0 and list(rows) == list(NOISE_TYPES)
    for name, kind in NOISE_TYPES.items():
        parameter, default, levels = rows[name]
        assert kind.parameter.startswith(parameter) and default == f"{kind.default_level:g}"
        assert levels.startswith(f"{kind.levels[0]:g}")


def test_running_twice_on_a_folder_does_not_process_its_own_results(tmp_path: Path) -> None:
    _png(tmp_path / "a.png")
    assert _invoke("noise", tmp_path).exit_code == 0
    result = _invoke("noise", tmp_path, "--skip-existing")
    assert result.exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a_noisy.png"]


def _read_only(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `folder` refuse new files: by its mode, or where that does not hold (root) by failing as a read-only
    mount does."""
    folder.mkdir(exist_ok=True)
    folder.chmod(0o555)
    try:
        (folder / "probe").touch()
    except PermissionError:
        return
    (folder / "probe").unlink()
    real_open = os.open

    def read_only_open(path, flags, *args, **kwargs):
        if Path(path).parent == folder and flags & os.O_CREAT:
            raise OSError(30, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only_open)


def test_a_read_only_output_folder_fails_each_file_in_one_line_and_reports_the_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = [_png(tmp_path / "a.png"), _png(tmp_path / "b.png")]
    out, report = tmp_path / "out", tmp_path / "report.json"
    _read_only(out, monkeypatch)
    try:
        result = _invoke("noise", *sources, "-o", out, "--json", report)
    finally:
        out.chmod(0o755)
    assert result.exit_code == 1 and "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and all(": cannot write: " in line for line in errors)
    assert str(out / "a.png") in errors[0] and str(out / "b.png") in errors[1]
    assert "2 failed" in result.output
    assert [f["status"] for f in json.loads(report.read_text())["files"]] == ["failed", "failed"]
    assert list(out.iterdir()) == []


def test_an_output_path_through_a_file_is_one_error_line(tmp_path: Path) -> None:
    source = _png(tmp_path / "photo.png")
    before = source.read_bytes()
    result = _invoke("noise", source, "-o", tmp_path / "photo.png" / "out.png")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1] == (
        f"error: {source}/out.png: cannot write: {source} is a file, not a folder"
    )
    assert source.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]


def test_libpng_warnings_about_a_colour_profile_stay_quiet(tmp_path: Path) -> None:
    data = imagecodecs.png_encode(RNG.integers(0, 255, (6, 5, 3)).astype(np.uint8))
    chunk = b"iCCP" + b"icc\x00\x00" + zlib.compress(b"not a profile")
    iccp = (len(chunk) - 4).to_bytes(4, "big") + chunk + zlib.crc32(chunk).to_bytes(4, "big")
    (tmp_path / "profile.png").write_bytes(data[:33] + iccp + data[33:])  # after the signature and IHDR
    run = [sys.executable, "-m", "mdn", "noise", str(tmp_path / "profile.png"), "-o", str(tmp_path / "out.png")]
    result = subprocess.run(run, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0 and "iCCP" not in result.stderr, result.stderr


def test_a_plain_rgb_render_is_its_beauty_layer(tmp_path: Path) -> None:
    channels = {c: RNG.random((16, 16)).astype(np.float16) for c in "RGB"}
    channels.update({f"albedo.{c}": RNG.random((16, 16)).astype(np.float16) for c in "RGB"})
    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION}, dict(channels)).write(str(tmp_path / "render.exr"))
    result = _invoke("noise", tmp_path / "render.exr", "-o", tmp_path / "out.exr", "--layer", "beauty")
    assert result.exit_code == 0, result.output
    out = OpenEXR.File(str(tmp_path / "out.exr"), separate_channels=True).channels()
    assert not np.array_equal(out["R"].pixels, channels["R"])
    np.testing.assert_array_equal(out["albedo.R"].pixels, channels["albedo.R"])


def test_former_option_names_become_todays_with_one_warning_each(capsys: pytest.CaptureFixture[str]) -> None:
    from mdn.cli.former_options import current

    args = ["--data", "d", "--bf16", "--out=cards", "--input-mask", "0.7,0.8", "--attention-mask", "0.5", "--", "--out"]
    assert list(current("train", args)) == [
        "--data", "d", "--precision", "bf16", "--output=cards", "--input-mask-range", "0.7,0.8",
        "--attention-mask-ratio", "0.5", "--", "--out",
    ]  # fmt: skip
    warnings = capsys.readouterr().err.splitlines()
    assert warnings[0] == "warning: --bf16 is now --precision bf16" and len(warnings) == 4
    assert list(current("denoise", ["--batch", "2", "--input-mask", "0.5"])) == [
        "--tile-batch",
        "2",
        "--input-mask",
        "0.5",
    ]
    assert list(current("noise", ["--out", "x"])) == ["--out", "x"]


def test_research_options_come_after_the_everyday_ones_in_their_own_panel() -> None:
    import typer.main

    commands = typer.main.get_command(app).commands
    panels = {p.opts[0]: getattr(p, "rich_help_panel", None) for p in commands["denoise"].params}
    assert panels["--attention-mask"] == "Research" and panels["--passes"] is None
    research = {p.opts[0] for p in commands["train"].params if getattr(p, "rich_help_panel", None) == "Research"}
    assert {"--compile", "--attention-kernel", "--attention-mask-ratio", "--input-mask-range"} <= research


@pytest.mark.parametrize("command", ["noise", "denoise", "zeroshot"])
def test_threads_sets_the_cpu_threads_of_every_computing_command(tmp_path: Path, command: str) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        source = _png(tmp_path / "photo.png", shape=(32, 32, 3))
        extra = ["--iters", "2"] if command == "zeroshot" else []
        assert _invoke(command, source, "--threads", "1", *extra).exit_code == 0
        assert torch.get_num_threads() == 1
        result = _invoke(command, source, "--threads", "-1", "--overwrite", *extra)
        assert (
            result.exit_code == 2 and "--threads must be a whole number from 0 (one per core), got -1" in result.output
        )
    finally:
        torch.set_num_threads(before)


def test_a_batch_is_checked_for_what_a_user_mistypes_before_any_work(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        _png(folder / name)
    (tmp_path / "results").write_text("a file where the output folder should be")
    for args, words in (
        (["-o", tmp_path / "results"], "results: is a file; -o needs a folder for 2 inputs"),
        (["--suffix", "/clean"], "--suffix is added to each file's name and cannot hold a folder: '/clean'"),
        (["-o", tmp_path / "out", "--overwrite", "--skip-existing"], "--overwrite and --skip-existing: give one"),
        (["--dtype", "abc"], "--dtype must be one of uint8, uint16, float16, float32, float64, got 'abc'"),
        (["--json", "-"], "a report is written to a file, not to '-': give a file name, or /dev/stdout"),
        (["-o", tmp_path / "out", "--suffix", "a/b"], "--suffix is added to each file's name and cannot hold a folder"),
    ):
        result = _invoke("noise", folder, *args)
        assert result.exit_code == 2 and words in result.output, args
    assert sorted(p.name for p in folder.iterdir()) == ["a.png", "b.png"] and not (tmp_path / "out").exists()


def test_an_output_that_is_its_input_is_refused_even_with_overwrite(tmp_path: Path) -> None:
    """`-o` the input's own folder, or `--suffix ''`, had met "exists; ... use --overwrite", and --overwrite then
    replaced the photo."""
    folder = tmp_path / "shoot"
    folder.mkdir()
    original = _png(folder / "a.png").read_bytes()
    for args in (["-o", folder], ["-o", folder, "--overwrite"], ["--suffix", ""], ["--suffix", "", "--overwrite"]):
        result = _invoke("noise", folder, *args)
        assert result.exit_code == 2, args
        assert "a.png: would be written over by its own result: mdn never replaces an input" in result.output
    assert (folder / "a.png").read_bytes() == original and [p.name for p in folder.iterdir()] == ["a.png"]


def test_a_suffix_given_names_the_outputs_in_an_output_folder_too(tmp_path: Path) -> None:
    folder = tmp_path / "shoot"
    (folder / "day2").mkdir(parents=True)
    _png(folder / "a.png"), _png(folder / "day2" / "b.png")
    assert _invoke("noise", folder, "-r", "-o", tmp_path / "plain").exit_code == 0  # no suffix unless given
    assert _invoke("noise", folder, "-r", "-o", tmp_path / "named", "--suffix", "_nr").exit_code == 0
    assert sorted(str(p.relative_to(tmp_path / "plain")) for p in (tmp_path / "plain").rglob("*.png")) == [
        "a.png", "day2/b.png"
    ]  # fmt: skip
    assert sorted(str(p.relative_to(tmp_path / "named")) for p in (tmp_path / "named").rglob("*.png")) == [
        "a_nr.png", "day2/b_nr.png"
    ]  # fmt: skip


def test_a_folders_pictures_of_types_mdn_does_not_read_are_named_not_skipped_in_silence(tmp_path: Path) -> None:
    card = tmp_path / "card"
    card.mkdir()
    _png(card / "IMG_0001.png")
    for name in ("IMG_0002.gif", "IMG_0003.CR2", "IMG_0004.HEIC", "notes.txt", ".IMG_0005.HEIC"):
        (card / name).write_bytes(b"not read")
    result = _invoke("noise", card, "-o", tmp_path / "out")
    assert result.exit_code == 0
    words = "warning: left out 3 pictures of a type mdn does not read ("
    assert words in result.output and "HEIC; camera raw: develop into 16-bit TIFF or PNG first)" in result.output
    assert "notes.txt" not in result.output and ".IMG_0005" not in result.output
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["IMG_0001.png"]
    (tmp_path / "alone").mkdir()
    _png(tmp_path / "alone" / "a.png")
    assert "left out" not in _invoke("noise", tmp_path / "alone", "-o", tmp_path / "out2").output


def test_the_report_is_written_before_the_summary_that_a_closed_pipe_may_stop(tmp_path: Path, monkeypatch) -> None:
    """`mdn denoise a.png --json report.json | true`: the summary's write to the closed pipe ended the run, and the
    report, written after it, was lost."""
    from mdn.cli import per_file

    def closed_pipe(*args, **kwargs) -> None:
        raise BrokenPipeError

    monkeypatch.setattr(per_file, "print_summary", closed_pipe)
    _invoke("noise", _png(tmp_path / "a.png"), "-o", tmp_path / "b.png", "--json", tmp_path / "report.json")
    assert json.loads((tmp_path / "report.json").read_text())["files"][0]["status"] == "done"


def test_a_format_that_holds_fewer_bits_is_warned_of_unless_dtype_asks_for_it(tmp_path: Path) -> None:
    source = _png(tmp_path / "deep.png", dtype="uint16")
    tifffile.imwrite(tmp_path / "float.tif", np.full((48, 40), 0.5, np.float32))
    for name, target, words in (
        (
            "deep.png",
            "deep.jpg",
            "its uint16 samples are written as uint8: JPEG holds no more (PNG or TIFF keeps 16 bits)",
        ),
        (
            "float.tif",
            "float.jpg",
            "its float32 samples are written as uint8: JPEG holds no more (TIFF or EXR keeps floats)",
        ),
        ("float.tif", "float.png", "its float32 samples are written as uint8 (--dtype uint16 keeps more of them)"),
    ):
        result = _invoke("noise", tmp_path / name, "-o", tmp_path / target)
        assert result.exit_code == 0 and words in result.output, result.output
    quiet = _invoke("noise", source, "-o", tmp_path / "asked.png", "--dtype", "uint8")
    assert quiet.exit_code == 0 and "samples are written as" not in quiet.output
    assert imagecodecs.png_decode((tmp_path / "asked.png").read_bytes()).dtype == np.uint8  # as asked
    assert _invoke("noise", source, "-o", tmp_path / "asked.tif", "--dtype", "float32").exit_code == 0
    assert tifffile.imread(tmp_path / "asked.tif").dtype == np.float32
    same = _invoke("noise", source, "-o", tmp_path / "deep_noisy.tif")
    assert same.exit_code == 0 and "samples are written as" not in same.output


def test_engine_settings_out_of_range_are_usage_errors(tmp_path: Path) -> None:
    source = _png(tmp_path / "photo.png")
    for args, words in (
        (["--tile-batch", "-1"], "--tile-batch must be 0 (1 on a CPU, 4 on a GPU) or more, got -1"),  # a traceback
        (["--max-memory", "10M"], "--max-memory must be at least 64M (the stages' smallest window), got '10M'"),
        (["--overlap", "300"], "--overlap must be in [0, 256], got 300"),  # of the tile --max-memory gives: per file
    ):
        result = _invoke("denoise", source, "-o", tmp_path / "out.png", *args)
        assert result.exit_code == 2 and words in result.output, args
    assert not (tmp_path / "out.png").exists()


def test_a_file_named_twice_runs_once_and_a_rerun_leaves_its_own_results_alone(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "photos"
    (folder / "trip").mkdir(parents=True)
    _png(folder / "a.png")
    _png(folder / "trip" / "b.png")
    monkeypatch.chdir(tmp_path)
    once = _invoke("noise", "photos/a.png", folder / "a.png", "./photos/a.png", "-o", "out")
    assert once.exit_code == 0 and "summary" not in once.output and (tmp_path / "out" / "a.png").exists()
    for more in ([], ["--skip-existing"]):  # the second run, as a user finishing an interrupted batch runs it
        result = _invoke("noise", "-r", "photos", "-o", "photos/noisy", *more)
        assert result.exit_code == 0, result.output
    written = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.png"))
    assert written == ["a.png", "noisy/a.png", "noisy/trip/b.png", "trip/b.png"]


def test_an_unreadable_input_is_said_so_not_called_corrupt(tmp_path: Path, monkeypatch) -> None:
    source = _png(tmp_path / "locked.png")
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != source)
    result = _invoke("noise", source, "-o", tmp_path / "out.png")
    assert result.exit_code == 1 and "locked.png: cannot read: permission denied" in result.output


def test_a_noisy_float_tiff_within_its_display_range_is_clipped_not_stretched_into_integers(tmp_path: Path) -> None:
    """Noise overshoots a [0, 1] picture (here -0.1 to 1.1): that is no physical unit to stretch from."""
    ramp = np.tile(np.linspace(0.1, 0.9, 9, dtype=np.float32), (8, 1))
    ramp[0, 0], ramp[0, 1] = -0.1, 1.1
    tifffile.imwrite(tmp_path / "noisy.tif", ramp)
    result = _invoke("noise", tmp_path / "noisy.tif", "-o", tmp_path / "out.png", "--type", "saltpepper", "-l", "1e-9")
    assert result.exit_code == 0, result.output
    out = imagecodecs.png_decode((tmp_path / "out.png").read_bytes())
    np.testing.assert_array_equal(out[1], np.rint(ramp[1] * 255))  # was stretched: 0.1 came out 47, not 26
    assert out[0, 0] == 0 and out[0, 1] == 255


def test_a_csv_or_json_of_the_users_own_is_no_report_to_replace(tmp_path: Path) -> None:
    """Any CSV with a header, any JSON, was taken for an earlier report: `--json shoot.json` replaced a user's
    notes of a shoot without a word."""
    source = _png(tmp_path / "a.png")
    shoot = tmp_path / "shoot.json"
    shoot.write_text('[{"filename": "IMG_0001.png", "iso": 3200}]')
    result = _invoke("noise", source, "--json", shoot)
    assert result.exit_code == 2 and "holds no report" in result.output and "iso" in shoot.read_text()
    assert _invoke("noise", source, "--json", tmp_path / "report.json").exit_code == 0
    assert _invoke("noise", source, "--json", tmp_path / "report.json", "--overwrite").exit_code == 0  # its own
    for name, text, report in (
        ("shoot.csv", "filename,exposure,iso\nIMG_0001.png,1/60,3200\n", False),
        ("scores.csv", "model,noise,level,image,psnr,ssim,seconds\n", True),
        ("speed.json", '[{"model": "unet", "size": "1024", "mp_per_s": 1.5}]', True),
        ("none.json", "[]", True),
        ("table.md", "| model | gaussian | mean |\n|---|---|---|\n", True),
        ("notes.md", "| a | b |\n", False),
    ):
        (tmp_path / name).write_text(text)
        if report:
            batch.check_report(tmp_path / name, [])
        else:
            with pytest.raises(MdnError, match="holds no report"):
                batch.check_report(tmp_path / name, [])


def test_output_dash_is_refused_not_made_a_folder(tmp_path: Path) -> None:
    """`-o -` (stdout, as many tools take it) made a folder named '-' and wrote there."""
    source = _png(tmp_path / "a.png")
    result = _invoke("noise", source, "-o", "-")
    assert result.exit_code == 2 and "pictures are not written to stdout" in result.output
    assert not Path("-").exists()


def test_the_noise_list_keeps_every_column_whole_at_a_narrow_width() -> None:
    """At 30 columns each type is a block of lines with its parameter, default and levels, none cut away; wide
    enough, the table."""
    narrow = subprocess.run([sys.executable, "-m", "mdn", "noise", "--list"], capture_output=True, text=True,
                            env={**os.environ, "COLUMNS": "30", "TERM": "xterm"}, check=True).stdout  # fmt: skip
    text = " ".join(narrow.split())
    for name, kind in NOISE_TYPES.items():
        levels = ", ".join(f"{v:g}" for v in kind.levels)
        assert f"type {name} level parameter {kind.parameter} default {kind.default_level:g}" in text, name
        assert f"paper's levels {levels}" in text, name
    wide = subprocess.run([sys.executable, "-m", "mdn", "noise", "--list"], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "100", "TERM": "xterm"}, check=True).stdout  # fmt: skip
    assert "│ gaussian " in wide
