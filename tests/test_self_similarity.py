"""The U-Net's non-local self-similarity blocks: where they look, and that a card without them starts a network
with them as it was."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from mdn.inference.engine import Engine, EngineOptions
from mdn.nets.self_similarity import WindowSelfSimilarity
from mdn.nets.unet import UNET_SIZES, UNet

TINY = replace(UNET_SIZES["unet-tiny"], self_similarity=4)


def _reach(block: WindowSelfSimilarity, at: tuple[int, int]) -> np.ndarray:
    """Where the block's output moves when one input position changes: (H, W) bool."""
    torch.manual_seed(1)
    x = torch.rand(1, 8, 12, 12)
    y = x.clone()
    y[0, :, at[0], at[1]] += 1.0
    with torch.no_grad():
        return ((block(y) - block(x)).abs().amax(dim=1)[0] > 1e-6).numpy()


def test_each_position_sees_its_window_and_the_shifted_one_bridges_their_edges() -> None:
    torch.manual_seed(0)
    plain, shifted = WindowSelfSimilarity(8, window=4), WindowSelfSimilarity(8, window=4, shifted=True)
    for block in (plain, shifted):
        torch.nn.init.normal_(block.out.weight)
    reach = _reach(plain, (5, 6))
    assert reach[4:8, 4:8].all() and reach.sum() == 16  # its 4 x 4 window, padded edges included, nothing else
    bridged = _reach(shifted, (3, 7))  # its keys' 3 x 3 neighbourhood inside one window, as above
    assert bridged[2:6, 6:10].all() and bridged.sum() == 16  # the window shifted by half
    assert _reach(plain, (11, 11))[8:12, 8:12].all()  # 12 = three whole windows: no padding needed
    odd = WindowSelfSimilarity(8, window=5)
    torch.nn.init.normal_(odd.out.weight)
    assert _reach(odd, (11, 11))[10:12, 10:12].all() and _reach(odd, (11, 11)).sum() == 4  # edge window, padded


def test_a_card_without_the_blocks_starts_a_network_with_them_as_it_was(plain_tiny_unet) -> None:
    plain, start = plain_tiny_unet
    wider = start(UNet(TINY))
    x = torch.rand(1, 3, 32, 48)
    torch.testing.assert_close(wider(x), plain(x))


def test_tiles_meet_within_the_blend_as_for_any_u_net() -> None:
    torch.manual_seed(0)
    net = UNet(TINY)
    for block in net.similar:
        torch.nn.init.normal_(block.out.weight, std=0.1)
    planes = np.random.default_rng(0).random((1, 100, 150, 3), dtype=np.float32)
    whole = Engine(net, EngineOptions(device="cpu", tile=256))(planes)
    tiled = Engine(net, EngineOptions(device="cpu", tile=64, overlap=16))(planes)
    assert np.abs(tiled - whole).max() <= 3e-3
