"""The Python API: arrays and files in, arrays out, the same bytes as the command line."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import tifffile
import torch
from skimage import data
from typer.testing import CliRunner

import mdn
from mdn import noise, registry
from mdn.cli import app
from mdn.errors import MdnError
from mdn.io import images
from mdn.nets.skip import SkipConfig, SkipNet

runner = CliRunner()


def _cli(*args: object) -> None:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output


@pytest.fixture
def grey_fill_card() -> registry.ModelCard:
    """An untrained grey fill card installed as the default `fill-grey`."""
    torch.manual_seed(0)
    config = SkipConfig(channels=1, mask_channels=1, width=8, scales=2)
    card = registry.ModelCard("fill-grey", "skip", config.to_dict(), "", "", task="fill")
    return registry.save(SkipNet(config), card, registry.user_dir())


def test_an_8_bit_png_array_gives_the_clis_bytes(tmp_path: Path, tiny_card) -> None:
    photo = data.astronaut()[:70, :90]
    (tmp_path / "a.png").write_bytes(imagecodecs.png_encode(photo))
    _cli("denoise", tmp_path / "a.png", "-o", tmp_path / "b.png", "--model", tiny_card.path, "--tile", "64", "-q")
    expected = imagecodecs.png_decode((tmp_path / "b.png").read_bytes())
    out = mdn.denoise(photo, tiny_card.path, tile=64)
    assert out.dtype == np.uint8 and out.shape == photo.shape
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(mdn.denoise(tmp_path / "a.png", tiny_card.path, tile=64), expected)


def test_a_16_bit_tiff_stack_array_gives_the_clis_bytes(tmp_path: Path, tiny_card) -> None:
    stack = (np.random.default_rng(0).random((2, 40, 50)) * 3000 + 500).astype(np.uint16)
    tifffile.imwrite(tmp_path / "a.tif", stack)
    _cli("denoise", tmp_path / "a.tif", "-o", tmp_path / "b.tif", "--model", tiny_card.path, "--tile", "64", "-q")
    expected = tifffile.imread(tmp_path / "b.tif")
    out = mdn.denoise(stack, tiny_card.path, tile=64)
    assert out.dtype == np.uint16 and out.shape == stack.shape
    np.testing.assert_array_equal(out, expected)


def test_info_holds_what_the_json_report_holds_for_the_file(tmp_path: Path, tiny_card) -> None:
    """The photon noise a 16-bit stack was stabilised for and whether a render's buffers went with it, as well as
    the engine's own record (the API's info once lacked the first two)."""
    clean = 1000 + 3000 * np.exp(-np.add.outer(*(np.arange(-20, 20) ** 2,) * 2) / 200)
    stack = np.random.default_rng(0).poisson(clean * np.array([1.0, 1.2])[:, None, None]).astype(np.uint16)
    tifffile.imwrite(tmp_path / "a.tif", stack)
    report = tmp_path / "r.json"
    _cli("denoise", tmp_path / "a.tif", "-o", tmp_path / "b.tif", "--model", tiny_card.path, "--json", report, "-q")
    expected = json.loads(report.read_text())["files"][0]["info"]
    assert "photon_noise" in expected and expected["auxiliary"] is False
    for image in (tmp_path / "a.tif", stack):
        info: dict = {}
        mdn.denoise(image, tiny_card.path, info=info)
        assert json.loads(json.dumps(info)) == expected


def test_a_float_array_outside_0_1_gives_the_clis_bytes_for_its_float_tiff(tmp_path: Path, tiny_card) -> None:
    """Counts or a background-subtracted signal as floats are stretched from their own range, as the same values
    in a float TIFF are; taken as they were, they came back damaged (10.0-11.0 as 12.4-14.0)."""
    noisy = np.random.default_rng(0).random((40, 50)).astype(np.float32)
    for values in (noisy * 4, noisy + 10, noisy * 1000 - 200):
        tifffile.imwrite(tmp_path / "a.tif", values)
        _cli("denoise", tmp_path / "a.tif", "-o", tmp_path / "b.tif", "--model", tiny_card.path, "--overwrite", "-q")
        out = mdn.denoise(values, tiny_card.path)
        np.testing.assert_array_equal(out, tifffile.imread(tmp_path / "b.tif"))
        assert values.min() <= out.min() and out.max() <= values.max()


@pytest.mark.parametrize(
    ("shape", "dtype", "axes"),
    [
        ((40, 48), np.uint8, None),  # grey
        ((40, 48, 1), np.uint16, None),  # grey with a sample axis
        ((40, 48, 3), np.float32, None),  # colour
        ((40, 48, 4), np.uint8, None),  # colour and alpha
        ((3, 40, 48), np.float64, None),  # grey stack
        ((2, 40, 48, 3), np.uint16, None),  # colour stack
        ((40, 3, 48), np.uint8, "YZX"),  # a stack of 3 laid out as axes say
    ],
)
def test_layout_and_type_are_kept(tiny_card, shape: tuple[int, ...], dtype: type, axes: str | None) -> None:
    rng = np.random.default_rng(1)
    image = rng.random(shape).astype(dtype) if dtype in (np.float32, np.float64) else rng.integers(0, 200, shape, dtype)
    out = mdn.denoise(image, tiny_card.path, tile=64, axes=axes)
    assert out.shape == image.shape and out.dtype == image.dtype
    assert not np.array_equal(out, image)
    if shape[-1] == 4:
        np.testing.assert_array_equal(out[..., 3], image[..., 3])


def test_float_arrays_are_taken_as_they_are_and_integers_as_their_scale(tiny_card) -> None:
    """A uint8 image and the same image as floats in [0, 1] give the same result, up to rounding."""
    photo = data.astronaut()[:64, :64]
    as_integers = mdn.denoise(photo, tiny_card.path, tile=64)
    as_floats = mdn.denoise(photo / 255, tiny_card.path, tile=64)
    assert as_floats.dtype == np.float64
    assert np.abs(np.clip(as_floats * 255, 0, 255) - as_integers).max() <= 0.5 + 1e-4


def test_a_flat_plane_comes_back_as_it_came_and_its_neighbours_are_denoised() -> None:
    """A blank or saturated frame has no noise: the network's small offsets on flat ground showed in 16 bits
    (a frame of 1000 came back as 805 to 1018)."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(1000, 20000, 48 * 48).reshape(48, 48)
    noisy = np.clip(ramp + rng.normal(0, 1500, ramp.shape), 0, 65535).astype(np.uint16)
    stack = np.stack([np.full((48, 48), 1000, np.uint16), noisy, np.zeros((48, 48), np.uint16)])
    out = mdn.denoise(stack)
    np.testing.assert_array_equal(out[0], stack[0])
    np.testing.assert_array_equal(out[2], stack[2])
    assert np.abs(out[1].astype(float) - ramp).mean() < 0.5 * np.abs(noisy.astype(float) - ramp).mean()
    colour = np.empty((40, 40, 3), np.uint16)
    colour[...] = (30000, 12000, 500)
    np.testing.assert_array_equal(mdn.denoise(colour), colour)


