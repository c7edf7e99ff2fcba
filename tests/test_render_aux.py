"""A render card's albedo and normal inputs: the network, the engine, the start from a card without them, and
`mdn denoise` reading them from an EXR's layers or from files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import OpenEXR
import pytest
import torch
from typer.testing import CliRunner

from mdn import registry
from mdn.cli import app
from mdn.errors import MdnError
from mdn.inference.engine import Engine, EngineOptions
from mdn.io import buffers, images
from mdn.nets.unet import UNET_SIZES, UNet
from mdn.training.checkpoint import start_weights

runner = CliRunner()
TINY = replace(UNET_SIZES["unet-tiny"], aux=buffers.CHANNELS)


def _card(folder: Path, config=TINY, name: str = "render-aux") -> registry.ModelCard:
    torch.manual_seed(0)
    card = registry.ModelCard(name, "unet", config.to_dict(), "", "", description="random, for tests")
    return registry.save(UNet(config), card, folder)


def test_the_engine_feeds_auxiliary_channels_and_returns_the_image_alone() -> None:
    torch.manual_seed(0)
    net = UNet(TINY)
    rng = np.random.default_rng(0)
    planes = rng.random((1, 100, 150, 3 + buffers.CHANNELS), dtype=np.float32)
    whole = Engine(net, EngineOptions(device="cpu", tile=256))(planes)
    tiled = Engine(net, EngineOptions(device="cpu", tile=64, overlap=16))(planes)
    assert whole.shape == (1, 100, 150, 3)
    assert np.abs(tiled - whole).max() <= 3e-3  # as for any U-Net: seams within the blend
    bare = Engine(net, EngineOptions(device="cpu", tile=256))(planes[..., :3])
    zeros = np.concatenate([planes[..., :3], np.zeros_like(planes[..., 3:])], axis=-1)
    np.testing.assert_allclose(bare, Engine(net, EngineOptions(device="cpu", tile=256))(zeros), atol=1e-6)
    assert not np.allclose(bare, whole, atol=1e-4)


def test_a_card_without_them_starts_a_network_with_them_as_it_was(tmp_path: Path) -> None:
    plain = _card(tmp_path, UNET_SIZES["unet-tiny"], "plain")

    class Objective:
        task, architecture = "denoise", "unet"

    wider = UNet(TINY)
    start_weights(wider, str(plain.path), Objective(), "unet-tiny")
    x = torch.rand(1, 3, 32, 32)
    given = torch.cat([x, torch.rand(1, buffers.CHANNELS, 32, 32)], dim=1)
    torch.testing.assert_close(wider.eval()(given), registry.load(plain)(x))


def test_the_buffers_own_encoder_starts_as_the_card_and_then_guides_both_levels(tmp_path: Path) -> None:
    card = _card(tmp_path)

    class Objective:
        task, architecture = "denoise", "unet"

    encoded = UNet(replace(TINY, aux_encoder=8))
    start_weights(encoded, str(card.path), Objective(), "unet-aux-encoder")
    x = torch.rand(1, 3 + buffers.CHANNELS, 32, 32)
    torch.testing.assert_close(encoded.eval()(x), registry.load(card)(x))
    for level, projection in enumerate(encoded.aux_encoder.into):
        torch.nn.init.normal_(projection.weight)
        other = x.clone()
        other[:, 3:] = torch.rand(1, buffers.CHANNELS, 32, 32)
        assert not torch.allclose(encoded(other), encoded(x)), level
        torch.nn.init.zeros_(projection.weight)


def _render(path: Path, layers: dict[str, str]) -> None:
    rng = np.random.default_rng(3)
    channels = {c: (rng.random((32, 32)) * 3).astype(np.float32) for c in "RGB"}
    for name, kind in layers.items():
        for c in "RGB" if kind == "rgb" else "XYZ":
            channels[f"{name}.{c}"] = (rng.random((32, 32)) * (1 if kind == "rgb" else 2) - (kind != "rgb")).astype(
                np.float32
            )
    OpenEXR.File({}, channels).write(str(path))


def test_denoise_reads_albedo_and_normal_from_the_exr_or_from_files(tmp_path: Path) -> None:
    card = _card(tmp_path / "cards")
    _render(tmp_path / "cycles.exr", {"ViewLayer.Denoising Albedo": "rgb", "ViewLayer.Denoising Normal": "xyz"})
    _render(tmp_path / "bare.exr", {})
    _render(tmp_path / "buffers.exr", {"albedo": "rgb", "normal": "xyz"})

    def used(*args: str) -> bool:
        report = tmp_path / "r.json"
        result = runner.invoke(app, ["denoise", *args, "--model", str(card.path), "-o", str(tmp_path / "out.exr"),
                                     "--overwrite", "--quiet", "--json", str(report)])  # fmt: skip
        assert result.exit_code == 0, result.output
        return json.loads(report.read_text())["files"][0]["info"]["auxiliary"]

    assert used(str(tmp_path / "cycles.exr")) and not used(str(tmp_path / "bare.exr"))
    assert used(str(tmp_path / "bare.exr"), "--albedo", str(tmp_path / "buffers.exr"), "--normal",
                str(tmp_path / "buffers.exr"))  # fmt: skip
    result = runner.invoke(app, ["denoise", str(tmp_path / "bare.exr"), "--model", str(card.path), "--albedo",
                                 str(tmp_path / "buffers.exr"), "-o", str(tmp_path / "x.exr")])  # fmt: skip
    assert result.exit_code != 0 and "only the albedo" in result.output


def test_a_card_without_auxiliary_inputs_refuses_them(tmp_path: Path, tiny_card) -> None:
    _render(tmp_path / "bare.exr", {"albedo": "rgb", "normal": "xyz"})
    result = runner.invoke(app, ["denoise", str(tmp_path / "bare.exr"), "--model", str(tiny_card.path), "--albedo",
                                 str(tmp_path / "bare.exr"), "-o", str(tmp_path / "x.exr")])  # fmt: skip
    assert result.exit_code == 2 and "takes no albedo" in result.output  # a usage error before any file


def test_a_render_with_one_buffer_runs_on_its_beauty_and_says_so(tmp_path: Path) -> None:
    card = _card(tmp_path / "cards")
    _render(tmp_path / "half.exr", {"albedo": "rgb"})
    said: list[str] = []
    assert buffers.read(tmp_path / "half.exr", warn=said.append) is None
    assert said == ["it has an albedo layer but no normal: denoised from its beauty alone"]
    result = runner.invoke(app, ["denoise", str(tmp_path / "half.exr"), "--model", str(card.path), "-o",
                                 str(tmp_path / "x.exr")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "half.exr: it has an albedo layer but no normal: denoised from its beauty alone" in result.output
    with pytest.raises(MdnError, match="together"):  # a file given alone is a mistake, not a render's choice
        buffers.read(tmp_path / "half.exr", albedo=tmp_path / "half.exr")


def test_buffer_files_are_checked_one_by_one_and_png_normals_decoded(tmp_path: Path) -> None:
    from PIL import Image

    _render(tmp_path / "bare.exr", {})
    rng = np.random.default_rng(1)
    normal = rng.random((32, 32, 3)) * 2 - 1
    stored = np.round((normal + 1) / 2 * 255).astype(np.uint8)
    Image.fromarray(stored).save(tmp_path / "normal.png")
    Image.fromarray(stored).save(tmp_path / "albedo.png")
    Image.fromarray(stored[..., 0]).save(tmp_path / "grey.png")
    Image.fromarray(stored[:16]).save(tmp_path / "short.png")
    planes = buffers.read(tmp_path / "bare.exr", tmp_path / "albedo.png", tmp_path / "normal.png")
    np.testing.assert_allclose(planes[0, ..., 3:], stored / 255, atol=1e-6)  # the network's own [0, 1] encoding
    with pytest.raises(MdnError, match=r"grey\.png: the albedo buffer has 1 channel, not 3"):
        buffers.read(tmp_path / "bare.exr", tmp_path / "grey.png", tmp_path / "normal.png")
    with pytest.raises(MdnError, match=r"short\.png: the albedo is 32x32, the normal 32x16"):
        buffers.read(tmp_path / "bare.exr", tmp_path / "albedo.png", tmp_path / "short.png")


def test_buffer_files_are_one_renders_so_a_batch_is_refused(tmp_path: Path) -> None:
    card = _card(tmp_path / "cards")
    (tmp_path / "shots").mkdir()
    for name in ("a.exr", "b.exr"):
        _render(tmp_path / "shots" / name, {})
    _render(tmp_path / "buffers.exr", {"albedo": "rgb", "normal": "xyz"})
    result = runner.invoke(app, ["denoise", str(tmp_path / "shots"), "--model", str(card.path), "--albedo",
                                 str(tmp_path / "buffers.exr"), "--normal", str(tmp_path / "buffers.exr"), "-o",
                                 str(tmp_path / "out")])  # fmt: skip
    assert result.exit_code == 2 and "are one render's buffers: give one input, not 2" in result.output
    assert not (tmp_path / "out").exists()


def test_the_api_takes_the_render_default_and_its_buffers_as_the_cli_does(tmp_path: Path) -> None:
    import mdn

    card = registry.ModelCard.from_file(_card(tmp_path / "cards").path)
    card.name, card.default_hdr = "render-default", True
    registry.save(registry.load(card), card, registry.user_dir())
    _render(tmp_path / "buffers.exr", {"albedo": "rgb", "normal": "xyz"})
    _render(tmp_path / "bare.exr", {})
    info: dict = {}
    out = mdn.denoise(tmp_path / "buffers.exr", info=info)
    assert info["model"] == "render-default"
    result = runner.invoke(app, ["denoise", str(tmp_path / "buffers.exr"), "-o", str(tmp_path / "cli.exr"), "--quiet"])
    assert result.exit_code == 0, result.output
    cli = OpenEXR.File(str(tmp_path / "cli.exr"), separate_channels=True).channels()
    np.testing.assert_array_equal(out[..., 0], cli["R"].pixels)
    given = mdn.denoise(tmp_path / "bare.exr", albedo=tmp_path / "buffers.exr", normal=tmp_path / "buffers.exr")
    assert not np.array_equal(given, mdn.denoise(tmp_path / "bare.exr"))
    beauty = OpenEXR.File(str(tmp_path / "bare.exr"), separate_channels=True).channels()
    pixels = np.stack([beauty[c].pixels for c in "RGB"], axis=-1)
    in_memory: dict = {}
    np.testing.assert_array_equal(mdn.denoise(pixels, hdr=True, info=in_memory), mdn.denoise(tmp_path / "bare.exr"))
    assert in_memory["model"] == "render-default"


def test_renders_with_buffers_take_the_card_made_for_them(tmp_path: Path) -> None:
    import mdn

    for name, flag in (("render-default", "default_hdr"), ("render-buffers", "default_hdr_aux")):
        card = registry.ModelCard.from_file(_card(tmp_path / "cards", name=name).path)
        setattr(card, flag, True)
        card.training["recipe"] = {"aux_share": 1.0 if flag == "default_hdr_aux" else 0.5}
        registry.save(registry.load(card), card, registry.user_dir())
    _render(tmp_path / "buffers.exr", {"albedo": "rgb", "normal": "xyz"})
    _render(tmp_path / "bare.exr", {})

    def model(path: Path, **given: Path) -> str:
        info: dict = {}
        mdn.denoise(path, info=info, **given)
        return info["model"]

    assert model(tmp_path / "buffers.exr") == "render-buffers" and model(tmp_path / "bare.exr") == "render-default"
    files = {"albedo": tmp_path / "buffers.exr", "normal": tmp_path / "buffers.exr"}
    assert model(tmp_path / "bare.exr", **files) == "render-buffers"
    report = tmp_path / "r.json"
    result = runner.invoke(app, ["denoise", str(tmp_path / "buffers.exr"), str(tmp_path / "bare.exr"), "-o",
                                 str(tmp_path / "out"), "--quiet", "--json", str(report)])  # fmt: skip
    assert result.exit_code == 0, result.output
    chosen = {Path(f["input"]).name: f["info"]["model"] for f in json.loads(report.read_text())["files"]}
    assert chosen == {"buffers.exr": "render-buffers", "bare.exr": "render-default"}
    result = runner.invoke(app, ["denoise", str(tmp_path / "bare.exr"), "--model", "render-buffers", "-o",
                                 str(tmp_path / "x.exr")])  # fmt: skip
    assert result.exit_code != 0 and "always given" in result.output and "bare.exr" in result.output
    assert registry.default_card(hdr=True, aux=True).name == "render-buffers"
    assert registry.default_card(aux=True).name == registry.default_card().name  # photos never take it
    buffers = registry.find("render-buffers")
    buffers.transform = {"kind": "other"}
    registry.save(registry.load(buffers), buffers, registry.user_dir())
    assert registry.default_card(hdr=True, aux=True).name == "render-default"  # another pixel transform: not taken


def _passes(view_layer: str, seed: int, buffers: bool = True) -> dict[str, np.ndarray]:
    """One Blender view layer's channels: its Combined, and its Denoising Albedo and Normal with `buffers`."""
    rng = np.random.default_rng(seed)
    names = ["Combined.R", "Combined.G", "Combined.B"]
    if buffers:
        names += [f"Denoising Albedo.{c}" for c in "RGB"] + [f"Denoising Normal.{c}" for c in "XYZ"]
    return {f"{view_layer}.{name}": rng.random((32, 32), dtype=np.float32) for name in names}


