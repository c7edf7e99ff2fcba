"""Monte Carlo renders for the bench: real path-tracing noise that shrinks with the sample count."""

from __future__ import annotations

import numpy as np
import pytest

from mdn import bench, metrics, renders
from mdn.io import tonemap
from mdn.renders import cornell

pytestmark = pytest.mark.skipif(not renders.available(), reason="mitsuba is not installed")


@pytest.fixture(autouse=True)
def _small_renders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cornell, "SIZE", 32)
    monkeypatch.setattr(cornell, "MAX_SPP", 64)


def test_renders_are_cached_hdr_and_less_noisy_with_more_samples() -> None:
    reference = renders.render("cornell", 256)
    assert reference.shape == (32, 32, 3) and reference.dtype == np.float32 and reference.max() > 0
    assert cornell._cache("cornell", 256).is_file()
    np.testing.assert_array_equal(renders.render("cornell", 256), reference)
    display = tonemap.ToneMap.fit(reference)
    psnr = {spp: metrics.psnr(display.forward(renders.render("cornell", spp)), display.forward(reference))
            for spp in (4, 64)}  # fmt: skip
    assert psnr[64] > psnr[4] + 3


def test_every_scene_renders() -> None:
    for name in renders.scenes():
        assert np.isfinite(renders.render(name, 2)).all(), name


def test_render_rows_join_the_bench(tiny_card) -> None:
    scores = list(bench.render_scores(["noisy", str(tiny_card.path)], spps=(4,), reference_spp=64))
    assert {s.noise for s in scores} == {"render"} and {s.level for s in scores} == {4}
    assert len(scores) == 2 * len(renders.scenes())


def test_the_shipped_render_card_takes_renders_and_beats_the_photo_default_on_them() -> None:
    from mdn import registry

    photo = registry.default_card().name
    assert registry.default_card(hdr=True).name == "unet-render" and photo == "unet-dct-practical"
    scores = list(bench.render_scores(["noisy", photo, "unet-render"], spps=(4,), reference_spp=256))
    mean = {m: np.mean([s.psnr for s in scores if s.model == m]) for m in ("noisy", photo, "unet-render")}
    assert mean["unet-render"] > mean[photo] + 1 > mean["noisy"] + 1
