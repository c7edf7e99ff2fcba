"""Every supported format round-trips exactly; bad input gives one clear MdnError."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import imagecodecs
import imageio.v3 as iio
import numpy as np
import OpenEXR
import PIL.Image
import pytest
import tifffile

from mdn.errors import MdnError
from mdn.io import atomic, batch, exr, images, library_messages, picture

RNG = np.random.default_rng(7)


def _random(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    if np.dtype(dtype).kind == "u":
        return RNG.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)
    return RNG.random(shape).astype(dtype)


def _roundtrip(path: Path, decode) -> tuple[np.ndarray, np.ndarray, picture.Image]:
    image = images.read(path)
    out = path.with_name(f"out{path.suffix}")
    images.write(image, out)
    return decode(path), decode(out), image


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [
        ((17, 23), "uint8"),
        ((17, 23, 2), "uint8"),
        ((17, 23, 3), "uint8"),
        ((17, 23, 4), "uint8"),
        ((17, 23), "uint16"),
        ((17, 23, 2), "uint16"),
        ((17, 23, 3), "uint16"),
        ((17, 23, 4), "uint16"),
    ],
)
def test_png_roundtrip_is_exact(tmp_path: Path, shape: tuple[int, ...], dtype: str) -> None:
    path = tmp_path / "in.png"
    path.write_bytes(imagecodecs.png_encode(_random(shape, dtype)))
    before, after, image = _roundtrip(path, lambda p: imagecodecs.png_decode(p.read_bytes()))
    assert after.dtype == before.dtype and after.shape == before.shape
    np.testing.assert_array_equal(after, before)
    assert image.pixels.dtype == np.float32
    assert image.pixels.shape[-1] == (3 if len(shape) == 3 and shape[2] >= 3 else 1)
    assert (image.alpha is not None) == (len(shape) == 3 and shape[2] in (2, 4))
    if dtype == "uint8":  # the fast encoder's files read the same in other decoders
        np.testing.assert_array_equal(iio.imread(path.with_name("out.png")), before)


@pytest.mark.parametrize("ext", [".bmp", ".webp"])
def test_bmp_and_webp_roundtrip_is_exact(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"in{ext}"
    kwargs = {"lossless": True} if ext == ".webp" else {}
    iio.imwrite(path, _random((16, 24, 3), "uint8"), extension=ext, **kwargs)
    before, after, _ = _roundtrip(path, iio.imread)
    np.testing.assert_array_equal(after, before)


def test_jpeg_roundtrip_keeps_shape_and_stays_close(tmp_path: Path) -> None:
    from skimage import data

    path = tmp_path / "in.jpg"
    iio.imwrite(path, data.astronaut()[:128, :128], extension=".jpg", quality=95)
    before, after, _ = _roundtrip(path, iio.imread)
    assert after.shape == before.shape and after.dtype == np.uint8
    assert np.abs(after.astype(int) - before).mean() < 2.0


@pytest.mark.parametrize(
    ("shape", "dtype", "kwargs"),
    [
        ((19, 21), "uint16", {"compression": "zlib", "description": "camera 3, exposure 20 ms"}),
        ((19, 21), "uint8", {"description": "Zeiss \u00b5m caf\u00e9".encode()}),  # UTF-8: tifffile writes no such str
        ((19, 21, 3), "uint8", {"photometric": "rgb"}),
        ((19, 21, 4), "uint16", {"photometric": "rgb", "extrasamples": ["unassalpha"]}),
        ((3, 19, 21), "uint8", {"photometric": "rgb", "planarconfig": "separate"}),
        ((5, 19, 21), "float32", {}),
        ((4, 19, 21), "uint16", {"imagej": True, "metadata": {"axes": "ZYX", "spacing": 0.3, "unit": "um"}}),
        ((2, 19, 21), "uint16", {"imagej": True, "metadata": {"axes": "CYX"}}),
        ((3, 2, 19, 21), "uint16", {"imagej": True, "metadata": {"axes": "ZCYX"}}),
        ((2, 3, 2, 19, 21), "float32", {"imagej": True, "metadata": {"axes": "TZCYX", "finterval": 2.0}}),
        ((2, 19, 21, 3), "uint8", {"imagej": True, "metadata": {"axes": "ZYXS"}}),
    ],
)
def test_tiff_roundtrip_keeps_pixels_axes_and_metadata(tmp_path: Path, shape, dtype, kwargs) -> None:
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, _random(shape, dtype), resolution=(4.0, 4.0), resolutionunit="CENTIMETER", **kwargs)
    before, after, _ = _roundtrip(path, tifffile.imread)
    assert after.dtype == before.dtype and after.shape == before.shape
    np.testing.assert_array_equal(after, before)
    with tifffile.TiffFile(path) as a, tifffile.TiffFile(path.with_name("out.tif")) as b:
        assert b.series[0].axes == a.series[0].axes
        assert b.imagej_metadata == a.imagej_metadata
        assert b.pages.first.description == a.pages.first.description
        assert b.pages.first.compression == a.pages.first.compression
        assert b.pages.first.tags["XResolution"].value == a.pages.first.tags["XResolution"].value
        assert b.pages.first.resolutionunit == a.pages.first.resolutionunit


def test_a_camera_jpeg_holding_a_preview_reads_its_main_picture(tmp_path: Path) -> None:
    y, x = np.mgrid[0:48, 0:64]
    main = PIL.Image.fromarray(np.stack([40 + 3 * x, 200 - 3 * y, 60 + 2 * (x + y)], axis=-1).astype(np.uint8))
    main.save(tmp_path / "camera.jpg", format="MPO", save_all=True, append_images=[main.resize((32, 24))], quality=100)
    image = images.read(tmp_path / "camera.jpg")  # MPO: not an animation to refuse
    assert image.pixels.shape == (1, 48, 64, 3)
    assert np.abs(image.pixels[0] * 255 - np.asarray(main)).mean() < 2
    assert image.source.meta["left_out"] == ["its 1 further picture (MPO: a second view, preview or depth map)"]


def test_a_file_named_for_another_format_is_read_as_what_it_is(tmp_path: Path) -> None:
    """A JPEG saved as .png or .tif (a renamed download), a TIFF as .png: read by their first bytes, as Pillow
    reads a PNG named .jpg, and written in the format their output's name asks for."""
    pixels = _random((24, 32, 3), "uint8")
    PIL.Image.fromarray(pixels).save(tmp_path / "photo.jpg", quality=100)
    tifffile.imwrite(tmp_path / "scan.tif", pixels)
    for source, named in (("photo.jpg", "photo.png"), ("photo.jpg", "photo.tif"), ("scan.tif", "scan.png")):
        (tmp_path / named).write_bytes((tmp_path / source).read_bytes())
        image = images.read(tmp_path / named)
        assert image.source.format == images.format_of(tmp_path / source) and image.pixels.shape == (1, 24, 32, 3)
        out = images.write(image, tmp_path / f"out_{named}")
        with PIL.Image.open(out) as written:
            assert written.format == {".png": "PNG", ".tif": "TIFF"}[out.suffix]


