"""How a render card's lead over OIDN moves with the image's size: one hand-built scene rendered at several sizes.

    python scripts/render_scales.py --scene cornell --sizes 128,160,224 --seeds 6 --threads 1
    python scripts/render_scales.py --model path/to/card.json --model unet-render --threads 1

A scene of `scripts/handbuilt_renders.py` (the plain Cornell box by default) is the same picture at every size:
only the pixels' scale changes, and with a box filter each pixel's noise stays that of its sample count. Each
size gets a 1,024-sample reference (cached under `--cache`), then `--seeds` independent renders at 4 and 16
samples; every render goes through each card as `mdn denoise` writes an EXR and through OIDN (HDR, quality high),
and is scored through the tone map fitted on the noisy render (`mdn bench --renders`' PSNR). The table gives,
per size and sample count, each card's PSNR and its difference to OIDN, mean ± standard error over the seeds.
`--border 4` leaves out the Cornell box's frame: a dark band 2-4 pixels wide whose edge falls across pixels
differently at each size, where both denoisers make their largest errors.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np
import torch

import mdn
from mdn import metrics, peers, registry
from mdn.io import tonemap
from mdn.renders import backend, dataset

SPPS = (4, 16)
REFERENCE_SPP = 1024


def _handbuilt():
    """scripts/handbuilt_renders.py, loaded from its file beside this one."""
    path = Path(__file__).resolve().parent / "handbuilt_renders.py"
    spec = importlib.util.spec_from_file_location("handbuilt_renders", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference(scene: dict, folder: Path, threads: int, name: str) -> np.ndarray:
    """The scene's 1,024-sample reference beauty, rendered once into `folder` (a scene folder of the render
    set format, with no noisy renders) and read from there after."""
    if not folder.is_dir():
        dataset.write_scene(folder, scene, (), REFERENCE_SPP, [7], threads, name)
    return dataset.reference(folder).beauty


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", default="cornell", help="a scene of scripts/handbuilt_renders.py (cornell)")
    parser.add_argument("--sizes", default="128,160,224", help="image sides in pixels, comma-separated")
    parser.add_argument("--seeds", type=int, default=6, help="independent noisy renders per size and count")
    parser.add_argument("--model", action="append", help="render card (repeatable; default: the EXR default)")
    parser.add_argument(
        "--border", type=int, default=1, help="pixels at each edge left out of the score (as the bench: 1)"
    )
    parser.add_argument("--cache", type=Path, default=Path("data/renders/scales"), help="where references go")
    parser.add_argument("--threads", type=int, default=0, help="renderer and torch threads (0: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    models = [mdn.load_model(name) for name in args.model or [registry.default_card(hdr=True).name]]
    mi = backend.mitsuba(args.threads)
    handbuilt = _handbuilt()
    scored = f", {args.border} px at each edge left out" if args.border != 1 else ""
    print(f"{args.scene}: card - OIDN (PSNR dB{scored}), mean ± standard error over {args.seeds} renders")
    print(f"| size | spp | {' | '.join(m.name for m in models)} | OIDN |")
    print("|---|---|" + "---|" * (len(models) + 1))
    for size in (int(s) for s in args.sizes.split(",")):
        description = handbuilt.scenes("box", size)[args.scene]
        ref = reference(description, args.cache / f"{args.scene}-{size}", args.threads, f"{args.scene}, {size} px")
        scene = mi.load_dict(description)
        for spp in SPPS:
            scores = []
            for seed in range(args.seeds):
                noisy = np.asarray(mi.render(scene, spp=spp, seed=1000 + seed), dtype=np.float32)[..., :3]
                display = tonemap.ToneMap.fit(noisy)
                outputs = [mdn.denoise(noisy, model, hdr=True) for model in models] + [peers.oidn_hdr(noisy)]
                target = display.forward(ref)
                scores.append([metrics.psnr(display.forward(o), target, args.border) for o in outputs])
            table = np.array(scores)
            cells = []
            for j in range(len(models)):
                lead = table[:, j] - table[:, -1]
                spread = lead.std(ddof=1) / np.sqrt(len(lead)) if len(lead) > 1 else 0.0
                cells.append(f"{table[:, j].mean():.2f} ({lead.mean():+.2f} ± {spread:.2f})")
            print(f"| {size} | {spp} | {' | '.join(cells)} | {table[:, -1].mean():.2f} |", flush=True)


if __name__ == "__main__":
    main()
