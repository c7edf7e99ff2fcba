"""Statistics and contracts of the seeded noise models."""

from __future__ import annotations

import io
import math
import os
import zlib
from pathlib import Path

import imageio.v3 as imageio
import numpy as np
import OpenEXR
import pytest
import tifffile
import torch
from PIL import Image as PilImage
from rich.console import Console
from typer.testing import CliRunner

import mdn
from mdn.cli import app, display
from mdn.errors import MdnError
from mdn.io import images
from mdn.noise import NOISE_TYPES, Camera, Cameras, NoiseModel, display_transform, file_seed, make_noise

runner = CliRunner()

SIZE = (512, 512, 3)  # 786k samples: relative error of a std estimate is ~0.1 %


def flat(value: float, shape: tuple[int, ...] = SIZE) -> np.ndarray:
    return np.full(shape, value, dtype=np.float32)


def ramp(h: int = 32, w: int = 48) -> np.ndarray:
    """A smooth colour image with distinct channels."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([xx / (w - 1), yy / (h - 1), 0.25 + 0.5 * (xx + yy) / (h + w - 2)], axis=-1)


def noisy(name: str, x: np.ndarray, level: float | None = None, seed: int = 0) -> np.ndarray:
    return make_noise(name, level)(x, np.random.default_rng(seed))


def lag_correlation(n: np.ndarray, lag: int, axis: int) -> float:
    n = n - n.mean()
    a = np.take(n, range(n.shape[axis] - lag), axis=axis)
    b = np.take(n, range(lag, n.shape[axis]), axis=axis)
    return float((a * b).mean() / n.var())


# ---- statistics, one type at a time ----


@pytest.mark.parametrize("sigma", [15, 25])
def test_gaussian_std_and_mean(sigma: float) -> None:
    n = noisy("gaussian", flat(0.5), sigma) - 0.5
    assert n.std() == pytest.approx(sigma / 255, rel=0.02)
    assert abs(n.mean()) < 1e-3
    assert abs(lag_correlation(n, 1, axis=1)) < 0.01


@pytest.mark.parametrize("x", [0.3, 0.6])
def test_speckle_variance_and_uniform_support(x: float) -> None:
    v = 0.04
    n = noisy("speckle", flat(x), v) - x
    assert n.var() == pytest.approx(v * x * x, rel=0.03)
    bound = math.sqrt(3 * v) * x
    assert np.abs(n).max() <= bound * (1 + 1e-5)  # uniform: bounded support, a Gaussian would exceed it
    assert np.abs(n).max() > 0.99 * bound
    assert abs(n.mean()) < 1e-3


@pytest.mark.parametrize("x", [0.2 + 0.4 / 255, 0.5])
def test_poisson_variance_scales_with_intensity(x: float) -> None:
    alpha = 2.0
    q = float(np.round(np.float32(x) * 255) / 255)  # the paper's noise is that of the signal at 8 bit
    y = noisy("poisson", flat(x), alpha)
    assert y.mean() == pytest.approx(x, abs=4e-4)  # around the signal itself, not posterised to 8 bit
    assert y.var() == pytest.approx(alpha**2 * q / 256, rel=0.03)


def paper_poisson(x: np.ndarray, alpha: float, seed: int) -> np.ndarray:
    """The paper's definition as the old code drew it: q = round(255 x)/255, q + alpha (Poisson(256 q)/256 - q)."""
    q = np.round(x * 255) / 255
    return np.clip(q + alpha * (np.random.default_rng(seed).poisson(256 * q).astype(np.float32) / 256 - q), 0, 1)


