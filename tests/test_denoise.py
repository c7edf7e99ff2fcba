"""`mdn denoise` end to end on the kinds of files people bring, with a small random card."""

from __future__ import annotations

import json
from pathlib import Path

import imagecodecs
import imageio.v3 as iio
import numpy as np
import OpenEXR
import tifffile
from skimage import data
from typer.testing import CliRunner

from mdn.cli import app

runner = CliRunner()


def _denoise(*args) -> object:
    return runner.invoke(app, ["denoise", *map(str, args), "--tile", "64", "--quiet"])


def test_png_rgba_keeps_alpha_and_bit_depth(tmp_path: Path, tiny_card) -> None:
    rgba = np.dstack([data.astronaut()[:70, :90], np.linspace(0, 255, 90, dtype=np.uint8)[None].repeat(70, 0)])
    (tmp_path / "a.png").write_bytes(imagecodecs.png_encode(rgba))
    result = _denoise(tmp_path / "a.png", "--model", tiny_card.path)
    assert result.exit_code == 0, result.output
    out = imagecodecs.png_decode((tmp_path / "a_denoised.png").read_bytes())
    assert out.shape == rgba.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])
    assert not np.array_equal(out[..., :3], rgba[..., :3])


def test_jpeg_in_jpeg_out(tmp_path: Path, tiny_card) -> None:
    iio.imwrite(tmp_path / "p.jpg", data.astronaut()[:64, :80], extension=".jpg")
    assert _denoise(tmp_path / "p.jpg", "-o", tmp_path / "q.jpg", "--model", tiny_card.path).exit_code == 0
    assert iio.imread(tmp_path / "q.jpg").shape == (64, 80, 3)


def test_16_bit_grey_tiff_stack_keeps_depth_and_metadata(tmp_path: Path, tiny_card) -> None:
    rng = np.random.default_rng(0)
    stack = (rng.random((3, 40, 50)) * 3000 + 500).astype(np.uint16)
    tifffile.imwrite(tmp_path / "cells.tif", stack, imagej=True, metadata={"axes": "ZYX", "spacing": 0.4})
    result = _denoise(tmp_path / "cells.tif", "-o", tmp_path / "out.tif", "--model", tiny_card.path)
    assert result.exit_code == 0, result.output
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        out = tif.asarray()
        assert tif.series[0].axes == "ZYX" and tif.imagej_metadata["spacing"] == 0.4
    assert out.dtype == np.uint16 and out.shape == stack.shape
    assert stack.min() - 200 <= out.mean() <= stack.max() + 200


def test_half_exr_with_nan_gives_finite_half_exr_and_keeps_other_layers(tmp_path: Path, tiny_card) -> None:
    rng = np.random.default_rng(1)
    channels = {c: (rng.random((48, 56)) * 4).astype(np.float16) for c in "RGB"}
    channels["R"][5, 5] = np.nan
    channels["G"][9, 9] = np.inf
    channels["albedo.R"] = rng.random((48, 56)).astype(np.float32)
    OpenEXR.File({"compression": OpenEXR.PIZ_COMPRESSION}, dict(channels)).write(str(tmp_path / "r.exr"))
    result = runner.invoke(app, ["denoise", str(tmp_path / "r.exr"), "--tile", "64", "--model", str(tiny_card.path)])
    assert result.exit_code == 0, result.output
    assert "2 NaN/Inf values replaced" in result.output
    out = OpenEXR.File(str(tmp_path / "r_denoised.exr"), separate_channels=True)
    pixels = {name: ch.pixels for name, ch in out.channels().items()}
    assert pixels["R"].dtype == np.float16 and all(np.isfinite(pixels[c]).all() for c in "RGB")
    np.testing.assert_array_equal(pixels["albedo.R"], channels["albedo.R"])
    assert out.header()["compression"] == OpenEXR.PIZ_COMPRESSION


