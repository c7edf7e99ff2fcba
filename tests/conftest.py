"""Shared fixtures: small randomly initialised model cards until the trained ones are used."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from mdn import registry
from mdn.nets.swinir import MaskedSwinIR, SwinIRConfig
from mdn.nets.unet import UNET_SIZES, UNet
from mdn.training.checkpoint import start_weights

TINY = SwinIRConfig(embed_dim=12, depths=(2,), heads=2, drop_path=0.0)


@pytest.fixture
def tiny_card(tmp_path_factory: pytest.TempPathFactory) -> registry.ModelCard:
    """A saved card of a tiny random masked SwinIR."""
    torch.manual_seed(0)
    card = registry.ModelCard("tiny", "masked-swinir", TINY.to_dict(), "", "", description="random, for tests")
    return registry.save(MaskedSwinIR(TINY), card, tmp_path_factory.mktemp("cards"))


@pytest.fixture
def plain_tiny_unet(tmp_path: Path) -> tuple[UNet, Callable[[nn.Module], nn.Module]]:
    """A random `unet-tiny` saved as a card, and a function that starts a network with added blocks from it
    (`mdn train --init`), returning that network in eval mode."""
    torch.manual_seed(0)
    plain = UNet(UNET_SIZES["unet-tiny"]).eval()
    config = UNET_SIZES["unet-tiny"].to_dict()
    card = registry.save(plain, registry.ModelCard("plain", "unet", config, "", ""), tmp_path)

    class Objective:
        task, architecture = "denoise", "unet"

    def start(net: nn.Module) -> nn.Module:
        start_weights(net, str(card.path), Objective(), "unet-tiny")
        return net.eval()

    return plain, start


@pytest.fixture(autouse=True)
def _isolated_user_folders(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep tests away from the user's own model and cache folders."""
    folder = tmp_path_factory.mktemp("user-models")
    monkeypatch.setenv("MDN_MODELS_DIR", str(folder))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    return folder
