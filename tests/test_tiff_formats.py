"""TIFF flavours written back as they came: OME-XML patched for the output, pyramids rebuilt, tiles, ImageJ LUTs,
and OME-TIFF names."""

from __future__ import annotations

import uuid
import warnings
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from mdn.cli import app
from mdn.io import batch, images

RNG = np.random.default_rng(42)
OME = "http://www.openmicroscopy.org/Schemas/OME/2016-06"
NS = {"ome": OME}


def _ome_xml(uid: str, file_name: str, extra: str = "") -> str:
    """A Bio-Formats style OME-XML of a (2, 64, 64) uint16 CYX image whose planes name `file_name` and `uid`."""
    planes = "".join(
        f'<TiffData FirstC="{c}" IFD="{c}" PlaneCount="1"><UUID FileName="{file_name}">{uid}</UUID></TiffData>'
        for c in range(2)
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="{OME}" UUID="{uid}"><Image ID="Image:0">'
        '<Pixels DimensionOrder="XYCZT" ID="Pixels:0" SizeC="2" SizeT="1" SizeX="64" SizeY="64" SizeZ="1" '
        'Type="uint16" SignificantBits="16" PhysicalSizeX="0.1" PhysicalSizeXUnit="\u00b5m" PhysicalSizeY="0.1">'
        '<Channel ID="Channel:0:0" Name="DAPI" SamplesPerPixel="1"/><Channel ID="Channel:0:1" Name="GFP" '
        f'SamplesPerPixel="1"/>{planes}</Pixels></Image>{extra}</OME>'
    )


def _bio_formats_file(path: Path) -> tuple[np.ndarray, str]:
    """A Bio-Formats style OME-TIFF at `path`: its pixels and its UUID."""
    uid = f"urn:uuid:{uuid.uuid4()}"
    pixels = RNG.integers(0, 60000, (2, 64, 64)).astype(np.uint16)
    annotation = '<StructuredAnnotations><CommentAnnotation ID="Annotation:0"><Value>stained</Value>'
    annotation += "</CommentAnnotation></StructuredAnnotations>"
    tifffile.imwrite(path, pixels, description=_ome_xml(uid, path.name, annotation).encode(), metadata=None)
    return pixels, uid


def _ome_of(path: Path) -> tuple[ElementTree.Element, tifffile.TiffPageSeries, list[str]]:
    """The OME-XML root of a TIFF, its first series' axes and shape, and tifffile's warnings while reading it."""
    with warnings.catch_warnings(record=True) as caught, tifffile.TiffFile(path) as tif:
        warnings.simplefilter("always")
        root = ElementTree.fromstring(tif.pages.first.description)
        series = tif.series[0]
        found = (series.axes, series.shape, series.dtype)
    return root, found, [str(w.message) for w in caught]


def test_an_ome_tiff_at_another_type_says_so_in_its_ome_xml(tmp_path: Path) -> None:
    _bio_formats_file(tmp_path / "bf.ome.tif")
    images.write(images.read(tmp_path / "bf.ome.tif"), tmp_path / "out.ome.tif", dtype="float32")
    root, series, caught = _ome_of(tmp_path / "out.ome.tif")
    pixels = root.find("ome:Image/ome:Pixels", NS)
    assert (pixels.get("Type"), pixels.get("SignificantBits")) == ("float", "32")
    assert series == ("CYX", (2, 64, 64), np.float32) and not caught
    assert [c.get("Name") for c in pixels.findall("ome:Channel", NS)] == ["DAPI", "GFP"]


