"""The practical degradation model: web resizing, its noise steps, JPEG, and the noise types built on them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from mdn import metrics
from mdn.noise import degrade, make_noise


def photo(size: int = 128) -> torch.Tensor:
    """(1, 3, size, size) crop of a real photograph in [0, 1]."""
    image = data.astronaut()[100 : 100 + size, 150 : 150 + size].astype(np.float32) / 255
    return torch.from_numpy(image).permute(2, 0, 1)[None]


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_web_resize_keeps_some_crops_whole_and_decimates_others_without_a_low_pass() -> None:
    x = photo().repeat(64, 1, 1, 1)
    out = degrade.web_resize(x, 64, generator())
    assert out.shape == (64, 3, 64, 64)
    whole = [torch.equal(o, x[0, :, 32:96, 32:96]) for o in out]
    decimated = [torch.equal(o, x[0, :, ::2, ::2]) for o in out]
    assert 12 <= sum(whole) <= 40  # 40 % kept at full resolution
    assert 1 <= sum(decimated) <= 12  # nearest decimation by exactly 2: aliased
    assert torch.equal(out, degrade.web_resize(x, 64, generator()))
    with pytest.raises(ValueError, match="128"):
        degrade.web_resize(x[..., :100, :100], 64, generator())


def test_practical_noise_is_seeded_clipped_and_grows_with_strength() -> None:
    x = photo(64).repeat(48, 1, 1, 1)
    mild, strong = (degrade.practical_noise(x, generator(1), s) for s in (0.3, 1.5))
    assert torch.equal(mild, degrade.practical_noise(x, generator(1), 0.3))
    assert float(strong.min()) >= 0 and float(strong.max()) <= 1
    error = [float(((y - x) ** 2).mean()) for y in (mild, strong)]
    assert error[1] > 2.5 * error[0] > 0  # plain white noise (a third of the images) does not scale


def test_practical_pairs_hold_the_share_of_web_thumbnails_asked_for() -> None:
    x = photo().repeat(64, 1, 1, 1)
    clean, noisy = degrade.practical_pair(x, 64, generator(2))
    same = degrade.practical_pair(x, 64, generator(2), thumbnails=0.0)
    assert torch.equal(clean, same[0]) and torch.equal(noisy, same[1])  # no share: the mix as it was
    clean, noisy = degrade.practical_pair(x, 64, generator(2), thumbnails=0.5)
    thumbnail = x[0, :, ::2, ::2]
    chosen = [bool(torch.equal(c, thumbnail)) for c in clean]
    assert 22 <= sum(chosen) <= 44  # the share, beside the mix's own few decimated crops
    clean, noisy = degrade.practical_pair(x, 64, generator(2), thumbnails=1.0)
    assert all(torch.equal(c, thumbnail) for c in clean)
    residual = noisy - clean
    spread = residual.flatten(1).std(dim=1) * 255
    assert float(spread.min()) > 3 and float(spread.max()) < 50  # plain white noise of std 5-50, clipped
    channels = residual.permute(1, 0, 2, 3).flatten(1)
    assert abs(float(torch.corrcoef(channels)[0, 1])) < 0.05  # independent in every channel


def test_jpeg_is_real_8_bit_jpeg_whose_error_falls_with_quality() -> None:
    image = photo(64)[0].permute(1, 2, 0).numpy()
    low, high = (degrade.jpeg(image, q) for q in (30, 95))
    assert low.dtype == np.float32 and np.allclose(high * 255, np.round(high * 255), atol=1e-4)
    assert metrics.psnr(high, image) > metrics.psnr(low, image) + 5
    grey = degrade.jpeg(image[..., :1], 85)
    assert grey.shape == (64, 64, 1) and metrics.psnr(grey, image[..., :1]) > 30


def test_jpeg_gives_the_pixels_of_libjpeg_through_imagecodecs_too() -> None:
    imagecodecs = pytest.importorskip("imagecodecs")
    image = photo(64)[0].permute(1, 2, 0).numpy()
    pixels = np.round(image * 255).astype(np.uint8)
    for quality in (30, 85, 95):
        theirs = imagecodecs.jpeg8_decode(imagecodecs.jpeg8_encode(pixels, level=quality))
        np.testing.assert_array_equal(np.round(degrade.jpeg(image, quality) * 255).astype(np.uint8), theirs)


def test_colour_gaussian_draws_independent_grey_and_channel_correlated_noise() -> None:
    x = torch.full((200, 3, 32, 32), 0.5)
    noise = degrade.ColourGaussian(20, 20)(x, generator()) - 0.5
    flat = noise.flatten(2)
    grey = (flat[:, 0] == flat[:, 1]).all(dim=1) & (flat[:, 1] == flat[:, 2]).all(dim=1)
    correlation = torch.stack([torch.corrcoef(f)[0, 1] for f in flat])
    assert 20 <= int(grey.sum()) <= 60  # odds 2 : 1 : 2
    independent = (correlation.abs() < 0.1) & ~grey
    assert 50 <= int(independent.sum()) <= 110 and int((correlation.abs() > 0.2).sum()) > 40
    assert float(noise.std()) == pytest.approx(20 / 255, rel=0.05)


def test_correlated_gaussian_has_its_std_and_correlates_neighbours() -> None:
    x = torch.full((16, 1, 64, 64), 0.5)
    noise = degrade.CorrelatedGaussian(10, 10)(x, generator()) - 0.5
    assert float(noise.std()) == pytest.approx(10 / 255, rel=0.1)
    lag1 = float((noise[..., 1:] * noise[..., :-1]).mean() / noise.var())
    assert lag1 > 0.3


def test_aliased_noise_is_scored_against_the_decimated_picture() -> None:
    image = photo(64)[0].permute(1, 2, 0).numpy()
    model = make_noise("aliased", 15)
    noisy = model(image, np.random.default_rng(0))
    assert noisy.shape == model.reference(image).shape == (32, 32, 3)
    assert np.std(noisy - model.reference(image)) == pytest.approx(15 / 255, rel=0.1)


def test_camera_jpeg_compresses_the_noise_with_the_picture() -> None:
    image = photo(128)[0].permute(1, 2, 0).numpy()
    noisy = make_noise("jpeg", 25)(image, np.random.default_rng(0))
    gaussian = make_noise("gaussian", 25)(image, np.random.default_rng(0))
    assert np.allclose(noisy * 255, np.round(noisy * 255), atol=1e-4)
    assert metrics.psnr(noisy, image) > metrics.psnr(gaussian, image) + 0.5  # JPEG smooths part of the noise away


def test_the_camera_step_draws_a_level_per_image_in_one_batched_pass() -> None:
    """`IspNoise.at_levels`: a tensor of equal levels is the plain level bit for bit; a higher level per image
    gives that image more noise from the same draws."""
    from mdn.noise import IspNoise

    x = torch.full((6, 3, 32, 32), 0.4)
    plain = IspNoise(1.5).on_device(x, torch.Generator().manual_seed(3))
    same = IspNoise.at_levels(x, torch.Generator().manual_seed(3), torch.full((6, 1, 1, 1), 1.5)).clamp(0, 1)
    assert torch.equal(plain, same)
    levels = torch.tensor([1.0, 3.0] * 3).view(6, 1, 1, 1)
    low = IspNoise.at_levels(x, torch.Generator().manual_seed(4), 1.0)
    mixed = IspNoise.at_levels(x, torch.Generator().manual_seed(4), levels)
    error = lambda y: (y - x).flatten(1).std(dim=1)  # noqa: E731
    assert torch.equal(mixed[0::2], low[0::2]) and bool((error(mixed)[1::2] > 1.5 * error(low)[1::2]).all())
    out = degrade.Camera()(x, torch.Generator().manual_seed(5))
    assert out.shape == x.shape and float(out.min()) >= 0 and float(out.max()) <= 1


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 5, 3), (7, 1, 1)])
def test_practical_noise_takes_images_smaller_than_the_camera_mosaic(shape: tuple[int, ...]) -> None:
    """The camera step took 1x1 RGB pictures for some seeds to an isp error about a (1, 3, 1, 1) tensor."""
    x = np.full(shape, 0.5, np.float32)
    drawn = [make_noise("practical")(x, np.random.default_rng(seed)) for seed in range(24)]  # 3-6 of them failed
    assert all(y.shape == shape and y.min() >= 0 and y.max() <= 1 for y in drawn)
    assert len({y.tobytes() for y in drawn}) > 12


def test_the_camera_step_passes_images_smaller_than_its_mosaic_and_draws_nothing() -> None:
    x = torch.rand((3, 3, 1, 8), generator=generator(0))
    used, fresh = generator(1), generator(1)
    assert torch.equal(degrade.Camera()(x, used), x)
    assert torch.equal(torch.rand(4, generator=used), torch.rand(4, generator=fresh))
    assert degrade.Camera()(torch.rand((3, 3, 2, 2), generator=generator(0)), used).shape == (3, 3, 2, 2)
