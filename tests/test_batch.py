"""Batches of files: reading and writing overlap the work step without changing a byte, an order or an error."""

from __future__ import annotations

import threading
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import tifffile

from mdn import noise
from mdn.errors import MdnError
from mdn.io import atomic, batch, images


def _inputs(folder: Path) -> list[Path]:
    """Six small images of three kinds, one of them unreadable."""
    folder.mkdir()
    rng = np.random.default_rng(3)
    paths = []
    for i in range(6):
        path = folder / f"{i}.{'tif' if i % 3 == 2 else 'png'}"
        if i == 3:
            path.write_bytes(b"\x89PNG\r\n\x1a\nbroken")
        elif path.suffix == ".tif":
            tifffile.imwrite(path, rng.integers(0, 65535, (2, 24, 20), dtype=np.uint16))
        else:
            path.write_bytes(imagecodecs.png_encode(rng.integers(0, 255, (24, 20, 3), dtype=np.uint8)))
        paths.append(path)
    return paths


def _noisy(pixels: np.ndarray, context: batch.FileContext) -> np.ndarray:
    """Seeded noise from the file's name; the fourth file (index 4) fails in the work step."""
    if context.image.path.stem == "4":
        raise MdnError("refused by the work step", context.image.path)
    context.info["seen"] = pixels.shape
    return noise.make_noise("gaussian", 25)(pixels, np.random.default_rng(int(context.image.path.stem)))


def _run(inputs: list[Path], output: Path, overlap: bool) -> tuple[list[batch.Result], list[str]]:
    started: list[str] = []
    jobs = batch.plan(inputs, output, "")
    results = batch.run(jobs, _noisy, overlap=overlap, on_file=lambda job: started.append(job.input.name))
    return results, started


def test_overlap_writes_the_same_bytes_results_and_order(tmp_path: Path) -> None:
    inputs = _inputs(tmp_path / "in")
    plain, plain_started = _run(inputs, tmp_path / "plain", overlap=False)
    overlapped, started = _run(inputs, tmp_path / "overlap", overlap=True)
    assert started == plain_started == ["0.png", "1.png", "2.tif", "3.png", "4.png", "5.tif"]
    assert [r.input.name for r in overlapped] == started
    assert [r.status for r in overlapped] == [r.status for r in plain] == ["done"] * 3 + ["failed"] * 2 + ["done"]
    assert [(r.error, r.warnings, r.info) for r in overlapped] == [(r.error, r.warnings, r.info) for r in plain]
    written = sorted(p.name for p in (tmp_path / "overlap").iterdir())
    assert written == sorted(p.name for p in (tmp_path / "plain").iterdir()) == ["0.png", "1.png", "2.tif", "5.tif"]
    for name in written:
        assert (tmp_path / "overlap" / name).read_bytes() == (tmp_path / "plain" / name).read_bytes()


def test_failing_files_in_the_middle_are_reported_and_the_others_finish(tmp_path: Path) -> None:
    results, _ = _run(_inputs(tmp_path / "in"), tmp_path / "out", overlap=True)
    assert "cannot read PNG" in results[3].error and "3.png" in results[3].error
    assert "refused by the work step" in results[4].error
    assert results[5].status == "done" and images.read(results[5].output).pixels.shape == (2, 24, 20, 1)


def test_the_next_file_is_read_and_the_last_written_while_one_works(tmp_path: Path, monkeypatch) -> None:
    jobs = batch.plan(_inputs(tmp_path / "in"), tmp_path / "out", "")
    read, write = images.read, images.write
    events: list[tuple[str, str, bool]] = []
    lock, next_read = threading.Lock(), threading.Event()

    def record(kind: str, path: Path) -> None:
        with lock:
            events.append((kind, Path(path).name, threading.current_thread() is threading.main_thread()))
        if kind == "read" and Path(path).name == "2.tif":
            next_read.set()

    monkeypatch.setattr(images, "read", lambda path, **kw: record("read", path) or read(path, **kw))
    monkeypatch.setattr(images, "write", lambda image, path, **kw: record("write", path) or write(image, path, **kw))

    def work(pixels: np.ndarray, context: batch.FileContext) -> np.ndarray:
        if context.image.path.name == "1.png":
            assert next_read.wait(10), "2.tif was not read while 1.png worked"
        return pixels

    results = batch.run(jobs, work)
    assert [r.status for r in results] == ["done"] * 3 + ["failed"] + ["done"] * 2
    assert not any(main for _, _, main in events)
    assert events.index(("read", "2.tif", False)) < events.index(("write", "1.png", False))


