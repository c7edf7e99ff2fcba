"""The default's U-Net in int8 (post-training static quantisation, PyTorch's x86 back end) against bf16 and fp32:
time per 512² tile and PSNR over the bench's 14 pictures at Gaussian sigma 15, 25 and 50.

    python scripts/int8_probe.py --threads 2

The DCT stage before the U-Net stays in float (it thresholds coefficients); the U-Net after it is quantised
whole, or with its full-resolution layers kept in float. Calibration: crops of the training photos under Gaussian
noise (never the bench's pictures). A measurement for docs/performance.md, not a path of `mdn denoise`.
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import mdn
from mdn.bench import grid
from mdn.metrics import psnr

VARIANTS = {
    "int8, every layer": [],
    "int8, first and last layers in float": ["first0", "last"],
    "int8, full-resolution layers in float": ["first0", "first1", "last", "up.0"],
}


class Core(nn.Module):
    """The U-Net after its DCT stage, as plain modules a graph tracer can quantise (no masks, no kernels)."""

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.first0, self.first1 = unet.first[0], unet.first[1]
        self.down, self.bottom, self.up, self.last = unet.down, unet.bottom, unet.up, unet.last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.first1(F.relu(self.first0(x))))
        skips = []
        for layer in self.down:
            skips.append(y)
            y = F.relu(layer(F.max_pool2d(y, 2)))
        y = F.relu(self.bottom(y))
        for level in reversed(range(len(self.up))):
            merge, refine = self.up[level]
            y = torch.cat([F.interpolate(y, scale_factor=2.0, mode="nearest"), skips[level]], dim=1)
            y = F.relu(refine(F.relu(merge(y))))
        return self.last(y)


def tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].float()


def calibration(dct: nn.Module, folder: Path, count: int = 12) -> list[torch.Tensor]:
    """Noisy 256² crops of the training photos, through the DCT stage."""
    rng = np.random.default_rng(0)
    crops = []
    for path in sorted(folder.glob("*.png")):
        photo = iio.imread(path)[..., :3].astype(np.float32) / 255
        if min(photo.shape[:2]) < 256:
            continue
        top, left = (int(rng.integers(0, n - 255)) for n in photo.shape[:2])
        crop = photo[top : top + 256, left : left + 256]
        for sigma in (10, 30, 50):
            noisy = np.clip(crop + rng.normal(0, sigma / 255, crop.shape), 0, 1).astype(np.float32)
            crops.append(dct(tensor(noisy)))
        if len(crops) >= 3 * count:
            break
    return crops


def quantised(core: nn.Module, floats: list[str], crops: list[torch.Tensor]) -> nn.Module:
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    mapping = get_default_qconfig_mapping("x86")
    for name in floats:
        mapping = mapping.set_module_name(name, None)
    plain = copy.deepcopy(core).float().to(memory_format=torch.contiguous_format)
    prepared = prepare_fx(plain, mapping, (torch.rand(1, 3, 64, 64),))
    for crop in crops:
        prepared(crop)
    return convert_fx(prepared)


def median_seconds(run, x: torch.Tensor, repeats: int = 7) -> float:
    run(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--photos", type=Path, default=Path("data/photos/train"), help="calibration photos")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # the quantisation API's deprecation notes
    torch.set_num_threads(args.threads)
    net = mdn.load_model("unet-dct-practical").net.eval()
    core = Core(net).eval()
    references = grid.load_references(None)

    def bf16(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return core(x.contiguous(memory_format=torch.channels_last)).float()

    def fp32(x: torch.Tensor) -> torch.Tensor:
        return core(x.contiguous(memory_format=torch.channels_last))

    with torch.no_grad():
        crops = calibration(net.dct, args.photos)
    runs = {"fp32": fp32, "bf16": bf16}
    runs |= {label: quantised(core, floats, crops) for label, floats in VARIANTS.items()}
    scores: dict[str, list[float]] = {label: [] for label in runs}
    with torch.no_grad():
        for name, reference in references.items():
            for sigma in (15, 25, 50):
                x = net.dct(tensor(grid.noisy_input(reference, name, "gaussian", sigma, 0)))
                for label, run in runs.items():
                    out = run(x)
                    out = x + out if net.config.residual else out
                    scores[label].append(psnr(out[0].permute(1, 2, 0).clamp(0, 1).numpy(), reference))
        tile = torch.rand(1, 3, 512, 512)
        print(f"DCT stage, 512² tile: {median_seconds(net.dct, tile):.4f} s")
        base = np.array(scores["bf16"])
        print("| U-Net after the DCT stage | s per 512² tile | x bf16 | PSNR - bf16 (sigma 15 / 25 / 50) | worst |")
        print("|---|---|---|---|---|")
        seconds = {label: median_seconds(run, tile) for label, run in runs.items()}
        for label in runs:
            change = np.array(scores[label]) - base
            per_sigma = " / ".join(f"{v:+.2f}" for v in change.reshape(-1, 3).mean(axis=0))
            speed = seconds["bf16"] / seconds[label]
            print(f"| {label} | {seconds[label]:.4f} | {speed:.2f} | {per_sigma} | {change.min():+.2f} |")


if __name__ == "__main__":
    main()