def test_directory_with_corrupt_file_summarises_and_reports(tmp_path: Path, tiny_card) -> None:
    folder = tmp_path / "shoot"
    folder.mkdir()
    for i in range(2):
        (folder / f"img{i}.png").write_bytes(imagecodecs.png_encode(data.astronaut()[: 40 + i, :48]))
    (folder / "bad.tif").write_bytes(b"II*\x00truncated")
    report = tmp_path / "report.json"
    args = ["denoise", str(folder), "-o", str(tmp_path / "out"), "--model", str(tiny_card.path), "--json", str(report),
            "--device", "cpu"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "bad.tif" in result.output and "2 done, 1 failed" in result.output
    files = {Path(f["input"]).name: f for f in json.loads(report.read_text())["files"]}
    assert files["img0.png"]["info"]["model"] == "tiny" and files["img0.png"]["info"]["device"] == "cpu"
    assert files["img1.png"]["info"]["tiles"] >= 1 and files["bad.tif"]["status"] == "failed"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img0.png", "img1.png"]


def test_same_seed_same_bytes(tmp_path: Path, tiny_card) -> None:
    (tmp_path / "a.png").write_bytes(imagecodecs.png_encode(data.astronaut()[:64, :64]))
    for name in ("x.png", "y.png"):
        _denoise(tmp_path / "a.png", "-o", tmp_path / name, "--model", tiny_card.path, "--seed", "7")
    assert (tmp_path / "x.png").read_bytes() == (tmp_path / "y.png").read_bytes()


def test_card_inference_settings_are_defaults_that_options_override(tmp_path: Path, tiny_card) -> None:
    """A card that asks for input-masked passes gets them; --passes 1 --input-mask 0 gives the plain run."""
    (tmp_path / "a.png").write_bytes(imagecodecs.png_encode(data.astronaut()[:64, :64]))
    masked = tmp_path / "masked.json"
    masked.write_text(json.dumps({**json.loads(tiny_card.path.read_text()), "inference": {"input_mask": 0.8}}))
    (tmp_path / tiny_card.weights).write_bytes(tiny_card.weights_path.read_bytes())
    outputs = {}
    for name, card, extra in (("plain", tiny_card.path, []), ("masked", masked, []),
                              ("overridden", masked, ["--input-mask", "0"])):  # fmt: skip
        _denoise(tmp_path / "a.png", "-o", tmp_path / f"{name}.png", "--model", card, *extra)
        outputs[name] = (tmp_path / f"{name}.png").read_bytes()
    assert outputs["plain"] != outputs["masked"] and outputs["plain"] == outputs["overridden"]
    result = runner.invoke(app, ["denoise", str(tmp_path / "a.png"), "--model", str(masked), "--input-mask", "1"])
    assert result.exit_code == 2 and "--input-mask must be in [0, 1)" in result.output


def test_unknown_model_is_a_usage_error_with_suggestion(tmp_path: Path, tiny_card) -> None:
    (tmp_path / "a.png").write_bytes(imagecodecs.png_encode(data.astronaut()[:16, :16]))
    result = runner.invoke(app, ["denoise", str(tmp_path / "a.png"), "--model", "small-maskd"])
    assert result.exit_code == 2 and "unknown model 'small-maskd'" in result.output


def test_models_lists_and_shows_cards(tiny_card) -> None:
    result = runner.invoke(app, ["models", "show", str(tiny_card.path), "--json"])
    assert result.exit_code == 0 and '"architecture": "masked-swinir"' in result.output
    assert runner.invoke(app, ["models"]).exit_code == 0


def test_renders_take_the_render_default_unless_a_model_is_named(tmp_path: Path, tiny_card) -> None:
    from mdn import registry

    card = registry.ModelCard.from_file(tiny_card.path)
    card.name, card.default_hdr = "render-tiny", True
    registry.save(registry.load(card), card, registry.user_dir())
    folder = tmp_path / "shots"
    folder.mkdir()
    (folder / "photo.png").write_bytes(imagecodecs.png_encode(data.astronaut()[:48, :48]))
    rng = np.random.default_rng(2)
    OpenEXR.File({}, {c: (rng.random((48, 48)) * 4).astype(np.float32) for c in "RGB"}).write(str(folder / "r.exr"))

    def models(*extra: str) -> dict[str, str]:
        report = tmp_path / "report.json"
        result = runner.invoke(app, ["denoise", str(folder), "-o", str(tmp_path / "out"), "--json", str(report),
                                     "--overwrite", "--quiet", *extra])  # fmt: skip
        assert result.exit_code == 0, result.output
        return {Path(f["input"]).name: f["info"]["model"] for f in json.loads(report.read_text())["files"]}

    assert models() == {"photo.png": registry.default_card().name, "r.exr": "render-tiny"}
    assert models("--model", str(tiny_card.path)) == {"photo.png": "tiny", "r.exr": "tiny"}


def _two_photos(tmp_path: Path) -> list[str]:
    for name, photo in (("a.png", data.astronaut()[:64, :64]), ("b.png", data.coffee()[:64, :64])):
        (tmp_path / name).write_bytes(imagecodecs.png_encode(photo))
    return [str(tmp_path / "a.png"), str(tmp_path / "b.png")]


def test_a_quality_no_detail_stage_runs_is_warned_of_once_and_not_reported(tmp_path: Path, tiny_card) -> None:
    """--quality sets what follows the detail stage: on a card without one it was ignored in silence, and the
    report said it was used; --no-wiener (--quality fast) with --quality high ran as fast."""
    report = tmp_path / "report.json"
    base = ["denoise", *_two_photos(tmp_path), "-o", str(tmp_path / "out"), "--model", str(tiny_card.path),
            "--tile", "64", "--threads", "1", "--overwrite"]  # fmt: skip
    result = runner.invoke(app, [*base, "--quality", "high", "--json", str(report)])
    assert result.exit_code == 0, result.output
    words = "model tiny runs no detail stage (its card has none; --detail adds it): --quality high changes nothing"
    assert result.output.count(words) == 1  # once for the card, not once a file
    infos = [file["info"] for file in json.loads(report.read_text())["files"]]
    assert [(info["detail"], info["wiener"], info["quality"]) for info in infos] == [(False, False, None)] * 2
    result = runner.invoke(app, [*base, "--no-detail", "--quality", "fast"])
    assert "model tiny runs no detail stage (--no-detail): --quality fast changes nothing" in result.output
    result = runner.invoke(app, [*base, "--no-wiener", "--quality", "high"])
    assert result.exit_code == 2 and "--quality high contradicts --no-wiener (--no-wiener is --quality fast)" in (
        result.output
    )


def test_input_masks_on_a_card_trained_without_them_are_warned_of(tmp_path: Path, tiny_card) -> None:
    """Masked pixels reach such a card as darker than black: --input-mask 0.5 once darkened the picture unsaid."""
    (tmp_path / tiny_card.weights).write_bytes(tiny_card.weights_path.read_bytes())
    cards = {}
    for masked in (False, True):
        cards[masked] = tmp_path / f"mask-{masked}.json"
        text = {**json.loads(tiny_card.path.read_text()), "training": {"recipe": {"mask": masked}}}
        cards[masked].write_text(json.dumps(text))
    base = ["denoise", *_two_photos(tmp_path), "-o", str(tmp_path / "out"), "--tile", "64", "--threads", "1",
            "--overwrite", "--input-mask", "0.5"]  # fmt: skip
    result = runner.invoke(app, [*base, "--model", str(cards[False])])
    assert result.exit_code == 0, result.output
    words = "model tiny was trained without input masks: --input-mask 0.5 hides pixels it never learnt to fill"
    assert result.output.count(words) == 1
    result = runner.invoke(app, [*base, "--model", str(cards[True])])
    assert result.exit_code == 0 and "trained without input masks" not in result.output, result.output
    result = runner.invoke(app, [*base[:-2], "--model", str(cards[False])])  # the card's own input mask, none
    assert result.exit_code == 0 and "trained without input masks" not in result.output, result.output