@pytest.mark.parametrize(
    ("dtype", "kept"), [(None, ("uint16", "12")), ("uint16", ("uint16", "12")), ("uint8", ("uint8", "8"))]
)
def test_a_12_bit_cameras_significant_bits_change_only_with_the_type(tmp_path: Path, dtype, kept) -> None:
    """Viewers set the display range by SignificantBits: a 12-bit camera's uint16 written as 16 looked black."""
    pixels, uid = _bio_formats_file(tmp_path / "cam.ome.tif")
    xml = _ome_xml(uid, "cam.ome.tif").replace('SignificantBits="16"', 'SignificantBits="12"')
    tifffile.imwrite(tmp_path / "cam.ome.tif", pixels // 16, description=xml.encode(), metadata=None)
    images.write(images.read(tmp_path / "cam.ome.tif"), tmp_path / "out.ome.tif", dtype=dtype)
    root, _, _ = _ome_of(tmp_path / "out.ome.tif")
    written = root.find("ome:Image/ome:Pixels", NS)
    assert (written.get("Type"), written.get("SignificantBits")) == kept


def test_an_ome_tiff_at_half_size_has_its_sizes_and_pixel_size_rewritten(tmp_path: Path) -> None:
    pixels = RNG.integers(0, 60000, (2, 64, 64)).astype(np.uint16)
    meta = {"axes": "CYX", "PhysicalSizeX": 0.1, "PhysicalSizeY": 0.25}
    tifffile.imwrite(tmp_path / "t.ome.tif", pixels, ome=True, metadata=meta)
    image = images.read(tmp_path / "t.ome.tif")
    images.write(image.with_pixels(image.pixels[:, ::2, ::2]), tmp_path / "half.ome.tif")  # a decimating noise
    root, series, caught = _ome_of(tmp_path / "half.ome.tif")
    size = root.find("ome:Image/ome:Pixels", NS).attrib
    assert (size["SizeX"], size["SizeY"], size["SizeC"], size["Type"]) == ("32", "32", "2", "uint16")
    assert (float(size["PhysicalSizeX"]), float(size["PhysicalSizeY"])) == (0.2, 0.5)
    assert series == ("CYX", (2, 32, 32), np.uint16) and not caught
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "half.ome.tif"), pixels[:, ::2, ::2])


