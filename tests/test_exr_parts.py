"""Which part of a multi-part EXR is the beauty, and an RGBA EXR's alpha stored in another float type than its
colour: the picture read, denoised and written back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import OpenEXR
import pytest
import torch
from typer.testing import CliRunner

from mdn import registry
from mdn.cli import app
from mdn.errors import MdnError
from mdn.io import exr, images
from mdn.nets.unet import UNET_SIZES, UNet

runner = CliRunner()
RNG = np.random.default_rng(46)


def _card(folder: Path) -> registry.ModelCard:
    """A random tiny U-Net card, enough to change the pixels it is given."""
    torch.manual_seed(0)
    config = UNET_SIZES["unet-tiny"]
    card = registry.ModelCard("tiny-unet", "unet", config.to_dict(), "", "", description="random, for tests")
    return registry.save(UNet(config), card, folder)


def _multipart(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    """A file of one part per name, each plain R, G, B (X, Y, Z for `N`) of its own random values."""
    pixels = {name: RNG.random((32, 32, 3)).astype(np.float32) * 2 for name in names}
    parts = [
        OpenEXR.Part({}, {c: pixels[name][..., i].copy() for i, c in enumerate("XYZ" if name == "N" else "RGB")}, name)
        for name in names
    ]
    OpenEXR.File(parts).write(str(path))
    return pixels


@pytest.mark.parametrize(
    ("names", "beauty"),
    [(["albedo", "beauty", "diffuse"], "beauty"), (["diffuse", "rgba"], "rgba"), (["N", "rgba"], "rgba")],
)
def test_the_part_named_as_the_beauty_is_read_not_the_first(tmp_path: Path, names: list[str], beauty: str) -> None:
    """The first part of a file had been called "beauty" and denoised (an albedo, a normal), the real beauty part
    written back noisy; a later part named beauty could not be picked at all."""
    path = tmp_path / "render.exr"
    pixels = _multipart(path, names)
    assert exr.exr_layer_names(path) == names  # every part by its own name
    for layer in (None, "beauty", beauty):
        np.testing.assert_array_equal(images.read(path, layer=layer).pixels[0], pixels[beauty])
    for name in names:
        np.testing.assert_array_equal(images.read(path, layer=name).pixels[0], pixels[name])


def test_denoise_changes_the_beauty_part_and_keeps_the_others(tmp_path: Path) -> None:
    path, out = tmp_path / "render.exr", tmp_path / "out.exr"
    pixels = _multipart(path, ["albedo", "beauty", "diffuse"])
    result = runner.invoke(app, ["denoise", str(path), "--model", str(_card(tmp_path).path), "-o", str(out),
                                 "--threads", "1", "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    written = OpenEXR.File(str(out), separate_channels=True).parts
    assert [part.name() for part in written] == ["albedo", "beauty", "diffuse"]
    for part in written:
        after = np.stack([part.channels[c].pixels for c in "RGB"], axis=-1)
        assert np.array_equal(after, pixels[part.name()]) == (part.name() != "beauty"), part.name()


@pytest.mark.parametrize("names", [["diffuse", "specular"], ["albedo", "N"]])
def test_parts_whose_names_say_no_beauty_are_asked_about(tmp_path: Path, names: list[str]) -> None:
    """Parts that are all other passes: which to denoise is asked, each listed by its own name, not the first taken."""
    path = tmp_path / "aovs.exr"
    _multipart(path, names)
    words = rf"aovs\.exr: which layer is the beauty pass\? pick one with --layer \({', '.join(names)}\)$"
    for layer in (None, "beauty"):
        with pytest.raises(MdnError, match=words):
            images.read(path, layer=layer)


def test_a_first_part_whose_name_says_nothing_is_still_the_beauty_and_its_name_is_taken(tmp_path: Path) -> None:
    """Parts named as no pass: the first is the beauty, as before; after an albedo part, the next; `--layer` takes
    each part's own name too."""
    path = tmp_path / "render.exr"
    pixels = _multipart(path, ["main", "second"])
    assert exr.exr_layer_names(path) == ["beauty", "second"]
    for layer in (None, "beauty", "main"):
        np.testing.assert_array_equal(images.read(path, layer=layer).pixels[0], pixels["main"])
    pixels = _multipart(path, ["albedo", "main"])
    for layer in (None, "main"):
        np.testing.assert_array_equal(images.read(path, layer=layer).pixels[0], pixels["main"])
    np.testing.assert_array_equal(images.read(path, layer="albedo").pixels[0], pixels["albedo"])


def _half_colour_float_alpha(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """An RGBA render, colour half and alpha float, multiplied by an alpha of 0 in its top-left corner."""
    alpha = np.ones((32, 32), np.float32)
    alpha[:12, :12] = 0.0
    alpha[20:, 20:] = RNG.random((12, 12), dtype=np.float32)  # values half does not hold
    colour = (RNG.poisson(4.0, (32, 32, 3)) / 4 * alpha[..., None]).astype(np.float16)
    channels = {**{c: colour[..., i].copy() for i, c in enumerate("RGB")}, "A": alpha}
    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION}, channels).write(str(path))
    return colour, alpha


