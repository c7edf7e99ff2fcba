"""Tests for the pure helpers of scripts/photo_data.py."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[1] / "scripts" / "photo_data.py"
_SPEC = importlib.util.spec_from_file_location("photo_data", _PATH)
photo_data = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(photo_data)


@pytest.mark.parametrize(
    ("size", "factor"), [((800, 600), 2), ((2560, 1600), 2), ((3840, 2160), 3), ((5120, 2880), 4), ((6028, 3391), 4)]
)
def test_choose_factor(size, factor):
    assert photo_data.choose_factor(*size) == factor
    assert max(size) / factor <= photo_data.MAX_SIDE


def test_box_downscale_averages_blocks_and_crops():
    img = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    out = photo_data.box_downscale(img, 2)
    assert out.shape == (2, 3, 3)
    np.testing.assert_allclose(out[1, 2], img[2:4, 4:6].reshape(-1, 3).mean(axis=0))


@pytest.mark.parametrize("sigma", [2.0, 5.0, 15.0])
def test_noise_sigma_on_gaussian_noise(sigma):
    rng = np.random.default_rng(0)
    flat = np.full((256, 256, 3), 128.0) + rng.normal(0, sigma, (256, 256, 1))
    assert photo_data.noise_sigma(flat) == pytest.approx(sigma, rel=0.1)


def test_noise_sigma_ignores_smooth_ramp():
    ramp = np.add.outer(np.arange(200.0), np.arange(300.0)) / 3
    assert photo_data.noise_sigma(ramp) < 1e-9


def test_bench_guard():
    for name in ("usr/share/x/astronaut.png", "a/Kodim23.jpg", "barbara.png"):
        with pytest.raises(ValueError):
            photo_data.check_not_bench(name)
    photo_data.check_not_bench("usr/share/backgrounds/mate/nature/Aqua.jpg")


def test_licence_for_dep5_and_plain():
    dep5 = "Format: x\n\nFiles: *\nLicense: GPL-2+\n\nFiles: 16.04/Bridge.jpg\nLicense: CC-BY-SA-4.0\n"
    assert photo_data.licence_for(dep5, "usr/share/backgrounds/Bridge.jpg") == "CC-BY-SA-4.0"
    assert photo_data.licence_for(dep5, "usr/share/backgrounds/Other.jpg") == "GPL-2+"
    plain = "Copyright: someone\n\nThis is licensed under the GNU GPL version 2.\n"
    assert photo_data.licence_for(plain, "a.jpg") == "This is licensed under the GNU GPL version 2."


def test_output_names_are_unique():
    names = [photo_data.output_name(pkg, path) for pkg, paths in photo_data.ALLOW_LIST.items() for path in paths]
    assert len(set(names)) == len(names)
    kite = photo_data._PLASMA.format("Kite")
    assert photo_data.output_name("plasma-workspace-wallpapers", kite) == "plasma-workspace-wallpapers__Kite.png"
