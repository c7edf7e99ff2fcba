"""Model cards: lookup, integrity, safe loading, user cards."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from mdn import registry
from mdn.errors import MdnError


def test_load_checks_sha256(tiny_card, tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(tiny_card.path.parent, folder)
    card = registry.ModelCard.from_file(folder / "tiny.json")
    registry.load(card)
    weights = folder / card.weights
    state = torch.load(weights, weights_only=True)
    next(iter(state.values())).add_(1)
    torch.save(state, weights)
    with pytest.raises(MdnError, match="does not match the sha256"):
        registry.load(card)


def test_weights_are_loaded_without_pickle_code(tiny_card, tmp_path: Path) -> None:
    folder = tmp_path / "evil"
    shutil.copytree(tiny_card.path.parent, folder)
    weights = folder / "tiny.pt"
    torch.save({"payload": print}, weights)
    card = registry.ModelCard.from_file(folder / "tiny.json")
    card.sha256 = registry.sha256(weights)
    with pytest.raises(MdnError, match="cannot load weights"):
        registry.load(card)


def test_user_cards_are_found_by_name_and_unknown_names_get_suggestions(tiny_card, monkeypatch) -> None:
    user = registry.user_dir()
    shutil.copytree(tiny_card.path.parent, user, dirs_exist_ok=True)
    assert registry.find("tiny").path == user / "tiny.json"
    with pytest.raises(MdnError, match="did you mean tiny"):
        registry.find("tinny")


def test_broken_card_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x"}))
    with pytest.raises(MdnError, match=r"bad\.json: not a valid model card"):
        registry.find(bad)
