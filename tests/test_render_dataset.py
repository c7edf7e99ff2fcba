"""The procedural render training set: varied scenes from seeds, independent noise, resumable generation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mdn.errors import MdnError
from mdn.renders import backend, dataset, procedural

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


def test_a_set_keeps_its_options(tmp_path: Path, textures: list[Path]) -> None:
    dataset.generate(tmp_path, range(1), textures, TINY, threads=1)
    with pytest.raises(MdnError, match="other options"):
        dataset.generate(tmp_path, range(1), textures, dataset.DatasetOptions(), threads=1)


def test_a_passed_deadline_renders_nothing(tmp_path: Path, textures: list[Path]) -> None:
    assert dataset.generate(tmp_path, range(2), textures, TINY, deadline=0.0, threads=1) == []
