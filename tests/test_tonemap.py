"""Display transforms are invertible and fitted once on the whole image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import OpenEXR
import pytest
import tifffile
from typer.testing import CliRunner

from mdn import metrics, registry, stabilise
from mdn.cli import app
from mdn.inference import engine
from mdn.io import images, tonemap
from mdn.noise import specimens
from mdn.stabilise import Stabiliser, stabiliser_for

RNG = np.random.default_rng(3)


def _render(shape=(64, 64, 3)) -> np.ndarray:
    """Linear HDR values spanning six decades, some negative, as a path tracer's film may hold."""
    return (10.0 ** RNG.uniform(-3, 3, size=shape) * RNG.choice([1, 1, 1, -1], size=shape)).astype(np.float64)


def test_tonemap_inverse_recovers_linear_values() -> None:
    x = _render()
    transform = tonemap.ToneMap.fit(x)
    np.testing.assert_allclose(transform.inverse(transform.forward(x)), x, rtol=1e-5)


def test_tonemap_float32_roundtrip_within_display_precision() -> None:
    x = _render().astype(np.float32) / 100
    transform = tonemap.ToneMap.fit(x)
    np.testing.assert_allclose(transform.inverse(transform.forward(x)), x, rtol=1e-4, atol=1e-9)


def test_tonemap_maps_into_display_range_monotonically() -> None:
    x = np.abs(_render())
    grey = np.repeat(x[..., :1], 3, axis=-1)
    y = tonemap.ToneMap.fit(x).forward(grey)
    assert y.min() >= 0 and y.max() < 1
    order = np.argsort(grey[..., 0], axis=None)
    assert np.all(np.diff(y[..., 0].ravel()[order]) >= 0)
    assert np.array_equal(np.argsort(tonemap.ToneMap.fit(x).forward(x), axis=-1), np.argsort(x, axis=-1))


def test_tonemap_exposure_is_fitted_on_the_whole_image() -> None:
    x = np.abs(_render())
    whole = tonemap.ToneMap.fit(x)
    assert tonemap.ToneMap.fit(x[:8]).exposure != whole.exposure
    key = np.exp(np.mean(np.log(whole.exposure * x.mean(axis=-1) + 1e-6 * whole.exposure)))
    assert abs(key - 0.18) < 1e-3


def test_stretch_maps_image_range_onto_unit_interval_and_back() -> None:
    x = RNG.uniform(0.01, 0.07, size=(32, 32, 1)).astype(np.float32)
    transform = tonemap.Stretch.fit(x)
    y = transform.forward(x)
    assert y.min() == 0.0 and abs(y.max() - 1.0) < 1e-6
    np.testing.assert_allclose(transform.inverse(y), x, rtol=1e-6)


def test_fit_chooses_by_image_kind(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "cells.tif", RNG.integers(100, 4000, size=(16, 16)).astype(np.uint16))
    tifffile.imwrite(tmp_path / "photo.tif", RNG.integers(0, 255, size=(16, 16, 3)).astype(np.uint8))
    channels = {c: RNG.random((8, 8)).astype(np.float16) for c in "RGB"}
    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION}, channels).write(str(tmp_path / "render.exr"))
    assert isinstance(tonemap.fit(images.read(tmp_path / "cells.tif")), tonemap.Stretch)
    assert isinstance(tonemap.fit(images.read(tmp_path / "photo.tif")), tonemap.Identity)
    assert isinstance(tonemap.fit(images.read(tmp_path / "render.exr")), tonemap.RenderTransform)


def test_uint16_stretch_roundtrip_is_exact_after_rounding(tmp_path: Path) -> None:
    raw = RNG.integers(200, 3000, size=(20, 20)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "in.tif", raw)
    image = images.read(tmp_path / "in.tif")
    transform = tonemap.fit(image)
    restored = image.with_pixels(transform.inverse(transform.forward(image.pixels)))
    images.write(restored, tmp_path / "out.tif")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), raw)


def test_tonemap_inverse_never_exceeds_the_images_peak() -> None:
    x = np.abs(_render())
    transform = tonemap.ToneMap.fit(x)
    overshoot = transform.forward(x) * 1.05
    assert transform.inverse(overshoot).max() <= x.max()
    assert np.isfinite(transform.inverse(np.full(3, 1.5))).all()