def test_an_opaque_alpha_goes_into_a_jpeg_and_a_format_too_small_is_refused_before_the_work(tmp_path: Path) -> None:
    rgba = _random((16, 24, 4), "uint8")
    rgba[..., 3] = 255  # a screenshot's, an export's: it carries nothing
    PIL.Image.fromarray(rgba).save(tmp_path / "shot.png")
    image = images.read(tmp_path / "shot.png")
    assert image.alpha is not None and images.target_layout(image, tmp_path / "shot.jpg").shape == (16, 24, 3)
    with PIL.Image.open(images.write(image, tmp_path / "shot.jpg")) as jpeg:
        assert jpeg.mode == "RGB" and jpeg.size == (24, 16)
    rgba[0, 0, 3] = 254
    PIL.Image.fromarray(rgba).save(tmp_path / "cut.png")
    with pytest.raises(MdnError, match=r"cut\.png: JPEG cannot hold its alpha channel"):
        images.target_layout(images.read(tmp_path / "cut.png"), tmp_path / "cut.jpg")
    PIL.Image.fromarray(_random((16, 16400, 3), "uint8")).save(tmp_path / "strip.png")
    strip = images.read(tmp_path / "strip.png")
    with pytest.raises(MdnError, match=r"strip\.png: WEBP holds at most 16,383 pixels a side, and it is 16,400x16"):
        images.target_layout(strip, tmp_path / "strip.webp")
    assert images.target_layout(strip, tmp_path / "strip.jpg").shape == (16, 16400, 3)
    assert images.target_layout(strip, tmp_path / "strip.webp", shrink=2).shape == (16, 16400, 3)  # 8,200 written


def test_colours_that_no_alpha_multiplied_are_kept_whatever_the_tag_says(tmp_path: Path) -> None:
    """A file tagged associated whose colours lie above their alpha, or under an alpha of 0: not multiplied by it,
    so kept as stored (dividing zeroed and clipped them)."""
    stored = np.dstack([np.full((8, 8, 3), 60000, np.uint16), np.full((8, 8, 1), 30000, np.uint16)])
    stored[0, 0] = [30000, 1000, 50000, 0]
    tifffile.imwrite(tmp_path / "odd.tif", stored, photometric="rgb", extrasamples=["assocalpha"])
    image = images.read(tmp_path / "odd.tif")
    assert "straightened" not in image.source.meta
    np.testing.assert_array_equal(tifffile.imread(images.write(image, tmp_path / "back.tif")), stored)


def test_a_tiffs_unspecified_extra_sample_hides_nothing(tmp_path: Path) -> None:
    """A fourth sample that is no alpha (near infrared, a mask): nothing under its zeros is kept from denoising."""
    pixels = _random((8, 8, 4), "uint8")
    for name, extra in (("nir.tif", "unspecified"), ("cut.tif", "unassalpha"), ("cut_assoc.tif", "assocalpha")):
        tifffile.imwrite(tmp_path / name, pixels, photometric="rgb", extrasamples=[extra])
    assert [images.hides(images.read(tmp_path / n)) for n in ("nir.tif", "cut.tif", "cut_assoc.tif")] == [
        False, True, True
    ]  # fmt: skip


@pytest.mark.parametrize("planarconfig", ["contig", "separate"])
def test_a_grey_tiffs_unspecified_extra_samples_are_channels_of_their_own(tmp_path: Path, planarconfig: str) -> None:
    """Two detectors' bands in one 16-bit TIFF (ExtraSamples 0: no alpha): the second had come back as it came,
    silently; each is a channel plane now (fitted and worked on as one), written back as the file stored it."""
    bands = _random((2, 24, 20), "uint16")
    stored = bands if planarconfig == "separate" else np.moveaxis(bands, 0, -1)
    tifffile.imwrite(tmp_path / "two.tif", stored, photometric="minisblack", planarconfig=planarconfig)
    image = images.read(tmp_path / "two.tif")
    assert image.alpha is None and image.pixels.shape == (2, 24, 20, 1)
    assert list(image.source.layout.channel_of_planes()) == [0, 1]
    np.testing.assert_allclose(image.pixels[..., 0], bands / np.float32(65535), rtol=1e-6)
    images.write(image.with_pixels(1 - image.pixels), tmp_path / "out.tif")
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        page = tif.pages.first
        assert (page.extrasamples, page.planarconfig) == ((0,), tifffile.PLANARCONFIG[planarconfig.upper()])
        np.testing.assert_array_equal(tif.asarray(), 65535 - stored)


def test_a_colour_tiffs_extra_band_is_named_as_written_back_as_it_came(tmp_path: Path) -> None:
    """RGB and a fourth band that is no alpha: a picture holds no fourth colour, so the band comes back as it
    came, and the warning says so (it had been silent)."""
    pixels = _random((8, 8, 4), "uint16")
    tifffile.imwrite(tmp_path / "nir.tif", pixels, photometric="rgb", extrasamples=["unspecified"])
    [result] = batch.run([batch.Job(tmp_path / "nir.tif", tmp_path / "out.tif")], lambda planes, _: 1 - planes)
    assert result.warnings == ["the work on its sample 4 (an extra band, not alpha: written back as it came) left out"]
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif")[..., 3], pixels[..., 3])


def test_a_damaged_resolution_is_left_out_and_a_text_is_no_bitmap(tmp_path: Path) -> None:
    """A TIFF whose resolution has a zero denominator (72/0) is read and written without it, not a traceback;
    a text that begins "BMW" and is named .png is a PNG that cannot be read, not a bitmap."""
    tifffile.imwrite(tmp_path / "bad.tif", _random((8, 8, 3), "uint8"), photometric="rgb", resolution=(72, 72))
    with tifffile.TiffFile(tmp_path / "bad.tif") as tif:
        offsets = [tif.pages[0].tags[name].valueoffset for name in ("XResolution", "YResolution")]
    data = bytearray((tmp_path / "bad.tif").read_bytes())
    for offset in offsets:
        data[offset + 4 : offset + 8] = bytes(4)
    (tmp_path / "bad.tif").write_bytes(bytes(data))
    image = images.read(tmp_path / "bad.tif")
    assert "resolution" not in image.source.meta
    images.write(image.with_pixels(image.pixels[:, ::2, ::2]), tmp_path / "half.tif")  # scaled: nothing to scale
    assert tifffile.imread(tmp_path / "half.tif").shape == (4, 4, 3)
    (tmp_path / "notes.png").write_bytes(b"BMW 320d service notes, 2019")
    with pytest.raises(MdnError, match=r"notes\.png: cannot read PNG \(corrupt or truncated\?\)"):
        images.read(tmp_path / "notes.png")


def test_associated_alpha_is_read_as_straight_colour_and_written_back_associated(tmp_path: Path) -> None:
    """A TIFF whose colours are multiplied by alpha (GIMP's): half-transparent orange stays orange in a PNG."""
    straight = np.broadcast_to(np.array([200, 100, 50], np.uint8), (8, 8, 3))
    alpha = np.full((8, 8, 1), 128, np.uint8)
    premultiplied = np.rint(straight * (alpha / 255)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "cut.tif", np.dstack([premultiplied, alpha]), photometric="rgb",
                     extrasamples=["assocalpha"])  # fmt: skip
    image = images.read(tmp_path / "cut.tif")
    np.testing.assert_allclose(image.pixels[0] * 255, straight, atol=1.0)
    with PIL.Image.open(images.write(image, tmp_path / "cut.png")) as png:
        np.testing.assert_allclose(np.asarray(png)[..., :3], straight, atol=1)
    again = tifffile.imread(images.write(image, tmp_path / "again.tif"))
    np.testing.assert_array_equal(again, np.dstack([premultiplied, alpha]))


def test_a_picture_past_pillows_decompression_bomb_limit_is_read(tmp_path: Path, monkeypatch) -> None:
    pixels = _random((60, 80, 3), "uint8")
    PIL.Image.fromarray(pixels).save(tmp_path / "panorama.jpg", quality=100)
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 1000)  # 4,800 pixels: past twice the limit, Pillow's error
    image = images.read(tmp_path / "panorama.jpg")
    assert image.pixels.shape == (1, 60, 80, 3) and image.source.meta["photo"] is not None


