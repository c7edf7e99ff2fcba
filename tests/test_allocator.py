"""Freed tensor memory stays in the process, so a training step that reallocates its buffers faults no pages."""

from __future__ import annotations

import platform
import resource

import pytest
import torch

from mdn.allocator import keep_freed_memory
from mdn.nets.skip import SkipConfig, SkipNet


def _page_faults_per_step(warm_up: int = 3, steps: int = 5) -> float:
    """Minor page faults of a fine-tuning step of a small skip net on 256x256 (about 50 MB of activations)."""
    torch.manual_seed(0)
    net = SkipNet(SkipConfig(channels=1, mask_channels=1, width=16, scales=3))
    x = torch.rand(1, 1, 256, 256)

    def step() -> None:
        net(x, torch.zeros_like(x)).square().mean().backward()

    for _ in range(warm_up):
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        step()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / steps


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="tunes glibc's malloc")
def test_a_step_reuses_freed_memory_instead_of_faulting_fresh_pages() -> None:
    assert keep_freed_memory() and keep_freed_memory()
    assert _page_faults_per_step() < 2000  # about 20,000 with glibc's defaults
