"""zarr volumes and OME-Zarr images denoised chunk by chunk: equal to the TIFF path, on a cluster, resumable."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from mdn import volumes
from mdn.cli import app
from mdn.errors import MdnError
from mdn.io import images, tonemap
from mdn.noise import specimens
from mdn.stabilise import Stabiliser
from mdn.stages import windows

zarr = pytest.importorskip("zarr")
runner = CliRunner()
TILE = ("--tile", "64")  # several tiles per plane, so that chunks cut through tiles
ALONE = ["--no-detail", "--no-impulses"]  # the network alone: no stage before or after it measures a whole plane


def _invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def _stack(planes: int = 3, height: int = 150, width: int = 133) -> np.ndarray:
    """A noisy 16-bit microscopy-like stack."""
    y, x = np.mgrid[0:height, 0:width]
    clean = 1000 + 800 * np.sin(y / 9) * np.cos(x / 7)
    rng = np.random.default_rng(0)
    noisy = clean[None] + rng.normal(0, 150, (planes, height, width))
    return np.clip(noisy, 0, 65535).astype(np.uint16)


@pytest.fixture(scope="module")
def volume(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    """A zarr array chunked across planes, rows and columns, and the same stack denoised from a TIFF by the
    default, with its stages and with the network alone (`--no-detail --no-impulses`)."""
    folder = tmp_path_factory.mktemp("volume")
    stack = _stack()
    zarr.create_array(str(folder / "cells.zarr"), data=stack, chunks=(2, 64, 48))
    tifffile.imwrite(folder / "cells.tif", stack, imagej=True, metadata={"axes": "ZYX"})
    references = {}
    for name, flags in {"default": [], "network": ALONE}.items():
        result = _invoke("denoise", folder / "cells.tif", "-o", folder / f"{name}.tif", *TILE, *flags)
        assert result.exit_code == 0, result.output
        references[name] = tifffile.imread(folder / f"{name}.tif")
    assert np.abs(references["default"].astype(int) - references["network"]).max() > 20  # the stages count
    return folder, references


@pytest.mark.parametrize(
    ("flags", "unit_voxels", "units"),
    [([], 1, 2), ([], None, 2), (ALONE, 1, 18), (ALONE, 4 * 64 * 48, 12), (ALONE, None, 2)],
)  # fmt: skip
def test_a_chunked_volume_equals_the_same_stack_denoised_from_tiff(
    volume, tmp_path: Path, monkeypatch, flags: list[str], unit_voxels: int | None, units: int
) -> None:
    """Chunk by chunk (units of one chunk, two, or a plane's), the network alone equals the TIFF run; with the
    default's stages, which measure whole planes, units are whole planes whatever the budget, and the volume
    equals the TIFF run through the default too."""
    folder, references = volume
    reference = references["network" if flags else "default"]
    if unit_voxels:
        monkeypatch.setattr(volumes, "UNIT_BYTES_PER_VOXEL", (2 << 30) // unit_voxels)  # of the default --max-memory
    report = tmp_path / "report.json"
    result = _invoke("denoise", folder / "cells.zarr", "-o", tmp_path / "clean.zarr", *TILE, *flags, "--json", report)
    assert result.exit_code == 0, result.output
    out = zarr.open(str(tmp_path / "clean.zarr"), mode="r")
    assert out.dtype == np.uint16 and out.chunks == (2, 64, 48)
    assert np.abs(out[:].astype(int) - reference).max() <= 1
    assert np.abs(reference.astype(int) - _stack()).mean() > 50  # it did denoise
    assert not (tmp_path / "clean.zarr" / volumes.PROGRESS).exists()
    info = json.loads(report.read_text())["files"][0]["info"]
    assert info["chunks"] == 2 * 3 * 3 and info["resumed_from"] == 0
    assert info["units"] == units


def test_planes_too_large_for_whole_stages_run_them_by_windows_in_units_of_chunks(
    volume, tmp_path: Path, monkeypatch
) -> None:
    """A plane whose stages would not fit the memory budget runs them window by window with statistics from
    sample boxes: a volume's units are then blocks of chunks again, and the volume equals the same stack from a
    TIFF, which runs its planes that way too."""
    folder, references = volume
    monkeypatch.setattr(windows, "BYTES_PER_PIXEL", 1 << 20)  # every plane too large
    monkeypatch.setattr(windows, "window_for", lambda budget: 64)  # 3 x 3 windows a plane
    monkeypatch.setattr(volumes, "UNIT_BYTES_PER_VOXEL", (2 << 30) // (64 * 48))  # a chunk per unit
    result = _invoke("denoise", folder / "cells.tif", "-o", tmp_path / "windowed.tif", *TILE)
    assert result.exit_code == 0, result.output
    reference = tifffile.imread(tmp_path / "windowed.tif").astype(int)
    difference = np.abs(reference - references["default"])
    assert difference.max() > 0 and difference.mean() < 2  # the windows' path, close to the whole planes'
    report = tmp_path / "report.json"
    result = _invoke("denoise", folder / "cells.zarr", "-o", tmp_path / "clean.zarr", *TILE, "--json", report)
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["files"][0]["info"]["units"] == 18
    assert np.abs(zarr.open(str(tmp_path / "clean.zarr"), mode="r")[:].astype(int) - reference).max() <= 1


@pytest.mark.parametrize("windowed", [False, True])
def test_a_strength_keeps_the_same_share_of_a_volume_as_of_its_tiff(
    volume, tmp_path: Path, monkeypatch, windowed: bool
) -> None:
    """`--strength 0.5` keeps half of each plane's change, whole planes or regions of planes run window by
    window alike: the volume equals the TIFF run, which lies halfway between the input and the full change."""
    folder, references = volume
    if windowed:
        monkeypatch.setattr(windows, "BYTES_PER_PIXEL", 1 << 20)
        monkeypatch.setattr(windows, "window_for", lambda budget: 64)
        monkeypatch.setattr(volumes, "UNIT_BYTES_PER_VOXEL", (2 << 30) // (64 * 48))
    half = ("--strength", "0.5")
    result = _invoke("denoise", folder / "cells.tif", "-o", tmp_path / "half.tif", *TILE, *half)
    assert result.exit_code == 0, result.output
    reference = tifffile.imread(tmp_path / "half.tif").astype(int)
    assert np.abs(reference - (_stack().astype(int) + references["default"]) / 2).mean() < 3
    result = _invoke("denoise", folder / "cells.zarr", "-o", tmp_path / "half.zarr", *TILE, *half)
    assert result.exit_code == 0, result.output
    assert np.abs(zarr.open(str(tmp_path / "half.zarr"), mode="r")[:].astype(int) - reference).max() <= 1


def test_a_two_worker_cluster_gives_the_same_volume(volume, tmp_path: Path) -> None:
    folder, references = volume
    result = _invoke("denoise", folder / "cells.zarr", "-o", tmp_path / "clean.zarr", *TILE, "--scheduler", "local:2")
    assert result.exit_code == 0, result.output
    assert np.abs(zarr.open(str(tmp_path / "clean.zarr"), mode="r")[:].astype(int) - references["default"]).max() <= 1


def test_an_interrupted_run_goes_on_where_it_stopped(volume, tmp_path: Path, monkeypatch) -> None:
    folder, references = volume
    target = tmp_path / "clean.zarr"
    plain = (*ALONE, *TILE)  # the network alone, so that units can be single chunks
    written = volumes.denoise_unit
    calls = []

    def failing_after_four(job, unit):
        calls.append(unit)
        if len(calls) > 4:
            raise OSError("disk went away")
        return written(job, unit)

    monkeypatch.setattr(volumes, "UNIT_BYTES_PER_VOXEL", 2 << 30)  # a chunk per unit
    monkeypatch.setattr(volumes.chunks, "denoise_unit", failing_after_four)  # as each unit runs
    result = _invoke("denoise", folder / "cells.zarr", "-o", target, *plain)
    assert result.exit_code == 1 and "14 of 18 chunks failed" in result.output
    assert "chunk 0.1.1: disk went away" in result.output
    assert len([p for p in (target / volumes.PROGRESS).iterdir() if not p.name.startswith(".")]) == 4
    monkeypatch.setattr(volumes.chunks, "denoise_unit", written)
    report = tmp_path / "report.json"
    assert _invoke("denoise", folder / "cells.zarr", "-o", target, *plain, "--json", report).exit_code == 0
    assert json.loads(report.read_text())["files"][0]["info"]["resumed_from"] == 4
    assert np.abs(zarr.open(str(target), mode="r")[:].astype(int) - references["network"]).max() <= 1
    again = _invoke("denoise", folder / "cells.zarr", "-o", target, *TILE)
    assert again.exit_code == 1 and "exists" in again.output  # a finished output is not redone without --overwrite
    assert _invoke("denoise", folder / "cells.zarr", "-o", target, *TILE, "--skip-existing").exit_code == 0


def test_an_ome_zarr_image_keeps_its_metadata_and_rebuilds_its_levels(tmp_path: Path) -> None:
    stack = _stack(2, 96, 80)
    group = zarr.open_group(str(tmp_path / "image.ome.zarr"), mode="w", zarr_format=2)
    group.create_array("0", data=stack, chunks=(1, 48, 40))
    group.create_array("1", data=stack[:, ::2, ::2], chunks=(1, 48, 40))
    axes = [{"name": "z", "type": "space"}, {"name": "y", "type": "space"}, {"name": "x", "type": "space"}]
    datasets = [
        {"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": [1, 2**i, 2**i]}]} for i in (0, 1)
    ]
    group.attrs["multiscales"] = [{"version": "0.4", "name": "cells", "axes": axes, "datasets": datasets}]
    group.attrs["omero"] = {"channels": [{"label": "GFP"}]}
    result = _invoke("denoise", tmp_path / "image.ome.zarr", "-o", tmp_path / "clean.ome.zarr")
    assert result.exit_code == 0, result.output
    out = zarr.open_group(str(tmp_path / "clean.ome.zarr"), mode="r")
    assert dict(out.attrs) == dict(group.attrs) and out.metadata.zarr_format == 2
    finest, coarse = out["0"][:].astype(float), out["1"][:]
    means = finest.reshape(2, 48, 2, 40, 2).mean(axis=(2, 4))
    assert coarse.dtype == np.uint16 and np.abs(coarse - np.rint(means)).max() == 0
    assert np.abs(finest - stack).mean() > 50


def test_bad_volumes_fail_with_one_line_naming_them(tmp_path: Path) -> None:
    zarr.open_group(str(tmp_path / "plain.zarr"), mode="w")
    result = _invoke("denoise", tmp_path / "plain.zarr", tmp_path / "missing.zarr", "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert "plain.zarr: zarr group without OME-Zarr multiscales" in result.output
    assert "missing.zarr" in result.output and "Traceback" not in result.output
    noise = _invoke("noise", tmp_path / "plain.zarr")
    assert noise.exit_code == 2 and "taken by mdn denoise and mdn zeroshot only" in noise.output
    colour = zarr.open_array(str(tmp_path / "rgb.zarr"), mode="w", shape=(2, 40, 48, 3), dtype="uint16")
    colour[:] = 1000
    result = _invoke("denoise", tmp_path / "rgb.zarr", "-o", tmp_path / "rgb_out.zarr")
    assert result.exit_code == 1 and not (tmp_path / "rgb_out.zarr").exists()
    assert "rgb.zarr: zarr array of shape (2, 40, 48, 3) ends in an axis of 3 (colour channels?)" in result.output


def test_the_api_denoises_a_float_volume_as_the_float_tiff_is(tmp_path: Path) -> None:
    import mdn

    stack = _stack(2, 70, 90).astype(np.float32) / 4096
    zarr.create_array(str(tmp_path / "float.zarr"), data=stack, chunks=(1, 32, 64), zarr_format=2)
    tifffile.imwrite(tmp_path / "float.tif", stack, imagej=True, metadata={"axes": "ZYX"})
    reference = _invoke("denoise", tmp_path / "float.tif", "-o", tmp_path / "reference.tif", *TILE)
    assert reference.exit_code == 0  # the default's stages run on whole planes of the volume too
    info = mdn.denoise_volume(tmp_path / "float.zarr", tmp_path / "clean.zarr", tile=64)
    assert info["chunks"] == 2 * 3 * 2
    out = zarr.open(str(tmp_path / "clean.zarr"), mode="r")
    assert out.dtype == np.float32 and out.metadata.zarr_format == 2
    np.testing.assert_array_equal(out[:], tifffile.imread(tmp_path / "reference.tif"))


def test_zeroshot_fits_each_plane_of_a_volume_as_it_fits_a_single_image(tmp_path: Path) -> None:
    plane = _stack(1, 64, 64)
    zarr.create_array(str(tmp_path / "one.zarr"), data=plane, chunks=(1, 32, 32))
    tifffile.imwrite(tmp_path / "one.tif", plane[0])
    settings = ("--preset", "fast", "--iters", "15", "--device", "cpu")
    assert _invoke("zeroshot", tmp_path / "one.tif", "-o", tmp_path / "one_clean.tif", *settings).exit_code == 0
    report = tmp_path / "report.json"
    result = _invoke("zeroshot", tmp_path / "one.zarr", "-o", tmp_path / "clean.zarr", *settings, "--json", report)
    assert result.exit_code == 0, result.output
    out = zarr.open(str(tmp_path / "clean.zarr"), mode="r")[:]
    assert np.abs(out[0].astype(int) - tifffile.imread(tmp_path / "one_clean.tif")).max() <= 1
    info = json.loads(report.read_text())["files"][0]["info"]
    assert info["model"] == "zeroshot mpi" and info["chunks"] == 4 and info["units"] == 1


def test_a_volume_of_photon_noise_is_stabilised_as_its_tiff_is(tmp_path: Path) -> None:
    """The transform fitted plane by plane from a zarr volume is the one fitted to the same stack read from a TIFF:
    a `Stabiliser` with the same noise and range."""
    clean = specimens.fluorescence_stack(3, 80, seed=6161)
    stack = specimens.Microscope(counts_per_photon=32.0).record(clean, np.random.default_rng(6162))
    zarr.create_array(str(tmp_path / "cells.zarr"), data=stack, chunks=(1, 40, 40))
    tifffile.imwrite(tmp_path / "cells.tif", stack, imagej=True, metadata={"axes": "ZYX"})
    from_volume = volumes.store.noisy_range(zarr.open(str(tmp_path / "cells.zarr"), mode="r"))
    from_file = tonemap.fit_noisy(images.read(tmp_path / "cells.tif"))
    assert isinstance(from_volume, Stabiliser) and from_volume == from_file
    assert abs(from_volume.noise.gain * 65535 / 32 - 1) < 0.2


def test_zero_shot_takes_a_volumes_range_without_its_hot_pixel_as_it_takes_its_tiffs(tmp_path: Path) -> None:
    stack = specimens.Microscope().record(specimens.fluorescence_stack(3, 80, seed=6163), np.random.default_rng(6164))
    stack[1, 7, 9] = 65535
    zarr.create_array(str(tmp_path / "cells.zarr"), data=stack, chunks=(1, 40, 40))
    tifffile.imwrite(tmp_path / "cells.tif", stack, imagej=True, metadata={"axes": "ZYX"})
    from_volume = volumes.store.robust_range(zarr.open(str(tmp_path / "cells.zarr"), mode="r"))
    from_file = tonemap.fit_robust(images.read(tmp_path / "cells.tif"))
    assert isinstance(from_volume, tonemap.Stretch) and from_volume == from_file
    assert from_volume.high * 65535 < 5000  # the specimen's counts (200-3200, and their noise), not the hot pixel's


def test_a_volume_batch_checks_its_suffix_and_a_name_too_long_fails_that_volume_alone(tmp_path: Path) -> None:
    """A volume's name past the file system's limit with its suffix, or a suffix holding a folder, had been a
    traceback that ended the batch (files' were mended first)."""
    stack = _stack(1, 32, 32)
    for name in ("a.zarr", "x" * 246 + ".zarr"):
        zarr.create_array(str(tmp_path / name), data=stack, chunks=(1, 32, 32))
    folded = _invoke("denoise", tmp_path / "a.zarr", "--suffix", "a/b", *ALONE)
    assert folded.exit_code == 2 and "--suffix is added to each file's name and cannot hold a folder" in folded.output
    result = _invoke("denoise", tmp_path, "--skip-existing", *ALONE)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "_denoised.zarr: cannot write: file name too long" in result.output
    assert (tmp_path / "a_denoised.zarr").is_dir()


def test_a_volume_is_never_replaced_by_its_own_output_nor_written_over_what_is_no_store(tmp_path: Path) -> None:
    stack = _stack(2, 64, 48)
    zarr.create_array(str(tmp_path / "vol.zarr"), data=stack, chunks=(1, 32, 24))
    (tmp_path / "taken.zarr").write_text("a file named like a store")
    (tmp_path / "notes.zarr").mkdir()
    (tmp_path / "notes.zarr" / "keep.txt").write_text("a user's folder")
    for output, words in (
        (tmp_path / "vol.zarr", "vol.zarr: is the input volume or inside it: a volume is not denoised in place"),
        (tmp_path / "taken.zarr", "taken.zarr: is a file, not a zarr store or a folder; refusing to replace it"),
        (tmp_path / "notes.zarr", "notes.zarr: is a folder but no zarr store; refusing to replace it"),
    ):
        result = _invoke("denoise", tmp_path / "vol.zarr", "-o", output, "--overwrite", *ALONE)
        assert result.exit_code == 1 and words in result.output and "Traceback" not in result.output, output
    np.testing.assert_array_equal(zarr.open(str(tmp_path / "vol.zarr"), mode="r")[:], stack)
    assert (tmp_path / "notes.zarr" / "keep.txt").exists() and (tmp_path / "taken.zarr").is_file()


def test_an_unfinished_output_of_another_volume_is_not_taken_up(tmp_path: Path, monkeypatch) -> None:
    zarr.create_array(str(tmp_path / "a.zarr"), data=_stack(2, 64, 48).astype(np.uint8), chunks=(1, 32, 24))
    zarr.create_array(str(tmp_path / "b.zarr"), data=_stack(3, 64, 48), chunks=(1, 32, 24))
    monkeypatch.setattr(volumes.chunks, "denoise_unit", lambda job, unit: (_ for _ in ()).throw(OSError("stop")))
    assert _invoke("denoise", tmp_path / "a.zarr", "-o", tmp_path / "out.zarr", *ALONE).exit_code == 1
    monkeypatch.undo()
    result = _invoke("denoise", tmp_path / "b.zarr", "-o", tmp_path / "out.zarr", *ALONE)
    assert result.exit_code == 1
    assert "holds an unfinished run of another volume (uint8 (2, 64, 48), not uint16 (3, 64, 48))" in result.output


def test_infinite_samples_are_replaced_and_missing_ones_kept_as_in_a_float_tiff(tmp_path: Path) -> None:
    """Inf is replaced and said so; NaN ("no data") comes back as NaN where it was, and the rest of the volume
    equals the same stack denoised from a float TIFF."""
    import mdn

    stack = np.random.default_rng(0).random((2, 64, 48), dtype=np.float32)
    stack[0, 10, 10], stack[1, 5, 5], stack[1, 40:50, 0:6] = np.inf, np.nan, np.nan
    zarr.create_array(str(tmp_path / "inf.zarr"), data=stack, chunks=(1, 32, 24))
    tifffile.imwrite(tmp_path / "inf.tif", stack)
    result = _invoke("denoise", tmp_path / "inf.zarr", "-o", tmp_path / "out.zarr", "--json", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    out = zarr.open(str(tmp_path / "out.zarr"), mode="r")[:]
    np.testing.assert_array_equal(np.isnan(out), np.isnan(stack))
    assert np.isfinite(out[~np.isnan(stack)]).all()
    assert "1 NaN/Inf values replaced" in result.output  # as a float TIFF's are reported
    assert json.loads((tmp_path / "r.json").read_text())["files"][0]["info"]["nonfinite"] == 1
    assert _invoke("denoise", tmp_path / "inf.tif", "-o", tmp_path / "out.tif").exit_code == 0
    np.testing.assert_array_equal(out, tifffile.imread(tmp_path / "out.tif"))
    with pytest.warns(UserWarning, match="1 NaN/Inf values replaced"):
        mdn.denoise_volume(tmp_path / "inf.zarr", tmp_path / "api.zarr", tile=64)


def test_the_output_mirrors_shards_filters_names_and_key_encoding(tmp_path: Path) -> None:
    from numcodecs import Delta

    stack = _stack(2, 64, 48)
    sharded = zarr.create_array(str(tmp_path / "v3.zarr"), shape=stack.shape, dtype=stack.dtype, chunks=(1, 16, 16),
                                shards=(1, 32, 48), dimension_names=("z", "y", "x"))  # fmt: skip
    sharded[:] = stack
    old = zarr.create_array(str(tmp_path / "v2.zarr"), shape=stack.shape, dtype=stack.dtype, chunks=(1, 32, 24),
                            zarr_format=2, filters=[Delta(dtype="<u2")],
                            chunk_key_encoding={"name": "v2", "separator": "/"})  # fmt: skip
    old[:] = stack
    for name in ("v3", "v2"):
        result = _invoke("denoise", tmp_path / f"{name}.zarr", "-o", tmp_path / f"{name}-out.zarr", *ALONE)
        assert result.exit_code == 0, result.output
    out = zarr.open_array(str(tmp_path / "v3-out.zarr"), mode="r")
    assert out.shards == (1, 32, 48) and out.metadata.dimension_names == ("z", "y", "x")
    assert np.abs(out[:].astype(int) - stack).mean() > 50
    out = zarr.open_array(str(tmp_path / "v2-out.zarr"), mode="r")
    assert out.filters == (Delta(dtype="<u2"),) and out.metadata.dimension_separator == "/"


def test_a_bad_scheduler_and_ctrl_c_in_a_volume_are_said_as_for_files(volume, tmp_path: Path, monkeypatch) -> None:
    folder, _ = volume
    for address, words in (("local:abc", "local:N takes a number of workers, 1 or more, not 'abc'"),
                           ("local:0", "not '0'"), ("a b", "not 'a b'")):  # fmt: skip
        result = _invoke("denoise", folder / "cells.zarr", "-o", tmp_path / "out.zarr", "--scheduler", address)
        assert result.exit_code == 2 and words in result.output, address

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(volumes, "denoise", interrupted)
    report = tmp_path / "r.json"
    result = _invoke("denoise", folder / "cells.zarr", "-o", tmp_path / "out.zarr", "--json", report)
    assert result.exit_code == 130 and "interrupted after 0 of 1 files" in result.output
    assert json.loads(report.read_text())["interrupted"] is True


def test_volumes_found_in_folders_and_patterns_and_twins_kept_apart(tmp_path: Path) -> None:
    for folder in ("in/a", "in/b"):
        zarr.create_array(str(tmp_path / folder / "vol.zarr"), data=_stack(1, 48, 40), chunks=(1, 48, 40))
    Image = pytest.importorskip("PIL.Image")
    Image.fromarray(np.full((40, 40), 128, np.uint8)).save(tmp_path / "in" / "photo.png")
    result = _invoke("denoise", tmp_path / "in", "-r", "-o", tmp_path / "out", *ALONE)
    assert result.exit_code == 0, result.output
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").iterdir()) == ["a", "b", "photo.png"]
    assert (tmp_path / "out" / "a" / "vol.zarr").is_dir() and (tmp_path / "out" / "b" / "vol.zarr").is_dir()
    pattern = _invoke("denoise", str(tmp_path / "in" / "*" / "*.zarr"), "-o", tmp_path / "again", *ALONE)
    assert pattern.exit_code == 0 and "2 done" in pattern.output
    typed = _invoke("denoise", tmp_path / "in" / "a" / "vol.zarr", "-o", tmp_path / "f.zarr", "--dtype", "float32")
    assert typed.exit_code == 2 and "--dtype applies to image files" in typed.output
    tiff = _invoke("denoise", tmp_path / "in" / "a" / "vol.zarr", "-o", tmp_path / "out.tif")
    assert tiff.exit_code == 2 and "out.tif: a zarr volume is written as a .zarr store, not .tif" in tiff.output


def test_an_array_of_a_store_goes_beside_the_store_not_into_it(tmp_path: Path) -> None:
    group = zarr.open_group(str(tmp_path / "store.zarr"), mode="w")
    group.create_array("raw", data=_stack(1, 48, 40), chunks=(1, 48, 40))
    result = _invoke("denoise", tmp_path / "store.zarr" / "raw", *ALONE)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "store_raw_denoised.zarr").is_dir()
    assert list(zarr.open_group(str(tmp_path / "store.zarr"), mode="r").keys()) == ["raw"]
    inside = _invoke("denoise", tmp_path / "store.zarr" / "raw", "-o", tmp_path / "store.zarr" / "clean.zarr")
    assert inside.exit_code == 1 and "is the input volume or inside it" in inside.output


def test_zeroshot_shares_a_time_budget_among_a_volumes_planes(tmp_path: Path, monkeypatch) -> None:
    zarr.create_array(str(tmp_path / "vol.zarr"), data=_stack(4, 32, 32), chunks=(1, 32, 32))
    budgets = []

    def fitted(plane, settings):
        budgets.append(settings.time_budget)
        return plane, []

    monkeypatch.setattr(volumes.chunks.zeroshot_run, "run", fitted)
    result = _invoke("zeroshot", tmp_path / "vol.zarr", "-o", tmp_path / "out.zarr", "--time-budget", "8s")
    assert result.exit_code == 0, result.output
    assert budgets == [2.0] * 4


def test_each_channel_of_a_volume_is_fitted_as_a_tiffs_channel_is(tmp_path: Path) -> None:
    """Two detectors (2 and 60 counts a photon) on a channel axis its names say: each channel gets its own noise
    fit, as the channels of an ImageJ hyperstack do, and the same bytes."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:64, 0:64]
    blobs = sum(np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 40.0) for cx, cy in rng.uniform(8, 56, (10, 2)))
    dim = rng.poisson((100 + 300 * blobs) / 2) * 2
    bright = rng.poisson((1000 + 40000 * blobs) / 60) * 60
    channels = np.clip(np.stack([dim, bright]), 0, 65535).astype(np.uint16)
    zarr.create_array(str(tmp_path / "cells.zarr"), data=channels, chunks=(1, 32, 64), dimension_names=("c", "y", "x"))
    tifffile.imwrite(tmp_path / "cells.tif", channels, imagej=True, metadata={"axes": "CYX"})
    assert volumes.Volume.open(tmp_path / "cells.zarr").channel_axis == 0
    for name in ("cells.zarr", "cells.tif"):
        result = _invoke("denoise", tmp_path / name, "-o", tmp_path / f"out_{name}", *TILE)
        assert result.exit_code == 0, result.output
    volume = zarr.open(str(tmp_path / "out_cells.zarr"), mode="r")[:]
    np.testing.assert_array_equal(volume, tifffile.imread(tmp_path / "out_cells.tif"))


def test_the_api_refuses_an_image_name_and_what_is_no_store_path_and_fills_info(tmp_path: Path) -> None:
    import mdn

    zarr.create_array(str(tmp_path / "vol.zarr"), data=_stack(1, 48, 40), chunks=(1, 48, 40))
    with pytest.raises(mdn.MdnError, match=r"out\.tif: a zarr volume is written as a \.zarr store, not \.tif$"):
        mdn.denoise_volume(tmp_path / "vol.zarr", tmp_path / "out.tif")
    assert not (tmp_path / "out.tif").exists()
    array = zarr.open_array(str(tmp_path / "vol.zarr"), mode="r")
    for source, target, words in (
        (array, tmp_path / "a.zarr", "source must be a zarr store's path, got Array (denoise takes arrays)"),
        (array[:], tmp_path / "a.zarr", "source must be a zarr store's path, got ndarray"),
        (tmp_path / "vol.zarr", array, "target must be a zarr store's path, got Array"),
    ):
        with pytest.raises(mdn.MdnError, match="^" + re.escape(words)):
            mdn.denoise_volume(source, target)
    with pytest.raises(mdn.MdnError, match=r"^info must be a dict to fill in, got list"):
        mdn.denoise_volume(tmp_path / "vol.zarr", tmp_path / "a.zarr", info=[])
    for keyword in ("tiles", "axes"):  # not a setting of volumes: refused as `mdn.denoise` refuses one
        with pytest.raises(TypeError, match=rf"^denoise_volume\(\) got an unexpected keyword argument '{keyword}'"):
            mdn.denoise_volume(tmp_path / "vol.zarr", tmp_path / "a.zarr", **{keyword: 64})
    info: dict = {}
    report = mdn.denoise_volume(tmp_path / "vol.zarr", tmp_path / "a.zarr", detail=False, impulses=False, info=info)
    assert info == report and report["chunks"] == 1


@pytest.mark.parametrize(
    ("command", "flags", "words"),
    [
        ("zeroshot", ["--share"], "--share applies to stack files; a zarr volume's planes are each fitted from"),
        ("denoise", ["--layer", "beauty"], "--layer picks an EXR file's layer; a zarr volume has none"),
        ("denoise", ["--albedo", "a.exr"], "--albedo and --normal are a render's buffers; a zarr volume takes none"),
        ("denoise", ["--normal", "n.exr"], "--albedo and --normal are a render's buffers; a zarr volume takes none"),
    ],
)
def test_options_for_image_files_alone_are_refused_for_a_volume(
    tmp_path: Path, monkeypatch, command: str, flags: list[str], words: str
) -> None:
    """Options a volume's run would leave unused are a usage error naming the volume, as `--dtype` is."""
    zarr.create_array(str(tmp_path / "vol.zarr"), data=_stack(2, 32, 32), chunks=(1, 32, 32))
    result = _invoke(command, tmp_path / "vol.zarr", "-o", tmp_path / "out.zarr", *flags)
    assert result.exit_code == 2 and f"vol.zarr: {words}" in " ".join(result.output.split())
    assert not (tmp_path / "out.zarr").exists()
    monkeypatch.setattr(volumes.chunks.zeroshot_run, "run", lambda plane, settings: (plane, []))
    result = _invoke("zeroshot", tmp_path / "vol.zarr", "-o", tmp_path / "out.zarr", "--no-share")
    assert result.exit_code == 0, result.output  # what a volume does anyway


def test_a_volumes_option_without_a_volume_is_refused(tmp_path: Path) -> None:
    """`--scheduler` with image files alone was left unused without a word."""
    tifffile.imwrite(tmp_path / "cells.tif", _stack(2, 32, 32))
    result = _invoke("denoise", tmp_path / "cells.tif", "-o", tmp_path / "out.tif", "--scheduler", "local:1")
    assert result.exit_code == 2 and "no zarr volume is among the inputs" in " ".join(result.output.split())
    assert not (tmp_path / "out.tif").exists()


def test_an_ome_zarr_image_is_named_as_an_ome_tiff_is(tmp_path: Path) -> None:
    zarr.open_group(str(tmp_path / "cells.ome.zarr"), mode="w").create_array("0", shape=(1, 8, 8), dtype="uint16")
    names = {
        "cells.ome.zarr": "cells_denoised.ome.zarr",
        "cells.ome.zarr/0": "cells_0_denoised.zarr",  # an array of the image, no OME image itself
        "vol.zarr": "vol_denoised.zarr",
        "run.2.zarr": "run.2_denoised.zarr",
        "plain": "plain_denoised.zarr",
    }
    for name, expected in names.items():
        assert volumes.output_path(tmp_path / name, None, "_denoised", several=False) == tmp_path / expected, name


def test_files_and_stores_of_a_folder_mirror_its_tree_from_the_folder_named(tmp_path: Path) -> None:
    """Files and stores below one named folder keep their subfolders alike, a lone file found by -r included."""
    (tmp_path / "in" / "sub").mkdir(parents=True)
    tifffile.imwrite(tmp_path / "in" / "sub" / "stack.tif", _stack(2, 48, 40))
    for name in ("sub/v.zarr", "top.zarr"):
        zarr.create_array(str(tmp_path / "in" / name), data=_stack(2, 48, 40), chunks=(1, 48, 40))
    result = _invoke("denoise", tmp_path / "in", "-r", "-o", tmp_path / "out", *ALONE)
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.suffix in (".tif", ".zarr"))
    assert written == ["sub/stack.tif", "sub/v.zarr", "top.zarr"]


def test_a_folder_run_again_leaves_the_stores_it_wrote_alone(tmp_path: Path) -> None:
    """Without -o a store's result lies beside it; a second run on the folder skips it, as it skips files' results
    (it once denoised `v_denoised.zarr` into `v_denoised_denoised.zarr`, and an image's levels inside it)."""
    image = zarr.open_group(str(tmp_path / "in" / "cells.ome.zarr"), mode="w")
    image.attrs["multiscales"] = [{"axes": ["z", "y", "x"], "datasets": [{"path": "0"}]}]
    image.create_array("0", data=_stack(1, 48, 40), chunks=(1, 48, 40))
    first = _invoke("denoise", tmp_path / "in", "-r", *ALONE)
    assert first.exit_code == 0 and (tmp_path / "in" / "cells_denoised.ome.zarr").is_dir(), first.output
    again = _invoke("denoise", tmp_path / "in", "-r", "--skip-existing", *ALONE)
    assert again.exit_code == 0 and "skipped, exists" in again.output, again.output
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["cells.ome.zarr", "cells_denoised.ome.zarr"]


def _interrupted(source: Path, target: Path, monkeypatch, *flags: object) -> list[str]:
    """`mdn denoise source -o target` stopped after its first unit (a chunk); the names of the chunks marked."""
    written, calls = volumes.denoise_unit, []

    def failing_after_one(job, unit):
        calls.append(unit)
        if len(calls) > 1:
            raise OSError("disk went away")
        return written(job, unit)

    with monkeypatch.context() as patch:
        patch.setattr(volumes, "UNIT_BYTES_PER_VOXEL", 2 << 30)  # a chunk per unit
        patch.setattr(volumes.chunks, "denoise_unit", failing_after_one)
        assert _invoke("denoise", source, "-o", target, *flags).exit_code == 1
    return sorted(p.name for p in (target / volumes.PROGRESS).iterdir() if not p.name.startswith("."))


def test_an_unfinished_output_goes_on_only_with_the_input_card_and_settings_that_began_it(
    tmp_path: Path, monkeypatch
) -> None:
    """Another card, `mdn zeroshot`, another input of the same shape, a setting that changes pixels or the input's
    pixels changed since are refused in one line, the chunks done left as they were; the same settings (a
    --max-memory that changes no pixel included) go on with it. It had resumed with any of them, mixing planes of
    two models in one volume."""
    stack = _stack(2, 64, 48)
    for name in ("a.zarr", "b.zarr"):
        zarr.create_array(str(tmp_path / name), data=stack, chunks=(1, 32, 24))
    source, target = tmp_path / "a.zarr", tmp_path / "out.zarr"
    done = _interrupted(source, target, monkeypatch, *ALONE, *TILE)
    assert len(done) == 1
    first = zarr.open(str(target), mode="r")[:]
    plain, other = (*ALONE, *TILE), tmp_path / "b.zarr"
    refusals = [
        (("denoise", source, "--model", "unet", *plain), "the card unet-dct-practical, not unet"),
        (("zeroshot", source, "--preset", "fast"), "the card unet-dct-practical, not mdn zeroshot --method mpi"),
        (("denoise", other, *plain), f"the input {source}, not {other}"),
        (("denoise", source, *ALONE, "--tile", "128"), "--tile 64, not 128"),
        (("denoise", source, "--no-impulses", "--detail", *TILE), "--no-detail, not --detail"),
    ]
    for args, words in refusals:
        result = _invoke(*args[:2], "-o", target, *args[2:])
        said = " ".join(result.output.split())
        assert result.exit_code == 1 and "Traceback" not in said, said
        assert f"out.zarr: holds an unfinished run begun with {words}: run it with the same settings to go on, " in said
        assert "or --overwrite to start afresh" in said
    zarr.open(str(source), mode="r+")[1] = stack[0]  # the input changed in place since
    changed = _invoke("denoise", source, "-o", target, *ALONE, *TILE)
    assert changed.exit_code == 1 and "its pixels have changed since" in changed.output, changed.output
    zarr.open(str(source), mode="r+")[1] = stack[1]
    np.testing.assert_array_equal(zarr.open(str(target), mode="r")[:], first)  # the chunks done, left alone
    report = tmp_path / "report.json"
    same = _invoke("denoise", source, "-o", target, *ALONE, *TILE, "--max-memory", "1G", "--json", report)
    assert same.exit_code == 0, same.output
    assert json.loads(report.read_text())["files"][0]["info"]["resumed_from"] == 1
    assert not (target / volumes.PROGRESS).exists()


def test_an_output_begun_without_a_record_goes_on_with_a_warning_and_is_checked_from_then(
    tmp_path: Path, monkeypatch
) -> None:
    """An unfinished output an earlier mdn began (no record of its settings) is taken up, with a warning that what
    made its chunks could not be checked; the run recorded then is held to from there on."""
    from mdn import inference, registry

    zarr.create_array(str(tmp_path / "a.zarr"), data=_stack(2, 64, 48), chunks=(1, 32, 24))
    source, target = tmp_path / "a.zarr", tmp_path / "out.zarr"
    _interrupted(source, target, monkeypatch, *ALONE, *TILE)
    for record in (target / volumes.PROGRESS).glob(".*"):  # as an earlier mdn left it: chunk markers alone
        record.unlink()
    model = registry.load_model(None)
    options = inference.options(model.card, detail=False, impulses=False, tile=64)
    with monkeypatch.context() as patch:
        patch.setattr(volumes.chunks, "denoise_unit", lambda job, unit: (_ for _ in ()).throw(OSError("stop")))
        with pytest.raises(MdnError, match="chunks failed"):
            volumes.denoise(source, target, model, options)
    other = _invoke("denoise", source, "-o", target, "--model", "unet", *ALONE, *TILE)
    assert other.exit_code == 1 and "begun with the card unet-dct-practical, not unet" in other.output
    info = volumes.denoise(source, target, model, options)
    assert info["resumed_from"] == 1 and len(info["warnings"]) == 1
    assert "out.zarr was begun by an earlier mdn that kept no record of its input and settings" in info["warnings"][0]


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_an_ome_zarr_images_labels_and_other_members_are_copied_unchanged(tmp_path: Path, zarr_format: int) -> None:
    """An image's `labels` group (NGFF segmentation masks) and any other group or array beside its levels come
    into the output as they were, attributes and all; only the levels are denoised. They had been dropped."""
    stack = _stack(2, 64, 48)
    image = zarr.open_group(str(tmp_path / "image.ome.zarr"), mode="w", zarr_format=zarr_format)
    image.create_array("0", data=stack, chunks=(1, 32, 24))
    axes = [{"name": n, "type": "space"} for n in "zyx"]
    scales = [{"version": "0.4", "axes": axes, "datasets": [{"path": "0"}]}]
    image.attrs.update({"multiscales": scales} if zarr_format == 2 else {"ome": {"multiscales": scales}})
    labels = image.create_group("labels")
    labels.attrs["labels"] = ["cells"]
    cells = labels.create_group("cells")
    cells.attrs.update({"multiscales": scales, "image-label": {"colors": [{"label-value": 1, "rgba": [9, 0, 0, 9]}]}})
    masks = (stack > 1000).astype(np.uint32)
    cells.create_array("0", data=masks, chunks=(1, 16, 16)).attrs["note"] = "by hand"
    image.create_array("raw_counts", data=stack[:, :8, :8], chunks=(1, 8, 8))  # no level: kept as it came
    result = _invoke("denoise", tmp_path / "image.ome.zarr", "-o", tmp_path / "out.ome.zarr", *ALONE, *TILE)
    assert result.exit_code == 0, result.output
    out = zarr.open_group(str(tmp_path / "out.ome.zarr"), mode="r")
    assert sorted(out.group_keys()) == ["labels"] and sorted(out.array_keys()) == ["0", "raw_counts"]
    assert dict(out["labels"].attrs) == {"labels": ["cells"]}
    assert dict(out["labels/cells"].attrs) == dict(cells.attrs)
    mask = out["labels/cells/0"]
    assert mask.dtype == np.uint32 and mask.chunks == (1, 16, 16) and dict(mask.attrs) == {"note": "by hand"}
    np.testing.assert_array_equal(mask[:], masks)
    np.testing.assert_array_equal(out["raw_counts"][:], stack[:, :8, :8])
    assert np.abs(out["0"][:].astype(int) - stack).mean() > 50  # the image itself was denoised


def test_a_zero_shot_record_holds_the_settings_as_they_resolve(tmp_path: Path) -> None:
    """Options given that equal the preset's own (an --iters of its value, its fill card named) go on with an
    output begun without them; another value does not."""
    from mdn.volumes import record
    from mdn.zeroshot import PRESETS, fill_card
    from mdn.zeroshot.run import Settings

    def settings(**given: object) -> Settings:
        fields = dict(method="mpi", preset=None, model=None, iters=None, beta=None, mask_ratio=None, lr=None,
                      time_budget=None, share=None, self_check=None, tile=None, overlap=None, device="cpu",
                      precision="fp32", seed=0)  # fmt: skip
        return Settings(**(fields | given))

    plain = record.of_zeroshot(tmp_path, settings())
    preset = PRESETS[plain["preset"]]
    same = settings(iters=preset.iters, share=True, model=fill_card(plain["preset"], True))
    assert record.of_zeroshot(tmp_path, same) == plain
    assert record.of_zeroshot(tmp_path, settings(iters=preset.iters + 1)) != plain
