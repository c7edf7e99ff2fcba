"""Tiled inference: seamless, bounded, deterministic with a seed, robust to out-of-memory."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch
from skimage import data

from mdn import registry
from mdn.device import parse_size, pick_dtype
from mdn.errors import MdnError
from mdn.inference.engine import Engine, EngineOptions, turn, unturn
from mdn.inference.tiling import TileGrid, balanced_tile, tile_positions
from mdn.metrics import psnr
from mdn.nets.swinir import MASK_VALUE, MaskedSwinIR, SwinIRConfig


def _cpu(**options) -> EngineOptions:
    """Options for exact comparisons: the CPU in float32."""
    return EngineOptions(device="cpu", precision="fp32", **options)


@pytest.fixture(scope="module")
def model() -> MaskedSwinIR:
    torch.manual_seed(0)
    return MaskedSwinIR(SwinIRConfig(embed_dim=24, depths=(2, 2), heads=3, drop_path=0.0)).eval()


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return (data.astronaut()[100:250, 150:323] / 255).astype(np.float32)[None]


@pytest.mark.parametrize(("tile", "overlap"), [(64, 32), (96, 32)])
def test_tiled_equals_whole_image_within_3e_3(model, photo, tile: int, overlap: int) -> None:
    whole = Engine(model, _cpu(tile=512, attention_mask=False))(photo)
    engine = Engine(model, _cpu(tile=tile, overlap=overlap, attention_mask=False))
    tiled = engine(photo)
    assert photo.shape[1] % tile and photo.shape[2] % tile
    assert engine.tiles_run > 4
    assert np.abs(tiled - whole).max() <= 3e-3


def test_tile_batches_do_not_change_the_result(model, photo) -> None:
    one = Engine(model, _cpu(tile=64, batch=1, attention_mask=False))(photo)
    many = Engine(model, _cpu(tile=64, batch=5, attention_mask=False))(photo)
    np.testing.assert_allclose(one, many, atol=1e-5)


def test_seed_gives_identical_output(model, photo) -> None:
    a = Engine(model, _cpu(tile=128, seed=3))(photo)
    b = Engine(model, _cpu(tile=128, seed=3))(photo)
    c = Engine(model, _cpu(tile=128, seed=4))(photo)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_passes_are_the_mean_over_the_flips_and_turns_of_the_tiles(model) -> None:
    """A deterministic network's passes are the geometric self-ensemble: its mean over the 8 symmetries."""
    square = (data.astronaut()[100:196, 150:246] / 255).astype(np.float32)
    single = Engine(model, _cpu(tile=96, attention_mask=False))
    expected = np.mean(
        [unturn(torch.from_numpy(single(turn(torch.from_numpy(square), k).numpy()[None])[0]), k).numpy()
         for k in range(8)], axis=0)  # fmt: skip
    ensemble = Engine(model, _cpu(tile=96, passes=8, attention_mask=False))(square[None])[0]
    np.testing.assert_allclose(ensemble, expected, atol=1e-5)
    assert np.abs(ensemble - single(square[None])[0]).max() > 1e-3


def test_eight_passes_of_a_card_beat_one() -> None:
    card = registry.find("unet")
    clean = (data.astronaut()[:256, 128:384] / 255).astype(np.float32)
    noisy = (clean + np.random.default_rng(0).normal(0, 15 / 255, clean.shape)).astype(np.float32)[None]
    one, eight = (Engine(registry.load(card), _cpu(passes=n))(noisy)[0] for n in (1, 8))
    assert psnr(eight, clean) > psnr(one, clean) + 0.1


def test_a_region_equals_that_part_of_the_whole_plane_bit_for_bit(model, photo) -> None:
    """Chunk-wise volumes rest on this: the region's tiles, borders, weights and masks are the whole plane's."""
    engine = Engine(model, _cpu(tile=64, seed=5, passes=2, input_mask=0.3))  # random masks per tile and pass
    planes = np.stack([photo[0], photo[0][::-1].copy()])
    whole = engine(planes)
    height, width = photo.shape[1:3]
    assert height % engine.window and width % engine.window  # the reflected border is in play
    for index in (0, 1):
        for rows, columns in [(slice(0, 37), slice(0, 50)), (slice(37, height), slice(50, width))]:
            part = engine.region(lambda r, c, i=index: planes[i][r, c], planes.shape[1:], rows, columns, index)
            assert np.array_equal(part, whole[index][rows, columns])


class _Echo(torch.nn.Module):
    """Returns what it is given: shows what the engine feeds a network."""

    config = SwinIRConfig(embed_dim=12, depths=(1,), heads=2)

    def forward(self, x: torch.Tensor, generator: torch.Generator, attention_mask: bool) -> torch.Tensor:
        return x