def test_a_jpeg_compressed_ycbcr_tiff_reads_as_rgb_and_writes_back_as_rgb(tmp_path: Path) -> None:
    y, x = np.mgrid[0:48, 0:64]
    pixels = np.stack([40 + 3 * x, 200 - 3 * y, 60 + 2 * (x + y)], axis=-1).astype(np.uint8)  # smooth colour ramps
    tifffile.imwrite(tmp_path / "scan.tif", pixels, compression="jpeg")
    image = images.read(tmp_path / "scan.tif")
    assert image.pixels.shape == (1, 48, 64, 3)  # planes: one
    assert np.abs(image.pixels[0] * 255 - pixels).mean() < 3  # decoded to RGB: JPEG's loss, not YCbCr's values
    images.write(image, tmp_path / "out.tif")
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert tif.pages.first.photometric == tifffile.PHOTOMETRIC.RGB
        assert np.array_equal(tif.asarray(), images.to_array(image))


def test_tiff_with_a_damaged_resolution_unit_is_written_without_its_resolution(tmp_path: Path) -> None:
    """A ResolutionUnit outside the TIFF enumeration had crashed the write; the pixels come back, the resolution
    is dropped."""
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, _random((8, 9), "uint8"), resolution=(4.0, 4.0), resolutionunit="CENTIMETER")
    data = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages.first.tags["ResolutionUnit"].valueoffset
    data[offset : offset + 2] = (16385).to_bytes(2, "little")
    path.write_bytes(bytes(data))
    before, after, _ = _roundtrip(path, tifffile.imread)
    np.testing.assert_array_equal(after, before)


def test_imagej_hyperstack_is_split_into_grey_planes(tmp_path: Path) -> None:
    path = tmp_path / "cells.tif"
    stack = _random((2, 3, 2, 8, 9), "uint16")
    tifffile.imwrite(path, stack, imagej=True, metadata={"axes": "TZCYX"})
    image = images.read(path)
    assert image.pixels.shape == (12, 8, 9, 1)
    np.testing.assert_array_equal(image.pixels[5, ..., 0], stack[0, 2, 1] / np.float32(65535))