def test_integers_are_clipped_never_wrapped() -> None:
    white = np.full((32, 32), 255, np.uint8)
    noisy = mdn.add_noise(white, "gaussian", 50, seed=0)
    assert noisy.dtype == np.uint8 and noisy.min() > 64 and (noisy == 255).mean() > 0.4


def test_add_noise_is_seeded_and_is_what_the_cli_adds(tmp_path: Path) -> None:
    photo = data.astronaut()[:48, :64]
    a, b = mdn.add_noise(photo, "poisson", 2, seed=3), mdn.add_noise(photo, "poisson", 2, seed=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, mdn.add_noise(photo, "poisson", 2, seed=4))
    assert mdn.add_noise(photo / 255, "speckle", seed=0).dtype == np.float64
    (tmp_path / "a.png").write_bytes(imagecodecs.png_encode(photo))
    _cli("noise", tmp_path / "a.png", "-o", tmp_path / "b.png", "--type", "poisson", "--level", "2", "--seed", "3")
    cli = imagecodecs.png_decode((tmp_path / "b.png").read_bytes())
    seed = noise.file_seed(3, "a.png", images.read(tmp_path / "a.png").pixels)  # a batch's seed, name and pixels
    assert seed[:2] == [3, zlib.crc32(b"a.png")]
    np.testing.assert_array_equal(mdn.add_noise(photo, "poisson", 2, seed=seed), cli)


