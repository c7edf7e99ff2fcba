"""What a photo carries besides its pixels survives a write, in its own format and across formats."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, JpegImagePlugin, PngImagePlugin

from mdn.io import images

RNG = np.random.default_rng(11)
PIXELS = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)
GAMMA = (100000).to_bytes(4, "big")
CHROMATICITY = b"".join(v.to_bytes(4, "big") for v in (31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000))


def _convert(source: Path, suffix: str) -> Path:
    out = source.with_name(f"{source.stem}_out{suffix}")
    images.write(images.read(source), out, overwrite=True)
    return out


def _orientation(path: Path) -> int | None:
    if path.suffix == ".tif":
        with tifffile.TiffFile(path) as tif:
            tag = tif.pages.first.tags.get(274)
            return None if tag is None else int(tag.value)
    with Image.open(path) as opened:
        return opened.getexif().get(274)


def _description(path: Path) -> str | None:
    if path.suffix == ".tif":
        with tifffile.TiffFile(path) as tif:
            return tif.pages.first.description or None
    with Image.open(path) as opened:
        comment = opened.info.get("comment")
        return comment.decode() if comment else opened.info.get("Description")


@pytest.mark.parametrize("suffix", [".tif", ".jpg", ".png"])
def test_orientation_is_kept_from_tiff_and_jpeg_into_every_photo_format(tmp_path: Path, suffix: str) -> None:
    tifffile.imwrite(tmp_path / "in.tif", PIXELS, photometric="rgb", extratags=[(274, "H", 1, 6, True)])
    exif = Image.Exif()
    exif[274], exif[271] = 6, "Canon"
    Image.fromarray(PIXELS).save(tmp_path / "in.jpg", quality=95, exif=exif)
    for source in (tmp_path / "in.tif", tmp_path / "in.jpg"):
        out = _convert(source, suffix)
        assert _orientation(out) == 6, out.name  # the picture still shows upright, its pixels stored as they came
        assert images.read(out).pixels.shape == (1, 24, 32, 3)
    tifffile.imwrite(tmp_path / "bad.tif", PIXELS, photometric="rgb", extratags=[(274, "H", 1, 9, True)])
    assert _orientation(_convert(tmp_path / "bad.tif", suffix)) is None  # a damaged orientation is not carried


@pytest.mark.parametrize("suffix", [".jpg", ".tif"])
def test_a_pngs_description_crosses_into_jpeg_and_tiff(tmp_path: Path, suffix: str) -> None:
    for keys, expected in (
        ({"Title": "Astro", "Description": "ISS, 1990"}, "ISS, 1990"),
        ({"Title": "Astro"}, "Astro"),
    ):
        info = PngImagePlugin.PngInfo()
        for key, value in keys.items():
            info.add_itxt(key, value)
        Image.fromarray(PIXELS).save(tmp_path / "in.png", pnginfo=info)
        assert _description(_convert(tmp_path / "in.png", suffix)) == expected


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_a_tiffs_description_crosses_into_png_and_jpeg(tmp_path: Path, suffix: str) -> None:
    tifffile.imwrite(tmp_path / "in.tif", PIXELS, photometric="rgb", description="Zeiss µm café".encode())
    assert _description(_convert(tmp_path / "in.tif", suffix)) == "Zeiss µm café"
    back = _convert(tmp_path / f"in_out{suffix}", ".tif")  # and back into a TIFF's ImageDescription
    assert _description(back) == "Zeiss µm café"
    for name, kwargs in (("shaped.tif", {}), ("imagej.tif", {"imagej": True})):  # '{"shape": ...}', 'ImageJ=...'
        tifffile.imwrite(tmp_path / name, PIXELS[..., 0], **kwargs)
        assert _description(tmp_path / name)  # tifffile's record of the layout: no text to carry
        assert _description(_convert(tmp_path / name, suffix)) is None


def test_png_text_is_kept_png_to_png_with_its_colour_chunks(tmp_path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Ann")
    info.add_itxt("Title", "Straße")
    info.add(b"gAMA", GAMMA)
    info.add(b"cHRM", CHROMATICITY)
    info.add(b"sRGB", b"\x01")
    Image.fromarray(PIXELS).save(tmp_path / "in.png", pnginfo=info)
    with Image.open(_convert(tmp_path / "in.png", ".png")) as opened:
        assert opened.text == {"Author": "Ann", "Title": "Straße"}
        assert opened.info["gamma"] == 1.0 and opened.info["srgb"] == 1
        assert opened.info["chromaticity"] == (0.3127, 0.329, 0.64, 0.33, 0.3, 0.6, 0.15, 0.06)


def test_a_jpeg_is_reencoded_with_its_own_subsampling_progression_and_a_quality_not_below_its_own(
    tmp_path: Path,
) -> None:
    Image.fromarray(PIXELS).save(tmp_path / "fine.jpg", quality=98, subsampling=0, progressive=True)
    Image.fromarray(PIXELS).save(tmp_path / "web.jpg", quality=70, subsampling=1)
    Image.fromarray(PIXELS[..., 0]).save(tmp_path / "grey.jpg", quality=99)
    for name, sampling, progressive, quality in (("fine", 0, True, 98), ("web", 1, False, 95), ("grey", -1, False, 99)):
        with Image.open(_convert(tmp_path / f"{name}.jpg", ".jpg")) as opened:
            assert JpegImagePlugin.get_sampling(opened) == sampling, name
            assert bool(opened.info.get("progressive")) == progressive, name
            reference = io.BytesIO()
            Image.fromarray(PIXELS[..., 0]).save(reference, "JPEG", quality=quality)
            assert list(opened.quantization[0]) == list(Image.open(reference).quantization[0]), name


def test_a_photo_with_no_metadata_goes_into_a_tiff_naming_no_software(tmp_path: Path) -> None:
    Image.fromarray(PIXELS).save(tmp_path / "in.tif")
    Image.fromarray(PIXELS).save(tmp_path / "in.png")
    for source in (tmp_path / "in.tif", tmp_path / "in.png"):
        with tifffile.TiffFile(_convert(source, ".tif")) as tif:
            assert 305 not in tif.pages.first.tags, source.name