@pytest.mark.parametrize("deep", [False, True])
def test_a_palette_tiff_reads_as_its_colours_and_writes_back_as_rgb(tmp_path: Path, deep: bool) -> None:
    indices = RNG.integers(0, 4, (6, 7)).astype(np.uint8)
    colormap = np.zeros((3, 256), np.uint16)
    colormap[:, :4] = np.array([[0, 255, 0, 128], [0, 0, 255, 128], [0, 0, 0, 128]]) * 257 + (3 if deep else 0)
    tifffile.imwrite(tmp_path / "labels.tif", indices, photometric="palette", colormap=colormap)
    image = images.read(tmp_path / "labels.tif")
    expected = np.moveaxis(colormap, 0, -1)[indices] / (65535 if deep else 257 * 255)
    assert image.source.layout.dtype == (np.uint16 if deep else np.uint8)
    np.testing.assert_allclose(image.pixels[0], expected, atol=1e-7)
    images.write(image, tmp_path / "out.tif")
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert tif.pages.first.photometric == tifffile.PHOTOMETRIC.RGB
        np.testing.assert_array_equal(tif.asarray(), np.moveaxis(colormap, 0, -1)[indices] // (1 if deep else 257))


def test_a_tiff_stack_written_at_another_size_records_its_new_shape(tmp_path: Path) -> None:
    """tifffile's own shape record went into the output as it came: a stack of 2 written at half size (a
    thumbnail's noise) then read as one image of 32 x 32, its second slice lost."""
    tifffile.imwrite(tmp_path / "stack.tif", RNG.integers(0, 60000, (2, 64, 64)).astype(np.uint16))
    image = images.read(tmp_path / "stack.tif")
    images.write(image.with_pixels(image.pixels[:, ::2, ::2]), tmp_path / "half.tif")
    half = images.read(tmp_path / "half.tif")
    assert half.pixels.shape == (2, 32, 32, 1)
    np.testing.assert_array_equal(half.pixels, image.pixels[:, ::2, ::2])
    tifffile.imwrite(
        tmp_path / "four.tif", RNG.integers(0, 255, (2, 3, 8, 9)).astype(np.uint8), photometric="minisblack"
    )
    images.write(images.read(tmp_path / "four.tif"), tmp_path / "four_out.tif")
    assert tifffile.imread(tmp_path / "four_out.tif").shape == (2, 3, 8, 9)


def _write_exr(path: Path, channels: dict[str, np.ndarray], compression=OpenEXR.PIZ_COMPRESSION) -> None:
    header = {"compression": compression, "type": OpenEXR.scanlineimage}
    OpenEXR.File(header, dict(channels)).write(str(path))


def _exr_channels(path: Path) -> dict[str, np.ndarray]:
    return {name: ch.pixels for name, ch in OpenEXR.File(str(path), separate_channels=True).channels().items()}


@pytest.mark.parametrize("dtype", ["float16", "float32"])
@pytest.mark.parametrize("names", ["RGB", "RGBA", "Y"])
def test_exr_roundtrip_keeps_values_type_and_compression(tmp_path: Path, dtype: str, names: str) -> None:
    path = tmp_path / "render.exr"
    channels = {c: (RNG.random((12, 14)) * 40).astype(dtype) for c in names}
    _write_exr(path, channels)
    images.write(images.read(path), tmp_path / "out.exr")
    after = _exr_channels(tmp_path / "out.exr")
    assert set(after) == set(names)
    for c in names:
        assert after[c].dtype == np.dtype(dtype)
        np.testing.assert_array_equal(after[c], channels[c])
    header = OpenEXR.File(str(tmp_path / "out.exr"), header_only=True).header()
    assert header["compression"] == OpenEXR.PIZ_COMPRESSION


def test_exr_layers_pick_beauty_by_default_and_keep_other_channels(tmp_path: Path) -> None:
    path = tmp_path / "aov.exr"
    channels = {
        f"{layer}{c}": RNG.random((6, 7)).astype("float32") for layer in ("", "diffuse.", "albedo.") for c in "RGB"
    }
    channels["Z"] = RNG.random((6, 7)).astype("float32")
    _write_exr(path, channels)
    beauty = images.read(path)
    np.testing.assert_array_equal(beauty.pixels[0, ..., 0], channels["R"])
    albedo = images.read(path, layer="albedo")
    np.testing.assert_array_equal(albedo.pixels[0, ..., 2], channels["albedo.B"])
    images.write(albedo.with_pixels(albedo.pixels * 0), tmp_path / "out.exr")
    after = _exr_channels(tmp_path / "out.exr")
    assert not after["albedo.G"].any()
    for name in ("R", "diffuse.G", "Z"):
        np.testing.assert_array_equal(after[name], channels[name])
    with pytest.raises(MdnError, match=r"no EXR layer 'specular' \(available: beauty, albedo, diffuse\)$"):
        images.read(path, layer="specular")


def test_exr_layer_takes_every_name_the_error_lists(tmp_path: Path) -> None:
    path = tmp_path / "multi.exr"
    plain = {c: RNG.random((5, 6)).astype("float32") for c in "RGB"}
    aov = {f"{layer}.{c}": RNG.random((5, 6)).astype("float32") for layer in ("albedo", "normal") for c in "RGB"}
    extra = {"normal.R": aov["normal.R"], "normal.G": aov["normal.G"], "normal.B": aov["normal.B"]}
    OpenEXR.File(
        [
            OpenEXR.Part({}, {**plain, **aov}, "main"),
            OpenEXR.Part({}, {**{c: plain[c] * 2 for c in "RGB"}, **extra}, "second"),
        ]
    ).write(str(path))
    with pytest.raises(MdnError, match="no EXR layer") as info:
        images.read(path, layer="nothing")
    listed = str(info.value).partition("(available: ")[2].rstrip(")").split(", ")
    assert listed == ["beauty", "second", "albedo", "main.normal", "second.normal"]
    for name in listed:
        assert images.read(path, layer=name).pixels.shape == (1, 5, 6, 3)
    np.testing.assert_array_equal(images.read(path, layer="beauty").pixels, images.read(path).pixels)
    np.testing.assert_array_equal(images.read(path, layer="second").pixels[0, ..., 0], plain["R"] * 2)
    np.testing.assert_array_equal(images.read(path, layer="second.normal").pixels[0, ..., 1], aov["normal.G"])


def test_exr_multipart_picks_the_beauty_part(tmp_path: Path) -> None:
    path = tmp_path / "multi.exr"
    depth = OpenEXR.Part({}, {"Z": RNG.random((5, 6)).astype("float32")}, "depth")
    rgb = {c: RNG.random((5, 6)).astype("float16") for c in "RGB"}
    OpenEXR.File([depth, OpenEXR.Part({}, dict(rgb), "beauty")]).write(str(path))
    image = images.read(path)
    np.testing.assert_array_equal(image.pixels[0, ..., 1], rgb["G"].astype("float32"))
    images.write(image, tmp_path / "out.exr")
    parts = OpenEXR.File(str(tmp_path / "out.exr"), separate_channels=True).parts
    assert [p.name() for p in parts] == ["depth", "beauty"]


@pytest.mark.parametrize("parts", [1, 2])
def test_an_exr_cut_short_is_refused_not_written_without_the_part(tmp_path: Path, parts: int) -> None:
    whole, cut = tmp_path / "whole.exr", tmp_path / "cut.exr"
    noise = {c: RNG.random((64, 64)).astype("float32") for c in "RGB"}
    header = {"compression": OpenEXR.NO_COMPRESSION, "type": OpenEXR.scanlineimage}
    names = ("beauty", "spec")[:parts]
    OpenEXR.File([OpenEXR.Part(dict(header), dict(noise), name) for name in names]).write(str(whole))
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) - 8000])  # inside the last part's pixels
    which = "the pixels of part 1 \\(spec\\)" if parts == 2 else "its pixels"
    with pytest.raises(MdnError, match=f"cannot read EXR \\(corrupt or truncated\\?\\): {which} could not be read"):
        images.read(cut)
    assert images.read(whole).pixels.shape == (1, 64, 64, 3)
    done = subprocess.run(  # in a process of its own: OpenEXR writes to the process's stdout and stderr
        [sys.executable, "-m", "mdn", "denoise", str(cut), "-o", str(tmp_path / "out.exr"), "--threads", "1"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 1 and done.stdout == "", done.stdout  # OpenEXR's own lines said it again, unreadably
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {cut}: cannot read EXR (corrupt or truncated?): ") and "EXR_ERR" not in line


def test_what_others_write_while_a_library_is_kept_quiet_comes_through(capfd: pytest.CaptureFixture[str]) -> None:
    with library_messages.quiet():
        os.write(2, b"cut.exr: (EXR_ERR_BAD_CHUNK_LEADER) Preparing to read scanline 32\nprogress 40 %\n")
        os.write(1, b"Warning: Exception raised reading pixel data for part 0\nwrote out.png\n")
    out, err = capfd.readouterr()
    assert (out, err) == ("wrote out.png\n", "progress 40 %\n")


def test_a_luminance_and_chroma_exr_is_refused_not_denoised_in_luminance_alone(tmp_path: Path) -> None:
    path = tmp_path / "yc.exr"
    _write_exr(path, {c: RNG.random((6, 7)).astype("float16") for c in ("Y", "RY", "BY")})
    with pytest.raises(MdnError, match=r"luminance and chroma \(Y, RY, BY\); convert it to RGB"):
        images.read(path)
    _write_exr(path, {"Y": RNG.random((6, 7)).astype("float16")})
    assert images.read(path).pixels.shape == (1, 6, 7, 1)


def test_an_exr_alpha_of_another_type_is_written_back_as_it_came(tmp_path: Path) -> None:
    """A float alpha beside half colour is the picture's alpha, and each goes back in its own type."""
    path = tmp_path / "mixed.exr"
    channels = {c: RNG.random((6, 7)).astype("float16") for c in "RGB"}
    channels["A"] = RNG.random((6, 7)).astype("float32")
    _write_exr(path, channels)
    image = images.read(path)
    assert image.pixels.shape == (1, 6, 7, 3) and image.alpha is not None
    images.write(image.with_pixels(image.pixels * 0), tmp_path / "out.exr")
    after = _exr_channels(tmp_path / "out.exr")
    assert after["A"].dtype == np.float32 and after["R"].dtype == np.float16 and not after["R"].any()
    np.testing.assert_array_equal(after["A"], channels["A"])


def test_exr_nan_and_inf_are_replaced_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "firefly.exr"
    channels = {c: np.full((4, 5), 0.5, "float16") for c in "RGB"}
    channels["R"][0, 0] = np.nan
    channels["G"][1, 1] = np.inf
    channels["B"][2, 2] = -np.inf
    channels["B"][3, 3] = 7.0
    _write_exr(path, channels)
    image = images.read(path)
    assert image.nonfinite == 3
    assert np.isfinite(image.pixels).all()
    assert image.pixels[0, 0, 0, 0] == 0.0
    assert image.pixels[0, 1, 1, 1] == 7.0
    assert image.pixels[0, 2, 2, 2] == 0.0  # no light: as -7 it had left a black dot in the denoised picture


def test_integer_output_is_rounded_and_clipped_not_wrapped(tmp_path: Path) -> None:
    path = tmp_path / "in.png"
    path.write_bytes(imagecodecs.png_encode(np.full((4, 4), 100, np.uint8)))
    image = images.read(path)
    pixels = image.pixels.copy()
    pixels[0, 0, 0] = 1.7
    pixels[0, 0, 1] = -0.4
    pixels[0, 0, 2] = 100.4 / 255
    images.write(image.with_pixels(pixels), tmp_path / "out.png")
    out = imagecodecs.png_decode((tmp_path / "out.png").read_bytes())
    assert out[0, :3].tolist() == [255, 0, 100]


def test_dtype_option_changes_bit_depth(tmp_path: Path) -> None:
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, np.array([[0, 65535], [32768, 1]], np.uint16))
    images.write(images.read(path), tmp_path / "out.tif", dtype="uint8")
    assert tifffile.imread(tmp_path / "out.tif").tolist() == [[0, 255], [128, 0]]
    with pytest.raises(MdnError, match="cannot store float32"):
        images.write(images.read(path), tmp_path / "out.png", dtype="float32")


@pytest.mark.parametrize(("name", "dtype", "low"), [("out.png", None, 0.0), ("out.tif", "uint8", -500.0)])
def test_a_float_tiff_outside_0_1_written_as_integers_is_stretched_from_its_own_range(
    tmp_path: Path, name: str, dtype: str | None, low: float
) -> None:
    x = np.arange(128)
    ramp = np.tile(low + x * 1000 / 127, (4, 1)).astype(np.float32)  # physical units: low .. low + 1000
    tifffile.imwrite(tmp_path / "in.tif", ramp)
    image = images.read(tmp_path / "in.tif")
    assert image.source.value_range == (low, low + 1000)
    images.write(image, tmp_path / name, dtype=dtype)
    out = iio.imread(tmp_path / name)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[0], np.rint(x * 255 / 127))  # ImageJ's 8-bit picture, not 99 % white
    undershoot = image.with_pixels(image.pixels - 5)  # the result's own range does not move the stretch
    images.write(undershoot, tmp_path / name, dtype=dtype, overwrite=True)
    expected = np.clip(np.rint((x * 1000 / 127 - 5) * 255 / 1000), 0, 255)
    np.testing.assert_array_equal(iio.imread(tmp_path / name)[0], expected)
    np.testing.assert_array_equal(images.to_array(images.from_array(ramp)), ramp)  # arrays: float in, float out
    unit = np.tile(np.linspace(0.25, 0.75, 9, dtype=np.float32), (3, 1))  # within [0, 1]: clipped, not stretched
    tifffile.imwrite(tmp_path / "unit.tif", unit)
    image = images.read(tmp_path / "unit.tif")
    images.write(image.with_pixels(image.pixels - 0.3), tmp_path / f"unit_{name}", dtype=dtype)
    expected = np.clip(np.rint((unit[0] - 0.3) * 255), 0, 255)
    np.testing.assert_array_equal(iio.imread(tmp_path / f"unit_{name}")[0], expected)


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("dtype", ["uint32", "uint64"])
def test_32_and_64_bit_white_stays_white(tmp_path: Path, dtype: str) -> None:
    top = np.iinfo(dtype).max
    planes = np.array([0.0, 0.5, 1.0, 1.5, -0.5], np.float32).reshape(1, 1, 5, 1)
    half = 2 ** (np.iinfo(dtype).bits - 1)
    assert picture.quantised(planes, np.dtype(dtype)).ravel().tolist() == [0, half, top, top, 0]
    stored = np.array([[0, half, top]], dtype)
    np.testing.assert_array_equal(images.to_array(images.from_array(stored)), stored)
    tifffile.imwrite(tmp_path / "in.tif", np.tile(stored, (3, 1)))
    images.write(images.read(tmp_path / "in.tif"), tmp_path / "out.tif")
    back = tifffile.imread(tmp_path / "out.tif")
    assert back.dtype == np.dtype(dtype) and back.tolist() == [[0, half, top]] * 3