def _synthetic_render(shape: tuple[int, int] = (96, 96)) -> tuple[np.ndarray, np.ndarray]:
    """A clean linear HDR scene (a wall in warm light rising from 0.2 to 12, a warm light, a blue object) and a
    Monte Carlo-like noisy render of it: each pixel the mean of 8 exponential samples, heavy-tailed as few
    samples per pixel are."""
    height, width = shape
    ramp = np.geomspace(0.2, 12.0, width)[None, :, None] * np.ones((height, 1, 1))
    clean = ramp * np.array([1.0, 0.8, 0.6])
    clean[10:30, 10:40] = [16.0, 11.0, 5.0]
    clean[60:85, 20:60] = np.array([0.1, 0.2, 0.6]) * ramp[60:85, 20:60]
    noisy = clean * RNG.exponential(1.0, (8, *clean.shape)).mean(axis=0)
    return clean[None].astype(np.float32), noisy[None].astype(np.float32)


def test_the_render_tone_map_round_trip_keeps_values_and_hue() -> None:
    clean, _ = _synthetic_render()
    transform = tonemap.RenderTransform.fit(clean)
    display = transform.forward(clean)
    assert display.min() >= 0 and display.max() < 1
    np.testing.assert_allclose(transform.inverse(display), clean, rtol=1e-4)
    darker = transform.tonemap.inverse(display * np.float32(0.97))  # a network's error in display range
    np.testing.assert_allclose(darker / darker[..., 1:2], clean / clean[..., 1:2], rtol=1e-4)


def test_a_denoised_render_beats_its_input_and_a_plain_pass_and_keeps_whites_white() -> None:
    """Against the input in relative MSE, and against a plain pass of the same card on the tone-mapped image."""
    clean, noisy = _synthetic_render()
    denoiser = engine.Engine(registry.load(registry.find(None)), engine.EngineOptions(device="cpu"))
    transform = tonemap.RenderTransform.fit(noisy)
    shown = denoiser(transform.forward(noisy))
    out = transform.inverse(shown)

    def relative_mse(x: np.ndarray) -> float:
        return float(np.mean((x - clean) ** 2 / (clean**2 + 1e-2)))

    assert relative_mse(out) < relative_mse(noisy) / 2
    display = transform.tonemap.forward
    assert metrics.psnr(display(out)[0], display(clean)[0]) >= metrics.psnr(shown[0], display(clean)[0])
    wall = np.isclose(clean[0, ..., 2] / clean[0, ..., 0], 0.6) & (clean[0, ..., 0] > 1.0)  # bright, warm white
    red, green, blue = out[0][wall].mean(axis=0)
    assert abs(green / red / 0.8 - 1) < 0.02 and abs(blue / red / 0.6 - 1) < 0.02


def test_a_render_comes_back_no_brighter_than_its_own_pixels_nearby() -> None:
    """A dark render with one firefly, exposed so that its lit floor sits near white: a network's overshoot to
    white there would come back at the firefly's value (the image's peak); bounded, every pixel stays within the
    brightest input pixel of its 5 x 5 square, and the firefly's own square may still reach it."""
    floor = np.full((40, 40, 3), 0.05)
    floor[:, :30] = 1e-5  # most of the picture near black: a large exposure
    floor[20, 35] = 30.0
    transform = tonemap.RenderTransform.fit(floor)
    assert transform.forward(np.full((1, 1, 3), 0.05)).max() > 0.95
    white = np.full_like(floor, 1.0)
    out = transform.inverse(white)
    brightest = tonemap.local_max(floor.max(axis=-1), 2)
    assert (out.max(axis=-1) <= brightest * (1 + 1e-6)).all()
    assert out[0, 35].max() == pytest.approx(0.05) and out[20, 35].max() > 1.0
    unbounded = transform.tonemap.inverse(white) * tonemap.MEAN_LIMIT**-1  # the means restored, no bound
    assert unbounded[0, 35].max() == pytest.approx(30.0 / tonemap.MEAN_LIMIT)  # what the inverse gave before


