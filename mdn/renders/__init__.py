"""Monte Carlo renders with Mitsuba 3, an optional extra: the bench's Cornell-box scenes (`cornell`) and random
scenes with albedo and normal buffers for training a render denoiser (`procedural`, `dataset`)."""

from mdn.renders.cornell import available, render, scenes

__all__ = ["available", "render", "scenes"]