@pytest.mark.parametrize("value", [None, 5, b"abc", np.array(3.0), np.zeros(5), [[1, 2], [3]]])
def test_from_array_refuses_what_is_no_image_array_in_one_line(value) -> None:
    with pytest.raises(MdnError, match=r"^expected an image array") as error:
        images.from_array(value)
    assert "\n" not in str(error.value)


def test_a_pillow_image_is_taken_in_its_colours_not_its_palette_indices_or_bits() -> None:
    colours = np.array([[10, 200, 30], [250, 20, 90], [0, 0, 255], [128, 128, 128]], np.uint8)
    rgb = colours[np.arange(24).reshape(4, 6) % 4]
    palette = PIL.Image.fromarray(rgb).quantize(colors=4)
    assert palette.mode == "P" and np.asarray(palette).max() == 3  # indices 0 .. 3
    image = images.from_array(palette)
    assert image.alpha is None
    np.testing.assert_array_equal(np.rint(image.pixels[0] * 255), rgb)
    palette.info["transparency"] = 2
    assert images.from_array(palette).alpha[0, ..., 0].tolist() == (np.asarray(palette) != 2).tolist()
    bits = PIL.Image.fromarray(rgb[..., 0] > 100)  # mode "1"
    assert images.from_array(bits).pixels[0, ..., 0].tolist() == (rgb[..., 0] > 100).tolist()
    cmyk = PIL.Image.fromarray(rgb).convert("CMYK")
    assert images.from_array(cmyk).pixels.shape == (1, 4, 6, 3) and images.from_array(cmyk).alpha is None


def test_a_linear_exr_written_as_png_or_16_bit_tiff_is_srgb_encoded_and_as_exr_stays_linear(tmp_path: Path) -> None:
    linear = np.zeros((4, 6, 3), np.float32)
    linear[:, :2], linear[:, 2:4], linear[:, 4:] = 0.18, 0.5, 3.0  # mid grey, half, a highlight
    OpenEXR.File({"type": OpenEXR.scanlineimage}, {"RGB": linear}).write(str(tmp_path / "render.exr"))
    image = images.read(tmp_path / "render.exr")
    images.write(image, tmp_path / "view.png")
    assert iio.imread(tmp_path / "view.png")[0, ::2, 0].tolist() == [118, 188, 255]
    images.write(image, tmp_path / "view.tif", dtype="uint16")
    assert tifffile.imread(tmp_path / "view.tif")[0, ::2, 0].tolist() == [30_235, 48_192, 65_535]
    images.write(image, tmp_path / "copy.exr")
    assert np.array_equal(images.read(tmp_path / "copy.exr").pixels, image.pixels)


def test_format_conversion_writes_the_target_format(tmp_path: Path) -> None:
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, _random((8, 9, 3), "uint16"), photometric="rgb")
    images.write(images.read(path), tmp_path / "out.png")
    out = imagecodecs.png_decode((tmp_path / "out.png").read_bytes())
    np.testing.assert_array_equal(out, tifffile.imread(path))
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, _random((3, 8, 9), "uint8"), photometric="minisblack")
    with pytest.raises(MdnError, match="stack of 3 images can only be written as TIFF"):
        images.write(images.read(stack), tmp_path / "stack.png")


def test_write_refuses_to_overwrite_input_or_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "in.png"
    original = _random((5, 6, 3), "uint8")
    path.write_bytes(imagecodecs.png_encode(original))
    image = images.read(path)
    for overwrite in (False, True):
        with pytest.raises(MdnError, match="is the input file: mdn never replaces an input"):
            images.write(image.with_pixels(image.pixels * 0), path, overwrite=overwrite)
    np.testing.assert_array_equal(imagecodecs.png_decode(path.read_bytes()), original)
    other = tmp_path / "other.png"
    other.write_bytes(path.read_bytes())
    with pytest.raises(atomic.OutputExists):
        images.write(image.with_pixels(image.pixels * 0), other)
    images.write(image.with_pixels(image.pixels * 0), other, overwrite=True)
    assert not imagecodecs.png_decode(other.read_bytes()).any()


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "in.png"
    path.write_bytes(imagecodecs.png_encode(_random((5, 6), "uint8")))
    image = images.read(path)
    target = tmp_path / "out.png"
    target.write_bytes(b"previous result")

    def fail(_data, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(imagecodecs, "png_encode", fail)
    with pytest.raises(MdnError, match=r"out\.png: cannot write: No space left on device"):
        images.write(image, target, overwrite=True)
    assert target.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "out.png"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.png", None, "does not exist"),
        ("missing-folder", None, "does not exist"),
        ("empty.jpg", b"", "file is empty"),
        ("text.jpg", b"hello", "cannot read JPEG [(]corrupt or truncated[?][)]: not a JPEG file$"),
        ("notes.txt", b"hello", "unsupported file type '.txt'"),
        ("truncated.png", "truncate", "cannot read PNG"),
        ("garbage.tif", b"II*\x00garbage", "cannot read TIFF"),
        ("garbage.exr", b"\x76\x2f\x31\x01garbage", "cannot read EXR"),
        ("garbage.jpg", b"\xff\xd8\xffnot really", "cannot read JPEG"),
        ("empty.tif", "empty", "image is empty"),
        ("complex.tif", "complex", "unsupported sample type complex64"),
        ("print.jpg", "cmyk", "unsupported JPEG colour model CMYK"),
        ("print.tif", "cmyk", "unsupported TIFF colour model SEPARATED"),
        ("signed.tif", "int16", "unsupported sample type int16 [(]signed: convert it to uint16 or float32[)]"),
        ("moving.png", "animated", "animated PNG of 3 frames: mdn takes still images"),
        ("two.tif", "two images", "TIFF holds 2 images [(]40x48, 20x24x3[)]: mdn takes one"),
        ("moving.webp", "animated", "animated WEBP of 3 frames: mdn takes still images"),
    ],
)
def test_bad_input_raises_one_error_naming_the_file(tmp_path: Path, name: str, content, message: str) -> None:
    path = tmp_path / name
    if content == "truncate":
        path.write_bytes(imagecodecs.png_encode(_random((32, 32, 3), "uint8"))[:60])
    elif content == "empty":
        tifffile.imwrite(path, np.zeros((0, 5), np.uint8))
    elif content == "complex":
        tifffile.imwrite(path, np.zeros((4, 5), np.complex64))
    elif content == "cmyk" and path.suffix == ".jpg":
        PIL.Image.fromarray(_random((16, 24, 3), "uint8")).convert("CMYK").save(path)
    elif content == "animated":
        frames = [PIL.Image.fromarray(_random((16, 24, 3), "uint8")) for _ in range(3)]
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, lossless=True)
    elif content == "two images":
        with tifffile.TiffWriter(path) as tif:
            tif.write(_random((40, 48), "uint8"))
            tif.write(_random((20, 24, 3), "uint8"), photometric="rgb")
    elif content == "int16":
        tifffile.imwrite(path, np.zeros((4, 5), np.int16))
    elif content == "cmyk":
        tifffile.imwrite(path, _random((16, 24, 4), "uint8"), photometric="separated")
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(MdnError, match=message) as info:
        images.read(path)
    assert str(info.value).startswith(str(path))
    assert "\n" not in str(info.value)