def test_input_mask_hides_a_share_of_pixels_in_every_pass(photo) -> None:
    options = _cpu(tile=512, input_mask=0.8, seed=1)
    seen = Engine(_Echo(), options)(photo)
    hidden = np.all(seen == MASK_VALUE, axis=-1)
    assert 0.78 < hidden.mean() < 0.82
    assert np.array_equal(seen[~hidden], photo[~hidden])
    assert np.array_equal(seen, Engine(_Echo(), options)(photo))
    averaged = Engine(_Echo(), _cpu(tile=512, input_mask=0.8, seed=1, passes=4))(photo)
    assert np.all(averaged == MASK_VALUE, axis=-1).mean() < 0.5


def test_grey_planes_run_replicated_and_come_back_grey(model, photo) -> None:
    grey = photo.mean(axis=-1, keepdims=True)
    out = Engine(model, _cpu(tile=128, attention_mask=False))(grey)
    rgb = Engine(model, _cpu(tile=128, attention_mask=False))(np.repeat(grey, 3, axis=-1))
    assert out.shape == grey.shape
    np.testing.assert_allclose(out[..., 0], rgb.mean(axis=-1), atol=1e-6)


def test_stack_runs_slice_by_slice_with_progress(model, photo) -> None:
    stack = np.concatenate([photo, photo[:, ::-1].copy()])
    calls: list[tuple[int, int]] = []
    options = _cpu(tile=128, attention_mask=False)
    engine = Engine(model, options)
    out = engine(stack, progress=lambda d, t: calls.append((d, t)))
    single = Engine(model, _cpu(tile=128, attention_mask=False))(photo)
    np.testing.assert_allclose(out[:1], single, atol=1e-6)
    assert calls[-1] == (engine.count_tiles(stack.shape),) * 2
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_tiles_blend_on_the_device_and_each_plane_comes_back_once(model, photo, monkeypatch) -> None:
    copies = []
    to_host = torch.Tensor.cpu
    monkeypatch.setattr(torch.Tensor, "cpu", lambda t: copies.append(tuple(t.shape)) or to_host(t))
    stack = np.concatenate([photo, photo[:, ::-1].copy()])
    engine = Engine(model, _cpu(tile=64, batch=3, passes=2, attention_mask=False))
    out = engine(stack)
    assert engine.tiles_run > 2 * 2 * 4
    assert copies == [photo.shape[1:]] * 2
    assert out.shape == stack.shape and out.dtype == np.float32


def test_out_of_memory_halves_the_tile_and_retries(model, photo, monkeypatch) -> None:
    engine = Engine(model, _cpu(tile=128, attention_mask=False))
    forward = engine._forward

    def limited(batch, generator):
        if batch.shape[1] > 64:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")
        return forward(batch, generator)

    monkeypatch.setattr(engine, "_forward", limited)
    out = engine(photo)
    assert engine.tile == 64
    reference = Engine(model, _cpu(tile=64, attention_mask=False))(photo)
    np.testing.assert_allclose(out, reference, atol=1e-6)


def test_memory_budget_picks_the_tile(model) -> None:
    small = Engine(model, _cpu(max_memory=parse_size("64M")))
    large = Engine(model, _cpu(max_memory=parse_size("4G")))
    assert small.tile < large.tile <= 512
    assert small.tile % 8 == 0 and small.tile >= 64


def test_tile_positions_cover_with_overlap_on_the_window_grid() -> None:
    for length in (64, 200, 1000, 4000):
        starts = tile_positions(length, 128, 32, 8)
        assert starts[0] == 0 and starts[-1] + 128 >= length
        assert all(s % 8 == 0 for s in starts)
        assert all(b - a <= 96 for a, b in itertools.pairwise(starts))


def test_options_are_validated(model, tiny_card) -> None:
    with pytest.raises(MdnError, match="multiple of 8"):
        Engine(model, _cpu(tile=100))
    with pytest.raises(MdnError, match="overlap"):
        Engine(model, _cpu(tile=64, overlap=40))
    with pytest.raises(MdnError, match="not a memory size"):
        parse_size("lots")
    assert parse_size("2G") == 2 << 30 and parse_size("512M") == 512 << 20
    assert registry.load(tiny_card).config.embed_dim == 12


def test_precision_names_and_auto() -> None:
    assert pick_dtype("fp32", torch.device("cpu")) == torch.float32
    assert pick_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    assert pick_dtype("auto", torch.device("cpu")) in (torch.float32, torch.bfloat16)
    assert pick_dtype("auto", torch.device("meta")) == torch.float32
    with pytest.raises(MdnError, match="unknown precision"):
        pick_dtype("fp64", torch.device("cpu"))