def _planes(channels: dict[str, np.ndarray], view_layer: str) -> np.ndarray:
    """The network's six buffer planes of a view layer's channels, as `buffers.read` should give them."""
    albedo = np.stack([channels[f"{view_layer}.Denoising Albedo.{c}"] for c in "RGB"], axis=-1)
    normal = np.stack([channels[f"{view_layer}.Denoising Normal.{c}"] for c in "XYZ"], axis=-1)
    return buffers.network_input(albedo, normal)[None]


def test_the_buffers_are_those_of_the_beauty_pass_view_layer(tmp_path: Path) -> None:
    """With two view layers, `--layer ViewLayer.Combined` had been denoised with the other view layer's albedo and
    normal (the first by name): a wrong picture, without a word."""
    channels = {**_passes("A_Other", 1), **_passes("ViewLayer", 2)}
    OpenEXR.File({}, dict(channels)).write(str(tmp_path / "two.exr"))
    for view_layer in ("A_Other", "ViewLayer"):
        np.testing.assert_array_equal(
            buffers.read(tmp_path / "two.exr", layer=f"{view_layer}.Combined"), _planes(channels, view_layer)
        )
    OpenEXR.File({}, _passes("ViewLayer", 2)).write(str(tmp_path / "one.exr"))
    card = _card(tmp_path / "cards")
    for name, extra in (("two", ["--layer", "ViewLayer.Combined"]), ("one", [])):
        args = ["denoise", str(tmp_path / f"{name}.exr"), *extra, "--model", str(card.path), "-o",
                str(tmp_path / f"{name}_out.exr"), "--quiet"]  # fmt: skip
        assert runner.invoke(app, args).exit_code == 0
    out = {n: OpenEXR.File(str(tmp_path / f"{n}_out.exr"), separate_channels=True).channels() for n in ("two", "one")}
    np.testing.assert_array_equal(out["two"]["ViewLayer.Combined.R"].pixels, out["one"]["ViewLayer.Combined.R"].pixels)