def test_a_headroom_lowers_the_exposure_of_a_render_with_bright_lit_parts_alone(tmp_path: Path) -> None:
    """A box seen from black: the log-average exposure puts its lit floor far past white (x 179 here); with a
    headroom of 8 the 95th percentile of brightness maps to 8, and a card that keeps a headroom in its
    `transform` gets its EXR fitted so; an evenly lit render keeps its exposure, and so does one with its light
    in view (1 % of the frame, as in a Cornell box)."""
    box = np.full((40, 40, 3), 1e-4)
    box[:, 30:] = 1.0
    plain, roomy = tonemap.ToneMap.fit(box), tonemap.ToneMap.fit(box, headroom=8.0)
    assert plain.exposure > 150 and roomy.exposure == pytest.approx(8.0)
    assert roomy.forward(np.ones((1, 1, 3)))[0, 0, 0] < 0.96 < plain.forward(np.ones((1, 1, 3)))[0, 0, 0]
    even = RNG.uniform(0.5, 1.5, (40, 40, 3))
    assert tonemap.ToneMap.fit(even, headroom=8.0) == tonemap.ToneMap.fit(even)
    lit = even.copy()
    lit[:4, :4] = 500.0
    assert tonemap.ToneMap.fit(lit, headroom=8.0) == tonemap.ToneMap.fit(lit)
    # the same light bounded at the 99.5th percentile instead (as render training may ask): the light maps to 8
    darker = tonemap.ToneMap.fit(lit, headroom=8.0, percentile=99.5)
    assert darker.exposure == pytest.approx(8.0 / 500.0) and darker.exposure < tonemap.ToneMap.fit(lit).exposure / 10
    path = tmp_path / "box.exr"
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, {"RGB": box.astype(np.float32)}) as exr:
        exr.write(str(path))
    fitted = tonemap.fitter({"headroom": 8.0})(images.read(path))
    assert isinstance(fitted, tonemap.RenderTransform) and fitted.tonemap.exposure == pytest.approx(8.0, rel=1e-3)
    assert not tonemap.is_camera({"headroom": 8.0})


def _micrograph(tmp_path: Path, frames: int = 2, size: int = 96) -> tuple[Path, np.ndarray]:
    """A 16-bit sCMOS recording of a procedural specimen (64 counts per photon, read noise 20) and its signal."""
    clean = specimens.fluorescence_stack(frames, size, seed=5151)
    camera = specimens.Microscope(counts_per_photon=64.0)
    path = tmp_path / "cells.tif"
    tifffile.imwrite(path, camera.record(clean, np.random.default_rng(5152)), photometric="minisblack")
    return path, camera.signal(clean).astype(np.float64)


def test_a_noisy_grey_16_bit_file_is_stabilised_for_a_denoiser_and_other_kinds_are_not(tmp_path: Path) -> None:
    """Photon noise in a grey 16-bit file gets the transform fitted to it (the camera's gain found within 15 %,
    values kept in order, the noise as strong in the dark as in the light after it: within 15 %, against 3x in
    the counts); colour 16-bit and 8-bit files get `fit`'s."""
    path, signal = _micrograph(tmp_path)
    image = images.read(path)
    transform = tonemap.fit_noisy(image)
    assert isinstance(transform, Stabiliser)
    assert abs(transform.noise.gain * 65535 / 64 - 1) < 0.15
    assert (np.diff(transform.forward(np.linspace(0, 1, 1000, dtype=np.float32))) > 0).all()
    truth = (signal / 65535).astype(np.float32)[..., None]
    dark, light = truth < np.percentile(truth, 30), truth > np.percentile(truth, 90)
    counts = image.pixels - truth
    assert counts[light].std() > 2.5 * counts[dark].std()
    even = transform.forward(image.pixels) - transform.forward(truth)
    assert abs(even[light].std() / even[dark].std() - 1) < 0.15
    tifffile.imwrite(tmp_path / "colour.tif", RNG.integers(100, 4000, size=(32, 32, 3)).astype(np.uint16))
    tifffile.imwrite(tmp_path / "photo.tif", RNG.integers(0, 255, size=(32, 32)).astype(np.uint8))
    assert isinstance(tonemap.fit_noisy(images.read(tmp_path / "colour.tif")), tonemap.Stretch)
    assert isinstance(tonemap.fit_noisy(images.read(tmp_path / "photo.tif")), tonemap.Identity)
    assert tonemap.fitter({}) is tonemap.fit_noisy


