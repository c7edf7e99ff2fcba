"""TIFF flavours written back as they came: OME-XML patched for the output, pyramids rebuilt, tiles, ImageJ LUTs,
and OME-TIFF names."""

from __future__ import annotations

import logging
import uuid
import warnings
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from mdn.cli import app
from mdn.io import batch, images, ome

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
    planes = root.findall("ome:Image/ome:Pixels/ome:TiffData", NS)  # both planes, in this file's pages
    assert [(p.get("IFD"), p.get("PlaneCount")) for p in planes] == [("0", "2")]
    references = root.findall("ome:Image/ome:Pixels/ome:TiffData/ome:UUID", NS)
    assert [(r.text, r.get("FileName")) for r in references] == [(new, "bf_denoised.ome.tif")]
    pixels = root.find("ome:Image/ome:Pixels", NS)
    assert (pixels.get("PhysicalSizeX"), pixels.get("PhysicalSizeXUnit")) == ("0.1", "\u00b5m")
    assert root.find("ome:StructuredAnnotations/ome:CommentAnnotation/ome:Value", NS).text == "stained"
    assert series == ("CYX", (2, 64, 64), np.uint16) and not caught
    with tifffile.TiffFile(tmp_path / "bf_denoised.ome.tif") as tif:  # OME's namespace the default one
        assert tif.pages.first.description.startswith(f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="{OME}"')


@pytest.mark.parametrize("broken", [False, True])
def test_an_ome_xml_that_cannot_describe_the_output_is_left_out_and_named(tmp_path: Path, broken: bool) -> None:
    """float16 has no OME type; unreadable XML cannot be patched: the output keeps its axes, not a wrong copy, and
    the warning says the OME-XML was left out (float16 had dropped it silently)."""
    pixels, uid = _bio_formats_file(tmp_path / "bf.ome.tif")
    if broken:
        xml = _ome_xml(uid, "bf.ome.tif").replace("</Image>", "</Imag>")
        tifffile.imwrite(tmp_path / "bf.ome.tif", pixels, description=xml.encode(), metadata={"axes": "CYX"})
    job = batch.Job(tmp_path / "bf.ome.tif", tmp_path / "out.ome.tif")
    [result] = batch.run([job], lambda planes, _: planes, dtype=None if broken else "float16")
    assert result.status == "done", result.error
    why = "unreadable" if broken else "OME has no float16 pixel type: --dtype float32 keeps it"
    assert result.warnings == [f"left out of the TIFF: its OME-XML ({why})"]
    with tifffile.TiffFile(tmp_path / "out.ome.tif") as tif:
        assert not tif.is_ome and "OME" not in (tif.pages.first.description or "")
        assert (tif.series[0].axes, tif.series[0].shape) == ("CYX", (2, 64, 64))


def _planes_by_xml(path: Path) -> dict[int, np.ndarray]:
    """Each plane of an OME-TIFF's first image as its OME-XML's TiffData places it (plane index in DimensionOrder
    -> the page it names, in whichever file it names), read page by page without tifffile's OME reader."""
    with tifffile.TiffFile(path) as tif:
        pixels = ElementTree.fromstring(tif.pages.first.description).find("ome:Image/ome:Pixels", NS)
    order = pixels.get("DimensionOrder")[2:]
    strides = dict(zip(order, np.cumprod([1] + [int(pixels.get(f"Size{axis}")) for axis in order[:-1]]), strict=True))
    planes = {}
    for entry in pixels.findall("ome:TiffData", NS):
        first = sum(int(entry.get(f"First{axis}", 0)) * strides[axis] for axis in order)
        reference = entry.find("ome:UUID", NS)
        file = path.parent / reference.get("FileName") if reference is not None else path
        with tifffile.TiffFile(file, is_ome=False) as tif:
            for plane in range(int(entry.get("PlaneCount", 1))):
                planes[first + plane] = tif.pages[int(entry.get("IFD", 0)) + plane].asarray()
    return planes


def _one_z_a_file(folder: Path, planes: np.ndarray) -> None:
    """A multi-file OME-TIFF as Micro-Manager and Bio-Formats write it: Z plane z in mf_z{z}.ome.tif, each file's
    OME-XML mapping every plane to its file."""
    uids = [f"urn:uuid:{uuid.uuid4()}" for _ in planes]
    entries = "".join(
        f'<TiffData FirstZ="{z}" IFD="0" PlaneCount="1"><UUID FileName="mf_z{z}.ome.tif">{uid}</UUID></TiffData>'
        for z, uid in enumerate(uids)
    )
    for z, plane in enumerate(planes):
        xml = (
            f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="{OME}" UUID="{uids[z]}"><Image ID="Image:0">'
            f'<Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="uint16" SizeX="32" SizeY="32" SizeZ="{len(planes)}" '
            f'SizeC="1" SizeT="1"><Channel ID="Channel:0:0" SamplesPerPixel="1"/>{entries}</Pixels></Image></OME>'
        )
        tifffile.imwrite(folder / f"mf_z{z}.ome.tif", plane, description=xml, metadata=None)


def test_a_multi_file_ome_series_written_into_one_file_names_no_input_file(tmp_path: Path) -> None:
    """One Z plane a file, read as the whole series: the output's OME-XML had kept Z=1 in the input's mf_z1.ome.tif,
    so every OME reader showed the noisy input plane there instead of the written one."""
    stack = RNG.integers(0, 60000, (2, 32, 32)).astype(np.uint16)
    _one_z_a_file(tmp_path, stack)
    image = images.read(tmp_path / "mf_z0.ome.tif")
    images.write(image.with_pixels(1 - image.pixels), tmp_path / "out.ome.tif")  # the work's new pixels
    root, series, caught = _ome_of(tmp_path / "out.ome.tif")
    files = {r.get("FileName") for r in root.iterfind("ome:Image/ome:Pixels/ome:TiffData/ome:UUID", NS)}
    assert files == {"out.ome.tif"} and series == ("ZYX", (2, 32, 32), np.uint16) and not caught
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.ome.tif"), 65535 - stack)
    planes = _planes_by_xml(tmp_path / "out.ome.tif")
    assert sorted(planes) == [0, 1]
    for z in range(2):
        np.testing.assert_array_equal(planes[z], 65535 - stack[z])


def test_an_ome_tiff_storing_its_planes_out_of_order_keeps_each_at_its_z(tmp_path: Path) -> None:
    """Z=0 in page 1 and Z=1 in page 0 (valid OME): the pages were written in Z order under the old map, which
    swapped the planes for every reader."""
    stack = np.stack([np.full((32, 32), 500, np.uint16), np.full((32, 32), 5000, np.uint16)])
    uid = f"urn:uuid:{uuid.uuid4()}"
    entries = "".join(
        f'<TiffData FirstZ="{z}" IFD="{1 - z}" PlaneCount="1"><UUID FileName="perm.ome.tif">{uid}</UUID></TiffData>'
        for z in range(2)
    )
    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="{OME}" UUID="{uid}"><Image ID="Image:0"><Pixels '
        'ID="Pixels:0" DimensionOrder="XYZCT" Type="uint16" SizeX="32" SizeY="32" SizeZ="2" SizeC="1" SizeT="1">'
        f'<Channel ID="Channel:0:0" SamplesPerPixel="1"/>{entries}</Pixels></Image></OME>'
    )
    tifffile.imwrite(tmp_path / "perm.ome.tif", stack[::-1], description=xml, metadata=None, photometric="minisblack")
    images.write(images.read(tmp_path / "perm.ome.tif"), tmp_path / "out.ome.tif")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.ome.tif"), stack)
    planes = _planes_by_xml(tmp_path / "out.ome.tif")
    np.testing.assert_array_equal([planes[0], planes[1]], stack)