def test_zs_n2n_on_a_16_bit_stack_gives_the_clis_bytes(tmp_path: Path) -> None:
    stack = np.random.default_rng(2).poisson(data.camera()[:40, :48] * 4.0 + 400, (2, 40, 48)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "a.tif", stack)
    _cli("zeroshot", tmp_path / "a.tif", "-o", tmp_path / "b.tif", "--method", "zs-n2n", "--iters", "3", "-q")
    out = mdn.denoise_zeroshot(stack, "zs-n2n", iters=3)
    assert out.dtype == np.uint16 and out.shape == stack.shape
    np.testing.assert_array_equal(out, tifffile.imread(tmp_path / "b.tif"))


@pytest.mark.parametrize(("channels", "model"), [(3, "fill-syn"), (1, "fill-grey")])
def test_default_preset_is_full_on_rgb_and_microscopy_on_grey(channels: int, model: str) -> None:
    """The shipped fill cards: `full` (per-channel masks, fill-syn) on RGB, `microscopy` (fill-grey) on grey."""
    image = data.astronaut()[:40, :40] if channels == 3 else data.camera()[:40, :40]
    info: dict = {}
    mdn.denoise_zeroshot(image, iters=2, info=info)
    assert info["model"] == model and info["iters"] == 2


def test_mpi_self_check_goes_to_info_or_to_warnings(grey_fill_card) -> None:
    """Light noise and 3 iterations of an untrained fill: the input comes back, and the user is told."""
    rng = np.random.default_rng(0)
    image = (data.camera()[:64, :64] * 64.0 + rng.normal(0, 64, (64, 64))).clip(0, 65535).astype(np.uint16)
    info: dict = {}
    out = mdn.denoise_zeroshot(image, iters=3, info=info)
    np.testing.assert_array_equal(out, image)
    assert info["model"] == "fill-grey" and info["self_check"][0]["input_weight"] == 1.0
    assert any("looked" in warning for warning in info["warnings"])
    assert any("preset microscopy" in w for w in info["warnings"]) and not any("--" in w for w in info["warnings"])
    with pytest.warns(UserWarning, match="self-check: the fine-tuned fill alone looked"):
        mdn.denoise_zeroshot(image, iters=3)


def test_models_lists_cards_and_a_loaded_model_runs_as_its_name(tiny_card) -> None:
    assert {"unet", "small-baseline", "fill-grey"} <= {card.name for card in mdn.models()}
    model = mdn.load_model(tiny_card.path)
    photo = data.astronaut()[:64, :64]
    info: dict = {}
    out = mdn.denoise(photo, model, tile=64, info=info)
    np.testing.assert_array_equal(out, mdn.denoise(photo, tiny_card.path, tile=64))
    assert info["model"] == "tiny" and info["tiles"] == 1 and info["device"] == "cpu"


