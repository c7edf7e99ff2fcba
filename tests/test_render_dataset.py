"""The procedural render training set (varied scenes from seeds, independent noise, resumable generation), the
render objective that learns from it, and the bench on its held-out scenes."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from mdn import bench, registry, training
from mdn.errors import MdnError
from mdn.nets.unet import UNET_SIZES, UNet
from mdn.renders import backend, dataset, procedural
from mdn.training import render

pytestmark = pytest.mark.skipif(not backend.available(), reason="mitsuba is not installed")

TINY = dataset.DatasetOptions(spps=(1, 4), reference_spp=64, scene=procedural.SceneOptions(size=16))


@pytest.fixture(scope="module")
def textures(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    import imageio.v3 as iio

    folder = tmp_path_factory.mktemp("textures")
    rng = np.random.default_rng(0)
    paths = [folder / f"t{i}.png" for i in range(2)]
    for path in paths:
        iio.imwrite(path, rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    return paths


def test_a_scene_is_its_number(textures: list[Path]) -> None:
    first, again, other = (procedural.scene(n, textures, TINY.scene) for n in (7, 7, 8))
    assert str(first) == str(again) and str(first) != str(other)
    kinds = {
        part.get("type") for n in range(40) for part in procedural.scene(n, textures).values() if isinstance(part, dict)
    }
    assert {"sphere", "cube", "cylinder", "rectangle", "envmap", "constant"} <= kinds
    room = procedural.scene(7, textures, procedural.SceneOptions(size=16, rooms=1.0))
    assert {"floor", "ceiling", "back", "front", "left", "right", "light0", "sensor"} <= set(room)
    assert "environment" not in room and str(room) != str(first)


def test_a_closed_room_renders_lit_from_inside(tmp_path: Path, textures: list[Path]) -> None:
    room = procedural.scene(3, textures, procedural.SceneOptions(size=16, rooms=1.0))
    buffers = backend.render(room, 16, seed=0, threads=1)
    assert np.isfinite(buffers.beauty).all() and buffers.beauty.mean() > 0.01 and (buffers.albedo > 0).mean() > 0.9


def test_a_cornell_like_box_is_open_towards_its_camera_and_lit(textures: list[Path]) -> None:
    options = procedural.SceneOptions(size=16, boxes=1.0)
    boxes = [procedural.scene(n, textures, options) for n in range(12)]
    for box in boxes:
        assert {"floor", "ceiling", "back", "left", "right", "light0", "sensor"} <= set(box)
        assert "front" not in box and "environment" not in box
        camera_z = np.asarray(box["sensor"]["to_world"].matrix)[2, 3]
        assert camera_z > -np.asarray(box["back"]["to_world"].matrix)[2, 3]  # outside, beyond the open front
    assert len({str(box["left"]["bsdf"]) for box in boxes}) == len(boxes)
    buffers = backend.render(boxes[0], 16, seed=0, threads=1)
    assert np.isfinite(buffers.beauty).all() and buffers.beauty.mean() > 0.01


def test_mirrors_put_large_polished_metal_in_boxes_and_leave_other_scenes_as_they_were(textures: list[Path]) -> None:
    # open scenes and rooms draw nothing for mirrors: the same scenes with or without it
    others = [procedural.SceneOptions(size=16, rooms=0.5, mirrors=m) for m in (0.0, 1.0)]
    assert [str(procedural.scene(n, textures, others[0])) for n in range(6)] == [
        str(procedural.scene(n, textures, others[1])) for n in range(6)
    ]
    mirrored = procedural.SceneOptions(size=16, boxes=1.0, mirrors=1.0)
    boxes = [procedural.scene(n, textures, mirrored) for n in range(8)]
    sizes = []  # each object's half-width over its box's half-width: 0.15 at least for a plain one, 0.24 for these
    for box in boxes:
        width = np.asarray(box["right"]["to_world"].matrix)[0, 3]
        for name, part in box.items():
            if name.startswith("object"):
                assert part["bsdf"]["type"] == "roughconductor" and part["bsdf"]["alpha"] <= 0.1
                side = (
                    part["radius"]
                    if part["type"] == "sphere"
                    else np.linalg.norm(np.asarray(part["to_world"].matrix)[:3, 0])
                )
                sizes.append(side / width)
    assert len(sizes) >= 8 and min(sizes) >= 0.15 * 1.6 - 1e-6
    buffers = backend.render(boxes[0], 16, seed=0, threads=1)
    assert np.isfinite(buffers.beauty).all() and buffers.beauty.mean() > 0.01


def test_generation_writes_every_buffer_and_resumes(tmp_path: Path, textures: list[Path]) -> None:
    made = dataset.generate(tmp_path, range(2), textures, TINY, threads=1)
    assert [p.name for p in made] == ["scene-000000", "scene-000001"]
    files = sorted(p.name for p in made[0].iterdir())
    assert files == ["reference.exr", "spp-0001.exr", "spp-0004.exr"]
    reference = dataset.read_buffers(made[0] / "reference.exr")
    noisy = dataset.read_buffers(made[0] / "spp-0001.exr")
    assert reference.beauty.shape == (16, 16, 3) and np.isfinite(reference.beauty).all()
    assert reference.albedo.min() >= 0 and reference.albedo.max() <= 1
    assert np.abs(reference.normal).max() <= 1.001
    error = {spp: np.mean((dataset.read_buffers(made[0] / dataset.noisy_name(spp)).beauty - reference.beauty) ** 2)
             for spp in (1, 4)}  # fmt: skip
    assert error[4] < error[1] and not np.array_equal(noisy.beauty, reference.beauty)
    stamp = (made[0] / "reference.exr").stat().st_mtime_ns
    again = dataset.generate(tmp_path, range(3), textures, TINY, threads=1)
    assert len(again) == 3 and (made[0] / "reference.exr").stat().st_mtime_ns == stamp
    assert json.loads((tmp_path / "dataset.json").read_text())["options"]["reference_spp"] == 64
    buffers = dataset.read_buffers(made[1] / "spp-0001.exr")
    buffers.beauty[0, 0] = np.nan  # a path tracer's failed sample
    dataset.write_buffers(made[1] / "spp-0001.exr", buffers)
    said: list[str] = []
    read = dataset.read_buffers(made[1] / "spp-0001.exr", said.append)
    assert np.isfinite(read.beauty).all() and (read.beauty[0, 0] == 0).all()
    assert said == [f"{made[1] / 'spp-0001.exr'}: 3 NaN/Inf values replaced"]
    data = (made[1] / "spp-0004.exr").read_bytes()  # a render cut short (a copy that stopped): one error
    (made[1] / "spp-0004.exr").write_bytes(data[: len(data) // 2])
    with pytest.raises(MdnError, match=r"spp-0004.exr: cannot read EXR \(corrupt or truncated\?\)"):
        dataset.read_buffers(made[1] / "spp-0004.exr")


def test_a_set_keeps_its_options(tmp_path: Path, textures: list[Path]) -> None:
    dataset.generate(tmp_path, range(1), textures, TINY, threads=1)
    with pytest.raises(MdnError, match="other options"):
        dataset.generate(tmp_path, range(1), textures, dataset.DatasetOptions(), threads=1)


def test_a_set_made_before_an_option_existed_grows_with_its_default(tmp_path: Path, textures: list[Path]) -> None:
    dataset.generate(tmp_path, range(1), textures, TINY, threads=1)
    manifest = tmp_path / "dataset.json"
    record = json.loads(manifest.read_text())
    del record["options"]["scene"]["rooms"]
    manifest.write_text(json.dumps(record))
    assert len(dataset.generate(tmp_path, range(2), textures, TINY, threads=1)) == 2
    with pytest.raises(MdnError, match="other options"):
        rooms = dataset.DatasetOptions(TINY.spps, TINY.reference_spp, procedural.SceneOptions(size=16, rooms=1.0))
        dataset.generate(tmp_path, range(3), textures, rooms, threads=1)


def test_a_passed_deadline_renders_nothing(tmp_path: Path, textures: list[Path]) -> None:
    assert dataset.generate(tmp_path, range(2), textures, TINY, deadline=0.0, threads=1) == []


@pytest.fixture(scope="module")
def render_set(tmp_path_factory: pytest.TempPathFactory, textures: list[Path]) -> Path:
    folder = tmp_path_factory.mktemp("renders")
    options = dataset.DatasetOptions(spps=(1, 4), reference_spp=64, scene=procedural.SceneOptions(size=32))
    dataset.generate(folder, range(2), textures, options, threads=1)
    return folder


def test_render_training_learns_its_scenes_and_records_them(render_set: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = UNET_SIZES["unet-tiny"]
    start = registry.ModelCard("start", "unet", config.to_dict(), "", "", description="random, for tests")
    start = registry.save(UNet(config), start, tmp_path / "start")
    options = training.TrainOptions.create(
        name="r", data=[str(render_set)], objective="render", init=str(start.path), validation=[str(render_set)],
        iters=150, batch=8, crop=16, lr=3e-3, warmup=0, ema=0.9, validate_every=150, threads=1,
    )  # fmt: skip
    sitting = training.Sitting(options, tmp_path / "run", tmp_path / "cards")
    for _ in sitting.run():
        pass
    card = sitting.write_card()
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["psnr"] > log[0]["psnr"] + 3 and log[-1]["psnr_4spp"] > log[-1]["noisy_psnr_4spp"] + 1
    assert card.training["render_scenes"] == 2 and "2 procedural Monte Carlo render scenes" in card.description
    assert card.training["initialised_from"]["card"] == "start"
    assert card.inference == {"passes": 4}  # the render averaged over 4 flips and turns (docs/renders.md)
    assert card.transform == {"headroom": 8.0}  # `mdn denoise` fits its EXRs with the tone map it learnt in
    assert card.training["recipe"]["headroom_percentile"] == 95.0


def test_a_render_set_of_beauty_passes_alone_trains_and_benches(render_set: Path, tmp_path: Path) -> None:
    """A render engineer's scenes hold the beauty pass alone (no albedo, no normal): a render card trains on them
    without --aux-share and the bench scores them; what needs the buffers says which render lacks them."""
    import shutil

    import OpenEXR

    beauty_only = tmp_path / "beauty"
    shutil.copytree(render_set, beauty_only)
    for path in beauty_only.glob("scene-*/*.exr"):
        channels = OpenEXR.File(str(path), separate_channels=True).channels()
        kept = {name: channels[name].pixels for name in ("R", "G", "B")}
        OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION}, kept).write(str(path))
    read = dataset.read_buffers(beauty_only / "scene-000000" / "spp-0001.exr")
    assert read.albedo is None and read.normal is None and read.beauty.shape == (32, 32, 3)
    options = dict(name="b", data=[str(beauty_only)], objective="render", init="unet", iters=2, batch=2, crop=16,
                   threads=1, validation=[str(beauty_only)], validate_every=2)  # fmt: skip
    sitting = training.Sitting(training.TrainOptions.create(**options), tmp_path / "run", tmp_path / "cards")
    assert [r.iteration for r in sitting.run()] == [1, 2]
    with pytest.raises(MdnError, match=r"scene-000000: its renders hold no albedo and normal layers"):
        training.Sitting(training.TrainOptions.create(**{**options, "name": "a", "aux_share": 0.5}), tmp_path / "a")
    scores = list(bench.render_scores(["noisy"], (1, 4), render_set=beauty_only))
    assert len(scores) == 4
    with pytest.raises(MdnError, match=r"spp-0001\.exr: has no albedo and normal layers, which models\+aux take"):
        list(bench.render_scores(["oidn+aux"], (1, 4), render_set=beauty_only))


def test_render_training_bounds_the_percentile_it_is_given(render_set: Path) -> None:
    """`--headroom-percentile` moves the training crops' bound: a percentile past the scene's lit share darkens
    them (the card itself keeps `mdn denoise`'s 95th); options refuse a percentile outside [50, 100]."""
    scene = dataset.scenes(render_set)[0]
    usual, bright = render.examples(scene, 0.5), render.examples(scene, 0.5, 100.0)
    assert [e.spp for e in usual] == [e.spp for e in bright]
    assert all(b.reference.mean() < u.reference.mean() for u, b in zip(usual, bright, strict=True))
    options = training.TrainOptions.create(name="r", data=["x"], objective="render", headroom_percentile=99.5)
    assert options.headroom_percentile == 99.5 and options.headroom == 8.0
    with pytest.raises(MdnError, match="--headroom-percentile must be in"):
        training.TrainOptions.create(name="r", data=["x"], objective="render", headroom_percentile=101)


def test_a_render_card_gains_an_encoder_for_its_buffers_by_config(render_set: Path, tmp_path: Path) -> None:
    def sitting(**given) -> training.Sitting:
        options = training.TrainOptions.create(
            name="r", data=[str(render_set)], objective="render", init="unet-render", iters=2, batch=2, crop=16,
            threads=1, **given,
        )  # fmt: skip
        return training.Sitting(options, tmp_path / "run", tmp_path / "cards", overwrite=True)

    run = sitting(config="unet-aux-encoder", aux_share=1.0)
    for _ in run.run():
        pass
    assert run.write_card().config["aux_encoder"] == 32
    with pytest.raises(MdnError, match="needs a U-Net config"):
        sitting(config="paper", aux_share=1.0)
    with pytest.raises(MdnError, match="with --aux-share"):
        sitting(config="unet-aux-encoder")


def test_the_shipped_buffers_card_uses_them_better_than_the_render_card(render_set: Path) -> None:
    from mdn import registry

    assert registry.default_card(hdr=True, aux=True).name == "unet-render-aux"
    names = ["unet-render+aux", "unet-render-aux+aux", "unet-render-aux"]
    scores = list(bench.render_scores(names, (1, 4), render_set=render_set))
    mean = {name: np.mean([s.psnr for s in scores if s.model == name]) for name in names}
    assert mean["unet-render-aux+aux"] > mean["unet-render+aux"] + 0.1  # +0.62 dB on these scenes
    assert mean["unet-render-aux+aux"] > mean["unet-render-aux"] + 0.5  # +1.38: the card leans on its buffers


def test_render_training_needs_scenes(tmp_path: Path) -> None:
    options = training.TrainOptions.create(name="r", data=[str(tmp_path)], objective="render", threads=1)
    with pytest.raises(MdnError, match="no render scenes"):
        training.Sitting(options, tmp_path / "run", tmp_path / "cards")


def test_the_bench_scores_a_render_set_per_scene_and_sample_count(render_set: Path) -> None:
    scores = list(bench.render_scores(["noisy"], (1, 4, 16), render_set=render_set))
    assert {(s.image, s.level) for s in scores} == {(f"scene-00000{i}", spp) for i in range(2) for spp in (1, 4)}
    by = {(s.image, s.level): s.psnr for s in scores}
    assert all(by[scene, 4] > by[scene, 1] for scene in ("scene-000000", "scene-000001"))
    with pytest.raises(MdnError, match="--spp"):
        bench.parse_spps("4,x")


def test_the_bench_gives_albedo_and_normal_to_names_that_ask(render_set: Path, tmp_path: Path) -> None:
    from dataclasses import replace

    from mdn import peers
    from mdn.io import buffers

    config = replace(UNET_SIZES["unet-tiny"], aux=buffers.CHANNELS)
    card = registry.ModelCard("r-aux", "unet", config.to_dict(), "", "", description="random, for tests")
    path = str(registry.save(UNet(config), card, tmp_path).path)
    names = [path, f"{path}+aux", *(["oidn", "oidn+aux"] if "oidn" in peers.available() else [])]
    scores = list(bench.render_scores(names, (4,), render_set=render_set))
    by = {(s.model, s.image): s.psnr for s in scores}
    assert len(by) == len(names) * 2 and by[path, "scene-000000"] != by[f"{path}+aux", "scene-000000"]
    with pytest.raises(MdnError, match="render-set"):
        list(bench.render_scores(["oidn+aux"], (4,)))


def _script(name: str) -> ModuleType:
    """A module of scripts/, loaded from its file."""

    path = Path(__file__).resolve().parent.parent / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_hand_built_set_is_seven_named_scenes_the_slices_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`scripts/handbuilt_renders.py` writes seven scene folders in the training set's format (noisy renders, a
    reference, each with its buffers) named in `scene.txt`, which `scripts/render_slices.py` takes as their kinds;
    a second run renders nothing again; the filter and size are the ones asked for."""
    hand = _script("handbuilt_renders")
    monkeypatch.setattr(hand, "SPPS", (1, 2))
    monkeypatch.setattr(hand, "REFERENCE_SPP", 4)
    films = [s["sensor"]["film"] for s in hand.scenes("gaussian", 16).values()]
    assert {(f["rfilter"]["type"], f["width"], f["height"]) for f in films} == {("gaussian", 16, 16)}
    monkeypatch.setattr("sys.argv", ["handbuilt_renders.py", str(tmp_path), "--size", "16", "--threads", "1"])
    hand.main()
    folders = dataset.scenes(tmp_path)
    assert len(folders) == 7
    noisy = dict(dataset.noisy_renders(folders[0]))
    assert sorted(noisy) == [1, 2] and noisy[1].beauty.shape == (16, 16, 3)
    assert dataset.reference(folders[0]).albedo.shape == (16, 16, 3)
    kinds = [_script("render_slices").scene_kinds(tmp_path)(folder) for folder in folders]
    assert kinds == ["cornell", "spheres", "dim-side", "small-light", "silver-box", "glossy", "up-view"]
    written = {folder: folder.stat().st_mtime_ns for folder in folders}
    hand.main()
    assert {folder: folder.stat().st_mtime_ns for folder in folders} == written


def test_render_data_numbers_scenes_from_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`scripts/render_data.py --first N` starts the set's scene numbers at N (after --held-out's base), so that
    a set at another size draws scenes no other set has; the size asked for is the renders' size."""
    argv = ["render_data.py", str(tmp_path), "--scenes", "1", "--first", "5", "--size", "16"]
    monkeypatch.setattr("sys.argv", [*argv, "--reference-spp", "2", "--threads", "1"])
    _script("render_data").main()
    (folder,) = dataset.scenes(tmp_path)
    assert folder.name == "scene-000005"
    assert dataset.reference(folder).beauty.shape == (16, 16, 3)
    monkeypatch.setattr("sys.argv", [*argv, "--held-out", "--reference-spp", "2", "--threads", "1"])
    _script("render_data").main()
    assert [f.name for f in dataset.scenes(tmp_path)] == ["scene-000005", "scene-1000005"]