def test_directory_where_a_file_is_expected(tmp_path: Path) -> None:
    folder = tmp_path / "photos.png"
    folder.mkdir()
    with pytest.raises(MdnError, match="is a directory"):
        images.read(folder)


def test_new_outputs_get_ordinary_permissions_and_replacements_keep_theirs(tmp_path: Path) -> None:
    path = tmp_path / "in.png"
    path.write_bytes(imagecodecs.png_encode(_random((5, 6), "uint8")))
    image = images.read(path)
    old_mask = os.umask(0o022)
    try:
        images.write(image, tmp_path / "new.png")
        assert (tmp_path / "new.png").stat().st_mode & 0o777 == 0o644
        (tmp_path / "kept.png").write_bytes(b"")
        os.chmod(tmp_path / "kept.png", 0o640)
        images.write(image, tmp_path / "kept.png", overwrite=True)
        assert (tmp_path / "kept.png").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old_mask)


def test_a_write_failing_halfway_leaves_no_temporary_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "in.png"
    path.write_bytes(imagecodecs.png_encode(_random((5, 6), "uint8")))

    def disk_full(tmp: Path, raw: np.ndarray, source, photo) -> None:
        tmp.write_bytes(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setitem(images._ENCODERS, "png", disk_full)
    with pytest.raises(MdnError, match=r"new\.png: cannot write: No space left on device$"):
        images.write(images.read(path), tmp_path / "sub" / "new.png")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["in.png", "sub"]
    assert not atomic._PENDING


def test_an_exr_of_named_layers_gives_its_beauty_pass_or_asks_which(tmp_path: Path) -> None:
    blender = {f"ViewLayer.{layer}.{c}": RNG.random((6, 7)).astype("float32") for layer in ("AO", "Combined")
               for c in "RGB"}  # fmt: skip
    path = tmp_path / "blender.exr"
    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION}, {**blender}).write(str(path))
    np.testing.assert_array_equal(images.read(path).pixels[0, ..., 1], blender["ViewLayer.Combined.G"])
    passes = {f"{layer}.{c}": RNG.random((6, 7)).astype("float32") for layer in ("diffuse", "specular") for c in "RGB"}
    path = tmp_path / "passes.exr"
    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION}, {**passes}).write(str(path))
    with pytest.raises(MdnError, match=r"which layer is the beauty pass\? pick one with --layer \(diffuse, specular\)"):
        images.read(path)
    np.testing.assert_array_equal(images.read(path, layer="specular").pixels[0, ..., 0], passes["specular.R"])