def test_the_default_denoises_photon_noise_better_stabilised_than_stretched(tmp_path: Path, monkeypatch) -> None:
    """The same 16-bit micrograph through `mdn denoise`, stabilised (as it runs) and stretched (as before): the
    stabilised run is at least 1 dB closer to the signal (1.56 here, 3.2 on held-out stacks, docs/microscopy.md),
    and its report gives the camera's gain in counts per photon."""
    path, signal = _micrograph(tmp_path, frames=1, size=128)
    scores = {}
    for name in ("stabilised", "stretched"):
        if name == "stretched":
            monkeypatch.setattr(tonemap, "fit_noisy", tonemap.fit)
        out, report = tmp_path / f"{name}.tif", tmp_path / f"{name}.json"
        arguments = ["denoise", str(path), "-o", str(out), "--threads", "1", "-q", "--json", str(report)]
        result = CliRunner().invoke(app, arguments)
        assert result.exit_code == 0, result.output
        noise = json.loads(report.read_text())["files"][0]["info"].get("photon_noise")
        if name == "stabilised":
            assert 64 * 0.85 < noise["gain"] < 64 * 1.15 and noise["offset"] > 0  # counts per photon, read noise²
        else:
            assert noise is None
        error = tifffile.imread(out).astype(np.float64) - signal[0]
        scores[name] = 10 * np.log10(np.ptp(signal) ** 2 / np.mean(error**2))
    assert scores["stabilised"] > scores["stretched"] + 1.0, scores


def test_a_large_recording_is_fitted_from_a_few_evenly_spaced_planes() -> None:
    """Fitting 40 planes of 1024² (42 M pixels) reads 4 of them (the first and last among them), each once, and
    finds the camera's gain from them."""
    rng = np.random.default_rng(7)
    signal = np.linspace(0.05, 0.9, 1024, dtype=np.float32)[None].repeat(1024, axis=0)

    reads: list[int] = []

    class Recording(list):
        def __getitem__(self, index):
            reads.append(index)
            return (rng.poisson(signal * 2000) / 2000).astype(np.float32)

        def __len__(self) -> int:
            return 40

    transform = stabiliser_for(Recording())
    assert sorted(reads) == [0, 13, 26, 39]
    assert transform is not None and abs(transform.noise.gain * 2000 - 1) < 0.15


def test_a_large_plane_is_fitted_from_crops_of_it(monkeypatch) -> None:
    """A plane past LARGE_PLANE pixels is read as 16 evenly spread crops of FIT_PIXELS in all (a lazy volume
    plane reads no more), which find the camera's gain as the whole plane does."""
    monkeypatch.setattr(stabilise, "FIT_PIXELS", 250_000)
    monkeypatch.setattr(stabilise, "LARGE_PLANE", 1_000_000)
    rng = np.random.default_rng(8)
    signal = np.linspace(0.05, 0.9, 1400, dtype=np.float32)[None].repeat(1200, axis=0)
    plane = (rng.poisson(signal * 2000) / 2000).astype(np.float32)
    regions: list[tuple[slice, slice]] = []

    class Lazy:
        shape = plane.shape
        size = plane.size

        def __getitem__(self, region):
            regions.append(region)
            return plane[region]

    transform = stabiliser_for([Lazy()])
    assert len(regions) == 16 and sum(plane[r].size for r in regions) <= 250_000
    assert len({r[1].start for r in regions}) == 4 and min(r[1].start for r in regions) < 200 < 1200 < max(
        r[1].stop for r in regions
    )
    monkeypatch.setattr(stabilise, "LARGE_PLANE", plane.size)
    whole = stabiliser_for([plane])
    assert transform is not None and whole is not None
    assert abs(transform.noise.gain / whole.noise.gain - 1) < 0.05 and abs(transform.noise.gain * 2000 - 1) < 0.15


def _two_detectors(rng: np.random.Generator) -> np.ndarray:
    """Two channels of one field from two detectors: dim at 2 counts a photon, bright at 60."""
    y, x = np.mgrid[0:64, 0:64]
    blobs = sum(np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 40.0) for cx, cy in rng.uniform(8, 56, (10, 2)))
    dim = rng.poisson((100 + 300 * blobs) / 2) * 2 + rng.normal(0, 5, blobs.shape)
    bright = rng.poisson((1000 + 40000 * blobs) / 60) * 60 + rng.normal(0, 50, blobs.shape)
    return np.clip(np.stack([dim, bright]), 0, 65535).astype(np.uint16)