def test_poisson_is_the_papers_on_8_bit_data_and_does_not_posterise_16_bit() -> None:
    eight = (np.arange(256, dtype=np.uint8).reshape(16, 16, 1).astype(np.float32) / np.float32(255)).repeat(3, -1)
    for alpha in (2.0, 3.5):
        assert noisy("poisson", eight, alpha, seed=5).tobytes() == paper_poisson(eight, alpha, 5).tobytes()
    sixteen = np.linspace(0, 1, 4096, dtype=np.float32).reshape(64, 64, 1)  # 16-bit-like: 16 steps per 8-bit one
    y = noisy("poisson", sixteen, 1e-4)
    assert np.abs(y - sixteen).max() * 65535 < 2.5  # the noise alone; 8-bit rounding is up to 128 of 65535
    assert len(np.unique(y)) > 3000  # posterised, it had 256 values
    paper_noise = paper_poisson(sixteen, 1e-4, 0) - np.round(sixteen * 255) / 255
    inside = sixteen < 0.99  # clear of the clipping at white
    np.testing.assert_allclose((y - sixteen)[inside], paper_noise[inside], atol=1e-6)  # the paper's draws


def test_poisson_twin_is_the_papers_on_8_bit_data_and_does_not_posterise_16_bit() -> None:
    """Training draws exactly what it drew on 8-bit crops; other crops get the same noise on their own signal."""
    eight = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).astype(np.float32) / np.float32(255)
    q = torch.round(torch.from_numpy(eight).permute(0, 3, 1, 2) * 255) / 255
    n = torch.poisson(256 * q, generator=torch.Generator().manual_seed(2)) / 256 - q
    paper = (q + 2.5 * n).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    assert on_device("poisson", eight, 2.5, seed=2).tobytes() == paper.tobytes()
    sixteen = np.linspace(0, 1, 4096, dtype=np.float32).reshape(1, 64, 64, 1)
    assert np.abs(on_device("poisson", sixteen, 1e-4) - sixteen).max() * 65535 < 2.5


def test_poisson_std_at_half_matches_the_notes() -> None:
    y = noisy("poisson", flat(0.5), 2.0)
    assert y.std() * 255 == pytest.approx(22.5, abs=0.5)


@pytest.mark.parametrize("x", [0.2, 0.4])
def test_photon_mean_and_variance(x: float) -> None:
    peak = 50.0
    y = noisy("photon", flat(x), peak)
    assert y.mean() == pytest.approx(x, abs=1e-3)
    assert y.var() == pytest.approx(x / peak, rel=0.03)
    assert np.allclose(y * peak, np.round(y * peak), atol=1e-4)  # counts


def test_saltpepper_fraction_and_balance() -> None:
    d = 0.05
    y = noisy("saltpepper", flat(0.5), d)
    zeros, ones = (y == 0).mean(), (y == 1).mean()
    assert zeros + ones == pytest.approx(d, rel=0.03)
    assert zeros == pytest.approx(d / 2, rel=0.05)
    assert ones == pytest.approx(d / 2, rel=0.05)
    assert np.all((y == 0) | (y == 1) | (y == 0.5))


def test_saltpepper_is_per_channel() -> None:
    hit = noisy("saltpepper", flat(0.5), 0.2) != 0.5
    assert 0.5 < hit.any(axis=-1).mean() / hit.mean() / 3 < 1.0  # channels hit independently, not together


def test_correlated_std_and_autocorrelation() -> None:
    sigma = 50.0
    n = noisy("correlated", flat(0.5), sigma) - 0.5
    assert n.std() == pytest.approx(sigma / 255 / 3, rel=0.02)
    for axis in (0, 1):
        assert lag_correlation(n, 1, axis) == pytest.approx(2 / 3, abs=0.02)
        assert lag_correlation(n, 2, axis) == pytest.approx(1 / 3, abs=0.02)
        assert abs(lag_correlation(n, 3, axis)) < 0.02
    assert abs(np.corrcoef(n[..., 0].ravel(), n[..., 1].ravel())[0, 1]) < 0.02
    edge = np.concatenate([n[[0, -1]].ravel(), n[:, [0, -1]].ravel()]).std()
    assert edge == pytest.approx(n[1:-1, 1:-1].std(), rel=0.1)  # no border effect (reflect: +29 %, zeros: -18 %)


# ---- isp ----


