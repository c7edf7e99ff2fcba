"""A card that names a network for grey pictures (`ModelCard.grey`): grey planes run through that network, colour
planes through the card's own, and a grey network that takes other inputs is refused."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import mdn
from mdn import registry
from mdn.cli import app
from mdn.errors import MdnError
from mdn.inference.engine import Engine, EngineOptions
from mdn.nets.unet import UNET_SIZES, UNet


def _save(name: str, seed: int, channels: int = 3, grey: str = "") -> registry.ModelCard:
    """A random `unet-tiny` card in the user's model folder."""
    torch.manual_seed(seed)
    config = UNET_SIZES["unet-tiny"]
    config = type(config).from_dict({**config.to_dict(), "channels": channels})
    card = registry.ModelCard(name, "unet", config.to_dict(), "", "", grey=grey)
    return registry.save(UNet(config), card, Path(os.environ["MDN_MODELS_DIR"]))


@pytest.fixture
def pair() -> registry.Model:
    """A colour card whose grey pictures run through another card's network."""
    _save("grey-net", seed=1)
    return registry.load_model(_save("colour-net", seed=0, grey="grey-net"))


def _alone(net: torch.nn.Module, image: np.ndarray) -> np.ndarray:
    """The image through one network, no stages."""
    return Engine(net, EngineOptions(detail=False, impulses=False, device="cpu"))(image[None])[0]


def test_grey_pictures_run_through_the_grey_network_and_colour_through_its_own(pair: registry.Model) -> None:
    assert pair.grey_net is not None
    rng = np.random.default_rng(0)
    grey, colour = rng.random((48, 40, 1), np.float32), rng.random((48, 40, 3), np.float32)
    run = {"detail": False, "impulses": False, "device": "cpu"}
    alone_grey, alone_colour = _alone(pair.grey_net, grey), _alone(pair.net, colour)
    assert np.array_equal(mdn.denoise(grey, pair, **run), alone_grey)
    assert np.array_equal(mdn.denoise(colour, pair, **run), alone_colour)
    assert np.array_equal(mdn.denoise(np.repeat(grey, 3, axis=-1), pair, **run), np.repeat(alone_grey, 3, axis=-1))
    assert not np.allclose(_alone(pair.net, grey), alone_grey, atol=1e-3)  # the two networks differ


def test_the_grey_network_runs_with_the_cards_stages(pair: registry.Model) -> None:
    grey = np.random.default_rng(1).random((64, 64, 1), np.float32)
    run = {"detail": True, "impulses": True, "device": "cpu"}
    info: dict = {}
    stages = mdn.denoise(grey, pair, info=info, **run)
    assert info["detail"] and info["wiener"]
    assert np.array_equal(stages, mdn.denoise(grey, registry.load_model("grey-net"), **run))
    assert not np.array_equal(stages, mdn.denoise(grey, _save("colour-alone", seed=0), **run))


def test_a_grey_network_that_takes_other_inputs_is_refused() -> None:
    _save("one-channel", seed=1, channels=1)
    card = _save("colour-net", seed=0, grey="one-channel")
    with pytest.raises(MdnError, match="the grey model one-channel takes other inputs than colour-net"):
        registry.load_model(card)
    with pytest.raises(MdnError, match="unknown model 'missing'"):
        registry.load_model(_save("orphan", seed=0, grey="missing"))


def test_a_grey_volume_runs_through_the_grey_network(pair: registry.Model, tmp_path: Path) -> None:
    zarr = pytest.importorskip("zarr")
    stack = (np.random.default_rng(2).random((2, 40, 36)) * 60000).astype(np.uint16)
    zarr.create_array(str(tmp_path / "cells.zarr"), data=stack, chunks=(1, 40, 36))
    outputs = {}
    for name in ("colour-net", "grey-net"):
        target = tmp_path / f"{name}.zarr"
        args = ["denoise", tmp_path / "cells.zarr", "-o", target, "--model", name, "--no-detail", "--no-impulses"]
        result = CliRunner().invoke(app, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        outputs[name] = zarr.open(str(target), mode="r")[...]
    assert np.array_equal(outputs["colour-net"], outputs["grey-net"])
