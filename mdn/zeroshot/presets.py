"""MPI's presets (mask law, iterations, EMA weight, learning rate), the fill card each takes, and ZS-N2N's settings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """One MPI configuration: mask law, number of iterations, EMA weight of the fill and learning rate."""

    mask_ratio: float
    shared_mask: bool
    iters: int
    beta: float
    lr: float = 2e-3
    unshuffle: int = 1


PRESETS: dict[str, Preset] = {
    "full": Preset(mask_ratio=0.30, shared_mask=False, iters=1000, beta=0.99),
    "fast": Preset(mask_ratio=0.30, shared_mask=False, iters=150, beta=0.9),
    "real": Preset(mask_ratio=0.90, shared_mask=True, iters=800, beta=0.99, unshuffle=2),
    "microscopy": Preset(mask_ratio=0.30, shared_mask=True, iters=1000, beta=0.99),
}
"""MPI's configs: `full` and `fast` (Fill_m_syn, Fill_s_syn) for synthetic noise with the per-channel-mask net,
`real` (Fill_m_sidd) for camera noise with the shared-mask net: the image is pixel-unshuffled by 2 and its four
sub-images (one per sub-pixel phase, all channels) are filled as a batch, which breaks the spatial correlation
that demosaicking and filtering leave and that a fill from neighbouring pixels would otherwise reproduce.
`microscopy` departs from MPI, which ran FMD with its PolyU config (85 %, no unshuffle): photon noise is
independent per pixel, and on grey micrographs hiding 30 % of the pixels beat hiding 85 % by 1.6-3.1 dB, at low
and high photon counts alike."""


FILL_CARDS: dict[str, str] = {"full": "fill-syn", "fast": "fill-syn", "real": "fill-grey", "microscopy": "fill-grey"}
"""The pre-trained fill card each preset uses on colour images; grey images use "fill-grey", and the grey card
denoises colour channel by channel. `real` takes the grey card until a card pre-trained as MPI's SIDD net is
(80-95 % masks shared by the channels): with one channel, a shared mask is the only kind."""


def fill_card(preset: str, grey: bool) -> str:
    """The default fill card for a preset and an image kind."""
    return "fill-grey" if grey else FILL_CARDS[preset]


ZS_N2N_PRESET = Preset(mask_ratio=0.0, shared_mask=False, iters=2000, beta=0.0, lr=1e-3)
"""ZS-N2N's own settings (iterations and learning rate; it uses no mask)."""


CONTINUED = 0.25
"""The share of a preset's iterations a stack's slice runs where it continues the previous slice's network
(`--share`, the default for MPI on stacks): the network has learned the specimen, and what is left is this
slice's noise. On a 16-frame specimen stack the continued slices scored 0.1-0.3 dB above the first at a quarter
of its time (docs/zeroshot.md)."""