def test_each_channel_of_a_stack_is_fitted_and_denoised_as_if_alone(tmp_path: Path) -> None:
    """One fit over both channels took the bright detector's gain for the dim one: its output came out 5 dB worse
    than its noisy input. Each channel now gets its own transform, and the same result as in a file of its own."""
    channels = _two_detectors(np.random.default_rng(1))
    tifffile.imwrite(tmp_path / "hyper.tif", channels[None], imagej=True, metadata={"axes": "ZCYX"})
    image = images.read(tmp_path / "hyper.tif")
    assert image.source.layout.channel_of_planes().tolist() == [0, 1]
    transform = tonemap.fit_noisy(image)
    gains = [noise["gain"] for noise in tonemap.photon_noise(transform, np.dtype(np.uint16))]
    assert len(gains) == 2 and 1.5 < gains[0] < 2.5 and gains[1] > 15
    result = CliRunner().invoke(app, ["denoise", str(tmp_path / "hyper.tif"), "-o", str(tmp_path / "out.tif")])
    assert result.exit_code == 0, result.output
    together = tifffile.imread(tmp_path / "out.tif").reshape(2, 64, 64)
    for index, channel in enumerate(channels):
        tifffile.imwrite(tmp_path / f"alone{index}.tif", channel)
        alone = CliRunner().invoke(
            app, ["denoise", str(tmp_path / f"alone{index}.tif"), "-o", str(tmp_path / f"a{index}.tif")]
        )
        assert alone.exit_code == 0, alone.output
        np.testing.assert_array_equal(together[index], tifffile.imread(tmp_path / f"a{index}.tif"))


def test_an_empty_channel_takes_the_stacks_range(tmp_path: Path) -> None:
    """A channel of one value has no range of its own: fitted alone it spanned the whole 16-bit range, and noise
    added through it was 20 times the signal channel's."""
    signal = np.tile(np.linspace(1000, 3000, 64), (64, 1)).astype(np.uint16)
    tifffile.imwrite(
        tmp_path / "two.tif", np.stack([signal, np.zeros_like(signal)]), imagej=True, metadata={"axes": "CYX"}
    )
    image = images.read(tmp_path / "two.tif")
    transform = tonemap.fit(image)
    whole, signal_alone = (tonemap.Stretch.fit(pixels) for pixels in (image.pixels, image.pixels[:1]))
    assert transform.transforms == (signal_alone, whole)  # the empty channel the stack's range, as before channels
    assert whole.low == 0 and signal_alone.low == pytest.approx(1000 / 65535)
    result = CliRunner().invoke(app, ["noise", str(tmp_path / "two.tif"), "-o", str(tmp_path / "n.tif")])
    assert result.exit_code == 0, result.output
    noisy = tifffile.imread(tmp_path / "n.tif").reshape(2, 64, 64).astype(float)
    assert noisy[1].std() < 3 * (noisy[0] - signal).std()


def test_a_robust_stretch_leaves_hot_and_dead_pixels_out_of_the_range_and_a_sparse_image_in_it() -> None:
    rng = np.random.default_rng(5)
    planes = list(rng.uniform(0.02, 0.05, (3, 64, 64, 1)).astype(np.float32))
    planes[1][5, 6] = 1.0  # a hot pixel
    planes[2][7, 8] = 0.0  # a dead one
    stretch = tonemap.Stretch.robust(planes)
    span = 0.03  # the percentiles', widened by a quarter of it each way (the noise's tails stay in range)
    assert stretch.low == pytest.approx(0.02 - span / 4, abs=2e-4)
    assert stretch.high == pytest.approx(0.05 + span / 4, abs=2e-4)
    assert tonemap.Stretch.fit(np.stack(planes)) == tonemap.Stretch(0.0, 1.0)  # the full range: the rest in 3 %
    assert tonemap.Stretch.robust(planes[:1]) == tonemap.Stretch.fit(planes[0])  # no outliers: the full range
    sparse = np.zeros((1, 64, 64, 1), np.float32)
    sparse[0, 2, 3] = 0.25  # one bright pixel on a dark field: the percentiles meet, and the full range is taken
    assert tonemap.Stretch.robust(list(sparse)) == tonemap.Stretch(0.0, 0.25)
