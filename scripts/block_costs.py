"""What one Swin block's operators cost on the CPU: milliseconds and GFLOP/s for a tile's tokens, in bf16.

    python scripts/block_costs.py --config paper --tokens 65536 --threads 1

Prints the four linear layers, the window attention (torch's fused kernel, as inference runs it) and the two
layer norms (float32, as the residual stream is), each the median of `--runs` calls after two warm-up calls.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from mdn.nets.swinir import SIZES


def median_ms(call: Callable[[], object], runs: int) -> float:
    for _ in range(2):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="paper", choices=sorted(SIZES))
    parser.add_argument("--tokens", type=int, default=65536, help="a multiple of the window's tokens")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=10)
    a = parser.parse_args()
    torch.set_num_threads(a.threads)
    config = SIZES[a.config]
    dim, heads, window_tokens = config.embed_dim, config.heads, config.window**2
    hidden = int(dim * config.mlp_ratio)
    bf16 = torch.bfloat16
    print(f"{a.config}: {a.tokens} tokens of {dim} channels, {heads} heads, {a.threads} thread(s)")
    print("| operator | ms | GFLOP/s |\n|---|---|---|")
    for name, (inputs, outputs) in {
        "qkv": (dim, 3 * dim), "attention projection": (dim, dim), "MLP in": (dim, hidden), "MLP out": (hidden, dim),
    }.items():  # fmt: skip
        x, weight = torch.randn(a.tokens, inputs, dtype=bf16), torch.randn(outputs, inputs, dtype=bf16)
        bias = torch.randn(outputs, dtype=bf16)
        ms = median_ms(lambda x=x, w=weight, b=bias: F.linear(x, w, b), a.runs)
        print(f"| {name}, {inputs} -> {outputs} | {ms:.2f} | {2 * a.tokens * inputs * outputs / ms / 1e6:.0f} |")
    windows = a.tokens // window_tokens
    q, k, v = (torch.randn(windows, heads, window_tokens, dim // heads, dtype=bf16) for _ in range(3))
    mask = torch.randn(1, heads, window_tokens, window_tokens, dtype=bf16)
    ms = median_ms(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask), a.runs)
    flops = 4 * windows * heads * window_tokens**2 * (dim // heads)
    print(f"| window attention, {windows} windows x {heads} heads | {ms:.2f} | {flops / ms / 1e6:.0f} |")
    tokens = torch.randn(a.tokens, dim)
    norm = torch.nn.LayerNorm(dim)
    with torch.no_grad():
        print(f"| layer norm, float32 | {median_ms(lambda: norm(tokens), a.runs):.2f} | |")


if __name__ == "__main__":
    main()
