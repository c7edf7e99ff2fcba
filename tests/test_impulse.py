"""Impulses filled before the network: salt and pepper found and filled, next to nothing taken from clean pictures
or from heavy noise of other kinds, a dot in every colour channel at once kept, and the default's gain on grey
salt and pepper brought to what it gains on colour."""

from __future__ import annotations

import numpy as np
import pytest

import mdn
from mdn import bench, registry
from mdn.inference.engine import Engine, EngineOptions, grey_in_colour
from mdn.metrics import psnr
from mdn.noise import make_noise
from mdn.stages import impulse
from mdn.stages.impulse import fill_impulses


@pytest.fixture(scope="module")
def grey() -> dict[str, np.ndarray]:
    return bench.load_references(None, grey=True)


def noisy(picture: np.ndarray, kind: str, level: float, seed: int = 0) -> np.ndarray:
    return make_noise(kind, level)(picture, np.random.default_rng(seed))


@pytest.mark.parametrize("density", [0.002, 0.05])
def test_salt_and_pepper_is_found_and_filled(grey: dict[str, np.ndarray], density: float) -> None:
    for name, clean in grey.items():
        dotted = noisy(clean, "saltpepper", density)
        wrong = np.abs(dotted - clean) > 0.25  # the impulses that matter
        filled, count = fill_impulses(dotted)
        error = np.abs(filled - clean)[wrong]
        assert np.mean(error < 0.15) > 0.8 and error.mean() < 0.1, name
        assert count <= (dotted != clean).sum(), name  # nothing filled that was no impulse
        assert psnr(filled, clean) > psnr(dotted, clean) + 10, name
        assert filled is not dotted and not np.shares_memory(filled, dotted)


def test_clean_pictures_and_other_noises_keep_their_pixels(grey: dict[str, np.ndarray]) -> None:
    colour = bench.load_references(None)
    for name in grey:
        for picture in (grey[name], colour[name]):
            same, count = fill_impulses(picture)
            assert count <= 8 and np.mean(same != picture) <= 8 / picture.size, name
            for kind, level in (("gaussian", 50), ("poisson", 3.5), ("speckle", 0.04)):
                heavy = noisy(picture, kind, level)
                assert fill_impulses(heavy)[1] <= 1e-3 * heavy.size, (name, kind)


def test_a_clipped_highlight_and_a_hard_edge_are_no_impulses() -> None:
    picture = np.zeros((64, 64, 1), dtype=np.float32)
    picture[:, 32:] = 1.0  # a black and white edge
    picture[8:12, 8:12] = 1.0  # a small clipped highlight on black
    picture[40, :] = 1.0  # a one-pixel white line across
    same, count = fill_impulses(picture)
    assert count == 0 and same is picture


def test_colour_keeps_a_dot_in_every_channel_and_fills_one_in_a_channel() -> None:
    picture = np.full((32, 32, 3), 0.4, dtype=np.float32)
    picture[10, 10] = 1.0  # a white point of light: every channel at once
    picture[20, 20, 1] = 0.0  # a green pepper dot alone
    filled, count = fill_impulses(picture)
    assert count == 1
    np.testing.assert_array_equal(filled[10, 10], 1.0)
    np.testing.assert_allclose(filled[20, 20], 0.4)
    grey_dot = np.full((32, 32, 1), 0.4, dtype=np.float32)
    grey_dot[10, 10] = 1.0
    assert fill_impulses(grey_dot)[1] == 1  # grey has no channels to tell it by


def test_fills_from_farther_neighbours_where_the_nearest_are_impulses() -> None:
    plane = np.full((32, 32), 0.3, dtype=np.float32)
    plane[14:17, 14:17] = 1.0
    plane[20, 20] = 0.0
    plane[21, 20] = 0.9  # the one clean neighbour of (20, 20): its fill
    where = np.flatnonzero((plane == 0) | (plane == 1))  # the 3x3 block's centre has no clean neighbour within 1
    out = plane.copy()
    filled, values = impulse._fill(plane, where)
    assert sorted(filled) == sorted(where)
    out.flat[filled] = values
    np.testing.assert_allclose(out[14:17, 14:17], 0.3)
    assert out[20, 20] == pytest.approx(0.3)  # the median of its eight: seven at 0.3, one at 0.9


def test_the_engine_fills_impulses_in_its_input_and_puts_them_back(grey: dict[str, np.ndarray]) -> None:
    """The fills go into the caller's float32 planes for the run (no second copy of the picture) and the planes
    end as they came; a read-only input is filled in a copy, with the same result."""
    dotted = noisy(grey["kodim23"], "saltpepper", 0.02)[None].astype(np.float32)
    before = dotted.copy()
    options = EngineOptions(impulses=True)
    engine = Engine(registry.load(registry.find("unet")), options)
    out = engine(dotted)
    assert engine.impulses_filled > 100
    np.testing.assert_array_equal(dotted, before)
    dotted.flags.writeable = False
    np.testing.assert_array_equal(engine(dotted), out)


def test_the_default_removes_grey_salt_and_pepper(grey: dict[str, np.ndarray]) -> None:
    clean = grey["kodim23"]
    dotted = noisy(clean, "saltpepper", 0.02)
    info: dict = {}
    with_stage = mdn.denoise(dotted, threads=2, info=info)
    without = mdn.denoise(dotted, impulses=False, threads=2)
    assert info["impulses"] > 0.9 * np.sum(np.abs(dotted - clean) > 0.25)
    assert psnr(with_stage, clean) > psnr(without, clean) + 8
    assert psnr(with_stage, clean) > psnr(dotted, clean) + 12


def test_a_grey_picture_stored_in_colour_is_denoised_as_grey(grey: dict[str, np.ndarray]) -> None:
    """Three equal channels (a scanner's RGB file of a grey picture) run the grey path: the impulses found, the
    same pixels in every channel as the picture read as grey; a picture one pixel off grey stays colour."""
    clean = grey["kodim23"]
    dotted = noisy(clean, "saltpepper", 0.02)
    as_grey = mdn.denoise(dotted, threads=2)
    as_colour = mdn.denoise(np.repeat(dotted, 3, axis=-1), threads=2)
    assert as_colour.shape == (*dotted.shape[:-1], 3)
    for channel in range(3):
        np.testing.assert_array_equal(as_colour[..., channel], as_grey[..., 0])
    assert psnr(as_colour[..., :1], clean) > psnr(dotted, clean) + 12
    tinted = np.repeat(dotted, 3, axis=-1)
    tinted[0, 0, 2] = min(1.0, tinted[0, 0, 2] + 0.01)
    assert not grey_in_colour(tinted) and grey_in_colour(np.repeat(dotted, 3, axis=-1))