def test_a_file_made_earlier_in_the_batch_is_read_after_it_is_written(tmp_path: Path) -> None:
    source = tmp_path / "a.png"
    source.write_bytes(imagecodecs.png_encode(np.full((16, 16, 3), 100, np.uint8)))
    jobs = batch.plan(batch.expand_inputs([source, tmp_path / "a_x.png"]), None, "_x")
    assert jobs[1].input == jobs[0].output
    results = batch.run(jobs, lambda pixels, _: pixels / 2)
    assert [r.status for r in results] == ["done", "done"]
    assert imagecodecs.png_decode((tmp_path / "a_x_x.png").read_bytes()).max() == 25


@pytest.mark.parametrize("overlap", [True, False])
def test_skipped_and_refused_outputs(tmp_path: Path, overlap: bool) -> None:
    jobs = batch.plan(_inputs(tmp_path / "in")[:2], tmp_path / "out", "")
    jobs[0].output.parent.mkdir()
    jobs[0].output.write_bytes(b"old")
    refused = batch.run(jobs, lambda pixels, _: pixels, overlap=overlap)
    assert [r.status for r in refused] == ["failed", "done"] and "refusing to overwrite" in refused[0].error
    skipped = batch.run(jobs, lambda pixels, _: pixels, skip_existing=True, overlap=overlap)
    assert [r.status for r in skipped] == ["skipped", "skipped"]
    assert jobs[0].output.read_bytes() == b"old"


@pytest.mark.parametrize("how", ["raised", "flagged"])
@pytest.mark.parametrize("overlap", [True, False])
def test_an_interrupted_batch_keeps_the_files_before_it(tmp_path: Path, how: str, overlap: bool) -> None:
    """Ctrl-C in the work step abandons that file; a stop flag found set (its exception swallowed somewhere)
    ends the batch after the file in hand."""
    jobs = batch.plan(_inputs(tmp_path / "in"), tmp_path / "out", "")
    stop = threading.Event()

    def work(pixels: np.ndarray, context: batch.FileContext) -> np.ndarray:
        if context.image.path.name == "1.png":
            stop.set()
            if how == "raised":
                raise KeyboardInterrupt
        return pixels

    with pytest.raises(batch.Interrupted, match="interrupted after") as info:
        batch.run(jobs, work, overlap=overlap, stop=stop)
    handled = ["0.png"] if how == "raised" else ["0.png", "1.png"]
    assert [r.input.name for r in info.value.results] == handled and info.value.planned == 6
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == handled


def test_a_work_step_error_naming_no_file_names_the_input(tmp_path: Path) -> None:
    def refuse(pixels: np.ndarray, context: batch.FileContext) -> np.ndarray:
        raise MdnError("too small for this step")

    inputs = _inputs(tmp_path / "in")
    results = batch.run(batch.plan(inputs[:1], tmp_path / "out", ""), refuse)
    assert results[0].status == "failed" and results[0].error == f"{inputs[0]}: too small for this step"


@pytest.mark.parametrize("overlap", [True, False])
def test_an_output_its_format_cannot_hold_fails_before_the_work(tmp_path: Path, overlap: bool) -> None:
    """An alpha channel into JPEG or BMP (Pillow's own words after the work, or a BMP read back opaque), a stack
    into PNG: refused before the file's work runs, the other files done."""
    rgba = np.random.default_rng(0).integers(0, 256, (8, 9, 4), dtype=np.uint8)
    (tmp_path / "rgba.png").write_bytes(imagecodecs.png_encode(rgba))
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((3, 8, 9), np.uint8), imagej=True)
    (tmp_path / "rgb.png").write_bytes(imagecodecs.png_encode(np.ascontiguousarray(rgba[..., :3])))
    inputs = [tmp_path / name for name in ("rgba.png", "rgba.png", "stack.tif", "rgb.png")]
    outputs = ["a.jpg", "a.bmp", "s.png", "c.jpg"]
    jobs = [batch.Job(source, tmp_path / "out" / name) for source, name in zip(inputs, outputs, strict=True)]
    worked: list[str] = []

    def work(pixels: np.ndarray, context: batch.FileContext) -> np.ndarray:
        worked.append(context.image.path.name)
        return pixels

    results = batch.run(jobs, work, overlap=overlap)
    assert [r.status for r in results] == ["failed", "failed", "failed", "done"] and worked == ["rgb.png"]
    assert results[0].error == f"{inputs[0]}: JPEG cannot hold its alpha channel: write PNG, WebP or TIFF"
    assert results[1].error.endswith("BMP cannot hold its alpha channel: write PNG, WebP or TIFF")
    assert results[2].error.endswith("a stack of 3 images can only be written as TIFF")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["c.jpg"]


