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


def test_a_card_saved_again_while_it_is_read_is_read_again_and_a_cut_file_is_an_error(tiny_card, tmp_path) -> None:
    """A training run saves its card again (its time budget, --until) while `mdn denoise --model` reads it."""
    folder = tmp_path / "training"
    shutil.copytree(tiny_card.path.parent, folder)
    read_before = registry.ModelCard.from_file(folder / "tiny.json")
    network = registry.load(read_before)
    with torch.no_grad():
        next(iter(network.parameters())).add_(1)
    saved = registry.save(network, registry.ModelCard.from_file(folder / "tiny.json"), folder)
    assert saved.sha256 != read_before.sha256 and sorted(p.name for p in folder.iterdir()) == ["tiny.json", "tiny.pt"]
    reloaded = registry.load(read_before)  # its sha256 is the old weights': the card is read again
    first = next(iter(reloaded.parameters()))
    torch.testing.assert_close(first, next(iter(network.parameters())))
    (folder / "tiny.pt").write_bytes((folder / "tiny.pt").read_bytes()[:100])  # cut short: EOFError in torch
    cut = registry.ModelCard.from_file(folder / "tiny.json")
    cut.sha256 = registry.sha256(folder / "tiny.pt")
    with pytest.raises(MdnError, match=r"tiny\.pt: cannot load weights"):
        registry.load(cut)


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
    with pytest.raises(MdnError) as fill:  # the cards that the asking command takes, not every card
        registry.find("nosuch", "fill")
    assert str(fill.value) == "unknown model 'nosuch' (available: fill-grey, fill-syn)"
    with pytest.raises(MdnError, match=r"available: .*fill-grey.*unet-dct-practical"):
        registry.find("nosuch", None)


def test_broken_card_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x"}))
    with pytest.raises(MdnError, match=r"bad\.json: not a valid model card"):
        registry.find(bad)


def _card_data(tiny_card, **changes: object) -> dict:
    return {**json.loads(tiny_card.path.read_text()), **changes}


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"config": "unet"}, 'config is "unet", not an object'),
        ({"training": {"iterations": "about 5000"}}, 'training.iterations is "about 5000", not a whole number'),
        ({"name": 5}, "name is 5, not text"),
        ({"default": "yes"}, 'default is "yes", not true or false'),
        ({"heads_per_stage": 4}, "fields this version of mdn does not know: heads_per_stage"),
        ({"training": {"earlier_sittings": [{"from": 0}]}}, "earlier_sittings is not a list"),
    ],
)
def test_a_card_of_wrong_fields_is_refused_in_words(tiny_card, tmp_path: Path, changes, words) -> None:
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(_card_data(tiny_card, **changes)))
    with pytest.raises(MdnError, match=r"odd\.json: not a valid model card: ") as caught:
        registry.ModelCard.from_file(path)
    assert words in str(caught.value)


def test_broken_user_cards_are_named_not_called_unknown(tiny_card) -> None:
    user = registry.user_dir()
    shutil.copytree(tiny_card.path.parent, user, dirs_exist_ok=True)
    (user / "scope.json").write_text(json.dumps({"name": "scope"}))
    (user / "mycam.json").write_text('{"name": "mycam", "archi')
    assert "tiny" in registry.cards() and "scope" not in registry.cards()
    assert sorted(p.path.name for p in registry.problems()) == ["mycam.json", "scope.json"]
    with pytest.raises(MdnError, match=r"scope\.json: not a valid model card: missing architecture, config"):
        registry.find("scope")
    with pytest.raises(MdnError, match=r"mycam\.json: not a valid model card"):
        registry.find("mycam")


def test_of_two_user_cards_of_one_name_the_one_its_file_names_is_taken(tiny_card) -> None:
    user = registry.user_dir()
    shutil.copytree(tiny_card.path.parent, user, dirs_exist_ok=True)
    (user / "zz-backup.json").write_text(json.dumps(_card_data(tiny_card, description="an old copy")))
    assert registry.find("tiny").path == user / "tiny.json"
    (problem,) = registry.problems()
    assert problem.path == user / "zz-backup.json" and "also named 'tiny'" in str(problem)


def test_a_card_path_that_is_missing_or_a_weight_file_is_said_so(tiny_card, tmp_path: Path) -> None:
    with pytest.raises(MdnError, match=r"cards/my-cam\.json: no such model card file"):
        registry.find("cards/my-cam.json")
    with pytest.raises(MdnError, match=r"tiny\.pt: is a weight file; a model is named by its card's name or JSON file"):
        registry.find(tiny_card.path.parent / "tiny.pt")


def test_weights_of_another_network_are_said_so(tiny_card, tmp_path: Path) -> None:
    folder = tmp_path / "other"
    shutil.copytree(tiny_card.path.parent, folder)
    weights = folder / "tiny.pt"
    torch.save({"conv.weight": torch.zeros(3, 3, 3, 3)}, weights)
    card = registry.ModelCard.from_file(folder / "tiny.json")
    card.sha256 = registry.sha256(weights)
    with pytest.raises(
        MdnError, match=r"for another network than its card's config \(\d+ tensors missing, 1 unknown\)"
    ):
        registry.load(card)


def test_weights_of_a_diverged_run_are_refused_not_run_into_a_black_picture(tiny_card, tmp_path: Path) -> None:
    folder = tmp_path / "diverged"
    shutil.copytree(tiny_card.path.parent, folder)
    network = registry.load(registry.ModelCard.from_file(folder / "tiny.json"))
    with torch.no_grad():
        next(iter(network.parameters()))[0] = float("nan")
    with pytest.raises(MdnError, match=r"tiny\.pt: the weights hold NaN or Inf \(embed\.weight\): not saved"):
        registry.save(network, registry.ModelCard.from_file(folder / "tiny.json"), folder)
    torch.save(network.state_dict(), folder / "tiny.pt")  # as a run before this check wrote them
    card = registry.ModelCard.from_file(folder / "tiny.json")
    card.sha256 = registry.sha256(folder / "tiny.pt")
    with pytest.raises(MdnError, match=r"tiny\.pt: the weights hold NaN or Inf \(embed\.weight\): a training run"):
        registry.load(card)


def test_a_config_the_network_does_not_take_is_refused_in_words(tiny_card, tmp_path: Path) -> None:
    path = tmp_path / "newer.json"
    data = _card_data(tiny_card)
    path.write_text(json.dumps({**data, "config": {**data["config"], "attention_heads": 7}}))
    with pytest.raises(
        MdnError, match=r"newer\.json: not a valid model card: its masked-swinir config: .*attention_heads"
    ):
        registry.network_config(registry.ModelCard.from_file(path))
