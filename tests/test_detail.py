"""The stages after the network: texture put back from what it removed (gained where it was smoothed, nothing
added where it was not), then collaborative Wiener filtering with its output as pilot (noise taken out where
patches repeat, nothing put back)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

import mdn
from mdn import bench
from mdn.errors import MdnError
from mdn.metrics import psnr
from mdn.noise import make_noise, specimens
from mdn.stages import detail, impulse, wiener


def sample(name: str) -> np.ndarray:
    return bench.load_references([str(bench.SAMPLES / f"{name}.png")])[name]


def stripes(size: int = 128) -> np.ndarray:
    """A patch of fine diagonal stripes (period 4 pixels, a quarter of the picture) on a smooth ramp: texture a
    blur flattens, sparse in space as in a photo (the noise is measured where it is not)."""
    y, x = np.mgrid[:size, :size].astype(np.float32)
    inside = (np.abs(x - size / 2) < size / 4) & (np.abs(y - size / 2) < size / 4)
    grey = 0.5 + 0.15 * np.sin(2 * np.pi * (x + y) / 4) * inside + 0.2 * (x / size - 0.5)
    return np.repeat(grey[..., None], 3, axis=-1)


def gaussian(clean: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    return make_noise("gaussian", sigma)(clean, np.random.default_rng(seed))


@pytest.mark.parametrize(
    ("stage", "picture", "blur", "gain"),
    [(detail.restore_detail, stripes, 1.5, 3.0), (wiener.collaborative_wiener, lambda: sample("barbara"), 1.0, 1.5)],
)
def test_what_a_blur_flattened_comes_back(
    stage: Callable, picture: Callable[[], np.ndarray], blur: float, gain: float
) -> None:
    clean = picture()
    noisy = gaussian(clean, 15)
    blurred = gaussian_filter(noisy, sigma=(blur, blur, 0))
    assert psnr(stage(noisy, blurred), clean) > psnr(blurred, clean) + gain


@pytest.mark.parametrize(("stage", "kept"), [(detail.restore_detail, 0.05), (wiener.collaborative_wiener, 0.25)])
def test_a_perfect_output_keeps_little_of_the_noise(stage: Callable, kept: float) -> None:
    clean = sample("kodim23")
    noisy = gaussian(clean, 25)
    assert np.sqrt(np.mean((stage(noisy, clean) - clean) ** 2)) < kept * np.sqrt(np.mean((noisy - clean) ** 2))


@pytest.mark.parametrize(("stage", "kept"), [(detail.restore_detail, 0.01), (wiener.collaborative_wiener, 0.05)])
def test_impulses_the_network_removed_stay_out(stage: Callable, kept: float) -> None:
    clean = sample("ladybird")
    noisy = make_noise("saltpepper", 0.01)(clean, np.random.default_rng(0))
    assert np.mean((stage(noisy, clean) - clean) ** 2) < kept * np.mean((noisy - clean) ** 2)


def test_bands_give_the_whole_image_result(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    clean = rng.random((75, 90, 3), dtype=np.float32)
    noisy = gaussian(clean, 20)
    smoothed = gaussian_filter(noisy, sigma=(1, 1, 0))
    whole = detail.restore_detail(noisy, smoothed)
    monkeypatch.setattr(detail, "BAND_PATCHES", 1)  # bands of 8 patch rows
    assert np.abs(detail.restore_detail(noisy, smoothed) - whole).max() < 1e-5
    assert np.abs(whole - smoothed).max() > 0.01


@pytest.mark.parametrize("stage", [detail.restore_detail, wiener.collaborative_wiener])
@pytest.mark.parametrize("shape", [(5, 40, 3), (40, 7, 1)])
def test_images_smaller_than_a_patch_pass_unchanged(stage: Callable, shape: tuple[int, int, int]) -> None:
    denoised = np.full(shape, 0.5, dtype=np.float32)
    assert np.array_equal(stage(denoised + 0.1, denoised), denoised)


def test_grey_planes_get_their_texture_back() -> None:
    clean = stripes()[..., :1]
    noisy = gaussian(clean, 15)
    blurred = gaussian_filter(noisy, sigma=(1.5, 1.5, 0))
    restored = detail.restore_detail(noisy, blurred)
    assert restored.shape == clean.shape and psnr(restored, clean) > psnr(blurred, clean) + 3.0


def test_output_stays_in_range() -> None:
    clean = np.clip(stripes() * 2 - 0.5, 0, 1)
    noisy = gaussian(clean, 25)
    restored = detail.restore_detail(noisy, gaussian_filter(noisy, sigma=(1.5, 1.5, 0)).clip(0, 1))
    assert restored.min() >= 0 and restored.max() <= 1


def test_the_default_card_puts_barbaras_stripes_back() -> None:
    """The default runs with `detail` (texture put back, then collaborative Wiener filtering, both from the input
    with its impulses filled as the network saw it): barbara's woven stripes at sigma 15 gain over the network
    alone."""
    clean = sample("barbara")
    noisy = gaussian(clean, 15)
    reports: list[dict] = [{}, {}, {}]
    plain = mdn.denoise(noisy, detail=False, device="cpu", info=reports[0])
    texture = mdn.denoise(noisy, wiener=False, device="cpu", info=reports[1])
    default = mdn.denoise(noisy, device="cpu", info=reports[2])
    assert [(report["detail"], report["wiener"]) for report in reports] == [(False, False), (True, False), (True, True)]
    filled = impulse.fill_impulses(noisy)[0]  # the stages see the input as the network did
    assert np.array_equal(texture, detail.restore_detail(filled, plain))
    assert np.array_equal(default, wiener.collaborative_wiener(filled, texture))
    assert psnr(default, clean) > psnr(plain, clean) + 2.0


def test_quality_chooses_the_search_after_the_texture() -> None:
    """`quality`: fast is the texture stage alone (`wiener=False` too), balanced (the default) and high filter with
    their own searches, high's denser grid and wider search finding more groups; an unknown one is refused."""
    clean = sample("barbara")[:128, :128]
    noisy = gaussian(clean, 25)
    texture = mdn.denoise(noisy, quality="fast", device="cpu")
    assert np.array_equal(texture, mdn.denoise(noisy, wiener=False, device="cpu"))
    high = mdn.denoise(noisy, quality="high", device="cpu")
    assert np.array_equal(high, wiener.collaborative_wiener(noisy, texture, search=wiener.QUALITY["high"]))
    assert np.array_equal(mdn.denoise(noisy, device="cpu"), mdn.denoise(noisy, quality="balanced", device="cpu"))
    plane = torch.from_numpy(texture[..., 0].copy())
    counts = {q: len(wiener._Groups(plane, plane.shape, s).corners) for q, s in wiener.QUALITY.items()}
    assert counts["high"] > 1.3 * counts["balanced"]
    assert psnr(high, clean) > psnr(texture, clean) + 0.3
    with pytest.raises(MdnError, match=r"^quality must be one of fast, balanced, high"):
        mdn.denoise(noisy, quality="best")