def _box_blur(pixels: np.ndarray, _context: object) -> np.ndarray:
    """A work that mixes every pixel with its neighbours, as a denoiser does."""
    padded = np.pad(pixels, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="edge")
    h, w = pixels.shape[1:3]
    return sum(padded[:, y : y + h, x : x + w] for y in range(5) for x in range(5)) / 25


def test_colour_under_full_transparency_reaches_no_visible_pixel_and_comes_back_as_stored(tmp_path: Path) -> None:
    """A cut-out whose background stores black, or white: the visible pixels come out the same either way (no
    halo from what the background hides), and the hidden colour is written back as it was."""
    y, x = np.mgrid[0:32, 0:32]
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = 120 + 3 * x, 90 + 2 * y, 60
    visible = (y - 16) ** 2 + (x - 16) ** 2 < 100
    rgba[..., 3] = np.where(visible, 255, 0)
    written = {}
    for name, hidden in (("black", 0), ("white", 255)):
        picture = rgba.copy()
        picture[~visible, :3] = hidden
        imagecodecs_png = imagecodecs.png_encode(picture)
        (tmp_path / f"{name}.png").write_bytes(imagecodecs_png)
        jobs = batch.plan([tmp_path / f"{name}.png"], tmp_path / "out", "")
        (result,) = batch.run(jobs, _box_blur, fill_hidden=True)
        assert result.status == "done", result.error
        written[name] = imagecodecs.png_decode((tmp_path / "out" / f"{name}.png").read_bytes())
        np.testing.assert_array_equal(written[name][~visible], picture[~visible])
    np.testing.assert_array_equal(written["black"][visible], written["white"][visible])
    (tmp_path / "out" / "black.png").unlink()
    jobs = batch.plan([tmp_path / "black.png"], tmp_path / "out", "")
    batch.run(jobs, _box_blur)  # without: the hidden black darkens the visible edge (`mdn noise` keeps it so)
    darkened = imagecodecs.png_decode((tmp_path / "out" / "black.png").read_bytes())
    assert darkened[visible].astype(int).sum() < written["black"][visible].astype(int).sum() - 1000


def test_a_renders_transform_is_fitted_on_what_it_shows(tmp_path: Path) -> None:
    """An EXR cut-out (A = 0 around a square, black there as premultiplied renders keep it): the render tone map
    is fitted on the filled picture, so the visible edge keeps the interior's brightness (fitted on the black, it
    came out at 0.62 of it), and the black comes back as stored; colour under A = 0 that is not black is light a
    render emits there (a glow), worked on as the rest."""
    import OpenEXR

    from mdn.io import tonemap

    beauty = np.random.default_rng(0).gamma(2.0, 0.3, (64, 64, 3)).astype(np.float32)
    opaque = np.zeros((64, 64), np.float32)
    opaque[16:48, 16:48] = 1
    written = {}
    for name, hidden in (("black", 0.0), ("glow", 5.0)):
        pixels = beauty.copy()
        pixels[opaque == 0] = hidden
        channels = {"RGB": pixels, "A": opaque}
        with OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION}, channels) as exr:
            exr.write(str(tmp_path / f"{name}.exr"))
        (result,) = batch.run(batch.plan([tmp_path / f"{name}.exr"], tmp_path / "out", ""), _box_blur,
                              fit=tonemap.fit, fill_hidden=True)  # fmt: skip
        assert result.status == "done", result.error
        written[name] = images.read(tmp_path / "out" / f"{name}.exr").pixels[0]
    assert (written["black"][opaque == 0] == 0).all()
    edge, inside = written["black"][16:48, 16].mean(), written["black"][20:44, 20:44].mean()
    assert 0.9 < edge / inside < 1.1, (edge, inside)
    assert np.abs(written["glow"][20:44, 15] - 5.0).mean() > 0.5  # blurred with the square beside it, not restored