def test_a_big_endian_ome_tiff_is_written_as_it_came_and_its_xml_says_how(tmp_path: Path) -> None:
    """A big-endian BigTIFF had come out little-endian and classic with BigEndian="true" still in its OME-XML."""
    pixels, uid = _bio_formats_file(tmp_path / "bf.ome.tif")
    xml = _ome_xml(uid, "bf.ome.tif").replace('Type="uint16"', 'Type="uint16" BigEndian="true"')
    big = {"byteorder": ">", "bigtiff": True}
    tifffile.imwrite(tmp_path / "bf.ome.tif", pixels, description=xml.encode(), metadata=None, **big)
    images.write(images.read(tmp_path / "bf.ome.tif"), tmp_path / "out.ome.tif")
    root, series, caught = _ome_of(tmp_path / "out.ome.tif")
    with tifffile.TiffFile(tmp_path / "out.ome.tif") as tif:
        assert (tif.byteorder, tif.is_bigtiff) == (">", True)
        np.testing.assert_array_equal(tif.asarray(), pixels)
    assert root.find("ome:Image/ome:Pixels", NS).get("BigEndian") == "true"
    assert series == ("CYX", (2, 64, 64), np.uint16) and not caught
    little = ome.patched(xml, np.dtype("uint16"), (64, 64), "out.ome.tif", planes=2)
    assert ElementTree.fromstring(little).find("ome:Image/ome:Pixels", NS).get("BigEndian") == "false"


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