def test_isp_round_trip_without_noise_is_close_to_identity() -> None:
    x = ramp(64, 96) * 0.9  # smooth and away from the softened highlights
    for seed in range(3):
        camera = Camera.random(np.random.default_rng(seed))
        raw = camera.unprocess(x)
        assert raw.shape == x.shape[:2]
        assert raw.min() >= 0 and raw.max() <= 1
        assert np.abs(camera.process(raw) - x)[1:-1, 1:-1].max() < 0.01


def test_isp_noise_is_real_camera_noise() -> None:
    x = flat(0.5, (256, 256, 3))
    y1 = noisy("isp", x, 1.0, seed=3)
    y2 = noisy("isp", x, 2.0, seed=3)  # same camera and draws, twice the raw std
    n1, n2 = y1 - x, y2 - x
    assert 1e-3 < n1.std() < 0.2
    assert n2.std() == pytest.approx(2 * n1.std(), rel=0.15)
    assert abs(n1.mean()) < 0.02  # grey stays grey: the round trip is fair to the clean input
    assert lag_correlation(n1, 1, axis=1) > 0.2  # demosaicking correlates neighbours
    channels = np.corrcoef(n1.reshape(-1, 3).T)
    assert abs(channels[0, 1]) > 0.05  # the colour matrix mixes channels


def test_isp_grey_input_and_small_images() -> None:
    x = ramp()[..., :1]
    y = noisy("isp", x)
    assert y.shape == x.shape
    assert not np.array_equal(y, x)
    message = r"^isp noise needs images of at least 2x2 pixels, got 1x8$"  # height x width, not an array's shape
    with pytest.raises(MdnError, match=message):
        noisy("isp", flat(0.5, (1, 8, 3)))
    with pytest.raises(MdnError, match=message):
        on_device("isp", flat(0.5, (2, 1, 8, 3)))


# ---- mixture ----


def test_mixture_is_stronger_at_higher_levels() -> None:
    x = ramp(64, 64)
    mse = {
        level: np.mean([((noisy("mixture", x, level, seed) - x) ** 2).mean() for seed in range(6)]) for level in (1, 5)
    }
    assert mse[5] > 1.5 * mse[1]


def test_mixture_components_follow_the_level() -> None:
    kinds = {type(c).name: c.level for c in make_noise("mixture", 5).components}
    assert kinds == {"gaussian": 50, "speckle": 0.04, "poisson": 3.5, "correlated": 60, "saltpepper": 0.01}


def test_mixture_draws_per_image() -> None:
    y = noisy("mixture", np.stack([ramp()] * 4))
    assert len({y[i].tobytes() for i in range(4)}) == 4


# ---- contracts shared by every type ----


@pytest.mark.parametrize("name", NOISE_TYPES)
@pytest.mark.parametrize(
    ("where", "shape"),
    [("numpy", (24, 20, 1)), ("numpy", (24, 20, 3)), ("numpy", (2, 24, 20, 3)),
     ("device", (2, 24, 20, 3)), ("device", (2, 24, 20, 1))],
)  # fmt: skip
def test_contract(name: str, where: str, shape: tuple[int, ...]) -> None:
    """numpy (`mdn noise`) and torch (training) draws alike: shape, dtype and range kept, input untouched,
    the same seed gives the same bytes and another seed others."""
    x = np.random.default_rng(7).uniform(0.1, 0.9, shape).astype(np.float32)
    before = x.copy()

    def draw(x: np.ndarray, name: str, seed: int) -> np.ndarray:
        return make_noise(name)(x, np.random.default_rng(seed)) if where == "numpy" else on_device(name, x, seed=seed)

    y = draw(x, name, seed=1)
    assert y.shape == make_noise(name).reference(x).shape and y.dtype == np.float32
    assert np.array_equal(x, before)
    assert y.min() >= 0 and y.max() <= 1
    assert not np.array_equal(y, x)
    again = [draw(x, name, seed=seed) for seed in (1, 2)]
    assert again[0].tobytes() == y.tobytes() and again[1].tobytes() != y.tobytes()