def test_blenders_composite_takes_the_buffers_of_its_one_view_layer(tmp_path: Path) -> None:
    """Blender with compositing on writes Composite.Combined beside its view layers': the picture read by default,
    with the buffers of its one view layer; made from two, it has none of its own."""
    composite = {f"Composite.Combined.{c}": np.ones((32, 32), np.float32) for c in "RGB"}
    channels = {**composite, **_passes("ViewLayer", 2)}
    OpenEXR.File({}, dict(channels)).write(str(tmp_path / "one.exr"))
    image = images.read(tmp_path / "one.exr")
    assert image.source.meta["layer"] == "Composite.Combined" and (image.pixels == 1).all()
    np.testing.assert_array_equal(
        buffers.read(tmp_path / "one.exr", layer="Composite.Combined"), _planes(channels, "ViewLayer")
    )
    OpenEXR.File({}, {**channels, **_passes("Background", 3)}).write(str(tmp_path / "two.exr"))
    assert images.read(tmp_path / "two.exr").source.meta["layer"] == "Composite.Combined"
    told: list[str] = []
    assert buffers.read(tmp_path / "two.exr", warn=told.append, layer="Composite.Combined") is None
    assert told == [  # no buffers of its own: said, with how to take a view layer's
        "its albedo and normal belong to 2 view layers (Background, ViewLayer): denoised from its beauty alone "
        "(--layer Background.Combined takes that view layer's)"
    ]
    np.testing.assert_array_equal(
        buffers.read(tmp_path / "two.exr", layer="Background.Combined"),
        _planes({**_passes("Background", 3)}, "Background"),
    )