def test_what_an_output_format_cannot_hold_is_said(tmp_path: Path) -> None:
    """A portrait phone JPEG (EXIF orientation 6, a colour profile) written as BMP: said, not silently lost."""
    import PIL.Image

    exif = PIL.Image.Exif()
    exif[274] = 6
    PIL.Image.fromarray(np.full((16, 24, 3), 128, np.uint8)).save(tmp_path / "portrait.jpg", exif=exif.tobytes())
    (result,) = batch.run(batch.plan([tmp_path / "portrait.jpg"], tmp_path / "portrait.bmp", ""), _box_blur)
    assert result.status == "done" and result.warnings == [
        "left out of the BMP: its EXIF, its orientation (EXIF 6: shown turned)"
    ], result.warnings


def test_a_linked_folder_is_searched_and_a_link_back_up_ends_the_search(tmp_path: Path) -> None:
    """A shoot linked into a training set (`data/shoot1 -> ../shoot1`) is part of it; a link to a folder above
    is searched once, not forever."""
    picture = np.zeros((8, 8, 3), np.uint8)
    for folder in ("shoot1", "data/own"):
        (tmp_path / folder).mkdir(parents=True)
    for name in ("shoot1/a.tif", "data/own/b.tif"):
        tifffile.imwrite(tmp_path / name, picture)
    (tmp_path / "data" / "shoot1").symlink_to(tmp_path / "shoot1", target_is_directory=True)
    (tmp_path / "data" / "own" / "up").symlink_to(tmp_path / "data", target_is_directory=True)
    found = batch.expand_inputs([tmp_path / "data"], recursive=True)
    assert [p.relative_to(tmp_path / "data").as_posix() for p in found] == ["own/b.tif", "shoot1/a.tif"]
    assert [p.name for p in batch.expand_inputs([tmp_path / "data" / "shoot1"])] == ["a.tif"]


