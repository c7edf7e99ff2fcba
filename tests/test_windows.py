"""The stages of a plane too large to hold them whole, window by window: each window's margin is wide enough
that the result is the whole plane's given the same statistics, and any region gets the same pixels."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from mdn import bench, registry
from mdn.inference import cards
from mdn.inference.engine import Engine
from mdn.inference.tiling import TileGrid
from mdn.metrics import psnr
from mdn.noise import make_noise
from mdn.stages import detail, impulse, wiener, windows


def _clean(channels: int) -> np.ndarray:
    """A 400 x 380 picture: barbara (256 x 256) reflected."""
    clean = bench.load_references([str(bench.SAMPLES / "barbara.png")])["barbara"]
    clean = np.pad(clean, ((0, 144), (0, 124), (0, 0)), mode="reflect")
    return clean if channels == 3 else clean.mean(axis=-1, keepdims=True)


def _picture(channels: int) -> tuple[np.ndarray, np.ndarray]:
    """The picture with Gaussian noise and salt and pepper, and a blurred pilot of it (a network's smoothed
    output)."""
    noisy = make_noise("gaussian", 20)(_clean(channels), np.random.default_rng(0)).astype(np.float32)
    salt = np.random.default_rng(1).random(noisy.shape[:2]) < 0.002
    noisy[salt] = 1.0
    pilot = gaussian_filter(noisy, sigma=(1.2, 1.2, 0)).astype(np.float32)
    return noisy, pilot


def _slicer(plane: np.ndarray) -> windows.Reader:
    return lambda rows, columns: plane[rows, columns]


def _boxes(size: tuple[int, int], tile: int = 128) -> list[windows.Box]:
    """Sample boxes in the engine's tiles of at most `tile` pixels."""
    grid = TileGrid.cover(*size, tile, 32)
    return windows.sample_boxes(grid.rows, grid.columns, grid.size, size)


@pytest.mark.parametrize("channels", [1, 3])
def test_windows_give_the_whole_planes_stages_given_the_same_statistics(monkeypatch, channels: int) -> None:
    """Windows of 128 pixels with their margins: the texture and Wiener stages of the whole plane with the same
    statistics to float rounding, where windows without a margin leave seams."""
    noisy, pilot = _picture(channels)
    search = wiener.search_for("balanced", channels)
    statistics = windows.measure(
        _slicer(noisy), _slicer(pilot), noisy.shape[:2], _boxes(noisy.shape[:2]), search, "cpu"
    )
    whole = detail.restore_detail(noisy, pilot, noise=statistics.detail)
    wiener.collaborative_wiener(noisy, whole, out=whole, search=search, noises=statistics.wiener)
    windowed = pilot.copy()
    windows.refine_plane(noisy, windowed, statistics, search, "cpu", 128)
    assert np.abs(windowed - whole).max() < 1e-4
    assert np.abs(windowed - pilot).mean() > 0.01  # the stages did work
    monkeypatch.setattr(windows, "MARGIN", 0)
    seams = pilot.copy()
    windows.refine_plane(noisy, seams, statistics, search, "cpu", 128)
    assert np.abs(seams - whole).max() > 0.05


def test_any_region_gets_the_same_pixels() -> None:
    noisy, pilot = _picture(3)
    search = wiener.search_for("balanced", 3)
    statistics = windows.measure(
        _slicer(noisy), _slicer(pilot), noisy.shape[:2], _boxes(noisy.shape[:2]), search, "cpu"
    )
    plane = pilot.copy()
    windows.refine_plane(noisy, plane, statistics, search, "cpu", 128)
    for rows, columns in [
        (slice(0, 400), slice(0, 380)),
        (slice(37, 251), slice(118, 380)),
        (slice(399, 400), slice(0, 5)),
    ]:
        region = windows.refine(
            _slicer(noisy), _slicer(pilot), (400, 380), rows, columns, statistics, search, "cpu", 128
        )
        assert np.array_equal(region, plane[rows, columns])