def test_a_buffer_file_of_many_layers_gives_its_layer_of_that_buffer(tmp_path: Path) -> None:
    """`--albedo passes.exr --normal passes.exr` of a Blender file had taken its Combined for both buffers."""
    channels = _passes("ViewLayer", 2)
    OpenEXR.File({}, dict(channels)).write(str(tmp_path / "passes.exr"))
    _render(tmp_path / "bare.exr", {})
    planes = buffers.read(tmp_path / "bare.exr", tmp_path / "passes.exr", tmp_path / "passes.exr")
    np.testing.assert_array_equal(planes, _planes(channels, "ViewLayer"))
    _render(tmp_path / "aovs.exr", {"diffuse": "rgb", "normal": "xyz"})
    with pytest.raises(MdnError, match=r"aovs\.exr: which layer is the albedo\? none is named albedo or denoising "
                                       r"albedo \(beauty, diffuse, normal\)$"):  # fmt: skip
        buffers.read(tmp_path / "bare.exr", tmp_path / "aovs.exr", tmp_path / "aovs.exr")
    OpenEXR.File({}, {**_passes("A", 1), **_passes("B", 2)}).write(str(tmp_path / "two.exr"))
    with pytest.raises(MdnError, match=r"two\.exr: which layer is the albedo\? it has several \(A\.Denoising "
                                       r"Albedo, B\.Denoising Albedo\): give one alone$"):  # fmt: skip
        buffers.read(tmp_path / "bare.exr", tmp_path / "two.exr", tmp_path / "two.exr")