def test_an_ome_tiffs_uuid_and_file_name_are_the_outputs_and_the_rest_is_kept(tmp_path: Path) -> None:
    _, old = _bio_formats_file(tmp_path / "bf.ome.tif")
    images.write(images.read(tmp_path / "bf.ome.tif"), tmp_path / "bf_denoised.ome.tif")
    root, series, caught = _ome_of(tmp_path / "bf_denoised.ome.tif")
    new = root.get("UUID")
    assert new != old and str(uuid.UUID(new.removeprefix("urn:uuid:"))) == new.removeprefix("urn:uuid:")
    references = root.findall("ome:Image/ome:Pixels/ome:TiffData/ome:UUID", NS)
    assert [(r.text, r.get("FileName")) for r in references] == [(new, "bf_denoised.ome.tif")] * 2
    pixels = root.find("ome:Image/ome:Pixels", NS)
    assert (pixels.get("PhysicalSizeX"), pixels.get("PhysicalSizeXUnit")) == ("0.1", "\u00b5m")
    assert root.find("ome:StructuredAnnotations/ome:CommentAnnotation/ome:Value", NS).text == "stained"
    assert series == ("CYX", (2, 64, 64), np.uint16) and not caught
    with tifffile.TiffFile(tmp_path / "bf_denoised.ome.tif") as tif:  # OME's namespace the default one
        assert tif.pages.first.description.startswith(f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="{OME}"')


@pytest.mark.parametrize("broken", [False, True])
def test_an_ome_xml_that_cannot_describe_the_output_is_left_out(tmp_path: Path, broken: bool) -> None:
    """float16 has no OME type; unreadable XML cannot be patched: the output keeps its axes, not a wrong copy."""
    pixels, uid = _bio_formats_file(tmp_path / "bf.ome.tif")
    if broken:
        xml = _ome_xml(uid, "bf.ome.tif").replace("</Image>", "</Imag>")
        tifffile.imwrite(tmp_path / "bf.ome.tif", pixels, description=xml.encode(), metadata={"axes": "CYX"})
    images.write(images.read(tmp_path / "bf.ome.tif"), tmp_path / "out.tif", dtype=None if broken else "float16")
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert not tif.is_ome and "OME" not in (tif.pages.first.description or "")
        assert (tif.series[0].axes, tif.series[0].shape) == ("CYX", (2, 64, 64))


def _pyramid(path: Path, level0: np.ndarray, axes: str, levels: int = 2) -> None:
    """An OME-TIFF of tiled, zlib-compressed `level0` and `levels` reduced levels in SubIFDs, as QuPath writes."""
    options = {"tile": (64, 64), "compression": "zlib"}
    with tifffile.TiffWriter(path) as tiff:
        tiff.write(level0, subifds=levels, metadata={"axes": axes, "PhysicalSizeX": 0.25}, **options)
        for level in range(1, levels + 1):
            tiff.write(level0[..., :: 2**level, :: 2**level], subfiletype=1, **options)


def _halved(plane: np.ndarray) -> np.ndarray:
    """2 x 2 block means of the last two axes (an odd edge repeated), rounded."""
    height, width = (-(-n // 2) for n in plane.shape[-2:])
    padded = np.pad(plane.astype(float), [(0, 0)] * (plane.ndim - 2) + [(0, 2 * height - plane.shape[-2]),
                    (0, 2 * width - plane.shape[-1])], mode="edge")  # fmt: skip
    return np.rint(padded.reshape(*plane.shape[:-2], height, 2, width, 2).mean(axis=(-3, -1)))


@pytest.mark.parametrize(("shape", "axes"), [((256, 256), "YX"), ((2, 130, 130), "CYX")])
def test_a_pyramidal_ome_tiff_keeps_its_levels_rebuilt_from_the_written_level_0(tmp_path: Path, shape, axes) -> None:
    _pyramid(tmp_path / "slide.ome.tif", RNG.integers(0, 60000, shape).astype(np.uint16), axes)
    image = images.read(tmp_path / "slide.ome.tif")
    images.write(image.with_pixels(image.pixels[:, ::-1]), tmp_path / "out.ome.tif")  # upside down: new pixels
    with tifffile.TiffFile(tmp_path / "out.ome.tif") as tif:
        series = tif.series[0]
        written = [level.asarray() for level in series.levels]
        pages = [tif.pages.first, *tif.pages.first.pages]
        assert series.axes == axes and len(tif.pages.first.subifds) == 2
        assert [page.tile for page in pages] == [(64, 64)] * 3
        assert {page.compression for page in pages} == {tifffile.COMPRESSION.ADOBE_DEFLATE}
    np.testing.assert_array_equal(written[0], np.flip(images.to_array(image), axis=-2))
    assert [level.shape[-2:] for level in written] == [shape[-2:], (-(-shape[-1] // 2),) * 2, (-(-shape[-1] // 4),) * 2]
    np.testing.assert_array_equal(written[1], _halved(written[0]))
    np.testing.assert_array_equal(written[2], _halved(written[1]))


def test_a_pyramid_written_at_half_size_has_levels_of_half_their_sizes(tmp_path: Path) -> None:
    _pyramid(tmp_path / "slide.ome.tif", RNG.integers(0, 255, (256, 256)).astype(np.uint8), "YX")
    image = images.read(tmp_path / "slide.ome.tif")
    images.write(image.with_pixels(image.pixels[:, ::2, ::2]), tmp_path / "half.ome.tif")
    with tifffile.TiffFile(tmp_path / "half.ome.tif") as tif:
        assert [level.shape for level in tif.series[0].levels] == [(128, 128), (64, 64), (32, 32)]
        np.testing.assert_array_equal(tif.series[0].levels[1].asarray(), _halved(tif.series[0].asarray()))


def test_a_tiled_tiff_stays_tiled(tmp_path: Path) -> None:
    pixels = RNG.integers(0, 60000, (96, 80)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "tiled.tif", pixels, tile=(32, 48))
    images.write(images.read(tmp_path / "tiled.tif"), tmp_path / "out.tif")
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert tif.pages.first.tile == (32, 48) and not tif.pages.first.subifds
        np.testing.assert_array_equal(tif.asarray(), pixels)


GREEN = np.zeros((3, 256), np.uint16)
GREEN[1] = np.arange(256) * 257
"""ImageJ's "Green" LUT as a TIFF colour map."""


@pytest.mark.parametrize(("shape", "axes"), [((40, 48), "YX"), ((3, 40, 48), "ZYX")])
def test_an_imagej_8_bit_image_with_a_colour_lut_stays_grey_with_its_lut(tmp_path: Path, shape, axes) -> None:
    grey = RNG.integers(20, 230, shape).astype(np.uint8)
    meta = {"unit": "um", "axes": axes}
    tifffile.imwrite(tmp_path / "cells.tif", grey, imagej=True, colormap=GREEN, metadata=meta, resolution=(5.0, 5.0))
    image = images.read(tmp_path / "cells.tif")
    assert image.pixels.shape == (grey.size // (40 * 48), 40, 48, 1)
    np.testing.assert_allclose(image.pixels[..., 0], grey.reshape(-1, 40, 48) / np.float32(255), rtol=1e-6)
    brighter = image.with_pixels(image.pixels + np.float32(10 / 255))  # the work's new intensities
    images.write(brighter, tmp_path / "out.tif")
    with tifffile.TiffFile(tmp_path / "cells.tif") as before, tifffile.TiffFile(tmp_path / "out.tif") as after:
        page = after.pages.first
        assert page.photometric == tifffile.PHOTOMETRIC.PALETTE and np.array_equal(page.colormap, GREEN)
        assert after.series[0].axes == axes and after.imagej_metadata == before.imagej_metadata
        np.testing.assert_array_equal(after.asarray(), grey + 10)


def test_an_imagej_lut_image_written_at_16_bits_is_plain_grey(tmp_path: Path) -> None:
    grey = RNG.integers(0, 255, (40, 48)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "cells.tif", grey, imagej=True, colormap=GREEN)
    images.write(images.read(tmp_path / "cells.tif"), tmp_path / "out.tif", dtype="uint16")
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert tif.pages.first.photometric == tifffile.PHOTOMETRIC.MINISBLACK
        np.testing.assert_array_equal(tif.asarray(), grey.astype(np.uint16) * 257)


def test_an_ome_tiffs_output_name_keeps_its_ome_tif_ending(tmp_path: Path) -> None:
    names = ["x.ome.tif", "y.OME.TIFF", "z.tif", "w.ome.png", ".ome.tif"]
    jobs = batch.plan([tmp_path / name for name in names], None, "_denoised")
    assert [job.output.name for job in jobs] == [
        "x_denoised.ome.tif",
        "y_denoised.OME.TIFF",
        "z_denoised.tif",
        "w.ome_denoised.png",
        ".ome_denoised.tif",
    ]
    assert [job.output for job in batch.plan([tmp_path / "x.ome.tif"], tmp_path / "out", "_x")] == [
        tmp_path / "out" / "x.ome.tif"
    ]


def test_a_rerun_on_a_folder_of_ome_tiffs_leaves_its_results_alone(tmp_path: Path) -> None:
    pixels = RNG.integers(0, 60000, (2, 32, 32)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "x.ome.tif", pixels, ome=True, metadata={"axes": "CYX"})
    for _ in range(2):
        result = CliRunner().invoke(app, ["noise", str(tmp_path), "--overwrite"])
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.ome.tif", "x_noisy.ome.tif"]
    with tifffile.TiffFile(tmp_path / "x_noisy.ome.tif") as tif:
        assert tif.is_ome and (tif.series[0].axes, tif.series[0].shape) == ("CYX", (2, 32, 32))


def test_an_imagej_display_range_follows_the_written_sample_type(tmp_path: Path) -> None:
    """`--dtype uint8` on a 16-bit stack shown at 900-5800 kept min 900, max 5800: ImageJ showed it black."""
    stack = RNG.integers(1000, 5000, (3, 2, 16, 16)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "u16.tif", stack, imagej=True, metadata={"axes": "ZCYX", "Ranges": (0, 5000, 0, 3000)})
    tifffile.imwrite(tmp_path / "mm.tif", stack[:, 0], imagej=True, metadata={"axes": "ZYX", "min": 900, "max": 5800})
    units = (stack[:, 0] * 0.5).astype(np.float32)  # physical units (500-2500): stretched from their min and max
    tifffile.imwrite(tmp_path / "f32.tif", units, imagej=True, metadata={"axes": "ZYX", "min": 600.0, "max": 2400.0})
    low, high = float(units.min()), float(units.max())
    for name, dtype, key, expected in (
        ("u16.tif", "uint8", "Ranges", (0, 5000 / 257, 0, 3000 / 257)),
        ("u16.tif", "float32", "Ranges", (0, 5000 / 65535, 0, 3000 / 65535)),
        ("mm.tif", "uint8", "min", 900 / 257),
        ("mm.tif", "uint16", "max", 5800),  # the same type: as it was
        ("f32.tif", "uint16", "max", (2400 - low) / (high - low) * 65535),
        ("f32.tif", "float32", "min", 600),
    ):
        out = tmp_path / f"{name}_{dtype}.tif"
        images.write(images.read(tmp_path / name), out, dtype=dtype)
        with tifffile.TiffFile(out) as tif:
            np.testing.assert_allclose(tif.imagej_metadata[key], expected, rtol=1e-6, err_msg=f"{name} {dtype}")


def test_a_plain_tiffs_recorded_axes_are_written_back(tmp_path: Path) -> None:
    """tifffile's shape record of a TYX or ZCYX stack lost its axes: the output read back as QYX (QQYX)."""
    for axes, shape in (("TYX", (3, 16, 16)), ("ZCYX", (2, 2, 16, 16)), ("YXS", (16, 16, 3))):
        stack = RNG.integers(0, 4000, shape).astype(np.uint16)
        photometric = "rgb" if axes == "YXS" else "minisblack"
        tifffile.imwrite(tmp_path / "in.tif", stack, photometric=photometric, metadata={"axes": axes})
        images.write(images.read(tmp_path / "in.tif"), tmp_path / "out.tif", overwrite=True)
        with tifffile.TiffFile(tmp_path / "out.tif") as tif:
            assert tif.series[0].axes == axes and tif.series[0].shape == shape, axes