@pytest.mark.parametrize("name", NOISE_TYPES)
def test_levels_and_defaults(name: str) -> None:
    kind = NOISE_TYPES[name]
    assert issubclass(kind, NoiseModel) and kind.name == name and kind.parameter
    assert kind.default_level in kind.levels
    assert make_noise(name).level == kind.default_level
    for level in kind.levels:
        assert make_noise(name, level).level == level
    for bad in (-1, 0, math.nan, "high"):
        with pytest.raises(MdnError, match=name):
            make_noise(name, bad)  # type: ignore[arg-type]


def test_level_upper_limits() -> None:
    with pytest.raises(MdnError):
        make_noise("saltpepper", 1.5)
    with pytest.raises(MdnError):
        make_noise("mixture", 6)


@pytest.mark.parametrize("name", NOISE_TYPES)
def test_every_type_bounds_its_level_and_draws_finite_noise_at_the_top(name: str) -> None:
    """A huge level overflowed the draws: photon 1e20 failed in numpy, poisson and speckle at 1e300 gave NaN."""
    low, high = NOISE_TYPES[name].limits
    assert low < min(NOISE_TYPES[name].levels) and math.isfinite(high) and high >= max(NOISE_TYPES[name].levels)
    for huge in (high * 1.01, 1e20, 1e300):
        with pytest.raises(MdnError, match=rf"^{name} noise level must be in \({low:g}, {high:.15g}\] \(.+\), got "):
            make_noise(name, huge)
    x = np.random.default_rng(7).uniform(0, 1, (2, 24, 20, 3)).astype(np.float32)
    smallest = np.nextafter(low, 1.0) if low else 1e-300  # photon 1e-300 underflowed: a black image
    for level in (high, smallest):
        for y in (noisy(name, x, level), on_device(name, x, level)):
            assert np.isfinite(y).all() and y.min() >= 0 and y.max() <= 1, level


@pytest.mark.parametrize(
    ("name", "level", "low"), [("photon", "1e20", "0.001"), ("photon", "1e-300", "0.001"), ("poisson", "1e300", "0"),
                               ("speckle", "1e300", "0")]
)  # fmt: skip
def test_huge_levels_are_usage_errors(name: str, level: str, low: str, tmp_path: Path) -> None:
    imageio.imwrite(tmp_path / "a.png", (ramp() * 255).astype(np.uint8))
    with pytest.raises(MdnError, match=rf"{name} noise level must be in \({low}, "):
        mdn.add_noise(ramp(), name, float(level))
    result = runner.invoke(app, ["noise", str(tmp_path / "a.png"), "--type", name, "--level", level])
    assert result.exit_code == 2, result.output
    assert f"error: {name} noise level must be in ({low}, " in result.output and "Traceback" not in result.output
    assert not (tmp_path / "a_noisy.png").exists()


def test_unknown_name_suggests_close_names() -> None:
    with pytest.raises(MdnError, match="gaussian"):
        make_noise("gausian")
    with pytest.raises(MdnError, match="saltpepper"):
        make_noise("salt_pepper")
    with pytest.raises(MdnError, match="known: gaussian"):
        make_noise("xyz")
    assert make_noise(" Poisson ").name == "poisson"


def test_bad_image_shapes() -> None:
    for shape in [(8, 8), (8, 8, 2), (0, 8, 8, 3)]:
        with pytest.raises(MdnError):
            make_noise("gaussian")(np.zeros(shape, np.float32), np.random.default_rng(0))


# ---- the torch twins used in training ----


def on_device(name: str, x: np.ndarray, level: float | None = None, seed: int = 0) -> np.ndarray:
    """The torch twin of `noisy` on (N, H, W, C) arrays, through (N, C, H, W) tensors."""
    tensor = torch.from_numpy(x).permute(0, 3, 1, 2)
    return make_noise(name, level).on_device(tensor, torch.Generator().manual_seed(seed)).permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("name", [n for n in NOISE_TYPES if n != "practical"])  # practical's numpy path is its twin