def test_a_normal_file_of_plain_x_y_z_channels_is_read_as_three(tmp_path: Path) -> None:
    """Unprefixed X, Y, Z had been read as grey Y: "the normal buffer has 1 channel, not 3"."""
    rng = np.random.default_rng(4)
    normal = {c: rng.uniform(-1, 1, (32, 32)).astype(np.float32) for c in "XYZ"}
    OpenEXR.File({}, dict(normal)).write(str(tmp_path / "normal.exr"))
    _render(tmp_path / "albedo.exr", {})
    planes = buffers.read(None, tmp_path / "albedo.exr", tmp_path / "normal.exr")
    np.testing.assert_allclose(planes[0, ..., 3:], (np.stack([normal[c] for c in "XYZ"], -1) + 1) / 2, atol=1e-6)


def test_nan_and_inf_in_the_buffers_are_replaced_with_a_warning(tmp_path: Path) -> None:
    """The README promises a warning for NaN and Inf replaced on read: the beauty's had one, the buffers' none."""
    channels = _passes("ViewLayer", 2)
    channels["ViewLayer.Denoising Albedo.G"][3, 4] = np.nan
    channels["ViewLayer.Denoising Normal.Z"][5, 5:7] = np.inf
    OpenEXR.File({}, dict(channels)).write(str(tmp_path / "render.exr"))
    said: list[str] = []
    planes = buffers.read(tmp_path / "render.exr", warn=said.append)
    assert np.isfinite(planes).all()
    assert said == ["1 NaN/Inf values replaced in its albedo layer", "2 NaN/Inf values replaced in its normal layer"]
    albedo = {c: channels[f"ViewLayer.Denoising Albedo.{c}"] for c in "RGB"}
    OpenEXR.File({}, dict(albedo)).write(str(tmp_path / "albedo.exr"))
    _render(tmp_path / "normal.exr", {})
    said.clear()
    buffers.read(None, tmp_path / "albedo.exr", tmp_path / "normal.exr", warn=said.append)
    assert said == [f"1 NaN/Inf values replaced in its albedo ({tmp_path / 'albedo.exr'})"]
    card = _card(tmp_path / "cards")
    result = runner.invoke(app, ["denoise", str(tmp_path / "render.exr"), "--model", str(card.path), "-o",
                                 str(tmp_path / "out.exr")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "render.exr: 2 NaN/Inf values replaced in its normal layer" in result.output


def test_buffer_parts_of_another_data_window_are_refused_not_used_misaligned(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    whole = (np.array([0, 0], np.int32), np.array([71, 31], np.int32))
    window = {"left": (np.array([0, 0], np.int32), np.array([31, 31], np.int32)),
              "right": (np.array([40, 0], np.int32), np.array([71, 31], np.int32))}  # fmt: skip

    def part(name: str, channels: str, at: str) -> OpenEXR.Part:
        pixels = {f"{name}.{c}" if name != "rgba" else c: rng.random((32, 32), dtype=np.float32) for c in channels}
        return OpenEXR.Part({"dataWindow": window[at], "displayWindow": whole}, pixels, name)

    for at, error in (("left", None), ("right", r"its albedo layer's data window \(40, 0\)-\(71, 31\) is not the "
                                                r"beauty's \(0, 0\)-\(31, 31\)$")):  # fmt: skip
        path = tmp_path / f"{at}.exr"
        OpenEXR.File([part("rgba", "RGB", "left"), part("albedo", "RGB", at), part("normal", "XYZ", at)]).write(
            str(path)
        )
        if error is None:
            assert buffers.read(path).shape == (1, 32, 32, 6)
        else:
            with pytest.raises(MdnError, match=f"{at}\\.exr: {error}"):
                buffers.read(path)


def test_buffer_files_of_another_data_window_than_the_beauty_are_refused(tmp_path: Path) -> None:
    """A region render's albedo and normal, offset by 8 pixels, had been taken pixel for pixel beside the beauty."""
    rng = np.random.default_rng(6)

    def write(name: str, origin: int) -> Path:
        window = (np.array([origin, origin], np.int32), np.array([origin + 31, origin + 31], np.int32))
        pixels = {c: rng.random((32, 32), dtype=np.float32) for c in "RGB"}
        OpenEXR.File({"dataWindow": window, "displayWindow": window}, pixels).write(str(tmp_path / name))
        return tmp_path / name

    beauty, albedo, normal, moved = write("beauty.exr", 0), write("a.exr", 0), write("n.exr", 0), write("m.exr", 8)
    assert buffers.read(beauty, albedo, normal).shape == (1, 32, 32, 6)
    words = r"m\.exr: the normal's data window \(8, 8\)-\(39, 39\) is not the beauty's \(0, 0\)-\(31, 31\)"
    with pytest.raises(MdnError, match=words):
        buffers.read(beauty, albedo, moved)


def test_an_arnold_normal_named_n_is_the_normal_buffer(tmp_path: Path) -> None:
    """N.X, N.Y, N.Z (Arnold's and Karma's normal) or a part named N had not been taken for the normal: the render
    ran on its beauty alone ("albedo but no normal")."""
    rng = np.random.default_rng(7)
    albedo, normal = rng.random((32, 32, 3), dtype=np.float32), rng.uniform(-1, 1, (32, 32, 3)).astype(np.float32)
    beauty = {c: rng.random((32, 32), dtype=np.float32) for c in "RGB"}
    channels = {f"albedo.{c}": albedo[..., i].copy() for i, c in enumerate("RGB")}
    channels.update({f"N.{c}": normal[..., i].copy() for i, c in enumerate("XYZ")})
    OpenEXR.File({}, {**beauty, **channels}).write(str(tmp_path / "arnold.exr"))
    expected = buffers.network_input(albedo, normal)[None]
    np.testing.assert_array_equal(buffers.read(tmp_path / "arnold.exr"), expected)
    other = {f"normal.{c}": np.zeros((32, 32), np.float32) for c in "XYZ"}  # a layer called normal comes first
    OpenEXR.File({}, {**beauty, **channels, **other}).write(str(tmp_path / "both.exr"))
    np.testing.assert_array_equal(buffers.read(tmp_path / "both.exr")[..., 3:], np.full((1, 32, 32, 3), 0.5))

    def part(name: str, pixels: np.ndarray, letters: str) -> OpenEXR.Part:
        return OpenEXR.Part({}, {c: pixels[..., i].copy() for i, c in enumerate(letters)}, name)

    rgb = np.stack(list(beauty.values()), axis=-1)
    parts = [part("N", normal, "XYZ"), part("rgba", rgb, "RGB")]
    OpenEXR.File(parts).write(str(tmp_path / "parts.exr"))
    said: list[str] = []
    assert buffers.read(tmp_path / "parts.exr", warn=said.append) is None
    assert said == ["it has a normal layer but no albedo: denoised from its beauty alone"]
    OpenEXR.File([part("albedo", albedo, "RGB"), *parts]).write(str(tmp_path / "three.exr"))
    np.testing.assert_array_equal(buffers.read(tmp_path / "three.exr"), expected)