def test_statistics_from_sample_boxes_are_the_whole_planes_within_a_few_percent() -> None:
    """The noise measured on 9 boxes of a plane, as on the whole plane: per frequency within 5 % on average (the
    boxes hold more or less of the stripes), the impulse threshold within 10 %; and a region's impulses filled
    by the plane's thresholds are the whole plane's."""
    noisy, pilot = _picture(1)
    big = np.tile(noisy, (3, 3, 1))  # 1200 x 1140: 9 boxes of 201 (half a tile) cover a quarter
    boxes = _boxes(big.shape[:2], 512)
    statistics = windows.measure(_slicer(big), _slicer(np.tile(pilot, (3, 3, 1))), big.shape[:2], boxes, None, "cpu")
    residual = detail.padded(noisy[..., 0] - pilot[..., 0], "cpu")
    whole = detail.Noise.measure(residual, detail.patch_sums(detail.padded(pilot[..., 0], "cpu"), detail.STRIDE))
    assert np.abs(statistics.detail.sigma.numpy() / whole.sigma.numpy() - 1).mean() < 0.05
    thresholds = windows.impulse_thresholds(_slicer(big), boxes, 1)
    own = impulse.threshold(impulse.sampled_roads(big[..., 0]))
    assert abs(thresholds[0] / own - 1) < 0.1
    filled = big.copy()
    impulse.apply_fills(filled, impulse.impulse_fills(big, thresholds))
    assert (filled != big).sum() > 100
    read = windows.filled(_slicer(big), big.shape[:2], thresholds)
    assert np.array_equal(read(slice(300, 520), slice(17, 400)), filled[300:520, 17:400])


def test_a_grey_planes_kept_noise_from_sample_boxes_is_the_whole_planes() -> None:
    """A grey pilot that kept half the noise: the ratio the Wiener stage reads from it (`wiener.kept_noise`), on 9
    sample boxes as on the whole plane within 5 %; none where a share of KEPT_IMPULSES was filled as impulses."""
    clean = _clean(1)
    noisy = make_noise("gaussian", 10)(clean, np.random.default_rng(0)).astype(np.float32)
    pilot = (clean + 0.5 * (noisy - clean)).astype(np.float32)
    big, big_pilot = np.tile(noisy, (3, 3, 1)), np.tile(pilot, (3, 3, 1))
    boxes, search = _boxes(big.shape[:2], 512), wiener.search_for("balanced", 1)
    measured = windows.measure(_slicer(big), _slicer(big_pilot), big.shape[:2], boxes, search, "cpu")
    texture = detail.restore_detail(noisy, pilot)
    brightness = detail.patch_sums(detail.padded(texture[..., 0], "cpu"), detail.STRIDE)
    noisy_noise, residual_noise = (
        detail.Noise.measure(detail.padded(plane, "cpu"), brightness)
        for plane in (noisy[..., 0], (noisy - texture)[..., 0])
    )
    whole = wiener.kept_noise(noisy_noise, residual_noise)
    assert whole > wiener.KEPT_FROM and abs(measured.wiener.kept / whole - 1) < 0.05
    filled = windows.measure(
        _slicer(big), _slicer(big_pilot), big.shape[:2], boxes, search, "cpu", impulses_filled=wiener.KEPT_IMPULSES
    )
    assert filled.wiener.kept == 1.0


def test_the_engine_gives_a_large_colour_planes_regions_as_it_gives_the_plane(monkeypatch) -> None:
    """The default on a colour picture with salt and pepper that runs its stages window by window: the file
    path (the whole plane in memory) and regions of it read from elsewhere (as a volume's units) agree bit for
    bit, and the result stays as good as the whole plane's stages."""
    noisy, _ = _picture(3)
    model = registry.load_model("unet-dct-practical")
    options = cards.options(model.card, tile=128)
    whole = Engine(model.net, options)(noisy[None])[0]
    monkeypatch.setattr(windows, "BYTES_PER_PIXEL", 1 << 20)
    monkeypatch.setattr(windows, "window_for", lambda budget: 128)
    engine = Engine(model.net, options)
    assert options.windowed(noisy.shape)
    plane = engine(noisy[None])[0]
    read = _slicer(noisy)
    statistics = engine.plane_statistics(read, noisy.shape)
    for rows, columns in [(slice(100, 300), slice(50, 380)), (slice(0, 400), slice(0, 130))]:
        assert np.array_equal(
            engine.refined_region(read, noisy.shape, rows, columns, 0, statistics), plane[rows, columns]
        )
    clean = _clean(3)
    assert abs(psnr(plane, clean) - psnr(whole, clean)) < 0.05 and psnr(plane, clean) > psnr(noisy, clean) + 5