def test_device_twin_has_the_numpy_noise_statistics(name: str) -> None:
    per_image = name in ("isp", "mixture")  # random parameters per image: more images for the same precision
    x = np.stack([ramp(16, 16)] * (4096 if per_image else 1024))
    clean = make_noise(name).reference(x)
    reference, twin = noisy(name, x) - clean, on_device(name, x) - clean
    assert twin.mean() == pytest.approx(reference.mean(), abs=1.5e-3)
    assert twin.var() == pytest.approx(reference.var(), rel=0.1 if per_image else 0.05)
    quartiles = [np.quantile(n.reshape(len(x), -1).std(axis=1), (0.25, 0.5, 0.75)) for n in (reference, twin)]
    np.testing.assert_allclose(quartiles[1], quartiles[0], rtol=0.06)  # of the per-image noise std


def test_device_cameras_process_as_numpy_cameras_do() -> None:
    x = ramp(64, 96)
    for seed in range(3):
        camera = Camera.random(np.random.default_rng(seed))
        cameras = Cameras(
            torch.tensor(camera.rgb_to_cam, dtype=torch.float32)[None],
            torch.tensor([[camera.rgb_gain]], dtype=torch.float32),
            torch.tensor([[camera.red_gain, 1.0, camera.blue_gain]], dtype=torch.float32),
        )
        raw = camera.unprocess(x)
        twin_raw = cameras.unprocess(torch.from_numpy(x).permute(2, 0, 1)[None])
        np.testing.assert_allclose(twin_raw[0, 0].numpy(), raw, atol=2e-5)
        twin_rgb = cameras.process(torch.from_numpy(raw)[None, None])
        np.testing.assert_allclose(twin_rgb[0].permute(1, 2, 0).numpy(), camera.process(raw), atol=2e-5)


def test_device_cameras_are_drawn_as_numpy_cameras_are() -> None:
    rng = np.random.default_rng(0)
    drawn = [Camera.random(rng) for _ in range(4000)]
    twins = Cameras.random(4000, torch.Generator().manual_seed(0), torch.device("cpu"))
    gains = np.array([[1 / c.rgb_gain, c.red_gain, c.blue_gain] for c in drawn])
    twin_gains = torch.cat([1 / twins.rgb_gain, twins.white_balance[:, [0, 2]]], dim=1).numpy()
    np.testing.assert_allclose(twin_gains.mean(0), gains.mean(0), rtol=0.01)
    np.testing.assert_allclose(twin_gains.std(0), gains.std(0), rtol=0.05)
    matrices = np.array([c.rgb_to_cam for c in drawn])
    np.testing.assert_allclose(twins.rgb_to_cam.numpy().mean(0), matrices.mean(0), atol=0.01)
    np.testing.assert_allclose(twins.rgb_to_cam.numpy().std(0), matrices.std(0), atol=0.01)


def test_device_mixture_draws_per_image() -> None:
    y = on_device("mixture", np.stack([ramp()] * 4))
    assert len({y[i].tobytes() for i in range(4)}) == 4


# ---- mdn noise on files ----


def test_file_seed_takes_any_file_name_and_keeps_utf8_names_seeds() -> None:
    assert file_seed(3, "é.png") == [3, zlib.crc32("é.png".encode())]  # as before for names UTF-8 holds
    latin1 = os.fsdecode(b"caf\xe9.png")  # not UTF-8: a name from an old share or zip
    assert file_seed(3, latin1) == [3, zlib.crc32(b"caf\xe9.png")]
    assert file_seed(3, latin1) != file_seed(3, "café.png")


def test_noise_takes_a_file_name_that_is_not_utf8(tmp_path: Path) -> None:
    source = tmp_path / os.fsdecode(b"caf\xe9.png")
    imageio.imwrite(source, (ramp() * 255).astype(np.uint8))
    result = runner.invoke(app, ["noise", str(source), "-o", str(tmp_path / "out.png"), "--seed", "3"])
    assert result.exit_code == 0, result.output
    seed = file_seed(3, source.name, images.read(source).pixels)  # the name's bytes as the file system has them
    assert seed[:2] == [3, zlib.crc32(b"caf\xe9.png")]
    expected = mdn.add_noise(imageio.imread(source), seed=seed)
    np.testing.assert_array_equal(imageio.imread(tmp_path / "out.png"), expected)