def test_user_errors_name_the_problem(tiny_card) -> None:
    photo = data.astronaut()[:64, :64]
    assert mdn.MdnError is MdnError and "MdnError" in dir(mdn)
    with pytest.raises(MdnError, match=r"^seed must be 0 to 4294967295, got -1"):
        mdn.denoise(photo, tiny_card.path, seed=-1)
    with pytest.raises(MdnError, match="seed must be a non-negative integer"):
        mdn.add_noise(photo, "gaussian", 15, seed=-1)
    for seed in ("-1", str(2**32)):
        result = runner.invoke(app, ["noise", "any.png", "--seed", seed])
        assert result.exit_code == 2 and "Invalid value for '--seed'" in result.output
    with pytest.raises(MdnError, match="unknown model 'small-maskd'"):
        mdn.denoise(photo, "small-maskd")
    with pytest.raises(MdnError, match=r"^passes must be at least 1"):
        mdn.denoise(photo, tiny_card.path, passes=0)
    with pytest.raises(MdnError, match="unsupported sample type int16"):
        mdn.denoise(photo.astype(np.int16), tiny_card.path)
    with pytest.raises(MdnError, match="axes 'YX' do not name the 3 axes"):
        mdn.denoise(photo, tiny_card.path, axes="YX")


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"tile": 100}, "tile must be a multiple of 8 and at least 64, got 100"),
        ({"self_check": "yes"}, "self_check must be True or False, got 'yes'"),
        ({"passes": "3"}, "passes must be a whole number, got '3'"),
        ({"seed": 1.5}, "seed must be a whole number, got 1.5"),
        ({"seed": None}, "seed must be a whole number, got None"),  # not a card's setting: None is no default
        ({"max_memory": None}, "max_memory must be a whole number, got None"),
        ({"batch": -1}, "batch must be 0 (1 on a CPU, 4 on a GPU) or more, got -1"),
        ({"max_memory": "1K"}, "max_memory must be at least 64M (the stages' smallest window), got '1K'"),
        ({"threads": 2.5}, "threads must be a whole number from 0 (one per core), got 2.5"),
        ({"threads": -1}, "threads must be a whole number from 0 (one per core), got -1"),
        ({"model": 5}, "a model is a card's name, its JSON file, a ModelCard or a loaded Model, not 5"),
        ({"info": []}, "info must be a dict to fill in, got list"),
    ],
)
def test_a_wrong_setting_is_an_mdn_error_in_the_keywords_spelling(tiny_card, settings: dict, words: str) -> None:
    photo = data.astronaut()[:64, :64]
    with pytest.raises(MdnError, match="^" + re.escape(words)) as error:
        mdn.denoise(photo, **{"model": tiny_card.path, **settings})
    assert "--" not in str(error.value)  # the command line's options are not the API's keywords
    with pytest.raises(MdnError, match=r"^mask_ratio must be in \(0, 1\), got 3"):
        mdn.denoise_zeroshot(photo, mask_ratio=3)


def test_keywords_replace_options_in_messages_only_and_the_commands_keep_their_options(tmp_path: Path) -> None:
    photo = data.astronaut()[:64, :64]
    with pytest.raises(MdnError, match="unknown model 'my--tile'"):  # what the user typed is left as typed
        mdn.denoise(photo, "my--tile")
    with pytest.raises(MdnError, match=r"^quality must be one of fast, balanced, high, got '--no-self-check'"):
        mdn.denoise(photo, quality="--no-self-check")
    for settings, words in (
        ({"iters": "5"}, "iters must be a whole number, got '5'"),
        ({"lr": "1e-3"}, "lr must be a number"),
    ):
        with pytest.raises(MdnError, match="^" + re.escape(words)):
            mdn.denoise_zeroshot(photo, **settings)
    with pytest.raises(MdnError, match="kind must be a noise's name"):
        mdn.add_noise(photo, 5)
    with pytest.raises(MdnError, match="axes are letters such as 'ZYX', got 5"):
        mdn.denoise(photo, axes=5)
    assert mdn.add_noise(torch.zeros(16, 16, 3, dtype=torch.bfloat16), "gaussian").dtype == np.float32
    iio_path = tmp_path / "a.png"
    iio_path.write_bytes(imagecodecs.png_encode(photo))
    result = runner.invoke(app, ["zeroshot", str(iio_path), "--method", "zs-n2n", "--lr", "1e12", "--iters", "2"])
    assert result.exit_code == 1 and "try a lower --lr" in result.output  # the command names its option