def test_a_float_alpha_beside_half_colour_is_the_pictures_alpha(tmp_path: Path) -> None:
    """A float A beside half R, G, B had been left out of the picture: its premultiplied colour came back lit where
    the alpha is 0 (a glow over whatever it is composited on)."""
    path, out = tmp_path / "in.exr", tmp_path / "out.exr"
    colour, alpha = _half_colour_float_alpha(path)
    image = images.read(path)
    assert image.alpha is not None
    np.testing.assert_array_equal(image.alpha[0, ..., 0], alpha)
    np.testing.assert_array_equal(image.pixels[0], colour.astype(np.float32))
    result = runner.invoke(app, ["denoise", str(path), "--model", str(_card(tmp_path).path), "-o", str(out),
                                 "--threads", "1", "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    after = OpenEXR.File(str(out), separate_channels=True).channels()
    assert {c: after[c].pixels.dtype for c in "RGBA"} == {**dict.fromkeys("RGB", np.float16), "A": np.float32}
    np.testing.assert_array_equal(after["A"].pixels, alpha)  # in its own type, exactly
    assert not any(after[c].pixels[:12, :12].any() for c in "RGB")  # no light where nothing is
    assert any(not np.array_equal(after[c].pixels, colour[..., i]) for i, c in enumerate("RGB"))


def test_each_channel_goes_back_in_its_own_type_an_alpha_of_whole_numbers_as_it_came(tmp_path: Path) -> None:
    """Read as float beside its alpha, half colour goes back as half (clipped to what half holds, not Inf), and
    `--dtype` still gives every channel of the picture its type. What an alpha of another type had been kept out
    for still holds: an A of whole numbers (UINT) is no alpha to use, is written back as it came, and the file is
    not refused for it."""
    path = tmp_path / "in.exr"
    _, alpha = _half_colour_float_alpha(path)
    image = images.read(path)
    images.write(image.with_pixels(np.full_like(image.pixels, 1e6)), tmp_path / "bright.exr")
    bright = OpenEXR.File(str(tmp_path / "bright.exr"), separate_channels=True).channels()
    assert bright["R"].pixels.dtype == np.float16 and (bright["R"].pixels == np.finfo(np.float16).max).all()
    np.testing.assert_array_equal(bright["A"].pixels, alpha)
    images.write(image, tmp_path / "half.exr", dtype="float16")
    half = OpenEXR.File(str(tmp_path / "half.exr"), separate_channels=True).channels()
    assert {half[c].pixels.dtype for c in "RGBA"} == {np.dtype(np.float16)}
    channels = {c: RNG.random((8, 9)).astype(np.float16) for c in "RGB"}
    channels["A"] = np.arange(72, dtype=np.uint32).reshape(8, 9)
    OpenEXR.File({}, dict(channels)).write(str(path))
    image = images.read(path)
    assert image.alpha is None and image.pixels.shape == (1, 8, 9, 3)
    images.write(image.with_pixels(image.pixels * 0), tmp_path / "out.exr")
    after = OpenEXR.File(str(tmp_path / "out.exr"), separate_channels=True).channels()
    np.testing.assert_array_equal(after["A"].pixels, channels["A"])
    assert after["R"].pixels.dtype == np.float16 and not after["R"].pixels.any()


def _part(pixels: np.ndarray, prefix: str, name: str) -> OpenEXR.Part:
    return OpenEXR.Part({}, {f"{prefix}{c}": pixels[..., i].copy() for i, c in enumerate("RGB")}, name)


def test_a_beauty_part_is_read_before_a_beauty_named_layer_inside_another_part(tmp_path: Path) -> None:
    """Parts `rgba` and `lights` (holding `Combined.R/G/B`): the rgba part is the picture, as it was before parts
    were named; a `main` part taken by its place keeps its name for --layer though another part holds `main.R`."""
    path = tmp_path / "render.exr"
    rgba, combined = (RNG.random((16, 16, 3)).astype(np.float32) for _ in range(2))
    parts = [_part(rgba, "", "rgba"), _part(combined, "Combined.", "lights")]
    OpenEXR.File(parts).write(str(path))
    np.testing.assert_array_equal(images.read(path).pixels[0], rgba)
    parts = [_part(rgba, "", "main"), _part(combined, "main.", "extra")]
    OpenEXR.File(parts).write(str(path))
    np.testing.assert_array_equal(images.read(path, layer="main").pixels[0], rgba)
    np.testing.assert_array_equal(images.read(path, layer="extra.main").pixels[0], combined)


def test_only_names_of_other_passes_keep_a_first_part_from_being_the_beauty(tmp_path: Path) -> None:
    """A pass's whole name or a pass and its part ("diffuse_direct") is another pass; "shadow_main" is not."""
    for names, beauty in ((["shadow_main", "mask"], "shadow_main"), (["diffuse_direct", "main"], "main")):
        path = tmp_path / f"{names[0]}.exr"
        pixels = _multipart(path, names)
        np.testing.assert_array_equal(images.read(path).pixels[0], pixels[beauty])


def test_a_single_parts_layers_have_no_beauty_alias(tmp_path: Path) -> None:
    """`--layer beauty` on a Blender file of view layers names no layer: an error listing them, as before."""
    path = tmp_path / "blender.exr"
    plane = RNG.random((8, 8)).astype(np.float32)
    OpenEXR.File({}, {f"ViewLayer.Combined.{c}": plane for c in "RGB"}).write(str(path))
    with pytest.raises(MdnError, match="no EXR layer 'beauty'"):
        images.read(path, layer="beauty")


def test_dtype_asked_for_is_every_channels_type_in_a_file_of_mixed_types(tmp_path: Path) -> None:
    path = tmp_path / "mixed.exr"
    channels = {c: RNG.random((6, 7)).astype("float16") for c in "RGB"}
    channels["A"] = RNG.random((6, 7)).astype("float32")
    OpenEXR.File({}, channels).write(str(path))
    images.write(images.read(path), tmp_path / "out.exr", dtype="float32")
    written = OpenEXR.File(str(tmp_path / "out.exr"), separate_channels=True).parts[0].channels
    assert {written[c].pixels.dtype for c in "RGBA"} == {np.dtype("float32")}