def render(light: float = 50.0) -> np.ndarray:
    """A scene-linear render (32, 48, 3) with one light in view, its brightest pixel."""
    linear = (ramp() ** 2.2 * 3).astype(np.float32)
    linear[5, 7] = light
    return linear


def test_noise_on_a_render_gives_back_what_it_leaves_alone_and_keeps_the_light(tmp_path: Path) -> None:
    """The denoiser's render transform had scaled every pixel of this render by 0.8 and cut the light to 40."""
    linear = render()
    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION}, {"RGB": linear}).write(str(tmp_path / "lit.exr"))
    args = ["noise", str(tmp_path / "lit.exr"), "-o", str(tmp_path / "out.exr"), "--type", "saltpepper", "--seed", "0"]
    assert runner.invoke(app, args).exit_code == 0
    out = OpenEXR.File(str(tmp_path / "out.exr")).channels()["RGB"].pixels
    hit = np.any(out != linear, axis=-1)
    assert 0.03 < hit.mean() < 0.09  # salt and pepper at 0.02 on 3 channels: 5.9 % of the pixels
    assert out[5, 7].tolist() == [50.0] * 3 and out.max() == 50.0  # the light, untouched, as bright as it was
    dark = np.all(out[hit] <= linear[hit], axis=-1)  # pepper; the rest carry salt, up to the light's brightness
    assert np.abs(out[hit][~dark]).max() == pytest.approx(50.0)


@pytest.mark.parametrize("kind", ["saltpepper", "gaussian"])
def test_add_noise_on_a_render_is_what_the_cli_adds(kind: str, tmp_path: Path) -> None:
    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION}, {"RGB": render()}).write(str(tmp_path / "lit.exr"))
    args = ["noise", str(tmp_path / "lit.exr"), "-o", str(tmp_path / "out.exr"), "--type", kind, "--seed", "2"]
    assert runner.invoke(app, args).exit_code == 0
    cli = OpenEXR.File(str(tmp_path / "out.exr")).channels()["RGB"].pixels
    seed = file_seed(2, "lit.exr", images.read(tmp_path / "lit.exr").pixels)  # the name and the pixels as read
    np.testing.assert_array_equal(mdn.add_noise(render(), kind, seed=seed, hdr=True), cli)


def test_noise_on_a_float_tiff_gives_back_what_it_leaves_alone(tmp_path: Path) -> None:
    values = np.random.default_rng(1).uniform(-3, 11, (32, 48, 3)).astype(np.float32)  # stretched to [0, 1]
    tifffile.imwrite(tmp_path / "f.tif", values, photometric="rgb")
    args = ["noise", str(tmp_path / "f.tif"), "-o", str(tmp_path / "out.tif"), "--type", "saltpepper"]
    assert runner.invoke(app, args).exit_code == 0
    out = tifffile.imread(tmp_path / "out.tif")
    changed = out != values
    dots = changed & (np.isclose(out, values.min(), atol=1e-5) | np.isclose(out, values.max(), atol=1e-5))
    assert np.array_equal(changed.any(axis=-1), dots.any(axis=-1))  # the rest came back exactly, not rounded
    assert 0.03 < dots.any(axis=-1).mean() < 0.09


def test_render_transform_for_noise_is_the_plain_tone_map() -> None:
    image = images.from_array(render(), hdr=True)
    linear = image.pixels  # (1, H, W, C) planes
    transform = display_transform(image)
    shown = transform.forward(linear)
    assert shown.min() >= 0 and shown.max() < 1
    np.testing.assert_array_equal(transform.inverse(shown), linear)  # exactly, not to float rounding
    nudged = transform.inverse(shown + np.float32(1e-3))
    lit = linear > 0
    assert 1 < np.median(nudged[lit] / linear[lit]) < 1.02
    assert nudged.max() == pytest.approx(50.0)  # capped at the light
    assert transform.inverse(shown[:, ::2, ::2]).shape == (1, 16, 24, 3)  # aliased decimates


