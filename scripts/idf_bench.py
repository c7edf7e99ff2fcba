"""IDF (Kim et al., ICCV 2025) on the bench's colour grid: the authors' network and checkpoint, run as they ship.

IDF is no mdn peer (its network would have to be copied in); this script runs it from a checkout of its public
repository (github.com/dongjinkim9/IDF, Apache-2.0) on the same seeded noisy inputs `mdn bench` makes, and writes
rows in `mdn bench --json`'s format, so that its tables and paired differences can be put beside the cards':

    git clone https://github.com/dongjinkim9/IDF /path/to/IDF      # code and ~600 KB checkpoints
    pip install omegaconf                                           # the checkpoints pickle its objects
    python scripts/idf_bench.py /path/to/IDF --json idf.json --threads 1
    python scripts/idf_bench.py /path/to/IDF data/photos/val --noise "speckle:0.024;poisson:2.5" --json val.json

The inputs are normalised as its `configs/models/idfnet.yaml` says (per-channel mean and deviation, sigma_data
0.5) and it runs its 10 iterations without early halting, as its demo does by default.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mdn import bench, metrics, noise

RAW_MEAN = (0.36187348, 0.4361255, 0.4335091)
RAW_STD = (0.19088039, 0.19967876, 0.21309015)
SIGMA_DATA = 0.5
NETWORK = {"num_iter": 10, "kernel_size": 3, "num_channels": 3, "hidden_channels": 64, "power_alpha": 3.0,
           "halt_threshold": 0.015}  # fmt: skip
"""Its `configs/models/idfnet.yaml`'s denoiser settings."""


def load(checkout: Path, checkpoint: str) -> torch.nn.Module:
    """IDFNet from the checkout, with the weights of `pretrained_models/CHECKPOINT.ckpt` (keys `model.*`)."""
    sys.path.insert(0, str(checkout))
    from idf.archs.idf_arch import IDFNet  # the checkout's own code

    net = IDFNet(**NETWORK)
    state = torch.load(checkout / "pretrained_models" / f"{checkpoint}.ckpt", map_location="cpu", weights_only=False)
    net.load_state_dict({k.removeprefix("model."): v for k, v in state["state_dict"].items() if k.startswith("model.")})
    return net.eval()


def denoiser(net: torch.nn.Module):
    """(H, W, 3) float in [0, 1] -> IDF's output, clipped to [0, 1]."""
    scale = torch.tensor(SIGMA_DATA / np.array(RAW_STD, np.float32)).view(1, 3, 1, 1)
    bias = -torch.tensor(RAW_MEAN).view(1, 3, 1, 1) * scale

    def run(image: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))[None]
        with torch.inference_mode():
            y = (net(x * scale + bias, adaptive_iter=False, max_iter=None) - bias) / scale
        return y.clamp(0, 1)[0].numpy().transpose(1, 2, 0)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, help="a checkout of IDF's repository")
    parser.add_argument("images", nargs="*", help="clean references, as `mdn bench IMAGES` (default: its samples)")
    parser.add_argument("--noise", help="the grid, as `mdn bench --noise` (default: its whole grid)")
    parser.add_argument("--checkpoint", default="idf_g_15", help="idf_g_15 (Gaussian sigma 15 alone), idf_gp, ...")
    parser.add_argument("--json", type=Path, required=True, help="rows as `mdn bench --json` writes them")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="the bench's seed (its default: 0)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    run = denoiser(load(args.checkout, args.checkpoint))
    references = bench.load_references(args.images or None)
    rows = []
    for kind, level in bench.parse_grid(args.noise) if args.noise else bench.default_grid():
        for image, picture in references.items():
            noisy = bench.noisy_input(picture, image, kind, level, args.seed)
            clean = noise.make_noise(kind, level).reference(picture)
            start = time.perf_counter()
            out = run(noisy)
            seconds = time.perf_counter() - start
            scores = {"psnr": metrics.psnr(out, clean), "ssim": metrics.ssim(out, clean), "seconds": seconds}
            rows.append({"model": "idf", "noise": kind, "level": level, "image": image, **scores})
        print(f"{kind} {level:g}: {np.mean([r['psnr'] for r in rows[-len(references) :]]):.2f} dB", flush=True)
    args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
