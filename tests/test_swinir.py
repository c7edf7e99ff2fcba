"""The masked SwinIR matches the paper's architecture and masking rules."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mdn.errors import MdnError
from mdn.nets import swinir
from mdn.nets.swinir import MASK_VALUE, MaskedSwinIR, SwinIRConfig, input_mask


def test_paper_configuration_has_the_papers_parameter_count() -> None:
    model = MaskedSwinIR(SwinIRConfig())
    assert sum(p.numel() for p in model.parameters()) == 824_118
    assert model.embed.kernel_size == (1, 1)


def test_shape_kept_for_sizes_not_multiple_of_window() -> None:
    model = MaskedSwinIR(SwinIRConfig(embed_dim=12, depths=(2,), heads=2)).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 21, 35)).shape == (2, 3, 21, 35)


def test_attention_mask_is_stochastic_but_seeded_and_switchable() -> None:
    model = MaskedSwinIR(SwinIRConfig(embed_dim=12, depths=(2,), heads=2)).eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        a = model(x, generator=torch.Generator().manual_seed(1))
        b = model(x, generator=torch.Generator().manual_seed(1))
        c = model(x, generator=torch.Generator().manual_seed(2))
        d = model(x, attention_mask=False)
        e = model(x, attention_mask=False)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(d, e)


def test_input_mask_shares_pixels_across_channels_and_respects_ratio() -> None:
    x = torch.rand(4, 3, 64, 64)
    masked = input_mask(x, (0.75, 0.85), torch.Generator().manual_seed(0))
    hidden = masked == MASK_VALUE
    assert torch.equal(hidden[:, 0], hidden[:, 1]) and torch.equal(hidden[:, 0], hidden[:, 2])
    ratios = hidden[:, 0].float().mean(dim=(1, 2))
    assert ((ratios > 0.72) & (ratios < 0.88)).all()
    assert torch.equal(masked[~hidden], x[~hidden])


def test_both_attention_paths_equal_full_masked_attention() -> None:
    """Inference recomputes only wrap-around windows and training masks every window with explicit matmuls;
    both must equal the fused kernel masking every window."""
    torch.manual_seed(0)
    attention = swinir.WindowAttention(dim=12, window=8, heads=2)
    x = torch.randn(1, 32, 32, 12)
    windows = swinir._partition(x, 8)
    shift = swinir._shift_mask(32, 32, 8, 4, x.device)
    with torch.no_grad():
        inference = attention(windows, shift)
    training = attention(windows, shift)
    assert training.requires_grad

    full = torch.zeros(windows.shape[1], 64, 64)
    full[shift.windows] = shift.mask
    b, nw, n, c = windows.shape
    q, k, v = attention.qkv(windows).view(b, nw, n, 3, 2, c // 2).permute(3, 0, 1, 4, 2, 5)
    mask = (attention.position_bias()[None] + full[:, None])[None]
    reference = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    reference = attention.proj(reference.transpose(2, 3).reshape(b, nw, n, c))
    torch.testing.assert_close(inference, reference, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(training, reference, atol=1e-5, rtol=1e-5)


def test_masks_cached_while_denoising_serve_training() -> None:
    model = MaskedSwinIR(SwinIRConfig(embed_dim=12, depths=(2,), heads=2))
    x = torch.rand(1, 3, 24, 40)
    with torch.inference_mode():
        model(x)
    model(x).mean().backward()
    assert model.embed.weight.grad is not None


def test_network_compiles_to_one_graph_with_the_same_outputs_weights_and_gradients() -> None:
    torch.manual_seed(0)
    model = MaskedSwinIR(SwinIRConfig(embed_dim=12, depths=(2,), heads=2, drop_path=0.0)).train()
    x = torch.rand(2, 3, 24, 40)
    explained = torch._dynamo.explain(model.network)(x, *model._masks(x, torch.Generator().manual_seed(0), True))
    assert explained.graph_count == 1 and explained.graph_break_count == 0

    eager = model(x, generator=torch.Generator().manual_seed(1))
    eager.square().mean().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    keys = list(model.state_dict())
    model.compile(backend="aot_eager", dynamic=False)
    compiled = model(x, generator=torch.Generator().manual_seed(1))
    compiled.square().mean().backward()
    assert list(model.state_dict()) == keys
    torch.testing.assert_close(compiled, eager)
    for p, g in zip(model.parameters(), grads, strict=True):
        torch.testing.assert_close(p.grad, g)


FLEX_EAGER = "ignore:flex_attention called without torch.compile"


@pytest.mark.filterwarnings(FLEX_EAGER)
def test_every_attention_kernel_gives_the_same_output_from_the_same_weights() -> None:
    torch.manual_seed(0)
    model = MaskedSwinIR(SwinIRConfig(embed_dim=20, depths=(2, 2), heads=2, drop_path=0.0)).eval()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(2, 3, 40, 56)
    outputs = {}
    with torch.no_grad():
        for kernel in ("explicit", "sdpa", "flex"):
            model.use_attention(kernel)
            outputs[kernel] = model(x, generator=torch.Generator().manual_seed(3))
            with torch.autocast("cpu", dtype=torch.bfloat16):
                outputs[kernel, "bf16"] = model(x, generator=torch.Generator().manual_seed(3)).float()
    assert model.state_dict().keys() == weights.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())
    for kernel in ("sdpa", "flex"):
        torch.testing.assert_close(outputs[kernel], outputs["explicit"], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(outputs[kernel, "bf16"], outputs["explicit"], atol=0.03, rtol=0)
    assert not torch.equal(outputs["sdpa"], outputs["flex"])  # really two different computations


def test_flex_kernel_pads_heads_to_a_kernel_friendly_width() -> None:
    assert [swinir._flex_head_dim(d) for d in (6, 10, 12, 16, 20, 32)] == [16, 16, 16, 16, 32, 32]


def test_auto_kernel_and_unknown_kernels() -> None:
    cpu = torch.device("cpu")
    with torch.no_grad():
        assert swinir.resolve_kernel("auto", cpu) == "sdpa"
    assert swinir.resolve_kernel("auto", cpu) == "explicit"
    assert swinir.resolve_kernel("flex", cpu) == "flex"
    model = MaskedSwinIR(SwinIRConfig(embed_dim=12, depths=(2,), heads=2))
    with pytest.raises(MdnError, match="unknown attention kernel 'fast'"):
        model.use_attention("fast")
    assert model.attention_kernel == "auto"


def test_flex_kernel_compiles_as_on_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The GPU path compiles FlexAttention with the score modification; inductor compiles it for the CPU too, so
    the same tracing runs here."""
    torch.manual_seed(0)
    model = MaskedSwinIR(SwinIRConfig(embed_dim=12, depths=(2,), heads=2, drop_path=0.0)).eval()
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        reference = model.use_attention("sdpa")(x, generator=torch.Generator().manual_seed(0))
        monkeypatch.setattr(swinir, "_flex_for", lambda device: swinir._compiled_flex())
        compiled = model.use_attention("flex")(x, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(compiled, reference, atol=1e-5, rtol=1e-5)


def test_flex_kernel_compiles_alone_on_a_gpu_and_inside_a_compiled_network(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = torch.device("cuda")
    monkeypatch.setattr(swinir, "_compiled_flex", lambda: "compiled alone")
    assert swinir._flex_for(gpu) == "compiled alone"
    assert swinir._flex_for(torch.device("cpu")) is swinir.flex_attention
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert swinir._flex_for(gpu) is swinir.flex_attention


@pytest.mark.filterwarnings(FLEX_EAGER)
def test_network_with_the_flex_kernel_traces_as_one_graph() -> None:
    model = MaskedSwinIR(SwinIRConfig(embed_dim=12, depths=(2,), heads=2, drop_path=0.0)).eval().use_attention("flex")
    x = torch.rand(1, 3, 24, 40)
    with torch.no_grad():
        masks = model._masks(x, torch.Generator().manual_seed(0), True)
        explained = torch._dynamo.explain(model.network)(x, *masks)
    assert explained.graph_count == 1 and explained.graph_break_count == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_flex_kernel_trains_like_the_others_on_a_gpu() -> None:
    torch.manual_seed(0)
    model = MaskedSwinIR(SwinIRConfig(embed_dim=20, depths=(2, 2), heads=2, drop_path=0.0)).cuda()
    x = torch.rand(2, 3, 40, 56, device="cuda")
    results = {}
    for kernel in ("sdpa", "flex"):
        model.zero_grad()
        out = model.use_attention(kernel)(x, generator=torch.Generator("cuda").manual_seed(3))
        out.square().mean().backward()
        results[kernel] = (out.detach(), [p.grad.clone() for p in model.parameters()])
    torch.testing.assert_close(results["flex"][0], results["sdpa"][0], atol=1e-4, rtol=1e-4)
    for flex, sdpa in zip(results["flex"][1], results["sdpa"][1], strict=True):
        torch.testing.assert_close(flex, sdpa, atol=1e-4, rtol=1e-3)
