"""Grey 16-bit and float files through a card, stabilised (as `mdn denoise` runs them) and stretched (as before
`tonemap.fit_noisy`), on a set of grey files:

- three procedural specimens (`mdn.noise.specimens`, seeds 9201-9203, one 384² frame each) recorded by a bright
  camera (100-20,000 counts, 8 counts per photon, read noise 5) and a dark one (500-2,500 counts, 200 counts per
  photon, read noise 60), uint16;
- six scikit-image grey pictures (camera, moon, coins, brick, grass, gravel; their first 384²) with Gaussian noise
  of sigma 0.04 stored as uint16, and with photon noise at 40 photons for white stored as float32.

    python scripts/grey_transform_check.py runs/grey-transform --threads 1

Since the grey stage's noise scale was chosen on it (docs/microscopy.md), a second set reports:

    python scripts/grey_transform_check.py runs/grey-report --seeds 9301,9302,9303 --noise-seed 4343 --corner

(other specimens, the pictures' bottom-right 384², other noise). Prints a markdown table of PSNR (dB, on each
clean picture's own range) per file and per group.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import tifffile
from skimage import data, util

import mdn
from mdn.io import tonemap
from mdn.noise import specimens

CAMERAS = {
    "bright": specimens.Microscope(low=100, high=20000, counts_per_photon=8, read_noise=5),
    "dark": specimens.Microscope(low=500, high=2500, counts_per_photon=200, read_noise=60),
}
PICTURES = ("camera", "moon", "coins", "brick", "grass", "gravel")
SIDE = 384


def make_set(
    folder: Path, seeds: tuple[int, ...] = (9201, 9202, 9203), noise_seed: int = 4242, corner: bool = False
) -> dict[str, np.ndarray]:
    """Write the noisy files into `folder` (specimens of `seeds`; the pictures' first 384², or with `corner` their
    last, noise from `noise_seed`); returns each file's clean picture in its stored units."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(noise_seed)
    clean: dict[str, np.ndarray] = {}
    for seed in seeds:
        specimen = specimens.fluorescence_stack(1, SIDE, seed)
        for name, camera in CAMERAS.items():
            stem = f"cells{seed}_{name}"
            tifffile.imwrite(folder / f"{stem}.tif", camera.record(specimen, np.random.default_rng(seed + 7))[0])
            clean[stem] = camera.signal(specimen)[0].astype(np.float64)
    for picture in PICTURES:
        whole = util.img_as_float(getattr(data, picture)())
        truth = whole[-SIDE:, -SIDE:] if corner else whole[:SIDE, :SIDE]
        gaussian = np.clip(np.round((truth + rng.normal(0, 0.04, truth.shape)) * 65535), 0, 65535)
        tifffile.imwrite(folder / f"{picture}_gauss16.tif", gaussian.astype(np.uint16))
        clean[f"{picture}_gauss16"] = truth * 65535
        tifffile.imwrite(folder / f"{picture}_photon_float.tif", (rng.poisson(truth * 40) / 40).astype(np.float32))
        clean[f"{picture}_photon_float"] = truth
    return clean


def psnr(estimate: np.ndarray, truth: np.ndarray) -> float:
    return float(10 * np.log10(np.ptp(truth) ** 2 / np.mean((estimate.astype(np.float64) - truth) ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--model", help="a card (default: the default)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seeds", default="9201,9202,9203", help="the specimens' seeds, comma-separated")
    parser.add_argument("--noise-seed", type=int, default=4242, help="the pictures' noise")
    parser.add_argument("--corner", action="store_true", help="the pictures' bottom-right 384², not top-left")
    args = parser.parse_args()
    seeds = tuple(int(s) for s in args.seeds.split(","))
    clean = make_set(args.folder, seeds, args.noise_seed, args.corner)
    stabilised = tonemap.fit_noisy
    scores: dict[str, dict[str, float]] = {"noisy": {}, "stretched": {}, "stabilised": {}}
    for stem, truth in clean.items():
        path = args.folder / f"{stem}.tif"
        scores["noisy"][stem] = psnr(tifffile.imread(path), truth)
        for mode, fit in (("stretched", tonemap.fit), ("stabilised", stabilised)):
            tonemap.fit_noisy = fit  # what `tonemap.fitter` hands a card without a transform of its own
            scores[mode][stem] = psnr(mdn.denoise(path, args.model, threads=args.threads), truth)
    tonemap.fit_noisy = stabilised
    print("| file | noisy | stretched | stabilised | gain |\n|---|---|---|---|---|")
    for stem in clean:
        row = [scores[mode][stem] for mode in scores]
        print(f"| {stem} | " + " | ".join(f"{v:.2f}" for v in row) + f" | {row[2] - row[1]:+.2f} |")
    for group in ("cells", "gauss16", "photon_float"):
        stems = [s for s in clean if group in s]
        means = [statistics.mean(scores[mode][s] for s in stems) for mode in scores]
        gains = [scores["stabilised"][s] - scores["stretched"][s] for s in stems]
        print(f"| mean {group} | " + " | ".join(f"{v:.2f}" for v in means) + f" | {statistics.mean(gains):+.2f}"
              f" (least {min(gains):+.2f}) |")  # fmt: skip


if __name__ == "__main__":
    main()
