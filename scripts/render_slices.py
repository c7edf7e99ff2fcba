"""Where a render card loses to OIDN: its error against OIDN's on a render set, sliced by scene and by pixel.

    python scripts/render_slices.py data/renders/heldout --spp 4,16 --threads 2
    python scripts/render_slices.py data/renders/handbuilt --threads 2     # scripts/handbuilt_renders.py's scenes

Every scene of the set (`scripts/render_data.py`) at each sample count, beauty only: the card as `mdn denoise`
writes an EXR (`mdn.denoise(..., hdr=True)`: the render's tone map, the network, the inverse) and OIDN on the
linear HDR render (quality high), scored as `mdn bench --renders` scores them: PSNR through the tone map fitted on
the noisy render, in 8 bits, and the relative MSE of the linear values, (x - r)² / (r² + 0.01), that render
papers quote. The tables give both by scene kind and sample count, then each pixel slice's share of the pixels,
the card's and OIDN's PSNR over its pixels (pooled over the scenes, so that a few dark scenes weigh much).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import mdn
from mdn import metrics, peers, registry
from mdn.io import tonemap
from mdn.renders import dataset, procedural

SLICES = {
    "reference dark (< 0.15)": lambda ref, noisy, albedo: ref < 0.15,
    "reference mid": lambda ref, noisy, albedo: (ref >= 0.15) & (ref < 0.6),
    "reference bright (>= 0.6)": lambda ref, noisy, albedo: ref >= 0.6,
    "noisiest 5 % of pixels": lambda ref, noisy, albedo: noisy >= np.quantile(noisy, 0.95),
    "the other 95 %": lambda ref, noisy, albedo: noisy < np.quantile(noisy, 0.95),
    "albedo < 0.05 (glass, metal, sky)": lambda ref, noisy, albedo: albedo < 0.05,
    "albedo >= 0.05": lambda ref, noisy, albedo: albedo >= 0.05,
}
"""Pixel slices from the tone-mapped reference's and noisy error's per-pixel channel mean and the albedo's."""


def scene_kind(number: int, options: procedural.SceneOptions, textures: list[Path]) -> str:
    """'room' (closed), 'box' (Cornell-like, open at the front) or 'open', with '+glass' / '+metal' where a
    surface has such a material, from the scene's own draw (the set's texture names keep the draws in step)."""
    scene = procedural.scene(number, textures, options)
    kind = "room" if "front" in scene else "box" if "ceiling" in scene else "open"
    bsdfs = json.dumps([part.get("bsdf", {}) for part in scene.values() if isinstance(part, dict)], default=str)
    extras = [name for name, key in (("glass", "dielectric"), ("metal", "conductor")) if key in bsdfs]
    return "+".join([kind, *extras])


def scene_kinds(render_set: Path) -> Callable[[Path], str]:
    """A scene folder's kind: drawn again from the set's `dataset.json` for a generated set, else the name its
    `dataset.SCENE_NAME` file gives (a hand-built set: `scripts/handbuilt_renders.py`)."""
    manifest = render_set / "dataset.json"
    if not manifest.is_file():
        return lambda folder: (folder / dataset.SCENE_NAME).read_text().split(",")[0].strip()
    recorded = json.loads(manifest.read_text())
    options = procedural.SceneOptions(**recorded["options"]["scene"])
    textures = [Path(name) for name in recorded.get("textures", [])]
    return lambda folder: scene_kind(int(folder.name.rsplit("-", 1)[1]), options, textures)


def squared_errors(out: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """(H, W) per-pixel squared error over the channels in 8 bits, one-pixel border dropped as `metrics.psnr` does."""
    difference = metrics.to_uint8(out).astype(np.float64) - metrics.to_uint8(clean).astype(np.float64)
    return (difference**2).mean(axis=-1)[1:-1, 1:-1]


def relative_mse(out: np.ndarray, reference: np.ndarray) -> float:
    """The mean of (x - r)² / (r² + 0.01) over the linear values."""
    return float(np.mean((out - reference) ** 2 / (reference**2 + 1e-2)))


def psnr(squared: float) -> float:
    return float(10 * np.log10(255.0**2 / max(squared, 1e-12)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("render_set", type=Path)
    parser.add_argument("--spp", default="4,16")
    parser.add_argument("--model", default=None, help="the card (default: the one mdn picks for EXR)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    spps = tuple(int(s) for s in args.spp.split(","))
    kind_of = scene_kinds(args.render_set)
    model = mdn.load_model(args.model or registry.default_card(hdr=True).name)
    by_case: dict[tuple[str, int], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    pixels: dict[int, dict[str, list[np.ndarray]]] = defaultdict(lambda: defaultdict(list))
    for folder in dataset.scenes(args.render_set):
        kind = kind_of(folder)
        reference = dataset.reference(folder).beauty
        for spp, noisy in dataset.noisy_renders(folder, spps):
            display = tonemap.ToneMap.fit(noisy.beauty)
            clean = display.forward(reference)
            linear = {"card": mdn.denoise(noisy.beauty, model, hdr=True), "oidn": peers.oidn_hdr(noisy.beauty)}
            errors = {name: squared_errors(display.forward(out), clean) for name, out in linear.items()}
            for name, error in errors.items():
                by_case[(kind, spp)][name].append(psnr(error.mean()))
                by_case[(kind, spp)][f"{name} relMSE"].append(relative_mse(linear[name], reference))
                pixels[spp][name].append(error.ravel())
            inner = (slice(1, -1), slice(1, -1))
            pixels[spp]["ref"].append(clean[inner].mean(axis=-1).ravel())
            pixels[spp]["noisy"].append(squared_errors(display.forward(noisy.beauty), clean).ravel())
            pixels[spp]["albedo"].append(np.clip(noisy.albedo, 0, None)[inner].mean(axis=-1).ravel())
            scores = ", ".join(f"{name} {psnr(error.mean()):.2f}" for name, error in errors.items())
            print(f"{folder.name} {kind} {spp:3d} spp: {scores}")
    print("\n| scenes | spp | n | card | OIDN | card - OIDN | card relMSE | OIDN relMSE |\n" + "|---" * 8 + "|")
    kinds = sorted({kind for kind, _ in by_case})
    for spp in spps:
        for kind in [*kinds, "all"]:
            rows = [by_case[key] for key in sorted(by_case) if key[1] == spp and kind in ("all", key[0])]
            card, oidn, card_rel, oidn_rel = (
                np.concatenate([row[name] for row in rows]) for name in ("card", "oidn", "card relMSE", "oidn relMSE")
            )
            print(
                f"| {kind} | {spp} | {len(card)} | {card.mean():.2f} | {oidn.mean():.2f} | {np.mean(card - oidn):+.2f} "
                f"| {card_rel.mean():.4f} | {oidn_rel.mean():.4f} |"
            )
    for spp in spps:
        columns = {name: np.concatenate(parts) for name, parts in pixels[spp].items()}
        card, oidn = columns["card"], columns["oidn"]
        print(f"\n{spp} spp, all scenes' pixels: card {psnr(card.mean()):.2f}, OIDN {psnr(oidn.mean()):.2f}")
        print("| pixels | share | card | OIDN | card - OIDN |\n" + "|---" * 5 + "|")
        for name, select in SLICES.items():
            chosen = select(columns["ref"], columns["noisy"], columns["albedo"])
            c, o = psnr(card[chosen].mean()), psnr(oidn[chosen].mean())
            print(f"| {name} | {chosen.mean():.0%} | {c:.2f} | {o:.2f} | {c - o:+.2f} |")


if __name__ == "__main__":
    main()