@pytest.mark.parametrize("shaped", [True, False])
def test_a_pyramid_in_reduced_pages_of_the_main_chain_is_rebuilt_there(tmp_path: Path, shaped: bool) -> None:
    """libvips' and slide scanners' layout (NewSubfileType 1 pages after level 0) had been dropped silently, where a
    SubIFD pyramid was rebuilt."""
    level0 = RNG.integers(0, 60000, (128, 128)).astype(np.uint16)
    options = {"tile": (32, 32), "metadata": {} if shaped else None}
    with tifffile.TiffWriter(tmp_path / "vips.tif") as tiff:
        tiff.write(level0, **options)
        for level in (1, 2):
            tiff.write(level0[:: 2**level, :: 2**level], subfiletype=1, **options)
    image = images.read(tmp_path / "vips.tif")
    images.write(image.with_pixels(image.pixels[:, ::-1]), tmp_path / "out.tif")
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert len(tif.series) == 1 and not tif.pages.first.subifds
        assert [(page.subfiletype, page.tile) for page in tif.pages] == [(0, (32, 32))] + [(1, (32, 32))] * 2
        written = [level.asarray() for level in tif.series[0].levels]
    assert [level.shape for level in written] == [(128, 128), (64, 64), (32, 32)]
    np.testing.assert_array_equal(written[0], level0[::-1])
    np.testing.assert_array_equal(written[1], _halved(written[0]))
    np.testing.assert_array_equal(written[2], _halved(written[1]))


def test_a_plain_tiffs_subifd_pyramid_reads_back_without_complaint(tmp_path: Path, caplog) -> None:
    """tifffile's shape record was written for level 0 only: reading the output logged "invalid shaped series
    metadata or corrupted file" and fell back to a generic series."""
    level0 = RNG.integers(0, 60000, (128, 128)).astype(np.uint16)
    with tifffile.TiffWriter(tmp_path / "pyr.tif") as tiff:
        tiff.write(level0, tile=(32, 32), subifds=2)
        for level in (1, 2):
            tiff.write(level0[:: 2**level, :: 2**level], subfiletype=1, tile=(32, 32))
    images.write(images.read(tmp_path / "pyr.tif"), tmp_path / "out.tif")
    with caplog.at_level(logging.WARNING, logger="tifffile"), tifffile.TiffFile(tmp_path / "out.tif") as tif:
        series = tif.series[0]
        assert (series.kind, [level.shape for level in series.levels]) == ("shaped", [(128, 128), (64, 64), (32, 32)])
        np.testing.assert_array_equal(series.asarray(), level0)
    assert not caplog.records


@pytest.mark.parametrize(
    ("dtype", "written", "predictor"),
    [("uint16", None, 2), ("float32", None, 3), ("float32", "uint16", 2), ("uint16", "float32", 3)],
)
def test_a_tiffs_predictor_is_kept_with_its_compression(tmp_path: Path, dtype, written, predictor) -> None:
    """The horizontal predictor had been dropped (the file 29 % larger); at another sample type, the type's own."""
    pixels = (RNG.random((3, 48, 40)) * 4000).astype(dtype)
    tifffile.imwrite(tmp_path / "in.tif", pixels, compression="zlib", predictor=True, photometric="minisblack")
    images.write(images.read(tmp_path / "in.tif"), tmp_path / "out.tif", dtype=written)
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert {(page.compression, page.predictor) for page in tif.pages} == {
            (tifffile.COMPRESSION.ADOBE_DEFLATE, predictor)
        }


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