def test_the_scale_probe_scores_a_card_and_oidn_per_size_and_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`scripts/render_scales.py` renders the scene's reference once per size into its cache, then scores each
    card and OIDN on fresh renders: one table row per size and sample count, the card's lead over OIDN with its
    spread over the seeds."""
    pytest.importorskip("pyoidn")
    scales = _script("render_scales")
    monkeypatch.setattr(scales, "REFERENCE_SPP", 8)
    argv = ["render_scales.py", "--sizes", "16,24", "--seeds", "2", "--cache", str(tmp_path), "--threads", "1"]
    monkeypatch.setattr("sys.argv", [*argv, "--model", "unet-render"])
    scales.main()
    rows = [
        line for line in capsys.readouterr().out.splitlines() if line.startswith("| 16 |") or line.startswith("| 24 |")
    ]
    assert [row.split("|")[1:3] for row in rows] == [
        [" 16 ", " 4 "],
        [" 16 ", " 16 "],
        [" 24 ", " 4 "],
        [" 24 ", " 16 "],
    ]
    for row in rows:
        card, oidn = row.split("|")[3], float(row.split("|")[4])
        psnr, lead = float(card.split()[0]), float(card.split("(")[1].split()[0])
        assert lead == pytest.approx(psnr - oidn, abs=0.011) and 10 < oidn < 60
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cornell-16", "cornell-24"]
    assert dataset.reference(tmp_path / "cornell-24").beauty.shape == (24, 24, 3)
    # the same renders (seeds) scored without the frame's outer 4 pixels: other figures, the header says so
    monkeypatch.setattr("sys.argv", [*argv[:2], "16", *argv[3:], "--model", "unet-render", "--border", "4"])
    scales.main()
    out = capsys.readouterr().out
    inner = [line for line in out.splitlines() if line.startswith("| 16 |")]
    assert "4 px at each edge left out" in out and len(inner) == 2
    assert [row.split("|")[4] for row in inner] != [row.split("|")[4] for row in rows[:2]]
