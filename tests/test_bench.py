"""`mdn bench`: reproducible quality grid, speed rows, reports."""

from __future__ import annotations

import dataclasses
import importlib
import json
import subprocess
import sys
import warnings
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
from typer.testing import CliRunner

from mdn import bench, metrics, peers, zeroshot
from mdn.cli import app
from mdn.errors import MdnError
from mdn.inference.engine import Engine, EngineOptions, TooLarge

runner = CliRunner()
SPEED = importlib.import_module("mdn.bench.speed")
"""The speed module (`bench.speed` is its function)."""


def test_quick_bench_is_reproducible_and_writes_reports(tiny_card, tmp_path: Path) -> None:
    args = ["bench", "--quick", "--models", f"noisy,{tiny_card.path}"]
    first = runner.invoke(app, [*args, "-q", "--json", str(tmp_path / "a.json"), "--csv", str(tmp_path / "a.csv")])
    assert first.exit_code == 0 and first.output == "", first.output  # --quiet: errors and warnings only
    second = runner.invoke(app, [*args, "--json", str(tmp_path / "b.json")])
    rows = json.loads((tmp_path / "a.json").read_text())
    again = json.loads((tmp_path / "b.json").read_text())
    assert [(r["psnr"], r["ssim"]) for r in rows] == [(r["psnr"], r["ssim"]) for r in again]
    assert {(r["model"], r["noise"]) for r in rows} == {
        ("noisy", "gaussian"), ("noisy", "poisson"), (str(tiny_card.path), "gaussian"), (str(tiny_card.path), "poisson")
    }  # fmt: skip
    noisy = next(r for r in rows if r["model"] == "noisy" and r["noise"] == "gaussian")
    assert 23.5 < noisy["psnr"] < 26.0
    assert (tmp_path / "a.csv").read_text().startswith("model,noise,level,image,psnr,ssim,seconds")
    assert "gaussian" in second.output


def test_a_report_over_a_reference_or_of_an_unknown_type_is_refused_before_the_bench(tmp_path: Path) -> None:
    refs = tmp_path / "refs"
    refs.mkdir()
    picture = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    (refs / "a.png").write_bytes(imagecodecs.png_encode(picture))
    before = (refs / "a.png").read_bytes()
    args = ["bench", str(refs), "--models", "noisy", "--noise", "gaussian:15", "--quiet"]
    for option in ("--markdown", "--json", "--csv", "--plot"):
        result = runner.invoke(app, [*args, option, str(refs / "a.png")])
        assert result.exit_code == 2 and "is an input or a result of this command; refusing" in result.output
    assert (refs / "a.png").read_bytes() == before
    result = runner.invoke(app, [*args, "--plot", str(tmp_path / "study.xyz")])
    assert result.exit_code == 2 and "a plot is written as .png" in result.output
    written = runner.invoke(app, [*args, "--json", str(tmp_path / "new" / "deep" / "r.json")])
    assert written.exit_code == 0 and json.loads((tmp_path / "new" / "deep" / "r.json").read_text())
    photo = tmp_path / "keep.png"
    photo.write_bytes(before)
    (tmp_path / "notes.md").write_text("# my notes\n")
    for option, path in (("--csv", photo), ("--plot", photo), ("--markdown", tmp_path / "notes.md")):
        result = runner.invoke(app, [*args, option, str(path)])
        assert result.exit_code == 2 and "refusing to" in result.output, option
    assert photo.read_bytes() == before and (tmp_path / "notes.md").read_text() == "# my notes\n"
    assert "remove it or choose another name" in result.output
    for option, name in (("--csv", "a.csv"), ("--markdown", "t.md"), ("--plot", "study.jpg")):
        for _ in range(2):  # the second run replaces the first's report
            again = runner.invoke(app, [*args, option, str(tmp_path / name)])
            assert again.exit_code == 0, (option, again.output)


@pytest.mark.parametrize(
    ("suffix", "setting", "noise"),
    [("+no-detail", {"detail": False}, ("gaussian", 15.0)), ("+no-wiener", {"wiener": False}, ("gaussian", 15.0)),
     ("+fast", {"quality": "fast"}, ("gaussian", 15.0)), ("+high", {"quality": "high"}, ("gaussian", 15.0)),
     ("+no-impulses", {"impulses": False}, ("saltpepper", 0.02))],
)  # fmt: skip
def test_a_card_without_a_stage_is_benched_beside_it(
    suffix: str, setting: dict[str, bool | str], noise: tuple[str, float]
) -> None:
    """`CARD+no-detail` is the card as `mdn denoise --no-detail` runs it (`+no-wiener`: `--no-wiener`; `+fast`,
    `+high`: `--quality`; `+no-impulses`: `--no-impulses`), in the same run as the card itself."""
    import mdn

    clean = bench.load_references([str(bench.SAMPLES / "barbara.png")])["barbara"][:96, :96]
    noisy = bench.noisy_input(clean, "barbara", *noise, 0)
    name = "unet-dct-practical" + suffix
    found = bench.denoisers(["unet-dct-practical", name], EngineOptions(device="cpu"))
    without = found[name](noisy)
    assert np.array_equal(without, mdn.denoise(noisy, "unet-dct-practical", device="cpu", **setting))
    assert not np.array_equal(found["unet-dct-practical"](noisy), without)
    assert bench.speed(name, (64, 64), runs=1, options=EngineOptions(device="cpu")).model == name


def test_grid_parsing_and_defaults() -> None:
    assert bench.parse_grid("gaussian:15,25;speckle") == [
        ("gaussian", 15.0), ("gaussian", 25.0), *(("speckle", v) for v in (0.018, 0.024, 0.03, 0.036, 0.04))
    ]  # fmt: skip
    kinds = {k for k, _ in bench.default_grid()}
    assert {"gaussian", "speckle", "poisson", "correlated", "saltpepper", "isp", "mixture"} <= kinds


def test_speed_reports_throughput_and_memory(tiny_card) -> None:
    row = bench.speed(str(tiny_card.path), (96, 128), runs=3, options=EngineOptions(device="cpu"))
    assert row.mp_per_s * row.seconds == pytest.approx(96 * 128 / 1e6)  # the median run, in both units
    assert row.peak_rss_mb > 50 and row.device == "cpu" and row.size == "128x96"


