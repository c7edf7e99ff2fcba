"""What a photo carries besides its pixels survives a write, in its own format and across formats."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms, JpegImagePlugin, PngImagePlugin

from mdn.io import images, metadata
from mdn.io.metadata import Metadata

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


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_a_jpeg_comment_crosses_as_the_description(tmp_path: Path, suffix: str) -> None:
    Image.fromarray(PIXELS).save(tmp_path / "in.jpg", comment="Kodak DC290, 1999", quality=95)
    out = _convert(tmp_path / "in.jpg", suffix)
    assert _description(out) == "Kodak DC290, 1999"
    if suffix == ".png":  # under the keyword that names it, not as a PNG's Comment
        assert images.read(out).source.meta["photo"].text == {"Description": "Kodak DC290, 1999"}


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


def _exif(size: int = 0, orientation: int = 6, **fields: str) -> bytes:
    """EXIF bytes (b"Exif\\0\\0" header included) with an orientation and text `fields` by name (Make, Artist: in
    UTF-8, as cameras write them), `size` bytes in all where given (a long Software, then zeros)."""
    exif = Image.Exif()
    exif[274] = orientation
    names = {name: tag for tag, name in metadata.TIFF_EXIF_TAGS.items()}
    for name, value in fields.items():
        exif[names[name]] = value.encode()
    if size:
        exif[305] = "x" * (size - 100)
    data = exif.tobytes()
    assert len(data) <= size or not size
    return data + bytes(size - len(data)) if size else data


def _xmp(size: int) -> bytes:
    """An XMP packet of `size` bytes (an editor's history makes them long)."""
    head, tail = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><!--', b"--></x:xmpmeta>"
    return head + b"h" * (size - len(head) - len(tail)) + tail


def _profile(space: bytes) -> bytes:
    """An ICC profile's header naming its colour space (b"GRAY", b"RGB ", b"CMYK"): all this module reads of it."""
    return bytes(16) + space + b"XYZ " + bytes(104)


def _lost(meta: Metadata | None, fmt: str, colours: int) -> list[str]:
    """What `for_output` names as left out of `meta` by a file of `fmt` storing `colours` channels."""
    return metadata.for_output(meta, fmt, colours)[1]


def _kept(meta: Metadata, fmt: str, colours: int = 3) -> Metadata:
    """What `for_output` keeps of `meta` for a file of `fmt` storing `colours` channels."""
    return metadata.for_output(meta, fmt, colours)[0]


def _encoded(pixels: np.ndarray, fmt: str, **options: Any) -> bytes:
    """`pixels` written by Pillow in `fmt` with save `options`."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **options)
    return buffer.getvalue()


def _saved(pixels: np.ndarray, fmt: str, options: dict[str, Any]) -> Image.Image:
    """`pixels` written by Pillow with save `options`, opened again."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **options)
    return Image.open(buffer)


def test_an_exif_or_xmp_over_a_jpeg_segment_is_left_out_of_a_jpeg_and_kept_in_a_webp(tmp_path: Path) -> None:
    fits = Metadata(exif=_exif(65533), xmp=_xmp(65533 - 29))  # APP1's 65533 bytes, less the XMP namespace's 29
    with _saved(PIXELS, "JPEG", metadata.pillow_options(_kept(fits, "jpeg"))) as written:
        assert len(written.info["exif"]) == 65533 and written.info["xmp"] == fits.xmp
    over = Metadata(exif=_exif(65534), xmp=_xmp(65533 - 28), dpi=(300, 300))
    with _saved(PIXELS, "JPEG", metadata.pillow_options(_kept(over, "jpeg"))) as written:
        assert "exif" not in written.info and "xmp" not in written.info and written.info["dpi"] == (300, 300)
    info = PngImagePlugin.PngInfo()
    info.add_itxt(metadata.XMP_KEYWORD, _xmp(80_000).decode())
    Image.fromarray(PIXELS).save(tmp_path / "xmp.png", pnginfo=info)
    Image.fromarray(PIXELS).save(tmp_path / "exif.png", exif=_exif(70_000))
    for name in ("xmp", "exif"):
        with Image.open(_convert(tmp_path / f"{name}.png", ".jpg")) as written:
            assert name not in written.info, name
    big = Metadata(exif=_exif(70_000), xmp=_xmp(80_000))  # a WebP has no such limit
    with _saved(PIXELS, "WEBP", metadata.pillow_options(_kept(big, "webp"))) as written:
        assert written.info["exif"] == big.exif.removeprefix(metadata.EXIF_HEADER) and written.info["xmp"] == big.xmp


def test_a_profile_goes_only_into_pixels_of_its_colour_space() -> None:
    grey, rgb, cmyk = (_profile(space) for space in (b"GRAY", b"RGB ", b"CMYK"))
    for pixels, fmt, kept in (
        (PIXELS[..., 0], "JPEG", {grey, cmyk}),  # a grey JPEG
        (PIXELS, "JPEG", {rgb, cmyk}),
        (PIXELS, "WEBP", {rgb, cmyk}),
    ):
        for profile in (grey, rgb, cmyk):
            options = metadata.pillow_options(_kept(Metadata(icc=profile), fmt.lower(), 1 if pixels.ndim == 2 else 3))
            with _saved(pixels, fmt, options) as written:
                assert (written.info.get("icc_profile") == profile) == (profile in kept), (fmt, pixels.ndim, profile)
    for colours, profile, kept in ((1, grey, True), (1, rgb, False), (3, grey, False), (3, rgb, True), (1, cmyk, True)):
        options = metadata.tiff_options(_kept(Metadata(icc=profile), "tiff", colours))
        assert ("iccprofile" in options) == kept, (colours, profile)


def test_a_grey_photos_grey_profile_stays_out_of_a_webp_and_goes_into_a_grey_png(tmp_path: Path) -> None:
    grey, rgb = _profile(b"GRAY"), _profile(b"RGB ")
    Image.fromarray(PIXELS[..., 0]).save(tmp_path / "grey.jpg", quality=95, icc_profile=grey)
    Image.fromarray(PIXELS).save(tmp_path / "rgb.jpg", quality=95, icc_profile=grey)  # a profile that does not fit
    Image.fromarray(PIXELS[..., 0]).save(tmp_path / "grey_rgb.png", icc_profile=rgb)
    for name, suffix, profile in (
        ("grey.jpg", ".webp", None),
        ("grey.jpg", ".png", grey),
        ("rgb.jpg", ".png", None),
        ("grey_rgb.png", ".png", None),
    ):
        with Image.open(_convert(tmp_path / name, suffix)) as written:
            assert written.info.get("icc_profile") == profile, (name, suffix)


@pytest.mark.parametrize("exif", [b"Exif\x00\x00GARBAGEGARBAGE", _exif()[:12]], ids=["no TIFF header", "cut short"])
def test_an_unreadable_exif_is_left_out_of_a_tiff(tmp_path: Path, exif: bytes) -> None:
    options = metadata.tiff_options(_kept(Metadata(exif=exif, dpi=(300, 300)), "tiff"))
    assert "extratags" not in options and options["resolution"] == (300, 300)
    Image.fromarray(PIXELS).save(tmp_path / "phone.jpg", quality=95, exif=exif)
    with tifffile.TiffFile(_convert(tmp_path / "phone.jpg", ".tif")) as tif:
        assert 274 not in tif.pages.first.tags and tif.pages.first.asarray().shape == PIXELS.shape
    assert _lost(Metadata(exif=exif), "tiff", 3) == ["its EXIF (unreadable)"]
    assert _lost(Metadata(exif=exif), "bmp", 3) == ["its EXIF"]  # its orientation unknown
    assert _lost(Metadata(exif=exif), "jpeg", 3) == []  # copied as it came


FULL = Metadata(
    exif=_exif(Make="Canon"),
    icc=_profile(b"RGB "),
    dpi=(300.0, 300.0),
    text={"Description": "ISS, 1990", "Author": "Ann"},
    xmp=_xmp(500),
    png_colour={b"gAMA": GAMMA},
)
"""A photo's metadata of every kind, each small enough for any format."""


def test_lost_names_nothing_that_a_format_carries_or_leaves_behind_by_design() -> None:
    for fmt in ("png", "jpeg", "webp", "tiff", "bmp", "exr"):
        assert _lost(None, fmt, 3) == _lost(Metadata(), fmt, 1) == [], fmt
    assert _lost(FULL, "png", 3) == _lost(FULL, "jpeg", 3) == []
    assert _lost(FULL, "tiff", 3) == []  # EXIF's sub-directory, PNG's colour chunks and Author: by design
    assert _lost(FULL, "webp", 3) == ["its resolution (300 dpi)", "its description"]
    resolution = Image.Exif()
    resolution.update({282: 300.0, 283: 300.0})
    assert _lost(Metadata(exif=resolution.tobytes(), dpi=(300, 300)), "webp", 3) == []  # in its EXIF


@pytest.mark.parametrize("fmt", ["bmp", "exr"])
def test_lost_names_everything_present_where_a_format_carries_nothing(fmt: str) -> None:
    resolution = [] if fmt == "bmp" else ["its resolution (300 dpi)"]  # a BMP keeps its pixels per metre
    assert _lost(FULL, fmt, 3) == [
        "its EXIF",
        "its orientation (EXIF 6: shown turned)",
        "its colour profile",
        *resolution,
        "its XMP",
        "its description",
    ]
    upright = Metadata(exif=_exif(orientation=1), dpi=(300, 150), text={"Title": "Astro"})
    resolution = [] if fmt == "bmp" else ["its resolution (300 x 150 dpi)"]
    assert _lost(upright, fmt, 1) == ["its EXIF", *resolution, "its description"]


def test_lost_names_what_overflows_a_jpeg_segment() -> None:
    largest = 65533 - 29
    fits = Metadata(exif=_exif(65533), xmp=_xmp(largest), text={"Comment": "c" * 65533})
    assert _lost(fits, "jpeg", 3) == []
    over = Metadata(exif=_exif(65534), xmp=_xmp(largest + 1), text={"Comment": "c" * 65534})
    assert _lost(over, "jpeg", 1) == [
        "its EXIF (65534 bytes, over JPEG's 65533)",
        "its orientation (EXIF 6: shown turned)",
        "its XMP (65505 bytes, over JPEG's 65504)",
        "its description (65534 bytes, over JPEG's 65533)",
    ]
    big = Metadata(exif=_exif(70_000, orientation=3), xmp=_xmp(80_000), text={"Description": "é" * 40_000})
    assert _lost(big, "jpeg", 3) == [
        "its EXIF (69 KB, over JPEG's 64 KB)",
        "its orientation (EXIF 3: shown upside down)",
        "its XMP (79 KB, over JPEG's 64 KB)",
        "its description (79 KB, over JPEG's 64 KB)",
    ]
    assert _lost(big, "webp", 3) == ["its description"] and _lost(big, "png", 3) == []


def test_lost_names_a_profile_of_another_colour_space_and_exif_text_a_tiff_cannot_hold() -> None:
    grey, rgb = Metadata(icc=_profile(b"GRAY")), Metadata(icc=_profile(b"RGB "))
    for fmt in ("png", "jpeg", "tiff"):
        assert _lost(grey, fmt, 1) == _lost(rgb, fmt, 3) == [], fmt
        assert _lost(grey, fmt, 3) == ["its grey colour profile (the output is RGB)"], fmt
        assert _lost(rgb, fmt, 1) == ["its RGB colour profile (the output is grey)"], fmt
    assert _lost(Metadata(icc=_profile(b"CMYK")), "jpeg", 1) == []  # another colour space: as it was
    assert _lost(Metadata(exif=_exif(Artist="Zoë", Make="Canon")), "tiff", 3) == []  # written as UTF-8


def test_an_artist_that_is_not_ascii_crosses_tiff_and_jpeg_as_written(tmp_path: Path) -> None:
    """A TIFF's Artist "José ©" (UTF-8, as editors write it) came out "Jos? ?" in every output; a JPEG's EXIF
    Artist in UTF-8 was dropped from a TIFF."""
    tifffile.imwrite(tmp_path / "in.tif", PIXELS, photometric="rgb", extratags=[(315, "s", 0, "José ©".encode(), True)])
    for suffix in (".tif", ".jpg"):
        out = _convert(tmp_path / "in.tif", suffix)
        if suffix == ".tif":
            assert tifffile.TiffFile(out).pages[0].tags[315].value == "José ©"
        else:
            with Image.open(out) as jpeg:
                assert jpeg.getexif()[315].encode("latin-1").decode("utf-8") == "José ©"
            back = _convert(out, ".tif")
            assert tifffile.TiffFile(back).pages[0].tags[315].value == "José ©"


def test_lost_tells_the_truth_about_what_each_written_format_holds(tmp_path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("Description", "ISS, 1990")
    info.add_itxt(metadata.XMP_KEYWORD, _xmp(500).decode())
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = _exif(Make="Canon")
    Image.fromarray(PIXELS).save(tmp_path / "in.png", pnginfo=info, exif=exif, icc_profile=icc, dpi=(300, 300))
    source = images.read(tmp_path / "in.png").source.meta["photo"]
    present = {
        "its EXIF": lambda meta: meta.exif,
        "its colour profile": lambda meta: meta.icc,
        "its resolution": lambda meta: meta.dpi,
        "its XMP": lambda meta: meta.xmp,
        "its description": metadata.description,
    }
    for suffix, fmt in ((".png", "png"), (".jpg", "jpeg"), (".webp", "webp"), (".tif", "tiff"), (".bmp", "bmp")):
        named = _lost(source, fmt, 3)
        written = images.read(_convert(tmp_path / "in.png", suffix)).source.meta["photo"]
        for item, holds in present.items():
            assert bool(holds(written)) != any(name.startswith(item) for name in named), (fmt, item, named)


def test_what_is_said_lost_is_what_the_written_file_lacks_for_grey_and_palette_pictures(tmp_path: Path) -> None:
    """The warning's colour count and the writer's were computed apart: an ImageJ LUT picture written as TIFF kept
    its RGB profile while the warning said it was lost."""
    grey, rgb = _profile(b"GRAY"), _profile(b"RGB ")
    lut = np.zeros((3, 256), np.uint16)
    lut[1] = np.arange(256) * 257  # ImageJ's Green LUT
    tifffile.imwrite(tmp_path / "lut.tif", PIXELS[..., 0], imagej=True, colormap=lut, iccprofile=rgb)
    Image.fromarray(PIXELS[..., 0]).save(tmp_path / "grey.jpg", quality=95, icc_profile=grey)
    cases = [
        ("lut.tif", ".tif", None, rgb),  # the palette kept: RGB colours
        ("lut.tif", ".tif", "uint16", None),  # written at another depth: grey, no palette
        ("lut.tif", ".png", None, None),
        ("grey.jpg", ".png", None, grey),
        ("grey.jpg", ".webp", None, None),  # a WebP stores grey as RGB
        ("grey.jpg", ".tif", None, grey),
    ]
    for name, suffix, dtype, written_profile in cases:
        image = images.read(tmp_path / name)
        out = tmp_path / f"{Path(name).stem}_{dtype}{suffix}"
        _, left_out = images.photo_metadata(image, out, images.target_layout(image, out, dtype))
        images.write(image, out, dtype=dtype)
        written = images.read(out).source.meta["photo"]
        assert written.icc == written_profile, (name, suffix, dtype)
        assert any("colour profile" in item for item in left_out) == (written_profile is None), (name, suffix, left_out)


@pytest.mark.parametrize(
    ("fmt", "dpi", "named"),
    [
        ("png", 4294967295.0, "its resolution (4294967295 dpi, over PNG's 109092169)"),
        ("bmp", 109092169.0, "its resolution (109092169 dpi, over BMP's 54546055)"),
        ("jpeg", 254000.0, "its resolution (254000 dpi, over JPEG's 65535)"),
        ("tiff", 1e10, "its resolution (10000000000 dpi, over TIFF's 4294967295)"),
        ("jpeg", 0.4, "its resolution (0.4 dpi, under JPEG's 1)"),
        ("png", -300.0, "its resolution (-300 dpi, under PNG's 0.0254)"),
    ],
)
def test_a_resolution_past_the_field_a_format_stores_it_in_is_left_out_and_named(
    fmt: str, dpi: float, named: str
) -> None:
    """PNG's pHYs and a BMP's header failed with a traceback on a resolution past their 32 bits; a JPEG's 16-bit
    density wrapped 254000 dpi (an electron microscope's) to 57392."""
    assert metadata.for_output(Metadata(dpi=(dpi, dpi)), fmt, 3) == (Metadata(), [named])
    assert _lost(Metadata(dpi=(300.0, dpi)), fmt, 3) == [named.replace("(", "(300 x ", 1)]
    largest = metadata.RESOLUTION_RANGES[fmt][1]
    assert _kept(Metadata(dpi=(largest, 1.0)), fmt).dpi == (largest, 1.0)  # the largest stored is kept


def test_a_resolution_a_format_cannot_store_is_written_as_none_not_wrapped(tmp_path: Path) -> None:
    largest = (2**32 - 1, 2**32 - 1)
    tifffile.imwrite(tmp_path / "huge.tif", PIXELS, photometric="rgb", resolution=largest, resolutionunit="INCH")
    fine = {"resolution": (1e5, 1e5), "resolutionunit": "CENTIMETER"}  # an electron microscope's: 254000 dpi
    tifffile.imwrite(tmp_path / "fine.tif", PIXELS, photometric="rgb", **fine)
    Image.fromarray(PIXELS).save(tmp_path / "max.png", dpi=((2**32 - 1) * 0.0254,) * 2)
    for name, suffix in (("huge.tif", ".png"), ("fine.tif", ".jpg"), ("max.png", ".bmp"), ("max.png", ".png")):
        out = _convert(tmp_path / name, suffix)
        with Image.open(out) as written:
            dpi = written.info.get("dpi")
        if name == "max.png" and suffix == ".png":  # the largest pHYs a PNG holds, kept as it was
            assert dpi == pytest.approx(((2**32 - 1) * 0.0254,) * 2), name
        else:  # none, or Pillow's default (72 dpi read from a JPEG with EXIF, 96 written into a BMP): not wrapped
            assert dpi is None or max(dpi) < 96.1, (name, suffix, dpi)


def _png_with_chunk(kind: bytes, body: bytes) -> bytes:
    """A PNG of `PIXELS` with a chunk of `kind` right after its header, as its writer put it (Pillow writes no
    pHYs of 0 nor an eXIf of its own)."""
    encoded = _encoded(PIXELS, "PNG")
    chunk = struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return encoded[:33] + chunk + encoded[33:]


def test_a_pngs_resolution_of_zero_is_no_resolution(tmp_path: Path) -> None:
    (tmp_path / "zero.png").write_bytes(_png_with_chunk(b"pHYs", bytes(8) + b"\x01"))  # 0 pixels per metre
    assert metadata.read_png((tmp_path / "zero.png").read_bytes()).dpi is None
    with Image.open(_convert(tmp_path / "zero.png", ".jpg")) as written:
        assert "dpi" not in written.info  # no JFIF density of 0 dots per inch


MOTION_XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:Camera="http://ns.google.com/photos/1.0/camera/" xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
    b' xmlns:xmpNote="http://ns.adobe.com/xmp/note/" xmlns:Container="http://ns.google.com/photos/1.0/container/"'
    b' xmp:Rating="5" Camera:MicroVideo="1" Camera:MicroVideoVersion="1" Camera:MicroVideoOffset="5000"'
    b' xmpNote:HasExtendedXMP="0123456789ABCDEF0123456789ABCDEF"><Camera:MotionPhoto>1</Camera:MotionPhoto>'
    b"<Container:Directory><rdf:Seq><rdf:li>video</rdf:li></rdf:Seq></Container:Directory>"
    b"<xmp:Label>Red</xmp:Label></rdf:Description></rdf:RDF></x:xmpmeta>"
)
"""A phone's motion photo XMP: its video (under a prefix of its own for Google's namespace), the container's
items and the GUID of its extended XMP, with a rating and a label to keep."""


def _extended_segments(packet: bytes, piece: int) -> bytes:
    """APP1 segments that carry `packet` as extended XMP, `piece` bytes of it each."""
    segments = b""
    for offset in range(0, len(packet), piece):
        body = metadata.EXTENDED_XMP_NAMESPACE + b"0" * 32 + struct.pack(">II", len(packet), offset)
        body += packet[offset : offset + piece]
        segments += b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
    return segments


def _motion_photo(path: Path, xmp: bytes, extended: bytes, video: bytes, **options: Any) -> None:
    """A JPEG at `path` with `xmp`, `extended` XMP in two pieces, a second picture (an MPO's gain map) and
    `video` after its pictures."""
    data, second = _encoded(PIXELS, "JPEG", quality=90, xmp=xmp, **options), _encoded(PIXELS[:8, :8], "JPEG")
    path.write_bytes(data[:2] + _extended_segments(extended, 2000) + data[2:] + second + video)


@pytest.mark.parametrize("options", [{}, {"progressive": True, "restart_marker_rows": 1}])
def test_a_motion_photos_video_and_extended_xmp_are_named_and_the_xmp_kept_claims_neither(
    tmp_path: Path, options: dict[str, Any]
) -> None:
    """A motion photo's video and its extended XMP (a depth map) went without a word, while the XMP kept still
    told a viewer to look for the video."""
    depth = b'<x:xmpmeta xmlns:x="adobe:ns:meta/" xmlns:GDepth="http://ns.google.com/photos/1.0/depthmap/">'
    extended = depth + b"D" * 3000 + b"</x:xmpmeta>"
    video = b"\x00\x00\x00\x18ftypmp42" + b"V" * 6000
    _motion_photo(tmp_path / "PXL.jpg", MOTION_XMP, extended, video, **options)
    source = images.read(tmp_path / "PXL.jpg").source.meta["photo"]
    assert source.extended_xmp == extended and source.video_bytes == len(video)
    for fmt in ("jpeg", "png", "tiff", "exr"):
        assert _lost(source, fmt, 3)[-2:] == [
            "its extended XMP (depth map, 4 KB)",
            "its motion photo's video (6 KB after the picture)",
        ], fmt
    kept = _kept(source, "jpeg").xmp
    assert kept is not None and b'xmp:Rating="5"' in kept and b"<xmp:Label>Red</xmp:Label>" in kept
    for claim in (b"MicroVideo", b"MotionPhoto", b"Container:Directory", b"HasExtendedXMP"):
        assert claim not in kept, claim
    for suffix in (".jpg", ".png"):
        written = images.read(_convert(tmp_path / "PXL.jpg", suffix)).source.meta["photo"]
        assert written.xmp == kept and not written.video_bytes and not written.extended_xmp, suffix


def test_a_jpeg_that_claims_no_motion_photo_is_not_searched_for_a_video(tmp_path: Path) -> None:
    plain = _encoded(PIXELS, "JPEG", xmp=_xmp(500))
    (tmp_path / "plain.jpg").write_bytes(plain + b"trailing bytes of a careless writer")
    photo = images.read(tmp_path / "plain.jpg").source.meta["photo"]
    assert photo.video_bytes == 0 and photo.extended_xmp is None and _lost(photo, "jpeg", 3) == []
    assert metadata._without_claims(_xmp(500)) == _xmp(500)  # an XMP that claims nothing kept byte for byte


def test_a_pngs_exif_chunk_that_holds_its_own_exif_header_is_written_with_one(tmp_path: Path) -> None:
    """Older ImageMagick wrote b"Exif\\0\\0" inside a PNG's eXIf chunk: a JPEG written from it had the header twice,
    and strict readers found no EXIF (orientation, camera) in it."""
    exif = _exif(Make="Canon")
    (tmp_path / "magick.png").write_bytes(_png_with_chunk(b"eXIf", exif))
    assert metadata.read_png((tmp_path / "magick.png").read_bytes()).exif == exif
    jpeg = _convert(tmp_path / "magick.png", ".jpg").read_bytes()
    assert jpeg[jpeg.index(b"\xff\xe1") + 4 :].startswith(exif)  # b"Exif\0\0" once, then the TIFF structure
    png = _convert(tmp_path / "magick.png", ".png").read_bytes()
    assert png[png.index(b"eXIf") + 4 :].startswith(exif.removeprefix(metadata.EXIF_HEADER))


def _camera_exif(maker_note: int = 0, thumbnail: int = 0, software: int = 0) -> bytes:
    """A camera's EXIF: orientation, make, model and date, exposure and GPS fields, a maker note of `maker_note`
    bytes, a thumbnail (a second directory) of `thumbnail` bytes and a Software field of `software` characters."""
    exif = Image.Exif()
    exif.update({271: "Sony", 272: "ILCE-7M4", 274: 6, 306: "2024:06:15 18:35:12"})
    if software:
        exif[305] = "s" * software
    exposure = exif.get_ifd(metadata.EXIF_IFD)
    exposure.update({0x829A: (1, 125), 0x8827: 400, 0x9003: "2024:06:15 18:35:12"})
    if maker_note:
        exposure[metadata.MAKER_NOTE_TAG] = b"M" * maker_note
    exif.get_ifd(metadata.GPS_IFD).update({1: "N", 2: (48.0, 51.0, 24.0)})
    data = exif.tobytes()
    return _with_thumbnail(data, b"\xff\xd8" + bytes(thumbnail - 2)) if thumbnail else data


def _with_thumbnail(exif: bytes, thumbnail: bytes) -> bytes:
    """EXIF bytes with a second directory (IFD1) pointing at `thumbnail`, as a camera writes its preview."""
    tiff = bytearray(exif.removeprefix(metadata.EXIF_HEADER))
    order = ">" if tiff[:2] == b"MM" else "<"
    first = struct.unpack(order + "I", tiff[4:8])[0]
    next_place = first + 2 + 12 * struct.unpack(order + "H", tiff[first : first + 2])[0]
    second = len(tiff)
    tiff[next_place : next_place + 4] = struct.pack(order + "I", second)
    entries = [(0x0201, second + 2 + 2 * 12 + 4), (0x0202, len(thumbnail))]  # JPEGInterchangeFormat(Length)
    tiff += struct.pack(order + "H", 2) + b"".join(struct.pack(order + "HHII", tag, 4, 1, v) for tag, v in entries)
    return metadata.EXIF_HEADER + bytes(tiff + struct.pack(order + "I", 0) + thumbnail)


def _fields(exif: Image.Exif) -> tuple[dict[int, Any], dict[int, Any], dict[int, Any]]:
    """EXIF's first directory (without the sub-directories' places), exposure and GPS fields."""
    first = {tag: value for tag, value in exif.items() if tag not in (metadata.EXIF_IFD, metadata.GPS_IFD)}
    exposure = {tag: value for tag, value in exif.get_ifd(metadata.EXIF_IFD).items() if tag != metadata.MAKER_NOTE_TAG}
    return first, exposure, exif.get_ifd(metadata.GPS_IFD)


@pytest.mark.parametrize(
    ("maker_note", "thumbnail", "named", "note_kept"),
    [
        (70_000, 0, "its EXIF maker note (69 KB; with it the EXIF is over JPEG's 64 KB)", False),
        (3_000, 70_000, "its EXIF thumbnail (69 KB; with it the EXIF is over JPEG's 64 KB)", True),
        (70_000, 20_000, "its EXIF thumbnail and maker note (88 KB; with them the EXIF is over JPEG's 64 KB)", False),
    ],
)
def test_an_exif_over_a_jpeg_segment_goes_in_without_its_thumbnail_and_maker_note(
    tmp_path: Path, maker_note: int, thumbnail: int, named: str, note_kept: bool
) -> None:
    """EXIF over JPEG's 64 KB (a large maker note) was left out whole, orientation and all: the photo showed
    sideways, without its camera and date."""
    exif = _camera_exif(maker_note, thumbnail)
    assert len(exif) > metadata.JPEG_SEGMENT_BYTES
    assert _lost(Metadata(exif=exif), "jpeg", 3) == [named]
    Image.fromarray(PIXELS).save(tmp_path / "in.png", exif=exif)
    with Image.open(_convert(tmp_path / "in.png", ".jpg")) as written:
        kept, original = written.getexif(), Image.Exif()
        original.load(exif)
        assert _fields(kept) == _fields(original)  # orientation, make, model, date, exposure and GPS
        assert (kept.get_ifd(metadata.EXIF_IFD).get(metadata.MAKER_NOTE_TAG) == b"M" * maker_note) == note_kept
        assert not kept.get_ifd(metadata.THUMBNAIL_IFD)


def test_an_exif_over_a_jpeg_segment_without_its_maker_note_too_is_left_out_as_before() -> None:
    exif = _camera_exif(maker_note=10_000, software=70_000)
    assert _kept(Metadata(exif=exif), "jpeg").exif is None
    assert _lost(Metadata(exif=exif), "jpeg", 3) == [
        "its EXIF (79 KB, over JPEG's 64 KB)",
        "its orientation (EXIF 6: shown turned)",
    ]


def test_a_tiff_names_the_exif_fields_it_has_no_place_for(tmp_path: Path) -> None:
    """A JPEG's exposure, GPS position and capture date went into a TIFF's first directory's few fields and were
    dropped without a word."""
    exif = _camera_exif()
    assert _lost(Metadata(exif=exif), "tiff", 3) == ["its EXIF exposure and GPS fields"]
    described = Image.Exif()
    described.load(_camera_exif(thumbnail=500))
    described[270] = "ISS, 1990"
    assert _lost(Metadata(exif=described.tobytes()), "tiff", 3) == [
        "its EXIF exposure, GPS and ImageDescription fields"
    ]
    assert _lost(Metadata(exif=_with_thumbnail(_exif(), b"\xff\xd8" + bytes(98))), "tiff", 3) == [
        "its EXIF thumbnail fields"
    ]
    Image.fromarray(PIXELS).save(tmp_path / "IMG_0001.jpg", exif=exif, quality=95)
    image = images.read(tmp_path / "IMG_0001.jpg")
    out = tmp_path / "IMG_0001.tif"
    _, left_out = images.photo_metadata(image, out, images.target_layout(image, out, None))
    images.write(image, out)
    with Image.open(out) as written:  # what the warning names is what the TIFF lacks; the rest is there
        assert not written.getexif().get_ifd(metadata.EXIF_IFD) and not written.getexif().get_ifd(metadata.GPS_IFD)
        assert (written.getexif()[271], written.getexif()[274]) == ("Sony", 6)
    assert left_out == ["its EXIF exposure and GPS fields"]


def test_a_picture_without_a_resolution_is_written_as_a_bmp_without_one(tmp_path: Path) -> None:
    """Pillow stamps 96 dpi on a BMP given none, which a reader then takes for the picture's own."""
    Image.fromarray(PIXELS).save(tmp_path / "plain.png")
    assert images.read(tmp_path / "plain.png").source.meta["photo"].dpi is None
    images.write(images.read(tmp_path / "plain.png"), tmp_path / "plain.bmp")
    assert "dpi" not in Image.open(tmp_path / "plain.bmp").info
    Image.fromarray(PIXELS).save(tmp_path / "fine.png", dpi=(300, 300))
    images.write(images.read(tmp_path / "fine.png"), tmp_path / "fine.bmp")
    assert Image.open(tmp_path / "fine.bmp").info["dpi"] == pytest.approx((300, 300), abs=0.01)
