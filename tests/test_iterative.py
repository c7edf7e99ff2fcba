"""The iterative dynamic filter (`mdn/nets/iterative.py`): a convex filter of its input, blind to hidden pixels,
trained and run through the same commands as every card."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import tifffile
import torch
from skimage import data
from typer.testing import CliRunner

from mdn import registry, training
from mdn.cli import app
from mdn.errors import MdnError
from mdn.nets.iterative import ITERATIVE_SIZES, IterativeFilterNet, patch_correlation
from mdn.nets.swinir import MASK_VALUE, input_mask
from mdn.training import objectives

SMALL = replace(ITERATIVE_SIZES["dynamic"], width=8)


def test_its_output_is_a_weighted_average_of_its_input() -> None:
    torch.manual_seed(0)
    net = IterativeFilterNet(SMALL).eval()
    flat = torch.full((1, 3, 24, 40), 0.37)
    image = 0.2 + 0.5 * torch.rand(2, 3, 24, 40)
    with torch.no_grad():
        torch.testing.assert_close(net(flat), flat)
        out = net(image)
    assert out.shape == image.shape
    assert out.min() >= image.min() - 1e-6 and out.max() <= image.max() + 1e-6
    assert (out - image).abs().mean() > 1e-3  # it filtered


def test_hidden_pixels_never_weigh_and_every_pixel_is_reached() -> None:
    torch.manual_seed(0)
    net = IterativeFilterNet(replace(SMALL, partial=True)).eval()
    image = 0.3 + 0.4 * torch.rand(1, 3, 48, 48)
    masked = input_mask(image, (0.8, 0.8), torch.Generator().manual_seed(1))
    shown = masked[masked != MASK_VALUE]
    assert (masked == MASK_VALUE).float().mean() > 0.7
    with torch.no_grad():
        out = net(masked)
        flat = net(input_mask(torch.full((1, 3, 48, 48), 0.37), (0.8, 0.8), torch.Generator().manual_seed(2)))
    assert out.min() >= shown.min() - 1e-6 and out.max() <= shown.max() + 1e-6  # MASK_VALUE is below them all
    torch.testing.assert_close(flat, torch.full_like(flat, 0.37))
    with torch.no_grad():  # a whole image, every pixel shown, is filtered as by the unmasked network
        whole = net(image)
    assert whole.min() >= image.min() - 1e-6 and whole.max() <= image.max() + 1e-6
    assert (whole - image).abs().mean() > 1e-3


def test_the_objective_builds_it_refuses_masks_it_cannot_see_and_clips_its_gradients(tmp_path: Path) -> None:
    options = training.TrainOptions(name="d", data=[], config="dynamic", iters=1, batch=2, crop=32, mask=False)
    objective = objectives.MaskedDenoising(options, torch.float32)
    assert objective.architecture == "dynamic-filter" and objective.inference() == {}
    model = objective.build()
    assert isinstance(model, IterativeFilterNet) and not model.config.partial
    clean = torch.rand(2, 3, 32, 32)
    objective.loss(model, clean, torch.Generator().manual_seed(0)).mul(1e4).backward()
    objective.clip(model.parameters())
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    assert norm <= objectives.ITERATIVE_CLIP * 1.001
    with pytest.raises(MdnError, match="dynamic-partial"):
        objectives.MaskedDenoising(replace(options, mask=True), torch.float32)
    masked = objectives.MaskedDenoising(replace(options, config="dynamic-partial", mask=True), torch.float32)
    assert masked.build().config.partial and "Masked iterative dynamic filter" in masked.describe()


def test_mdn_train_writes_a_card_that_mdn_denoise_runs(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    tifffile.imwrite(photos / "coffee.tif", data.coffee()[:96, :128])
    runner = CliRunner()
    args = ["train", "--data", str(photos), "--name", "dyn", "--config", "dynamic-partial", "--batch", "2",
            "--crop", "32", "--iters", "2", "--device", "cpu", "--workdir", str(tmp_path / "run"),
            "--output", str(tmp_path / "cards"), "--quiet"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    card = registry.ModelCard.from_file(tmp_path / "cards" / "dyn.json")
    assert card.architecture == "dynamic-filter" and card.config["partial"] is True
    assert card.parameters == sum(p.numel() for p in registry.load(card).parameters())
    out = tmp_path / "out.tif"
    denoised = runner.invoke(app, ["denoise", str(photos / "coffee.tif"), "-o", str(out), "--model", str(card.path)])
    assert denoised.exit_code == 0, denoised.output
    result = tifffile.imread(out)
    assert result.shape == (96, 128, 3) and result.dtype == data.coffee().dtype


def test_patch_correlations_are_bounded_one_at_the_centre_and_work_on_grey() -> None:
    torch.manual_seed(0)
    image = torch.rand(1, 3, 32, 32)
    for dilation in (1, 2):
        correlation = patch_correlation(image, dilation)
        assert correlation.shape == (1, 9, 32, 32)
        assert correlation.abs().max() <= 1 + 1e-4
        torch.testing.assert_close(correlation[:, 4], torch.ones(1, 32, 32), atol=1e-3, rtol=0)
    stripes = torch.arange(32.0).remainder(2).expand(1, 1, 32, 32).transpose(-1, -2).contiguous()  # rows alternate
    along = patch_correlation(stripes, 1)[0, :, 8:-8, 8:-8]
    assert along[3].mean() > 0.99 and along[1].mean() < -0.99  # the tap beside: same row; above: the other row
    assert patch_correlation(torch.full((1, 1, 16, 16), 0.3), 1).abs().max() < 1e-3


def test_a_correlation_filter_is_convex_too_and_unknown_similarities_are_refused() -> None:
    net = IterativeFilterNet(replace(SMALL, similarity="correlation")).eval()
    image = 0.2 + 0.5 * torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        out = net(image)
    assert out.min() >= image.min() - 1e-6 and out.max() <= image.max() + 1e-6
    with pytest.raises(MdnError, match="similarity"):
        replace(SMALL, similarity="cosine")