def test_load_model_takes_the_commands_tasks(grey_fill_card, tiny_card) -> None:
    assert mdn.load_model("fill-grey", "zeroshot").card.task == "fill"
    assert mdn.load_model(tiny_card.path, "denoise").name == "tiny"
    with pytest.raises(MdnError, match="model tiny is a denoise card, for mdn denoise; mdn zeroshot takes a fill"):
        mdn.load_model(tiny_card.path, "zeroshot")
    with pytest.raises(MdnError, match="task must be denoise or zeroshot, got 'bogus'"):
        mdn.load_model("fill-grey", "bogus")


def test_a_tensor_is_taken_as_its_array_and_warnings_point_at_the_caller(tiny_card) -> None:
    photo = data.astronaut()[:64, :64].astype(np.float32) / 255
    expected = mdn.denoise(photo, tiny_card.path)
    np.testing.assert_array_equal(mdn.denoise(torch.tensor(photo, requires_grad=True), tiny_card.path), expected)
    photo[3, 3] = np.inf  # NaN is "no data", kept; Inf is replaced
    with pytest.warns(UserWarning, match="3 NaN/Inf values replaced") as caught:
        mdn.denoise(photo, tiny_card.path)
    assert [Path(w.filename).name for w in caught] == [Path(__file__).name]


def test_help_shows_the_api_and_importing_mdn_leaves_torch_alone() -> None:
    code = "import sys, mdn; print('torch' in sys.modules); help(mdn)"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert shown.startswith("False")
    for signature in ("denoise(image", "denoise_zeroshot(image", "add_noise(image", "models()", "load_model(name"):
        assert signature in shown


def test_a_card_whose_inference_settings_are_not_the_engines_is_refused(tiny_card, tmp_path: Path) -> None:
    photo = data.astronaut()[:64, :64]
    for settings, words in [({"passes": "4"}, "inference setting passes is '4'"),
                            ({"sharpen": True}, "inference setting 'sharpen' is not known here")]:  # fmt: skip
        path = tmp_path / "odd.json"
        path.write_text(json.dumps({**json.loads(tiny_card.path.read_text()), "inference": settings}))
        shutil.copy(tiny_card.weights_path, tmp_path / tiny_card.weights)
        with pytest.raises(MdnError, match=f"odd\\.json: not a valid model card: {re.escape(words)}"):
            mdn.denoise(photo, path)


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"seed": None}, "seed must be a whole number, got None"),
        ({"seed": -1}, "seed must be 0 to 4294967295, got -1"),  # once taken as 2**32 - 1
        ({"seed": 2**32}, "seed must be 0 to 4294967295, got 4294967296"),
        ({"seed": 2**64}, "seed must be 0 to 4294967295, got 18446744073709551616"),  # once torch's overflow
        ({"device": None}, "device must be text, got None"),  # once torch's own TypeError
    ],
)
def test_zeroshot_checks_seed_and_device_as_denoise_does(tiny_card, settings: dict, words: str) -> None:
    photo = data.astronaut()[:64, :64]
    for method in ("mpi", "zs-n2n"):
        with pytest.raises(MdnError, match="^" + re.escape(words)):
            mdn.denoise_zeroshot(photo, method, iters=2, **settings)
    with pytest.raises(MdnError, match="^" + re.escape(words)):
        mdn.denoise(photo, tiny_card.path, **settings)


def test_zeroshot_self_check_none_is_the_default_as_denoises_switches_are() -> None:
    """None once turned the self-check off (and zs-n2n blamed a `self_check=False` never given)."""
    image = data.camera()[:64, :64]
    default, unset, off = {}, {}, {}
    expected = mdn.denoise_zeroshot(image, iters=2, threads=1, info=default)
    unset_result = mdn.denoise_zeroshot(image, iters=2, threads=1, self_check=None, info=unset)
    np.testing.assert_array_equal(unset_result, expected)
    mdn.denoise_zeroshot(image, iters=2, threads=1, self_check=False, info=off)
    assert unset["self_check"] == default["self_check"] and "self_check" not in off
    assert mdn.denoise_zeroshot(image, "zs-n2n", iters=2, threads=1, self_check=None).shape == image.shape
    with pytest.raises(MdnError, match=r"^self_check=False applies to method mpi only"):
        mdn.denoise_zeroshot(image, "zs-n2n", iters=2, self_check=np.False_)