def test_a_recursive_search_leaves_hidden_folders_and_links_above_the_folder_named(tmp_path: Path) -> None:
    """`-r` left `.hidden.png` out but denoised `.thumbnails/` and `.cache/` into the output; a link to a folder
    above the one named (`up -> ../..`) took the search out of it, to its neighbours' pictures."""
    picture = np.zeros((8, 8, 3), np.uint8)
    for name in ("shoot/a.tif", "shoot/.thumbnails/a.tif", "shoot/day/.cache/b.tif", "shoot/day/c.tif", "other/d.tif"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(tmp_path / name, picture)
    (tmp_path / "shoot" / "day" / "root").symlink_to(tmp_path, target_is_directory=True)
    found = batch.expand_inputs([tmp_path / "shoot"], recursive=True)
    assert [p.relative_to(tmp_path / "shoot").as_posix() for p in found] == ["a.tif", "day/c.tif"]


def test_a_folder_of_camera_raw_files_says_to_develop_them_and_a_named_one_too(tmp_path: Path) -> None:
    (tmp_path / "shoot").mkdir()
    for name in ("IMG_0001.CR2", "IMG_0002.NEF", "IMG_0001.xmp", "IMG_0003.HEIC"):
        (tmp_path / "shoot" / name).write_bytes(b"raw")
    words = r"no image files found in .*shoot: left out 3 pictures of a type mdn does not read [(].*IMG_0003\.HEIC; "
    with pytest.raises(MdnError, match=words + "camera raw: develop into 16-bit TIFF or PNG first"):
        batch.expand_inputs([tmp_path / "shoot"])
    with pytest.raises(MdnError, match=r"IMG_0001\.CR2: camera raw files are not read: develop it into a 16-bit TIFF"):
        images.read(tmp_path / "shoot" / "IMG_0001.CR2")


def test_an_output_another_process_writes_meanwhile_is_never_replaced(tmp_path: Path) -> None:
    """Two workers on one folder: the output appears while this one works. Without --overwrite it is kept (the
    check before the work is not enough: a rename replaces), with --skip-existing the file counts as skipped."""
    inputs = _inputs(tmp_path / "in")[:2]
    theirs = {}

    def other_worker_first(pixels: np.ndarray, context: batch.FileContext) -> np.ndarray:
        output = tmp_path / "out" / context.image.path.name
        output.parent.mkdir(exist_ok=True)
        theirs[output.name] = b"written by the other worker"
        output.write_bytes(theirs[output.name])
        return pixels

    for skip, status in ((False, "failed"), (True, "skipped")):
        for leftover in (tmp_path / "out").glob("*"):
            leftover.unlink()
        results = batch.run(batch.plan(inputs, tmp_path / "out", ""), other_worker_first, skip_existing=skip)
        assert [r.status for r in results] == [status] * 2
        assert (
            [r.error for r in results]
            == [
                f"{tmp_path / 'out' / n}: exists; refusing to overwrite it (use --overwrite or --skip-existing)"
                for n in ("0.png", "1.png")
            ]
            if not skip
            else [None] * 2
        )
        assert all(p.read_bytes() == theirs[p.name] for p in (tmp_path / "out").iterdir())
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0.png", "1.png"]  # no temporary left


def test_a_write_without_replace_keeps_a_file_that_appears_before_its_rename(tmp_path: Path) -> None:
    target = tmp_path / "result.txt"

    def racing(tmp: Path) -> None:
        target.write_text("theirs")
        tmp.write_text("mine")

    with pytest.raises(atomic.OutputExists, match=r"result\.txt: exists; refusing to overwrite it"):
        atomic.write_atomic(target, racing, replace=False)
    assert target.read_text() == "theirs" and [p.name for p in tmp_path.iterdir()] == ["result.txt"]
    atomic.write_atomic(target, racing, replace=True)
    assert target.read_text() == "mine"


def test_a_dangling_link_where_the_output_goes_takes_the_result_as_a_rename_gives_it(tmp_path: Path) -> None:
    link = tmp_path / "out.txt"
    link.symlink_to(tmp_path / "gone.txt")
    atomic.write_atomic(link, lambda tmp: tmp.write_text("mine"), replace=False)
    assert link.read_text() == "mine" and not link.is_symlink() and not (tmp_path / "gone.txt").exists()


def test_an_output_folder_mirrors_the_tree_below_the_folder_named(tmp_path: Path) -> None:
    """A file a recursive search finds in a subfolder keeps that subfolder, alone or beside others (DIR/SUB/NAME);
    files named or matched keep the tree below their common folder."""
    for name in ("in/sub/a.tif", "in/sub/deeper/b.tif", "in/c.tif"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(tmp_path / name, np.zeros((8, 8), np.uint8))
    folder, out = tmp_path / "in", tmp_path / "out"

    def outputs(found: list[Path], folders: list[Path]) -> list[str]:
        jobs = batch.plan(found, out, "", batch.tree_root(found, folders))
        return [job.output.relative_to(out).as_posix() for job in jobs]

    assert outputs([folder / "sub" / "a.tif"], [folder]) == ["sub/a.tif"]
    found = batch.expand_inputs([folder], recursive=True)
    assert outputs(found, [folder]) == ["c.tif", "sub/a.tif", "sub/deeper/b.tif"]
    named = [folder / "sub" / "a.tif", folder / "sub" / "deeper" / "b.tif"]
    assert outputs(named, []) == ["a.tif", "deeper/b.tif"]
    assert [job.output for job in batch.plan(named, out, "")] == [out / "a.tif", out / "deeper" / "b.tif"]


def test_names_near_the_file_systems_limit_are_written_and_one_past_it_fails_alone(tmp_path: Path) -> None:
    """An output name past 255 bytes (its input's 251 and a suffix) was a traceback that ended the batch; names of
    242 to 255 bytes failed to write, as their temporary file's name grew 14 bytes longer."""
    folder = tmp_path / "in"
    folder.mkdir()
    pixels = imagecodecs.png_encode(np.full((16, 16, 3), 128, np.uint8))
    names = ["a.png", "x" * 251 + ".png", "y" * 251 + ".png"]
    for name in names:
        (folder / name).write_bytes(pixels)
    jobs = batch.plan([folder / n for n in names], None, "_denoised")
    results = batch.run(jobs, lambda planes, context: planes)
    assert [r.status for r in results] == ["done", "failed", "failed"]
    assert results[1].error.endswith("_denoised.png: cannot write: file name too long")
    near = batch.plan([folder / n for n in names[1:]], tmp_path / "out", "")  # 255 bytes in a folder: written
    assert [r.status for r in batch.run(near, lambda planes, context: planes)] == ["done", "done"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(names[1:])