def test_a_render_made_smaller_by_a_noise_is_written_as_its_layer(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mdn.cli import app

    channels = {c: RNG.random((16, 20)).astype("float32") * 3 for c in "RGB"}
    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION}, channels).write(str(tmp_path / "render.exr"))
    result = CliRunner().invoke(app, ["noise", str(tmp_path / "render.exr"), "--type", "aliased", "-o",
                                      str(tmp_path / "aliased.exr")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert images.read(tmp_path / "aliased.exr").pixels.shape == (1, 8, 10, 3)


def test_a_mipmapped_exrs_header_is_written_single_level() -> None:
    """OpenEXR's Python binding holds level 0 alone: under a texture's mip-map header it wrote a corrupt file."""
    tiles = OpenEXR.TileDescription()
    tiles.xSize, tiles.ySize, tiles.mode = 32, 16, OpenEXR.MIPMAP_LEVELS
    header = {"tiles": tiles, "type": OpenEXR.tiledimage}
    exr._one_level(header)
    assert (header["tiles"].mode, header["tiles"].xSize, header["tiles"].ySize) == (OpenEXR.ONE_LEVEL, 32, 16)
    scanlines = {"type": OpenEXR.scanlineimage}
    exr._one_level(scanlines)
    assert scanlines == {"type": OpenEXR.scanlineimage}


@pytest.mark.parametrize("shape", [(40, 56), (40, 56, 2), (40, 56, 3), (40, 56, 4)])
def test_a_png_written_as_tiff_is_one_page_of_its_samples(tmp_path: Path, shape: tuple[int, ...]) -> None:
    """A grey PNG's (H, W, 1) array had been written as H pages of W x 1 strips, which mdn then refused to read."""
    pixels = _random(shape, "uint8")
    (tmp_path / "in.png").write_bytes(imagecodecs.png_encode(pixels))
    images.write(images.read(tmp_path / "in.png"), tmp_path / "out.tif")
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert (len(tif.pages), tif.pages.first.shape, tif.series[0].shape) == (1, shape, shape)
        np.testing.assert_array_equal(tif.asarray(), pixels)
    assert PIL.Image.open(tmp_path / "out.tif").size == (56, 40)
    np.testing.assert_array_equal(images.read(tmp_path / "out.tif").pixels, images.read(tmp_path / "in.png").pixels)


def _grey_jpeg(folder: Path) -> picture.Image:
    iio.imwrite(folder / "grey.jpg", _random((40, 56), "uint8"))
    return images.read(folder / "grey.jpg")


def _grey_exr(folder: Path) -> picture.Image:
    _write_exr(folder / "grey.exr", {"Y": RNG.random((40, 56)).astype("float32")})
    return images.read(folder / "grey.exr")


def _grey_stack(folder: Path) -> picture.Image:
    return images.from_array(_random((3, 40, 56), "uint16"), "ZYX")


@pytest.mark.parametrize(("grey", "pages"), [(_grey_jpeg, 1), (_grey_exr, 1), (_grey_stack, 3)])
def test_grey_of_another_format_written_as_tiff_is_a_page_of_each_plane(tmp_path: Path, grey, pages: int) -> None:
    image = grey(tmp_path)
    images.write(image, tmp_path / "out.tif")
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert [page.shape for page in tif.pages] == [(40, 56)] * pages
    np.testing.assert_array_equal(images.read(tmp_path / "out.tif").pixels, image.pixels)


def test_a_grey_tiff_stack_written_at_another_type_stays_a_stack(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "stack.tif", _random((3, 40, 56), "uint16"), photometric="minisblack")
    images.write(images.read(tmp_path / "stack.tif"), tmp_path / "out.tif", dtype="uint8")
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert [page.shape for page in tif.pages] == [(40, 56)] * 3 and tif.series[0].shape == (3, 40, 56)


def test_a_pipe_is_written_through_not_replaced_by_a_file(tmp_path: Path) -> None:
    """A report to a device (/dev/null, /dev/stdout in a pipeline) was renamed over it: as root, `--json /dev/full`
    replaced the machine's /dev/full with a JSON file."""
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(pipe.read_bytes()), daemon=True)
    reader.start()
    atomic.write_atomic(pipe, lambda path: path.write_text('{"files": 1}'))
    reader.join(timeout=60)
    assert got == [b'{"files": 1}'] and stat.S_ISFIFO(pipe.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]  # no temporary file left


def test_a_descriptors_link_is_written_through_after_what_the_file_holds(tmp_path: Path) -> None:
    """`--json /dev/stdout >> log.txt`: /dev/stdout leads into /proc and on to the log, and the rename put a file
    in its place (as root, in /dev)."""
    log = tmp_path / "log.txt"
    log.write_text("wrote out.png\n")
    descriptor = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        stdout = tmp_path / "stdout"
        stdout.symlink_to(f"/proc/self/fd/{descriptor}")
        assert atomic.is_stream(stdout) and not atomic.is_stream(log)
        batch.check_report(stdout, [])  # the log holds no report: a stream is not a file to replace
        atomic.write_atomic(stdout, lambda path: path.write_text('{"files": 1}\n'))
    finally:
        os.close(descriptor)
    assert stdout.is_symlink() and log.read_text() == 'wrote out.png\n{"files": 1}\n'


def test_two_view_layers_combined_are_asked_about_not_one_left_noisy(tmp_path: Path) -> None:
    """Background.Combined was denoised and ViewLayer.Combined written back noisy, without a word; Blender's
    Composite (the compositor's picture of its view layers) is still the beauty read."""
    layers = {f"{view}.Combined.{c}": RNG.random((6, 7)).astype("float32") for view in ("Background", "ViewLayer")
              for c in "RGB"}  # fmt: skip
    path = tmp_path / "two.exr"
    _write_exr(path, layers)
    with pytest.raises(MdnError, match=r"two\.exr: which layer is the beauty pass\? pick one with --layer "
                                       r"\(Background\.Combined, ViewLayer\.Combined\)$"):  # fmt: skip
        images.read(path)
    np.testing.assert_array_equal(images.read(path, layer="ViewLayer.Combined").pixels[0, ..., 2],
                                  layers["ViewLayer.Combined.B"])  # fmt: skip
    composite = {f"Composite.Combined.{c}": RNG.random((6, 7)).astype("float32") for c in "RGB"}
    _write_exr(path, {**layers, **composite})
    np.testing.assert_array_equal(images.read(path).pixels[0, ..., 0], composite["Composite.Combined.R"])


def _mip_mapped_exr(path: Path, size: int, tile: int = 8) -> None:
    """A tiled, mip-mapped, uncompressed half RGB EXR of `size` x `size`, written byte by byte: OpenEXR's Python
    binding writes level 0 alone."""
    import struct

    def attribute(name: str, kind: str, data: bytes) -> bytes:
        return name.encode() + b"\0" + kind.encode() + b"\0" + struct.pack("<i", len(data)) + data

    box = struct.pack("<4i", 0, 0, size - 1, size - 1)
    halves = b"".join(c.encode() + b"\0" + struct.pack("<i4xii", 1, 1, 1) for c in "BGR") + b"\0"
    header = b"".join([
        attribute("channels", "chlist", halves),
        attribute("compression", "compression", b"\0"), attribute("dataWindow", "box2i", box),
        attribute("displayWindow", "box2i", box), attribute("lineOrder", "lineOrder", b"\0"),
        attribute("pixelAspectRatio", "float", struct.pack("<f", 1)),
        attribute("screenWindowCenter", "v2f", struct.pack("<2f", 0, 0)),
        attribute("screenWindowWidth", "float", struct.pack("<f", 1)),
        attribute("tiles", "tiledesc", struct.pack("<IIB", tile, tile, 1)),
    ]) + b"\0"  # fmt: skip
    chunks = []
    for level in range(size.bit_length()):
        side = size >> level
        plane = np.full((side, side), 0.5, np.float16)
        for ty in range(-(-side // tile)):
            for tx in range(-(-side // tile)):
                block = plane[ty * tile : (ty + 1) * tile, tx * tile : (tx + 1) * tile]
                data = b"".join(row.tobytes() * 3 for row in block)  # B, G, R of each line
                chunks.append(struct.pack("<5i", tx, ty, level, level, len(data)) + data)
    start = b"v/1\x01" + struct.pack("<I", 2 | 0x200) + header
    offsets = np.cumsum([len(start) + 8 * len(chunks)] + [len(chunk) for chunk in chunks[:-1]])
    path.write_bytes(start + b"".join(struct.pack("<Q", int(o)) for o in offsets) + b"".join(chunks))


def test_the_mip_levels_an_exr_writes_without_are_said_left_out(tmp_path: Path) -> None:
    """A texture's reduced levels had been dropped without a word (the binding writes level 0 alone)."""
    from typer.testing import CliRunner

    from mdn.cli import app

    _mip_mapped_exr(tmp_path / "mip.exr", 16)
    image = images.read(tmp_path / "mip.exr")
    assert image.pixels.shape == (1, 16, 16, 3)
    assert image.source.meta["left_out"] == ["its 4 mip-map levels below the full size"]
    result = CliRunner().invoke(app, ["noise", str(tmp_path / "mip.exr"), "-o", str(tmp_path / "out.exr")])
    assert result.exit_code == 0, result.output
    assert "mip.exr: its 4 mip-map levels below the full size left out" in result.output
    tiles = OpenEXR.File(str(tmp_path / "out.exr"), header_only=True).header()["tiles"]
    assert tiles.mode == OpenEXR.ONE_LEVEL
    rip = OpenEXR.TileDescription()
    rip.xSize, rip.ySize, rip.mode, rip.roundingMode = 8, 8, OpenEXR.RIPMAP_LEVELS, OpenEXR.ROUND_UP
    window = (np.array([0, 0], np.int32), np.array([19, 8], np.int32))  # 20 x 9: 6 x 5 levels rounded up
    assert exr._levels_besides_full({"tiles": rip, "dataWindow": window}) == (29, "rip-map")


def test_an_exrs_premultiplied_colour_is_divided_by_alpha_for_a_straight_format(tmp_path: Path) -> None:
    """OpenEXR's colour is multiplied by alpha; a PNG's, a WebP's and a TIFF's unassociated alpha's are not: a
    quarter-covered mid grey came out darkened (0.125 instead of 0.5), and a TIFF tagged unassociated held it."""
    alpha = np.ones((4, 6), np.float32)
    alpha[:, :3] = 0.25
    alpha[0, 0] = 0.0
    colour = 0.5 * alpha
    colour[0, 0] = 2.0  # glow: light where nothing covers
    _write_exr(tmp_path / "cut.exr", {"R": colour, "G": colour, "B": colour, "A": alpha})
    image = images.read(tmp_path / "cut.exr")
    images.write(image, tmp_path / "out.png")
    png = imagecodecs.png_decode((tmp_path / "out.png").read_bytes())
    assert png[1, 1].tolist() == [*png[1, 5].tolist()[:3], 64] and png[1, 5, 0] == 188  # sRGB 0.5, alpha 0.25
    images.write(image, tmp_path / "out.tif", dtype="float32")
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        stored = tif.asarray()
        assert tif.pages.first.extrasamples == (tifffile.EXTRASAMPLE.UNASSALPHA,)
    assert stored[1, 1].tolist() == [0.5, 0.5, 0.5, 0.25] and stored[0, 0].tolist() == [2.0, 2.0, 2.0, 0.0]
    images.write(image, tmp_path / "out.exr")  # an EXR keeps its colour as OpenEXR defines it
    np.testing.assert_array_equal(_exr_channels(tmp_path / "out.exr")["R"], colour)


def test_a_straight_alpha_picture_written_as_exr_is_multiplied_by_its_alpha(tmp_path: Path) -> None:
    """An EXR's colours are multiplied by its alpha: a PNG's straight colours went in as they were, so a reader
    showed half-transparent pixels twice as bright."""
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = 200, np.where(np.arange(8) < 4, 255, 51)[None, :]
    iio.imwrite(tmp_path / "cut.png", rgba)
    images.write(images.read(tmp_path / "cut.png"), tmp_path / "cut.exr")
    channels = OpenEXR.File(str(tmp_path / "cut.exr")).channels()
    colour = channels["RGBA"].pixels if "RGBA" in channels else channels["RGB"].pixels
    light = ((200 / 255 + 0.055) / 1.055) ** 2.4  # the PNG's sRGB value as light, as an EXR holds it
    np.testing.assert_allclose(colour[0, :, 0], light * rgba[0, :, 3] / 255, rtol=1e-3)


def test_a_photo_written_as_exr_holds_its_light_and_comes_back_as_it_was(tmp_path: Path) -> None:
    """A PNG's sRGB values had been written into the EXR as they were: a renderer showed 0.5 as 0.73, and the
    EXR written back as PNG came out 43 levels brighter. A grey 16-bit TIFF (a detector's counts) stays linear."""
    photo = _random((16, 12, 3), "uint8")
    iio.imwrite(tmp_path / "photo.png", photo)
    images.write(images.read(tmp_path / "photo.png"), tmp_path / "photo.exr")
    stored = images.read(tmp_path / "photo.exr").pixels[0]
    encoded = photo / 255.0
    linear = np.where(encoded <= 0.04045, encoded / 12.92, ((encoded + 0.055) / 1.055) ** 2.4)
    np.testing.assert_allclose(stored, linear, atol=2e-3)  # half floats
    images.write(images.read(tmp_path / "photo.exr"), tmp_path / "back.png")
    assert np.abs(iio.imread(tmp_path / "back.png").astype(int) - photo).max() <= 1
    counts = _random((16, 12), "uint16")
    tifffile.imwrite(tmp_path / "counts.tif", counts)
    iio.imwrite(tmp_path / "counts.png", counts)  # grey 16-bit: counts, whatever the format
    for name in ("counts.tif", "counts.png"):
        images.write(images.read(tmp_path / name), tmp_path / f"{name}.exr")
        stored = images.read(tmp_path / f"{name}.exr").pixels[0, ..., 0]
        np.testing.assert_allclose(stored, counts / 65535, atol=1e-3)


def test_a_picture_first_written_as_jpeg_keeps_full_colour_resolution_and_a_jpeg_its_own(tmp_path: Path) -> None:
    from PIL import JpegImagePlugin

    iio.imwrite(tmp_path / "master.png", _random((32, 32, 3), "uint8"))
    images.write(images.read(tmp_path / "master.png"), tmp_path / "master.jpg")
    with PIL.Image.open(tmp_path / "master.jpg") as written:
        assert JpegImagePlugin.get_sampling(written) == 0  # 4:4:4 (Pillow's own default, 4:2:0, is 2)
    PIL.Image.fromarray(_random((32, 32, 3), "uint8")).save(tmp_path / "camera.jpg", quality=90, subsampling=2)
    images.write(images.read(tmp_path / "camera.jpg"), tmp_path / "again.jpg")
    with PIL.Image.open(tmp_path / "again.jpg") as written:
        assert JpegImagePlugin.get_sampling(written) == 2


def test_missing_samples_are_filled_from_their_neighbours_and_written_back_as_nan(tmp_path: Path) -> None:
    """NaN in a float TIFF is "no data": the work sees it filled from the pixels around (not a dot of 0 that a
    denoiser keeps and its neighbours feel), and a float output holds NaN there again; an integer one the
    filled value. A render's NaN (EXR) is still replaced and counted."""
    y, x = np.mgrid[0:32, 0:40]
    plane = (100 + 3 * y + 2 * x).astype(np.float32)
    stored = plane.copy()
    stored[5, 7], stored[20:26, 30:34] = np.nan, np.nan
    tifffile.imwrite(tmp_path / "cells.tif", stored)
    image = images.read(tmp_path / "cells.tif")
    assert image.nonfinite == 0 and image.missing is not None and int(image.missing.sum()) == 25
    filled = image.pixels[0, ..., 0]
    low, high = images.read(tmp_path / "cells.tif").source.value_range
    assert np.isfinite(filled).all() and low <= filled.min() and filled.max() <= high
    assert abs(float(filled[5, 7]) - plane[5, 7]) < 3  # its neighbours' value on a ramp of 2-3 a pixel (not 0)
    images.write(image, tmp_path / "out.tif")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), stored)  # NaN where it was, the rest as read
    images.write(image, tmp_path / "out16.tif", dtype="uint16")
    assert tifffile.imread(tmp_path / "out16.tif")[5, 7] > 0
    shrunk = image.with_pixels(image.pixels[:, ::2, ::2])
    assert shrunk.missing is not None and shrunk.missing.shape == shrunk.pixels.shape
    exr_path = tmp_path / "render.exr"
    _write_exr(exr_path, {c: plane.copy() for c in "RGB"})
    channels = _exr_channels(exr_path)
    channels["R"][5, 7] = np.nan
    _write_exr(exr_path, channels)
    render = images.read(exr_path)
    assert render.nonfinite == 1 and render.missing is None


def test_a_missing_sample_is_filled_from_its_own_channels_finite_neighbours(tmp_path: Path) -> None:
    """A NaN beside -Inf was filled with it (then 0, and counted as replaced); a NaN in one channel replaced the
    pixel's other, finite channels for the work; a NaN under associated alpha kept the picture premultiplied."""
    rgb = np.full((8, 9, 3), 0.4, np.float32)
    rgb[..., 1] = 0.05
    rgb[3, 3, 0], rgb[3, 4, 0] = np.nan, -np.inf
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    image = images.read(tmp_path / "rgb.tif")
    assert image.nonfinite == 1 and int(image.missing.sum()) == 1
    assert image.pixels[0, 3, 3, 0] == pytest.approx(0.4, abs=1e-6) and image.pixels[0, 3, 3, 1] == np.float32(0.05)
    grey = np.full((8, 9, 2), 0.25, np.float32)
    grey[..., 1] = 0.5  # colour 0.25 under alpha 0.5, premultiplied: 0.5 straight
    grey[2, 2, 0] = np.nan
    tifffile.imwrite(tmp_path / "assoc.tif", grey, photometric="minisblack", extrasamples=["assocalpha"])
    straight = images.read(tmp_path / "assoc.tif")
    assert straight.source.meta.get("straightened") and straight.pixels[0, 0, 0, 0] == pytest.approx(0.5)