@pytest.mark.parametrize("columns", [40, 30])
def test_noise_list_keeps_the_names_users_type_whole_at_any_width(
    columns: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    screen = io.StringIO()
    monkeypatch.setattr(display, "out", Console(file=screen, width=columns, color_system=None))
    display.print_noise_types()
    lines = [line.split() for line in screen.getvalue().splitlines()]  # too narrow for the table: a block a type
    assert [line[1] for line in lines if line[:1] == ["type"]] == list(NOISE_TYPES)  # no "gaussi…"
    defaults = [line[1] for line in lines if line[:1] == ["default"]]
    assert defaults == [f"{kind.default_level:g}" for kind in NOISE_TYPES.values()]
    assert "…" not in screen.getvalue()


def test_a_decimated_picture_keeps_its_physical_size(tmp_path: Path) -> None:
    """A thumbnail's half size spans the same microns and inches with half the pixels: an ImageJ TIFF's 10 pixels
    a micron become 5, a photo's 300 dpi 150 (in every format it is written to), as an OME-XML's pixel size
    doubles."""
    grey = (np.random.default_rng(0).random((64, 48)) * 60000).astype(np.uint16)
    tifffile.imwrite(tmp_path / "cells.tif", grey, imagej=True, resolution=(10, 10), metadata={"unit": "um"})
    colour = (np.random.default_rng(1).random((64, 48, 3)) * 255).astype(np.uint8)
    PilImage.fromarray(colour).save(tmp_path / "photo.png", dpi=(300, 300))
    for source, target in (("cells.tif", "cells_small.tif"), ("photo.png", "small.jpg"), ("photo.png", "small.tif")):
        args = ["noise", str(tmp_path / source), "--type", "aliased", "-o", str(tmp_path / target)]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    with tifffile.TiffFile(tmp_path / "cells_small.tif") as tif:
        page = tif.pages[0]
        assert page.shape == (32, 24)
        assert page.tags["XResolution"].value == page.tags["YResolution"].value == (5, 1)
        assert tif.imagej_metadata["unit"] == "um"
    with PilImage.open(tmp_path / "small.jpg") as jpeg, PilImage.open(tmp_path / "small.tif") as tiff:
        assert jpeg.size == tiff.size == (24, 32)
        assert jpeg.info["dpi"] == (150, 150)
        np.testing.assert_allclose([float(d) for d in tiff.info["dpi"]], (150, 150), atol=1e-3)


@pytest.mark.parametrize(("value", "scale"), [(np.uint16(32896), 65535), (np.float32(0.5), 1), (np.float32(500), 1)])
def test_noise_on_a_flat_16_bit_or_float_field_is_zero_mean_and_whole(
    tmp_path: Path, value: np.generic, scale: int
) -> None:
    """A flat field's stretch put its value at 0: half the Gaussian noise was clipped away (mean +10, std 14.6 of
    25 on a 0-255 scale) and photon noise added nothing. A field in physical units (500) is put at 0.5, a unit
    wide."""
    flat = np.full((96, 96), value)
    tifffile.imwrite(tmp_path / "flat.tif", flat)
    for kind, level, expected in (("gaussian", 25, 25 / 255), ("photon", 10, math.sqrt(0.5 / 10))):
        out = tmp_path / f"{kind}.tif"
        args = ["noise", str(tmp_path / "flat.tif"), "-o", str(out), "-t", kind, "-l", str(level), "--threads", "1"]
        assert runner.invoke(app, args).exit_code == 0
        noise = (tifffile.imread(out).astype(np.float64) - flat.astype(np.float64)) / scale
        assert abs(noise.mean()) < 0.01 and noise.std() == pytest.approx(expected, rel=0.1), (kind, noise.std())
        assert (noise == 0).mean() < 0.05 if kind == "gaussian" else (noise < 0).mean() > 0.3, kind


def test_practical_noise_changes_every_picture_it_is_given() -> None:
    """About one draw in five took no step at all: `mdn noise --type practical` wrote the clean picture back."""
    gradient = np.broadcast_to(np.linspace(0.1, 0.9, 48, dtype=np.float32)[None, :, None], (48, 48, 3))
    same = [
        seed
        for seed in range(24)
        if np.array_equal(make_noise("practical")(gradient, np.random.default_rng(seed)), gradient)
    ]
    assert same == []
    batch = np.stack([gradient] * 12)  # a batch's pictures draw apart
    noisy = make_noise("practical")(batch, np.random.default_rng(0))
    assert not any(np.array_equal(picture, gradient) for picture in noisy)


def test_two_pictures_of_one_name_in_two_folders_get_their_own_noise(tmp_path: Path) -> None:
    """Seeded by the name alone, day1/IMG_0001.png and day2/IMG_0001.png of one shoot got the same noise field."""
    for day, grey in (("day1", 100), ("day2", 140)):
        (tmp_path / "shoot" / day).mkdir(parents=True)
        imageio.imwrite(tmp_path / "shoot" / day / "IMG_0001.png", np.full((32, 32, 3), grey, np.uint8))
    args = ["noise", str(tmp_path / "shoot"), "-r", "-o", str(tmp_path / "noisy"), "--seed", "0", "--threads", "1"]
    assert runner.invoke(app, args).exit_code == 0
    noise = [
        imageio.imread(tmp_path / "noisy" / day / "IMG_0001.png").astype(int) - grey
        for day, grey in (("day1", 100), ("day2", 140))
    ]
    assert not np.array_equal(*noise)
    again = tmp_path / "again.png"  # the same picture alone, under its name, in another run: the same noise
    assert (
        runner.invoke(app, ["noise", str(tmp_path / "shoot" / "day1" / "IMG_0001.png"), "-o", str(again)]).exit_code
        == 0
    )
    assert np.array_equal(imageio.imread(again), imageio.imread(tmp_path / "noisy" / "day1" / "IMG_0001.png"))


def test_a_noise_that_halves_a_render_keeps_its_other_channels_halved_alike(tmp_path: Path) -> None:
    """`--type aliased` on an EXR had written its beauty alone: albedo, alpha's rows, other parts gone without a
    word. Every channel of the picture's size now takes the rows and columns it kept (x[::2, ::2], odd sides too);
    what has another size is said left out."""
    rng = np.random.default_rng(3)

    def planes(*names: str, shape: tuple[int, int] = (15, 21)) -> dict[str, np.ndarray]:
        return {name: rng.random(shape, dtype=np.float32) for name in names}

    beauty = planes("R", "G", "B", "A", "albedo.R", "albedo.G", "albedo.B")
    normal = planes("normal.X", "normal.Y", "normal.Z")
    whole = (np.array([0, 0], np.int32), np.array([20, 14], np.int32))
    corner = {"dataWindow": (np.array([0, 0], np.int32), np.array([7, 7], np.int32)), "displayWindow": whole}
    parts = [OpenEXR.Part({}, dict(beauty), "rgba"), OpenEXR.Part({}, dict(normal), "normal"),
             OpenEXR.Part(corner, planes("Z", shape=(8, 8)), "depth")]  # fmt: skip
    OpenEXR.File(parts).write(str(tmp_path / "render.exr"))
    args = ["noise", str(tmp_path / "render.exr"), "-o", str(tmp_path / "thumb.exr"), "-t", "aliased", "--json",
            str(tmp_path / "r.json")]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    import json

    (report,) = json.loads((tmp_path / "r.json").read_text())["files"]
    assert report["warnings"] == ["its 1 channel of another size (Z) left out (the picture is halved)"]
    written = OpenEXR.File(str(tmp_path / "thumb.exr"), separate_channels=True).parts
    assert [part.name() for part in written] == ["rgba", "normal"]
    kept = {name: channel.pixels for part in written for name, channel in part.channels.items()}
    assert kept["R"].shape == (8, 11) and not np.array_equal(kept["R"], beauty["R"][::2, ::2])  # noisy
    for name, pixels in {**beauty, **normal}.items():
        if name not in ("R", "G", "B"):
            np.testing.assert_array_equal(kept[name], pixels[::2, ::2], err_msg=name)