def test_bfloat16_stays_within_its_tolerance_of_float32_tiled_or_whole(model, photo) -> None:
    """bf16, the default where the CPU computes it natively, keeps the output within 40 dB of fp32's, and tiles
    within 1/255 of a whole-image run."""
    fp32 = Engine(model, _cpu(tile=64, attention_mask=False))(photo)
    bf16 = Engine(model, EngineOptions(device="cpu", precision="bf16", tile=64, attention_mask=False))(photo)
    whole = Engine(model, EngineOptions(device="cpu", precision="bf16", tile=512, attention_mask=False))(photo)
    assert bf16.dtype == np.float32 and not np.array_equal(fp32, bf16)
    assert -10 * np.log10(np.mean((bf16 - fp32) ** 2)) > 40
    assert np.abs(bf16 - whole).max() < 1 / 255


def test_grid_weights_sum_to_its_coverage() -> None:
    grid = TileGrid.cover(200, 330, 96, 24, 8)
    summed = np.zeros((200, 330, 1), np.float32)
    for y, x in grid.corners():
        summed[y : y + grid.size[0], x : x + grid.size[1]] += grid.weight(y, x)
    rows, columns = grid.coverage()
    np.testing.assert_allclose(summed[..., 0], rows[:, None] * columns[None, :], rtol=1e-6)
    assert summed.min() > 0 and len(grid) == len(grid.rows) * len(grid.columns) > 4


def test_masked_passes_batched_give_the_sequential_result(model, photo) -> None:
    """Passes of one tile run side by side in a batch, each drawing from its own generator: the batch size does
    not change the bytes, masks on."""
    options = {"device": "cpu", "precision": "fp32", "tile": 64, "passes": 3, "input_mask": 0.5, "seed": 2}
    one = Engine(model, EngineOptions(batch=1, **options))(photo)
    many = Engine(model, EngineOptions(batch=6, **options))(photo)
    np.testing.assert_allclose(one, many, atol=1e-5)


def test_balanced_tiles_cover_with_as_few_tiles_and_less_area() -> None:
    for length in (520, 1000, 1024, 4000, 6000):
        side = balanced_tile(length, 512, 32, 8)
        starts = tile_positions(length, side, 32, 8)
        assert side % 8 == 0 and side <= 512 and starts[-1] + side == length
        assert len(starts) == len(tile_positions(length, 512, 32, 8))
        assert all(b - a <= side - 32 for a, b in itertools.pairwise(starts))
    assert balanced_tile(1024, 512, 32, 8) == 368 and balanced_tile(300, 512, 32, 8) == 300


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("kernel", ["sdpa", "flex"])
def test_cuda_engine_matches_the_cpu(model, photo, kernel: str) -> None:
    """Tiles, blending and passes on the GPU give the CPU's result (TF32 convolutions allow small differences)."""
    options = {"tile": 64, "batch": 3, "passes": 2, "attention_mask": False}
    cpu = Engine(model, _cpu(**options))(photo)
    gpu_model = copy.deepcopy(model).use_attention(kernel)
    gpu = Engine(gpu_model, EngineOptions(device="cuda", precision="fp32", **options))(photo)
    np.testing.assert_allclose(gpu, cpu, atol=2e-3)


def test_the_network_runs_again_on_its_output_only_while_heavy_noise_remains() -> None:
    """`repeat_above`: at sigma 50, far beyond the sigma-15 card's training noise, the network runs again on its
    own output (at most REPEATS times) and comes closer to the clean picture; at sigma 10 it runs once and gives
    the bytes of a run without the option."""
    from mdn.inference import engine as engine_module

    model = registry.load_model("unet-kpn-s15").net
    clean = (data.astronaut()[:128, 192:320] / 255).astype(np.float32)
    rng = np.random.default_rng(0)
    for sigma, repeats in ((50, True), (10, False)):
        noisy = np.clip(clean + rng.normal(0, sigma / 255, clean.shape), 0, 1).astype(np.float32)[None]
        once = Engine(model, _cpu())(noisy)[0]
        engine = Engine(model, _cpu(repeat_above=5.0))
        again = engine(noisy)[0]
        if repeats:
            assert 1 <= engine.repeats[0] <= engine_module.REPEATS
            assert psnr(again, clean) > psnr(once, clean) + 0.5
        else:
            assert engine.repeats == [0]
            np.testing.assert_array_equal(again, once)