def test_wiener_bands_give_the_whole_image_result(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    clean = gaussian_filter(rng.random((75, 90, 3), dtype=np.float32), sigma=(2, 2, 0))
    noisy = gaussian(clean, 20)
    pilot = gaussian_filter(noisy, sigma=(1, 1, 0))
    whole = wiener.collaborative_wiener(noisy, pilot)
    monkeypatch.setattr(wiener, "BAND_REFERENCES", 7)  # bands of a single row of references
    assert np.abs(wiener.collaborative_wiener(noisy, pilot) - whole).max() < 1e-5
    assert np.abs(whole - pilot).max() > 0.01


def test_wiener_on_grey_planes_and_odd_sizes() -> None:
    clean = sample("barbara")[:101, :77].mean(axis=-1, keepdims=True)
    noisy = gaussian(clean, 15)
    pilot = gaussian_filter(noisy, sigma=(1.0, 1.0, 0))
    refined = wiener.collaborative_wiener(noisy, pilot)
    assert refined.shape == clean.shape and psnr(refined, clean) > psnr(pilot, clean) + 0.3


def test_wiener_output_stays_in_range() -> None:
    clean = np.clip(sample("astronaut") * 2 - 0.5, 0, 1)
    noisy = gaussian(clean, 25)
    refined = wiener.collaborative_wiener(noisy, gaussian_filter(noisy, sigma=(1, 1, 0)).clip(0, 1))
    assert refined.min() >= 0 and refined.max() <= 1


@pytest.mark.parametrize("quality", ["balanced", "high"])
def test_wiener_groups_start_with_their_reference_on_flat_ground(quality: str) -> None:
    """Where many patches are as near as the reference itself (a clipped sky: every distance 0), each group still
    holds its reference first, so every pixel lies in a group and the output is finite (a pixel in no group once
    made a 0/0 that the noise measure spread over the whole picture)."""
    clean = np.full((80, 96, 3), 1.0, dtype=np.float32)
    clean[:, 60:] = sample("astronaut")[:80, :36]
    noisy = np.clip(gaussian(clean, 25), 0, 1)
    pilot = clean.copy()
    search = wiener.QUALITY[quality]
    planes = wiener._Planes(80, 96, search.step, "cpu")
    guide = planes(pilot, wiener.opponent(3)[0])
    groups = wiener._Groups(guide, planes.padded_shape, search)
    width = planes.padded_shape[1]
    y = search.step * torch.arange(groups.rows).repeat_interleave(groups.cols)
    x = search.step * torch.arange(groups.cols).repeat(groups.rows)
    assert torch.equal(groups.corners[:, 0].long(), y * width + x)
    refined = wiener.collaborative_wiener(noisy, pilot, search=search)
    assert np.isfinite(refined).all()
    assert np.abs(refined[:, :50] - 1.0).max() < 0.02  # the flat white stays white


def test_wiener_in_place_equals_a_new_array_and_keeps_the_pilots_range() -> None:
    """Refined into the pilot itself or into a new array, the same result; where the pilot lies above 1 (an HDR
    highlight) the output may too, up to the pilot's value, and every other pixel is clipped to [0, 1]."""
    clean = sample("barbara")[:96, :96].copy()
    clean[40:56, 40:56] = 1.3
    noisy = clean + np.random.default_rng(0).normal(0, 0.1, clean.shape).astype(np.float32)
    pilot = gaussian_filter(noisy, sigma=(1, 1, 0))
    fresh = wiener.collaborative_wiener(noisy, pilot)
    same = pilot.copy()
    assert wiener.collaborative_wiener(noisy, same, out=same) is same
    assert np.array_equal(same, fresh)
    bright = pilot > 1
    assert fresh[~bright].min() >= 0 and fresh[~bright].max() <= 1
    assert np.all(fresh[bright] <= pilot[bright]) and fresh[bright].mean() > 1.2


def test_grey_pictures_search_denser() -> None:
    """A grey plane's Wiener stage filters one plane instead of three, and searches denser for it (GREY_QUALITY):
    the default gives exactly the stage with that search, better on barbara's grey stripes than with the colour
    search; a colour plane keeps the colour search."""
    assert wiener.search_for("balanced", 3) == wiener.QUALITY["balanced"]
    assert wiener.search_for("high", 1) == wiener.GREY_QUALITY["high"] and wiener.search_for("fast", 1) is None
    clean = sample("barbara").mean(axis=-1, keepdims=True)
    noisy = gaussian(clean, 15)
    texture = mdn.denoise(noisy, quality="fast", device="cpu")
    default = mdn.denoise(noisy, device="cpu")
    filled = impulse.fill_impulses(noisy)[0]
    assert np.array_equal(default, wiener.collaborative_wiener(filled, texture, search=wiener.GREY_QUALITY["balanced"]))
    as_colour = wiener.collaborative_wiener(filled, texture, search=wiener.QUALITY["balanced"])
    assert psnr(default, clean) > psnr(as_colour, clean) + 0.05  # +0.15 dB
    plane = torch.from_numpy(texture[..., 0].copy())
    counts = [
        len(wiener._Groups(plane, plane.shape, s).corners)
        for s in (wiener.QUALITY["balanced"], wiener.GREY_QUALITY["balanced"])
    ]
    assert counts[1] > 2 * counts[0]


@pytest.mark.parametrize(("kind", "level", "low", "high"), [("gaussian", 15, -0.15, 0.15), ("poisson", 2.5, 0.3, 0.7),
                                                           ("speckle", 0.036, 0.75, 1.25)])  # fmt: skip
def test_the_noise_says_how_it_grows_with_the_signal(kind: str, level: float, low: float, high: float) -> None:
    """`Noise.dependence`, the slope of the noise's log factor over log brightness, measured on a smooth ramp's
    noise against the ramp: about 0 for Gaussian noise, 1/2 for Poisson, 1 for speckle."""
    ramp = np.repeat(np.linspace(0.05, 0.95, 256, dtype=np.float32)[None, :, None], 256, axis=0)
    noisy = make_noise(kind, level)(ramp, np.random.default_rng(3))[..., :1]
    plane = torch.from_numpy(ramp[..., 0].copy())
    brightness = detail.patch_sums(detail.padded(plane, "cpu"), detail.STRIDE)
    noise = detail.Noise.measure(detail.padded(torch.from_numpy(noisy[..., 0]) - plane, "cpu"), brightness)
    assert low < noise.dependence < high


def grey_barbara(kind: str, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Barbara's grey under a noise (seed 0): the noisy picture, its reference and the fast mode's output as pilot."""
    clean = sample("barbara").mean(axis=-1, keepdims=True)
    noise = make_noise(kind, level)
    noisy = noise(clean, np.random.default_rng(0))
    return noisy, noise.reference(clean), mdn.denoise(noisy, quality="fast", device="cpu")


@pytest.mark.parametrize(("kind", "level"), [("aliased", 15), ("speckle", 0.036)])
def test_grey_pictures_take_their_noise_by_how_it_grows(
    monkeypatch: pytest.MonkeyPatch, kind: str, level: float
) -> None:
    """A grey picture's Wiener stage takes noise that ignores the signal at 0.95 times as measured and noise that
    grows with it stronger, up to 1.5; colour keeps 1.2 whatever the noise. On barbara's grey, under a thumbnail's
    aliasing (flat) and under speckle (growing), the grey scale beats colour's (+0.39 and +0.16 dB)."""
    flat, growing = (detail.Noise(torch.ones(10, 64), torch.ones(10)) for _ in range(2))
    flat.dependence, growing.dependence = -0.1, 1.2
    assert wiener.noise_scale(flat, 1) == pytest.approx(0.95) and wiener.noise_scale(growing, 1) == 1.5
    assert wiener.noise_scale(flat, 3) == wiener.noise_scale(growing, 3) == wiener.NOISE_SCALE
    noisy, reference, pilot = grey_barbara(kind, level)
    search = wiener.GREY_QUALITY["balanced"]
    grey = wiener.collaborative_wiener(noisy, pilot, search=search)
    monkeypatch.setattr(wiener, "GREY_NOISE_SCALE", (wiener.NOISE_SCALE, 0.0, wiener.NOISE_SCALE))
    as_colour = wiener.collaborative_wiener(noisy, pilot, search=search)
    assert psnr(grey, reference) > psnr(as_colour, reference) + 0.08


def test_grey_groups_take_their_own_noise_only_when_it_stands_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """A grey picture's group takes the noise its reference patch measures only where that is more than twice its
    brightness's (colour's wherever it is more): on barbara's grey at sigma 15, whose pilot smoothed its stripes
    into the residual, that beats colour's rule (+0.05 dB)."""
    assert wiener.own_above(1) == wiener.GREY_OWN_ABOVE > 1 and wiener.own_above(3) == 1.0
    noisy, reference, pilot = grey_barbara("gaussian", 15)
    search = wiener.GREY_QUALITY["balanced"]
    grey = wiener.collaborative_wiener(noisy, pilot, search=search)
    monkeypatch.setattr(wiener, "GREY_OWN_ABOVE", 1.0)
    as_colour = wiener.collaborative_wiener(noisy, pilot, search=search)
    assert psnr(grey, reference) > psnr(as_colour, reference) + 0.03


def _kept_seen(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The `kept` of every grey scale the Wiener stage asks for from now on."""
    seen: list[float] = []
    scale = wiener.noise_scale

    def spy(noise: detail.Noise, channels: int, kept: float = 1.0) -> float:
        seen.append(kept)
        return scale(noise, channels, kept)

    monkeypatch.setattr(wiener, "noise_scale", spy)
    return seen


def test_a_grey_pilot_that_kept_noise_gives_it_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where a grey picture's finest frequencies hold KEPT_FROM times the residual's noise or more, its pilot
    kept part of the noise and the stage takes at least that ratio as its scale (at most 1.5). A specimen under a
    bright microscope camera (noise 0.006 of its range, stabilised by the default) reads 1.76 and gains 1.1 dB
    from it; colour keeps its scale."""
    flat = detail.Noise(torch.ones(10, 64), torch.ones(10))
    flat.dependence = 0.0
    assert wiener.noise_scale(flat, 1, kept=1.2) == pytest.approx(0.95)
    assert wiener.noise_scale(flat, 1, kept=1.4) == pytest.approx(1.4)
    assert wiener.noise_scale(flat, 1, kept=2.0) == 1.5 and wiener.noise_scale(flat, 3, kept=2.0) == wiener.NOISE_SCALE
    camera = specimens.Microscope(low=100, high=20000, counts_per_photon=8, read_noise=5)
    specimen = specimens.fluorescence_stack(1, 128, 11)
    noisy, truth = camera.record(specimen, np.random.default_rng(11))[0], camera.signal(specimen)[0]
    seen = _kept_seen(monkeypatch)
    given_back = mdn.denoise(noisy, device="cpu", threads=1)
    assert seen[-1] > wiener.KEPT_FROM + 0.2
    monkeypatch.setattr(wiener, "KEPT_FROM", np.inf)
    as_measured = mdn.denoise(noisy, device="cpu", threads=1)
    error = [float(np.mean((out.astype(np.float64) - truth) ** 2)) for out in (given_back, as_measured)]
    assert 10 * np.log10(error[1] / error[0]) > 0.5  # dB


def test_impulses_filled_leave_the_grey_scale_as_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once salt and pepper is filled before the network the plane holds little noise, and its finest
    frequencies read texture: the engine tells the stage so and the scale stays as measured (barbara's grey at
    0.01: 0.7 dB better than taking the texture for kept noise)."""
    clean = sample("barbara").mean(axis=-1, keepdims=True)
    noisy = make_noise("saltpepper", 0.01)(clean, np.random.default_rng(0))
    seen = _kept_seen(monkeypatch)
    guarded = mdn.denoise(noisy, device="cpu", threads=1)
    assert seen[-1] == 1.0
    monkeypatch.setattr(wiener, "KEPT_IMPULSES", 1.0)
    unguarded = mdn.denoise(noisy, device="cpu", threads=1)
    assert seen[-1] > wiener.KEPT_FROM
    assert psnr(guarded, clean) > psnr(unguarded, clean) + 0.3


@pytest.mark.parametrize("width", [63, 64, 1])
def test_row_medians_are_torchs_medians(width: int) -> None:
    """Introselect on the CPU gives the very values of torch's median, the lower middle one for an even count,
    for a strided view as well."""
    values = torch.randn(500, width + 1, generator=torch.Generator().manual_seed(width))[:, 1:]
    assert torch.equal(detail.row_medians(values), values.median(dim=1).values)