@pytest.mark.parametrize("progress", ["x", lambda done: None, len])
def test_progress_is_checked_before_any_work(tmp_path: Path, progress: object) -> None:
    """A progress that cannot take (done, total) once failed deep in the engine, after the model had run."""
    photo = data.astronaut()[:64, :64]
    words = "progress must be a function called with (done, total), got "
    with pytest.raises(MdnError, match="^" + re.escape(words)):
        mdn.denoise(photo, progress=progress)
    with pytest.raises(MdnError, match="^" + re.escape(words)):
        mdn.denoise_zeroshot(photo, iters=2, progress=progress)
    with pytest.raises(MdnError, match="^" + re.escape(words)):
        mdn.denoise_volume(tmp_path / "in.zarr", tmp_path / "out.zarr", progress=progress)


def test_progress_takes_any_function_of_done_and_total(tiny_card) -> None:
    photo = data.astronaut()[:64, :64]
    calls: list[tuple[int, int]] = []
    mdn.denoise(photo, tiny_card.path, threads=1, progress=lambda *counts: calls.append(counts))
    mdn.denoise(photo, tiny_card.path, threads=1, progress=max)  # a builtin with no signature to read is taken on trust
    assert calls == [(1, 1)]


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"wiener": 0}, "wiener must be True or False, got 0"),  # once ignored
        ({"wiener": "no"}, "wiener must be True or False, got 'no'"),
        ({"quality": "high", "wiener": False}, "quality high contradicts wiener=False (wiener=False is quality fast)"),
        ({"quality": "fast", "wiener": True}, "quality fast contradicts wiener (wiener=False is quality fast)"),
        ({"hdr": "no"}, "hdr must be True or False, got 'no'"),  # once HDR on
        ({"hdr": 1}, "hdr must be True or False, got 1"),
    ],
)
def test_wiener_and_hdr_are_true_or_false(tiny_card, settings: dict, words: str) -> None:
    photo = data.astronaut()[:64, :64].astype(np.float32) / 255 * 4
    with pytest.raises(MdnError, match="^" + re.escape(words)) as error:
        mdn.denoise(photo, tiny_card.path, threads=1, **settings)
    assert "--" not in str(error.value)
    if "hdr" in settings:
        for call in (mdn.denoise_zeroshot, mdn.add_noise):
            with pytest.raises(MdnError, match="^" + re.escape(words)):
                call(photo, hdr=settings["hdr"])
    info: dict = {}
    mdn.denoise(photo, tiny_card.path, detail=True, wiener=np.False_, threads=1, info=info)  # numpy's False too
    assert (info["detail"], info["quality"], info["wiener"]) == (True, "fast", False)


def test_a_volume_denoised_into_itself_is_refused_in_the_callers_words(tmp_path: Path, tiny_card) -> None:
    zarr = pytest.importorskip("zarr")
    zarr.create_array(str(tmp_path / "vol.zarr"), data=np.zeros((1, 64, 64), np.uint8), chunks=(1, 64, 64))
    words = "is the input volume or inside it: a volume is not denoised in place (choose another"
    with pytest.raises(MdnError, match=re.escape(f"{words} target)")) as error:
        mdn.denoise_volume(tmp_path / "vol.zarr", tmp_path / "vol.zarr", tiny_card.path)
    assert "another -o" not in str(error.value)  # once the command's option
    vol = str(tmp_path / "vol.zarr")
    result = runner.invoke(app, ["denoise", vol, "-o", vol, "--model", str(tiny_card.path), "--threads", "1"])
    assert result.exit_code == 1 and f"{words} --output)" in result.output