def test_speed_times_grey_pictures(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--speed --grey` times the cards on a grey picture (one channel), as grey files reach them."""
    seen: list[tuple[int, ...]] = []
    call = Engine.__call__
    monkeypatch.setattr(
        Engine, "__call__", lambda self, planes, *a: seen.append(planes.shape) or call(self, planes, *a)
    )
    row = next(bench.speed_rows(["unet"], [(64, 96)], 1, EngineOptions(device="cpu"), grey=True))
    assert row.size == "96x64" and seen[-1] == (1, 64, 96, 1)


def test_train_speed_times_whole_training_steps() -> None:
    row = bench.train_speed("tiny", True, batch=2, crop=32, device="cpu", kernel="sdpa", windows=2, steps=1)
    assert row.crops_per_s == pytest.approx(2 * row.it_per_s) and row.masked and row.precision == "fp32"
    assert (row.device, row.kernel, row.compiled) == ("cpu", "sdpa", False)


def test_speed_rows_compare_attention_kernels(tiny_card, tmp_path: Path) -> None:
    report = tmp_path / "speed.json"
    args = ["bench", "--speed", "--models", str(tiny_card.path), "--sizes", "64", "--runs", "1", "--device", "cpu",
            "--attention-kernel", "explicit,sdpa", "--json", str(report), "-q"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and result.output == "", result.output  # --quiet: no table
    rows = json.loads(report.read_text())
    assert [(r["kernel"], r["device"]) for r in rows] == [("explicit", "cpu"), ("sdpa", "cpu")]


def test_plot_draws_one_panel_per_noise(tiny_card, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    scores = [bench.Score(m, k, lv, "x", 20 + lv, 0.5, 1.0) for m in ("a", "b") for k in ("gaussian", "render")
              for lv in (1.0, 2.0)]  # fmt: skip
    bench.plot(scores, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000
    table = bench.markdown(scores).splitlines()
    assert table[0] == "| model | gaussian | render | mean |"
    assert table[2] == "| a | 21.50 / 0.500 | 21.50 / 0.500 | 21.50 / 0.500 |"  # one image: no spread
    assert table[-1] == "| b | +0.00 | +0.00 | +0.00 |"


def test_markdown_reports_each_model_least_gain_over_its_input() -> None:
    cells = [("noisy", 20.0, 30.0), ("good", 25.0, 31.0), ("risky", 26.0, 29.5)]
    scores = [bench.Score(m, "photon", 10.0, image, psnr, 0.5, 1.0) for m, *values in cells
              for image, psnr in zip("ab", values, strict=True)]  # fmt: skip
    assert bench.least_gain(scores, "good") == pytest.approx(1.0)
    assert bench.least_gain(scores, "risky") == pytest.approx(-0.5)
    table = bench.markdown(scores).splitlines()
    assert table[0] == "| model | photon | mean | least gain (dB) |"
    assert table[4] == "| risky | 27.75 ± 1.75 / 0.500 | 27.75 ± 1.75 / 0.500 | -0.50 |"
    assert table[6] == "| PSNR minus good (dB, paired per image) | photon | mean |"
    assert table[-1] == "| risky | -0.25 ± 1.25 | -0.25 ± 1.25 |"


def test_spread_is_over_images_after_averaging_their_levels() -> None:
    psnr = {("a", 1.0): 30.0, ("a", 2.0): 32.0, ("b", 1.0): 34.0, ("b", 2.0): 36.0, ("c", 1.0): 26.0, ("c", 2.0): 28.0}
    scores = [bench.Score("m", "gaussian", level, image, value, 0.5, 1.0) for (image, level), value in psnr.items()]
    assert bench.per_image(scores, "m") == {"a": (31.0, 0.5), "b": (35.0, 0.5), "c": (27.0, 0.5)}
    assert bench.standard_error([31.0, 35.0, 27.0]) == pytest.approx(4.0 / 3**0.5)
    assert bench.standard_error([31.0]) == 0.0


def test_zero_shot_methods_join_the_grid(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(zeroshot, "ZS_N2N_PRESET", dataclasses.replace(zeroshot.ZS_N2N_PRESET, iters=20))
    report = tmp_path / "z.json"
    args = ["bench", "--quick", "--models", "noisy", "--zeroshot", "zs-n2n", "--json", str(report)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = json.loads(report.read_text())
    assert {r["model"] for r in rows} == {"noisy", "zs-n2n"}
    assert all(r["seconds"] > 0 for r in rows if r["model"] == "zs-n2n")


def test_grey_references_make_a_grey_zero_shot_grid() -> None:
    references = bench.load_references(None, grey=True)
    colour = bench.load_references(None)
    assert set(references) == set(colour) and all(r.shape[-1] == 1 for r in references.values())
    name = next(iter(colour))
    assert references[name][..., 0] == pytest.approx(colour[name].mean(axis=-1))
    kinds = {kind for kind, _ in bench.parse_grid(bench.ZEROSHOT_GRID)}
    assert kinds == {"photon", "gaussian", "speckle", "correlated"}


def test_the_grey_grid_passes_through_16_bits() -> None:
    clean = np.linspace(0.0, 1.0, 32 * 32, dtype=np.float32).reshape(32, 32, 1)
    (score,) = list(bench.quality_scores([bench.NOISY], [("photon", 10.0)], {"ramp": clean}))
    noisy = bench.noisy_input(clean, "ramp", "photon", 10.0, 0)
    stored = bench.as_16_bit(noisy)
    assert stored.min() >= 0 and stored.max() <= 1 and np.allclose(stored * 65535, np.round(stored * 65535))
    assert score.psnr == pytest.approx(metrics.psnr(stored, clean))


def test_speed_puts_installed_peers_beside_the_cards_with_ratios(tiny_card, tmp_path: Path) -> None:
    pytest.importorskip("pyoidn")
    report = tmp_path / "speed.json"
    args = ["bench", "--speed", "--peers", "--models", str(tiny_card.path), "--sizes", "64", "--runs", "1",
            "--device", "cpu", "--json", str(report)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = {r["model"]: r for r in json.loads(report.read_text())}
    assert list(rows) == [str(tiny_card.path), *peers.available()]  # BM3D too where it is installed
    card, oidn = rows[str(tiny_card.path)], rows["oidn"]
    assert oidn["vs_oidn"] == 1.0 and card["vs_oidn"] == pytest.approx(card["mp_per_s"] / oidn["mp_per_s"])


def test_speed_ratios_compare_rows_of_the_same_size() -> None:
    def row(model: str, size: str, rate: float) -> bench.Speed:
        return bench.Speed(model, size, 1.0, rate, (rate, rate), 1.0, 0, 0, "cpu", "fp32", "-", 0, 1, 1)

    rows = [row("a", "64x64", 1.0), row("oidn", "64x64", 4.0), row("a", "128x128", 2.0)]
    assert bench.speed_ratios(rows, "oidn") == [0.25, 1.0, None]


def test_a_study_adds_zero_shot_methods_and_their_grid() -> None:
    quick = bench.Study.make(["noisy"], ["fast", "zs-n2n"], quick=True)
    assert quick.models == ["noisy", "mpi-fast", "zs-n2n"] and len(quick.references) == 1
    assert quick.grid == [("gaussian", 15.0), ("poisson", 2.0)]
    assert all(r.shape[:2] == (96, 96) for r in quick.references.values())
    assert bench.Study.make(["noisy"], ["fast"]).grid == bench.parse_grid(bench.ZEROSHOT_GRID)
    assert bench.Study.make(["noisy"]).grid == bench.default_grid()


def test_a_wide_table_is_split_into_tables_that_fit_and_no_cell_is_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    from mdn.cli import display

    names = [f"card-with-a-long-name-{i}" for i in range(9)]
    scores = [bench.Score(name, "gaussian", 15.0, "astronaut", 30 + i / 7, 0.9, 0.1) for i, name in enumerate(names)]
    for width in (80, 1000):
        text = io.StringIO()
        monkeypatch.setattr(display, "out", Console(file=text, width=width, highlight=False))
        display.print_quality(scores, names)
        lines = text.getvalue().splitlines()
        assert "…" not in text.getvalue() and max(map(len, lines)) <= width
        assert all(name in text.getvalue() for name in names)
        tables = sum("┃ noise" in line for line in lines)
        assert tables == 1 if width == 1000 else tables > 1
        assert "31.14 / 0.900" in text.getvalue()


def test_speed_sizes_are_squares_or_width_by_height() -> None:
    assert bench.parse_sizes("1024, 6000x4000") == [(1024, 1024), (4000, 6000)]
    for wrong in ("big", "0", "-64", "64x", "64x0"):
        with pytest.raises(MdnError, match=f"not a size: '{wrong}'"):
            bench.parse_sizes(f"64,{wrong}")
    for wrong in ("gaussian:abc", "gaussian:15:25", "gaussian:15,,25"):
        with pytest.raises(MdnError, match=f"--noise '{wrong}': levels are numbers"):
            bench.parse_grid(f"poisson;{wrong}")
    result = runner.invoke(app, ["bench", "--speed", "--sizes", "64", "--runs", "0"])
    assert result.exit_code == 2 and "--runs must be 1 or more" in result.output


def test_references_too_small_or_options_of_the_other_bench_are_refused(tmp_path: Path) -> None:
    (tmp_path / "refs").mkdir()
    tiny = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    (tmp_path / "refs" / "tiny.png").write_bytes(imagecodecs.png_encode(tiny))
    result = runner.invoke(app, ["bench", str(tmp_path / "refs"), "--models", "noisy", "--noise", "gaussian:15"])
    assert result.exit_code == 2 and "tiny.png: is 8x8: too small to score" in result.output
    speed = runner.invoke(app, ["bench", "--speed", "--plot", str(tmp_path / "p.png"), "--noise", "gaussian:15"])
    assert speed.exit_code == 2 and "--plot, --noise: for the quality bench, not --speed" in speed.output
    quality = runner.invoke(app, ["bench", "--sizes", "64", "--peers"])
    assert quality.exit_code == 2 and "--peers, --sizes: for --speed, not the quality bench" in quality.output


def _picture(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(imagecodecs.png_encode(pixels.astype(np.uint8)))
    return path


def _scene(folder: Path, reference: bool = True, spps: tuple[int, ...] = (4,), size: int = 24) -> Path:
    """A render set's scene folder as `renders.dataset` writes it: a reference (24x24) and noisy renders."""
    from mdn.renders import dataset
    from mdn.renders.backend import Buffers

    def buffers(side: int, sigma: float) -> Buffers:
        beauty = np.linspace(0, 1, side * side * 3, dtype=np.float32).reshape(side, side, 3)
        beauty += np.random.default_rng(0).normal(0, sigma, beauty.shape).astype(np.float32)
        return Buffers(beauty, np.full_like(beauty, 0.5), np.zeros_like(beauty))

    folder.mkdir(parents=True)
    if reference:
        dataset.write_buffers(folder / dataset.REFERENCE, buffers(24, 0.0))
    for spp in spps:
        dataset.write_buffers(folder / dataset.noisy_name(spp), buffers(size, 0.1))
    return folder


def test_a_render_set_the_bench_cannot_score_is_refused_in_one_line_before_any_work(tmp_path: Path) -> None:
    _scene(tmp_path / "good" / "scene-000000", spps=(4, 16))
    _scene(tmp_path / "no-ref" / "scene-000000", reference=False)
    _scene(tmp_path / "no-renders" / "scene-000000", spps=())
    _scene(tmp_path / "only-4" / "scene-000000")
    _scene(tmp_path / "only-4" / "scene-000001", spps=(1, 4))
    _scene(tmp_path / "sizes" / "scene-000000", spps=(16,), size=20)
    reports = [tmp_path / "r.csv", tmp_path / "r.json", tmp_path / "r.png"]
    options = ["--csv", str(reports[0]), "--json", str(reports[1]), "--plot", str(reports[2])]
    wanted = {
        "missing": "missing: no such folder",
        "no-ref": "scene-000000: an incomplete scene: no reference.exr",
        "no-renders": "scene-000000: an incomplete scene: no low-sample render",
        "only-4": "only-4: no renders at 16, 64 spp (its scenes hold 1, 4)",
        "sizes": "spp-0016.exr: is 20x20 but its reference is 24x24",
    }
    for name, message in wanted.items():
        args = ["bench", str(tmp_path / "ref.png"), "--models", "noisy", "--render-set", str(tmp_path / name)]
        _picture(tmp_path / "ref.png", np.full((24, 24, 3), 100))
        result = runner.invoke(app, [*args, "--noise", "gaussian:15", "--quiet", *options])
        assert result.exit_code == 2 and message in result.output, (name, result.output)
        assert len(result.output.strip().splitlines()) == 1 and not any(path.exists() for path in reports)
    scores = list(bench.render_scores(["noisy", "noisy"], (4, 16, 64), render_set=tmp_path / "good"))  # once each
    assert [(s.image, s.level) for s in scores] == [("scene-000000", 4), ("scene-000000", 16)]
    assert scores[1].psnr > scores[0].psnr - 1 and all(np.isfinite(s.psnr) for s in scores)


def test_an_exact_restoration_scores_the_psnr_cap_and_every_mean_stays_finite(tmp_path: Path) -> None:
    """A noise too light to change an 8-bit picture leaves `noisy` exact: 100 dB, not inf (and inf ± nan)."""
    _picture(tmp_path / "refs" / "flat.png", np.full((32, 32, 3), 100))
    _picture(tmp_path / "refs" / "ramp.png", np.linspace(0, 255, 32 * 32 * 3).reshape(32, 32, 3))
    md, csv = tmp_path / "b.md", tmp_path / "b.csv"
    args = ["bench", str(tmp_path / "refs"), "--models", "noisy", "--noise", "gaussian:0.1,25"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = runner.invoke(app, [*args, "--markdown", str(md), "--csv", str(csv)])
    assert result.exit_code == 0, result.output
    psnrs = {(row["level"], row["image"]): float(row["psnr"]) for row in _csv_rows(csv)}
    assert psnrs["0.1", "flat"] == psnrs["0.1", "ramp"] == metrics.PSNR_MAX == 100.0
    assert 20 < psnrs["25.0", "ramp"] < 30 and "100.00 / 1.000" in result.output
    assert "inf" not in md.read_text() + result.output and "nan" not in md.read_text()
    mean = (psnrs["25.0", "flat"] + psnrs["25.0", "ramp"] + 200) / 4  # each image's over both levels, then over both
    assert f"| noisy | {mean:.2f} ± " in md.read_text()


def _csv_rows(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_zero_shot_methods_are_taken_as_typed_or_as_the_bench_prints_them() -> None:
    assert [bench.grid.zeroshot_name(m) for m in ("fast", "mpi-fast", " FAST", "zs-n2n", "ZS-N2N")] == [
        "mpi-fast", "mpi-fast", "mpi-fast", "zs-n2n", "zs-n2n"
    ]  # fmt: skip
    known = r"\(full, fast, real, microscopy, zs-n2n\)"
    for typed, hint in (("fastt", "; did you mean fast\\?"), ("mpi-fastt", "; did you mean fast\\?"),
                        ("zs_n2n", "; did you mean zs-n2n\\?"), ("bm3d", "$")):  # fmt: skip
        with pytest.raises(MdnError, match=f"^unknown zero-shot method '{typed}' {known}{hint}"):
            bench.grid.zeroshot_name(typed)
    study = bench.Study.make(["noisy"], ["mpi-fast", "fast", "zs-n2n"], quick=True)
    assert study.models == ["noisy", "mpi-fast", "zs-n2n"]
    result = runner.invoke(app, ["bench", "--quick", "--models", "noisy", "--zeroshot", "fastt"])
    assert result.exit_code == 2 and "unknown zero-shot method 'fastt'" in result.output and "mpi-" not in result.output


def test_speed_rows_hold_their_spread_as_two_numbers_and_exact_megapixels(tiny_card, tmp_path: Path) -> None:
    csv, report = tmp_path / "s.csv", tmp_path / "s.json"
    args = ["bench", "--speed", "--models", f"{tiny_card.path},{tiny_card.path}", "--sizes", "64,100x50,64",
            "--runs", "2", "--device", "cpu", "--csv", str(csv), "--json", str(report)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows, cells = json.loads(report.read_text()), _csv_rows(csv)
    assert [(r["size"], r["megapixels"]) for r in rows] == [("64x64", 0.004096), ("100x50", 0.005)]
    assert [float(c["megapixels"]) for c in cells] == [0.004096, 0.005] and "spread" not in cells[0]
    for row, cell in zip(rows, cells, strict=True):
        assert row["spread_low"] <= row["mp_per_s"] <= row["spread_high"] and "spread" not in row
        assert float(cell["spread_low"]) == row["spread_low"] and float(cell["spread_high"]) == row["spread_high"]
    train = bench.train_speed("tiny", False, batch=1, crop=32, device="cpu", windows=1, steps=1).to_json()
    assert train["spread_low"] == train["spread_high"] == train["it_per_s"] and "spread" not in train


def test_a_model_named_twice_is_benched_once_everywhere(tmp_path: Path) -> None:
    reference = _picture(tmp_path / "ref.png", np.linspace(0, 255, 32 * 32 * 3).reshape(32, 32, 3))
    md, csv = tmp_path / "b.md", tmp_path / "b.csv"
    args = ["bench", str(reference), "--models", "noisy,noisy", "--noise", "gaussian:15"]
    result = runner.invoke(app, [*args, "--markdown", str(md), "--csv", str(csv)])
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if "┃ noise" in line)
    assert header.count("noisy") == 1 and len(_csv_rows(csv)) == 1
    assert md.read_text().count("| noisy |") == 1
    assert bench.Study.make(["noisy", "noisy"], ["fast", "mpi-fast"], quick=True).models == ["noisy", "mpi-fast"]
    seen: list[tuple[int, int]] = []
    clean = bench.load_references([str(reference)])
    scores = list(
        bench.quality_scores(["noisy", "noisy"], [("gaussian", 15.0)], clean, progress=lambda *p: seen.append(p))
    )
    assert len(scores) == 1 and seen == [(0, 1), (1, 1)]


def test_an_option_naming_nothing_is_a_usage_error(tmp_path: Path) -> None:
    reference = _picture(tmp_path / "ref.png", np.full((24, 24, 3), 100))
    cases = {
        ("--noise", ""): "--noise '' names no noise",
        ("--noise", " ; "): "--noise ' ; ' names no noise",
        ("--models", " , "): "--models ' , ' names nothing",
        ("--zeroshot", ""): "--zeroshot '' names nothing",
    }
    for (option, value), message in cases.items():
        defaults = {"--models": "noisy", "--noise": "gaussian:15", option: value}
        result = runner.invoke(app, ["bench", str(reference), *(x for item in defaults.items() for x in item)])
        assert result.exit_code == 2 and message in result.output, (option, value, result.output)
    speed = runner.invoke(app, ["bench", "--speed", "--noise", ""])
    assert speed.exit_code == 2 and "--noise: for the quality bench, not --speed" in speed.output


def test_no_rows_still_write_both_reports(tmp_path: Path) -> None:
    from mdn.cli import display

    display.write_rows([], tmp_path / "r.csv", tmp_path / "r.json")
    assert (tmp_path / "r.csv").read_text() == "" and json.loads((tmp_path / "r.json").read_text()) == []


def test_a_render_set_lists_only_complete_scenes(tmp_path: Path) -> None:
    from mdn.renders import dataset

    _scene(tmp_path / "set" / "scene-000000")
    (tmp_path / "set" / ".scene-000001.tmp").mkdir()  # a scene still rendering is not one yet
    assert [p.name for p in dataset.scenes(tmp_path / "set")] == ["scene-000000"]
    counts = dataset.sample_counts(tmp_path / "set" / "scene-000000")
    (tmp_path / "set" / "scene-000000" / "spp-old.exr").write_bytes(b"a user's file")  # int('old') crashed
    assert dataset.sample_counts(tmp_path / "set" / "scene-000000") == counts and counts
    _scene(tmp_path / "set" / "scene-000002", reference=False)
    with pytest.raises(MdnError, match=r"scene-000002: an incomplete scene: no reference\.exr"):
        dataset.scenes(tmp_path / "set")


def _one_line_usage_error(result, message: str) -> None:
    """A usage error: exit status 2 and one line holding `message`."""
    assert result.exit_code == 2 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_aux_names_need_a_render_set_and_are_refused_before_the_photo_grid(tmp_path: Path, monkeypatch) -> None:
    reference = _picture(tmp_path / "ref.png", np.full((24, 24, 3), 100))
    scored: list[str] = []
    monkeypatch.setattr(bench.grid, "denoisers", lambda names, *a: scored.append(names) or {})
    args = ["bench", str(reference), "--noise", "gaussian:15", "--csv", str(tmp_path / "r.csv")]
    for models in ("unet-render+aux", "noisy,oidn+aux"):
        result = runner.invoke(app, [*args, "--models", models])
        _one_line_usage_error(result, "+aux need a render's albedo and normal: give --render-set")
    _scene(tmp_path / "set" / "scene-000000")
    result = runner.invoke(app, [*args, "--models", "noisy,noisy+aux", "--render-set", str(tmp_path / "set")])
    _one_line_usage_error(result, "--models noisy+aux: only OIDN and cards take a render's albedo and normal")
    assert not scored and not (tmp_path / "r.csv").exists()


def test_a_model_not_scored_on_a_noise_leaves_its_cells_blank(monkeypatch: pytest.MonkeyPatch) -> None:
    """`CARD+aux` runs on a render set's renders alone: the photo rows leave its cells, and its means, blank."""
    import io

    from rich.console import Console

    from mdn.cli import display

    cases = [("noisy", "gaussian", 20.0), ("noisy", "render", 24.0), ("oidn", "gaussian", 30.0),
             ("oidn", "render", 38.0), ("oidn+aux", "render", 37.0)]  # fmt: skip
    scores = [bench.Score(model, kind, 4.0, kind, psnr, 0.5, 0.1) for model, kind, psnr in cases]
    text = io.StringIO()
    monkeypatch.setattr(display, "out", Console(file=text, width=200, highlight=False))
    display.print_quality(scores, ["noisy", "oidn", "oidn+aux"])
    rows = [line.split("│")[1:-1] for line in text.getvalue().splitlines() if "│" in line]
    assert [cell.strip() for cell in rows[0]] == ["gaussian", "4", "20.00 / 0.500", "30.00 / 0.500", ""]
    table = bench.markdown(scores).splitlines()
    assert table[4] == "| oidn+aux |  | 37.00 / 0.500 |  | +13.00 |"
    assert table[-1] == "| oidn+aux |  | -1.00 |  |"


def test_two_reports_in_one_file_are_refused_before_the_bench(tmp_path: Path) -> None:
    reference = _picture(tmp_path / "ref.png", np.full((24, 24, 3), 100))
    args = ["bench", str(reference), "--models", "noisy", "--noise", "gaussian:15"]
    cases = {("--json", "--csv"): "s.txt", ("--markdown", "--plot"): "p.png", ("--csv", "--markdown"): "sub/../t.md"}
    for (first, second), name in cases.items():
        result = runner.invoke(app, [*args, first, str(tmp_path / name), second, str(tmp_path / name)])
        _one_line_usage_error(result, "name the same file: give each its own")
        assert first in result.output and second in result.output
    assert not any((tmp_path / name).exists() for name in ("s.txt", "p.png", "t.md"))


def test_a_report_over_a_benched_card_is_refused(tiny_card, tmp_path: Path, _isolated_user_folders: Path) -> None:
    import shutil

    reference = _picture(tmp_path / "ref.png", np.full((24, 24, 3), 100))
    card, weights = Path(tiny_card.path), tiny_card.weights_path
    before = card.read_bytes()
    args = ["bench", str(reference), "--noise", "gaussian:15"]
    for models, report in ((f"noisy,{card}", card), (f"{card}+fast", weights)):
        result = runner.invoke(app, [*args, "--models", models, "--json", str(report)])
        _one_line_usage_error(result, "is an input or a result of this command; refusing to write a report over it")
    speed = runner.invoke(app, ["bench", "--speed", "--models", str(card), "--csv", str(card)])
    _one_line_usage_error(speed, "is an input or a result of this command")
    for source in (card, weights):  # an installed card, named by its name
        shutil.copy(source, _isolated_user_folders / source.name)
    installed = _isolated_user_folders / card.name
    result = runner.invoke(app, [*args, "--models", tiny_card.name, "--json", str(installed)])
    _one_line_usage_error(result, "is an input or a result of this command")
    assert card.read_bytes() == before == installed.read_bytes()


def test_a_noise_level_given_twice_is_measured_once() -> None:
    grid = bench.parse_grid("gaussian:15,15.0;poisson:2;gaussian:15")
    assert grid == [("gaussian", 15.0), ("poisson", 2.0)]


def test_the_noisy_input_cache_is_written_whole_or_not_at_all(tmp_path: Path, monkeypatch) -> None:
    """A run killed while it writes a noisy input leaves no cache file (or, from an older mdn, one cut short,
    which is made again)."""
    clean = np.linspace(0, 1, 32 * 32 * 3, dtype=np.float32).reshape(32, 32, 3)
    noisy = bench.noisy_input(clean, "ramp", "gaussian", 15.0, 0)
    (cached,) = _bench_cache().glob("*.npy")
    size = cached.stat().st_size
    for cut in (128, 0):
        with cached.open("r+b") as file:
            file.truncate(cut)
        assert np.array_equal(bench.noisy_input(clean, "ramp", "gaussian", 15.0, 0), noisy)
        assert cached.stat().st_size == size
    cached.unlink()

    def killed(path: Path, array: np.ndarray) -> None:
        Path(path).write_bytes(b"\x93NUMPY")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        bench.noisy_input(clean, "ramp", "gaussian", 15.0, 0)
    assert list(_bench_cache().iterdir()) == []


def _bench_cache() -> Path:
    """The bench's noisy-input cache folder (under the test's own XDG_CACHE_HOME)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("mdn")) / "bench"


@pytest.mark.parametrize("failure", [MemoryError(), TooLarge("out of memory even with 64px tiles")])
def test_a_size_out_of_memory_is_one_error_line_after_the_rows_measured(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, failure: Exception
) -> None:
    """A size out of memory was a traceback; then one line that threw away the sizes measured before it; the
    engine's own (its tiles halved to their least) had been an error without the rows."""
    measured = SPEED.speed

    def no_memory_past_64(model: str, size: tuple[int, int], *args, **kwargs) -> object:
        if max(size) > 64:
            raise failure
        return measured(model, size, *args, **kwargs)

    monkeypatch.setattr(SPEED, "speed", no_memory_past_64)
    args = ["bench", "--speed", "--models", "unet", "--sizes", "64,900x600", "--runs", "1", "-q"]
    result = runner.invoke(app, [*args, "--json", str(tmp_path / "speed.json")])
    assert result.exit_code == 1, result.output  # as mdn denoise fails a file out of memory
    assert result.output.strip() == "error: --sizes 900x600: out of memory timing unet"
    assert [row["size"] for row in json.loads((tmp_path / "speed.json").read_text())] == ["64x64"]


def test_a_reference_outside_0_1_is_refused_not_clipped(tmp_path: Path) -> None:
    import tifffile

    ramp = np.linspace(0, 1, 32 * 32 * 3, dtype=np.float32).reshape(32, 32, 3)
    tifffile.imwrite(tmp_path / "hdr.tif", ramp * 4, photometric="rgb")
    tifffile.imwrite(tmp_path / "ldr.tif", ramp, photometric="rgb")
    args = ["bench", "--models", "noisy", "--noise", "gaussian:25"]
    result = runner.invoke(app, [*args, str(tmp_path / "hdr.tif")])
    _one_line_usage_error(result, "hdr.tif: holds values from 0 to 4: the bench scores pictures in [0, 1]")
    assert runner.invoke(app, [*args, str(tmp_path / "ldr.tif")]).exit_code == 0


def test_every_plane_of_a_stack_is_a_reference(tmp_path: Path) -> None:
    """A microscope's z-stack is scored plane by plane (NAME[z]), not by its first plane alone."""
    import tifffile

    planes = np.random.default_rng(0).integers(0, 256, (3, 32, 32), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "stack.tif", planes, photometric="minisblack")
    references = bench.load_references([str(tmp_path / "stack.tif")], grey=True)
    assert list(references) == ["stack[0]", "stack[1]", "stack[2]"]
    assert all(np.allclose(references[f"stack[{z}]"][..., 0], planes[z] / 255) for z in range(3))
    report = tmp_path / "s.json"
    args = ["bench", "--grey", str(tmp_path / "stack.tif"), "--models", "noisy", "--noise", "photon:10"]
    assert runner.invoke(app, [*args, "--json", str(report)]).exit_code == 0
    assert [row["image"] for row in json.loads(report.read_text())] == ["stack[0]", "stack[1]", "stack[2]"]


def _interrupt_on_call(number: int, function):
    """`function`, raising KeyboardInterrupt (as Ctrl-C does) on its `number`th call."""
    calls = [0]

    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] == number:
            raise KeyboardInterrupt
        return function(*args, **kwargs)

    return wrapper


def test_ctrl_c_keeps_the_scores_so_far_in_the_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C (KeyboardInterrupt, raised here by the third SSIM) stops the bench as it stops `mdn denoise`: one
    line, the reports of the scores so far, exit status 130."""
    reference = _picture(tmp_path / "ref.png", np.full((24, 24, 3), 100))
    csv, report, md = tmp_path / "r.csv", tmp_path / "r.json", tmp_path / "r.md"
    args = ["bench", str(reference), "--models", "noisy", "--noise", "gaussian:5,15,25", "--csv", str(csv),
            "--json", str(report), "--markdown", str(md)]  # fmt: skip
    monkeypatch.setattr(metrics, "ssim", _interrupt_on_call(3, metrics.ssim))
    result = runner.invoke(app, args)
    assert result.exit_code == 130, result.output
    assert f"interrupted after 2 scores: {csv}, {report}, {md} hold them (partial)" in result.output
    assert [row["level"] for row in json.loads(report.read_text())] == [5.0, 15.0] and len(_csv_rows(csv)) == 2
    assert "Partial: interrupted after 2 scores." in md.read_text()
    for path in (csv, report, md):
        path.unlink()
    monkeypatch.setattr(bench.grid, "denoisers", _interrupt_on_call(1, bench.grid.denoisers))
    result = runner.invoke(app, args)
    assert result.exit_code == 130 and "interrupted before any score; nothing written" in result.output
    assert not any(path.exists() for path in (csv, report, md))


def test_ctrl_c_keeps_the_speed_rows_so_far(tiny_card, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = tmp_path / "s.json"
    monkeypatch.setattr(SPEED, "speed", _interrupt_on_call(2, SPEED.speed))
    args = ["bench", "--speed", "--models", str(tiny_card.path), "--sizes", "32,48", "--runs", "1", "--device", "cpu"]
    result = runner.invoke(app, [*args, "--json", str(report)])
    assert result.exit_code == 130 and f"interrupted after 1 row: {report} holds it (partial)" in result.output
    assert [row["size"] for row in json.loads(report.read_text())] == ["32x32"]


def test_tables_cut_no_cell_at_any_width_and_keep_their_title_on_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the key columns and one more do not fit (a card named by a long path, a 30-column terminal), each row
    is listed as `header value` lines; a title never wraps."""
    import io

    from rich.console import Console

    from mdn.cli import display

    def printed(width: int, show) -> str:
        text = io.StringIO()
        monkeypatch.setattr(display, "out", Console(file=text, width=width, highlight=False))
        show()
        return text.getvalue()

    card = "/home/someone/cards/my-experiments-2026-11/small-baseline.json"
    row = bench.Speed(card, "64x64", 0.004, 0.19, (0.18, 0.2), 0.02, 280, 0, "cpu", "bf16 (auto)", "auto", 64, 1, 1)
    speed = printed(80, lambda: display.print_speed(bench.SpeedTable([row], None, [None])))
    assert "…" not in speed and card in speed and "0.190" in speed and "bf16 (auto)" in speed
    scores = [bench.Score("noisy", "saltpepper", 0.002, "ref", 29.86, 0.947, 0.1)]
    narrow = printed(30, lambda: display.print_quality(scores, ["noisy"]))
    assert "…" not in narrow and "29.86 / 0.947" in narrow and max(map(len, narrow.splitlines()[1:])) <= 30
    wide = printed(200, lambda: display.print_quality(scores, ["noisy"]))
    assert wide.splitlines()[0] == "PSNR (dB) / SSIM, mean over images"
    train = bench.TrainSpeed("small", True, 8, 48, 1.5, 12.0, (1.4, 1.6), "cpu", "fp32", "sdpa", False, 1)
    trained = printed(60, lambda: display.print_train_speed([train]))
    assert "…" not in trained and "1.50" in trained and "fp32" in trained


def test_train_speed_names_nothing_is_a_usage_error() -> None:
    for option, value in (("--configs", ","), ("--attention-kernel", " , ")):
        result = runner.invoke(app, ["bench", "--train-speed", option, value])
        _one_line_usage_error(result, f"{option} {value!r} names nothing")


def test_options_the_run_does_not_take_are_refused_in_one_line(tmp_path: Path) -> None:
    reference = str(_picture(tmp_path / "ref.png", np.full((24, 24, 3), 100)))
    quality = [reference, "--models", "noisy", "--noise", "gaussian:15"]
    cases = {
        (*quality, "--spp", "4"): "--spp: for renders (--renders, --render-set), not the quality bench",
        (*quality, "--spp", "16,64"): "--spp: for renders",  # its default, given
        (reference, "--noise", "none", "--renders"): "IMAGES: for the photo grid, not renders alone (--noise none)",
        ("--noise", "none", "--renders", "--quick"): "--quick: for the photo grid, not renders alone",
        ("--speed", "--train-speed"): "--speed and --train-speed: give one",
        (*quality, "--grey", "--renders"): "--grey: renders are scored in colour",
        ("--train-speed", "--models", "unet"): "--models: for the quality bench and --speed, not --train-speed",
        ("--train-speed", "--sizes", "64", "--peers"): "--peers, --sizes: for --speed, not --train-speed",
        ("--speed", "--configs", "tiny", "--crop", "32"): "--configs, --crop: for --train-speed, not --speed",
        ("--speed", reference): "IMAGES: for the photo grid, not --speed",
        (*quality, "--attention-kernel", "sdpa"): "--attention-kernel: for --speed and --train-speed, not the quality",
    }
    for args, message in cases.items():
        _one_line_usage_error(runner.invoke(app, ["bench", *args]), message)


SIGTERM_BENCH = """
import signal
from mdn.cli import bench_runs, per_file

def rows():
    yield {"model": "noisy"}
    signal.raise_signal(signal.SIGTERM)  # a batch system's time limit
    yield {"model": "unet"}

with per_file.interrupts() as stop:
    print(*bench_runs._until_interrupted(rows(), stop))
    signal.raise_signal(signal.SIGINT)  # a second: at once, as the reports are written
    print("not reached")
"""


def test_sigterm_stops_a_bench_with_the_rows_so_far_and_its_own_status() -> None:
    """A batch system's SIGTERM killed a bench outright: no partial reports, as Ctrl-C now keeps."""
    done = subprocess.run([sys.executable, "-c", SIGTERM_BENCH], capture_output=True, text=True, timeout=120)
    assert done.stdout == "[{'model': 'noisy'}] 143\n", done.stdout + done.stderr
    assert done.returncode == 130 and "interrupted again: stopped at once" in done.stderr


def test_a_reference_too_large_for_the_memory_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reference whose read ran out of memory ended the bench in a MemoryError traceback."""
    (tmp_path / "huge.png").write_bytes(imagecodecs.png_encode(np.zeros((32, 32, 3), np.uint8)))

    def out_of_memory(path: Path, layer: str | None = None) -> None:
        raise MemoryError

    monkeypatch.setattr(bench.grid.images, "read", out_of_memory)
    with pytest.raises(MdnError, match=r"huge\.png: is too large to hold in memory"):
        bench.grid.load_references([str(tmp_path / "huge.png")])


def test_noise_none_without_renders_says_to_add_them() -> None:
    """`--noise none` alone ended in 'error: --noise: for the quality bench, not ' (the bench it makes unnamed)."""
    for extra in ([], ["--quick"]):
        result = runner.invoke(app, ["bench", "--noise", "none", "--models", "noisy", *extra])
        _one_line_usage_error(result, "--noise none runs no photo grid, renders alone: add --renders or --render-set")
    with pytest.raises(MdnError, match="add --renders or --render-set"):
        bench.Study.make(["noisy"], grid="none")


def test_a_sample_count_given_twice_is_rendered_once(tmp_path: Path) -> None:
    """`--spp 4,4` scored every scene twice, where a noise level given twice is measured once."""
    assert bench.parse_spps("4,16,4") == (4, 16)
    _scene(tmp_path / "set" / "scene-000000", spps=(4, 16))
    scores = list(bench.render_scores(["noisy"], (4, 4), render_set=tmp_path / "set"))
    assert [(s.image, s.level) for s in scores] == [("scene-000000", 4)]
    csv = tmp_path / "r.csv"
    args = ["bench", "--noise", "none", "--render-set", str(tmp_path / "set"), "--spp", "16,4,16", "--models", "noisy"]
    result = runner.invoke(app, [*args, "--csv", str(csv), "-q"])
    assert result.exit_code == 0, result.output
    assert [row["level"] for row in _csv_rows(csv)] == ["4", "16"]


def test_a_folder_of_grey_pictures_is_benched_as_grey_and_a_mixed_one_warned(tmp_path: Path) -> None:
    """Grey files without --grey were made RGB with noise drawn per channel (colour noise, 2 dB off the grey
    scores), without a word."""
    ramp = np.linspace(0, 255, 32 * 32).reshape(32, 32)
    _picture(tmp_path / "grey" / "a.png", ramp)
    _picture(tmp_path / "grey" / "b.png", ramp[::-1].copy())
    args = ["bench", str(tmp_path / "grey"), "--models", "noisy", "--noise", "gaussian:25"]
    plain = runner.invoke(app, [*args, "--json", str(tmp_path / "plain.json")])
    assert plain.exit_code == 0 and "note: all 2 references are grey: benched as grey pictures" in plain.output
    assert runner.invoke(app, [*args, "--grey", "--json", str(tmp_path / "grey.json")]).exit_code == 0
    scored = [[(r["image"], r["psnr"], r["ssim"]) for r in json.loads((tmp_path / f"{name}.json").read_text())]
              for name in ("plain", "grey")]  # fmt: skip
    assert scored[0] == scored[1] and len(scored[0]) == 2
    assert runner.invoke(app, [*args, "-q"]).output == ""  # --quiet: no note
    _picture(tmp_path / "grey" / "c.png", np.stack([ramp, ramp[::-1], ramp], axis=-1))
    mixed = runner.invoke(app, [*args, "-q"])
    assert mixed.exit_code == 0 and mixed.output.startswith(
        "warning: 2 of 3 references are grey (a, b): scored in colour"
    )
    assert "--grey" in mixed.output.splitlines()[0] and len(mixed.output.strip().splitlines()) == 1
    study = bench.Study.make(["noisy"], sources=[str(tmp_path / "grey")], grid="gaussian:25")
    assert all(r.shape[-1] == 3 for r in study.references.values()) and study.notes[0].warning
    assert not bench.Study.make(["noisy"], sources=[str(tmp_path / "grey")], grid="gaussian:25", grey=True).notes
    _picture(tmp_path / "stored-rgb" / "d.png", np.stack([ramp] * 3, axis=-1))  # grey in three equal channels
    study = bench.Study.make(["noisy"], sources=[str(tmp_path / "stored-rgb")], grid="gaussian:25")
    assert [r.shape[-1] for r in study.references.values()] == [1] and not study.notes[0].warning


@pytest.mark.parametrize(
    ("models", "message"),
    [("noisy+fast", "--models noisy+fast: noisy takes no variant (+fast is for cards: CARD+fast)"),
     ("bm3d+no-detail", "bm3d takes no variant"), ("mpi-fast+high", "mpi-fast takes no variant"),
     ("zs-n2n+strength-auto", "zs-n2n takes no variant"),
     ("fill-grey", "--models fill-grey: a fill card, for zero-shot denoising, which the bench runs through "
                   "--zeroshot (presets real, microscopy on colour pictures; every preset on grey ones)"),
     ("fill-syn", "runs through --zeroshot (presets full, fast on colour pictures), not --models")],
)  # fmt: skip
def test_a_model_the_bench_runs_another_way_is_told_how(tmp_path: Path, models: str, message: str) -> None:
    """`noisy+fast` was 'unknown model noisy'; a fill card was told that mdn denoise takes denoise cards."""
    reference = _picture(tmp_path / "ref.png", np.full((24, 24, 3), (100, 120, 90)))
    result = runner.invoke(app, ["bench", str(reference), "--noise", "gaussian:15", "--models", models])
    _one_line_usage_error(result, message)
    assert "unknown model" not in result.output and "mdn denoise" not in result.output


def test_peers_asked_for_but_not_installed_are_named(tiny_card, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--speed --peers` with no peer installed timed the cards alone without a word."""
    monkeypatch.setattr(peers, "available", lambda: [])
    args = ["bench", "--speed", "--peers", "--models", str(tiny_card.path), "--sizes", "32", "--runs", "1"]
    result = runner.invoke(app, [*args, "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    assert result.output == "warning: --peers: bm3d, oidn are not installed, no peer timed (pip install bm3d pyoidn)\n"
    monkeypatch.setattr(peers, "available", lambda: ["oidn"])
    rows = bench.speed_rows([str(tiny_card.path)], [(32, 32)], 1, with_peers=True)
    assert rows.notes == (bench.Note("--peers: bm3d is not installed, not timed (pip install bm3d)"),)
    assert not bench.speed_rows([str(tiny_card.path)], [(32, 32)], 1).notes