def test_what_a_card_cannot_do_as_asked_is_warned_of_in_the_keywords_words(tmp_path: Path, tiny_card) -> None:
    """The input masks of a card trained without them, once a darker picture unsaid; a quality with no detail
    stage to set, once ignored unsaid. `denoise_volume` tells them before its run."""
    (tmp_path / tiny_card.weights).write_bytes(tiny_card.weights_path.read_bytes())
    card = tmp_path / "unmasked.json"
    card.write_text(json.dumps({**json.loads(tiny_card.path.read_text()), "training": {"recipe": {"mask": False}}}))
    photo = data.astronaut()[:64, :64]
    masks = "<array>: model tiny was trained without input masks: input_mask 0.5 hides pixels it never learnt to fill"
    quality = "<array>: model tiny runs no detail stage (its card has none; detail adds it): quality high changes"
    with pytest.warns(UserWarning) as caught:
        mdn.denoise(photo, card, input_mask=0.5, quality="high", threads=1)
    shown = [str(warning.message) for warning in caught]
    assert len(shown) == 2 and shown[0].startswith(quality) and shown[1].startswith(masks), shown
    assert {Path(w.filename).name for w in caught} == {Path(__file__).name}
    zarr = pytest.importorskip("zarr")
    zarr.create_array(str(tmp_path / "vol.zarr"), data=photo[None, ..., 0], chunks=(1, 64, 64))
    with pytest.warns(UserWarning, match=re.escape(masks.replace("<array>", str(tmp_path / "vol.zarr")))):
        mdn.denoise_volume(tmp_path / "vol.zarr", tmp_path / "out.zarr", card, input_mask=0.5, threads=1)


def test_nan_in_a_float_array_comes_back_where_it_was(tiny_card) -> None:
    """NaN in a float array is "no data": the result holds NaN there and finite values everywhere else, which the
    NaN did not pull towards 0 (the array with a neighbour's value in its place gives nearly the same)."""
    y, x = np.mgrid[0:48, 0:48]
    cells = (0.4 + 0.2 * np.sin(y / 5) * np.cos(x / 4)).astype(np.float32)
    holed, patched = cells.copy(), cells.copy()
    holed[20, 20], patched[20, 20] = np.nan, cells[20, 21]
    out = mdn.denoise(holed, tiny_card.path)
    assert np.isnan(out[20, 20]) and np.isfinite(np.delete(out.ravel(), 20 * 48 + 20)).all()
    reference = mdn.denoise(patched, tiny_card.path)
    assert np.abs(out[19:22, 19:22] - reference[19:22, 19:22])[~np.isnan(out[19:22, 19:22])].max() < 0.02


def test_threads_past_the_cores_run_on_the_cores_with_a_warning(tiny_card) -> None:
    """A million threads crashed torch's pool and a count from a bigger machine was refused; the cores run it."""
    import torch

    from mdn.device import usable_cores

    photo = data.astronaut()[:64, :64]
    before = torch.get_num_threads()
    try:
        with pytest.warns(UserWarning, match=rf"threads=1000000: {usable_cores()} cores here") as caught:
            with_many = mdn.denoise(photo, tiny_card.path, threads=10**6)
        assert [Path(w.filename).name for w in caught] == [Path(__file__).name]
        np.testing.assert_array_equal(with_many, mdn.denoise(photo, tiny_card.path))
    finally:
        torch.set_num_threads(before)


def test_a_zarr_volume_given_to_the_picture_functions_is_pointed_to_what_takes_it(tmp_path: Path) -> None:
    """`mdn.denoise("v.zarr")` said "is a directory, expected an image file"."""
    zarr = pytest.importorskip("zarr")
    zarr.create_array(str(tmp_path / "v.zarr"), data=np.zeros((2, 16, 16), np.uint16), chunks=(1, 16, 16))
    for call, words in (
        (mdn.denoise, "is a zarr volume: mdn.denoise_volume(source, target) denoises it"),
        (mdn.denoise_zeroshot, "is a zarr volume: `mdn zeroshot IN.zarr -o OUT.zarr` fits"),
        (mdn.add_noise, "is a zarr volume: add_noise takes pictures"),
    ):
        with pytest.raises(MdnError, match=re.escape(words)):
            call(tmp_path / "v.zarr")
