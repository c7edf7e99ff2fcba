"""Build the bench's sample set, mdn/samples/: 256² crops of colour photographs that no card trains on.

Usage: python scripts/bench_samples.py [--photos data/photos] [--cache DIR]

Sources (all offline once installed, each file's source and licence in mdn/samples/SOURCES.json):
- sporco's wheel (fetched with `pip download sporco`): kodim23, monarch, sail, tulips, barbara, the classic colour
  test images, kept out of every training set (`scripts/photo_data.py` refuses them);
- scikit-image's three held back from training: astronaut, chelsea, coffee;
- the photo set's held-back photographs (`scripts/photo_data.py`'s bench split: never trained on nor validated
  with);
- matplotlib's sample photograph of Grace Hopper.

Each image is box-downscaled by an integer factor to a short side of 512 or just above, then its central 256²
is kept, so a crop shows a part of a scene at a natural scale rather than a few blown-up pixels. Grey sets are
made from these (`mdn bench --grey`: the mean of the channels).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import matplotlib
import numpy as np
import skimage
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "mdn" / "samples"
SIZE = 256
SPORCO = ("kodim23", "monarch", "sail", "tulips", "barbara")
SPORCO_VERSION = "0.2.2.post1"
SKIMAGE = ("astronaut", "chelsea", "coffee")
SKIMAGE_LICENCES = {"astronaut": "public domain (NASA)", "chelsea": "CC0-1.0", "coffee": "CC0-1.0"}


def crop(pixels: np.ndarray) -> np.ndarray:
    """Box-downscale by the largest integer factor that keeps the short side >= 512, then the central 256²."""
    factor = max(1, min(pixels.shape[:2]) // 512)
    h, w = pixels.shape[0] // factor * factor, pixels.shape[1] // factor * factor
    small = pixels[:h, :w].astype(np.float64).reshape(h // factor, factor, w // factor, factor, 3).mean(axis=(1, 3))
    y, x = (small.shape[0] - SIZE) // 2, (small.shape[1] - SIZE) // 2
    return np.clip(np.rint(small[y : y + SIZE, x : x + SIZE]), 0, 255).astype(np.uint8)


def rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def sporco_images(cache: Path) -> dict[str, tuple[Path, dict]]:
    wheels = sorted(cache.glob("sporco-*.whl"))
    if not wheels:
        fetch = ["pip", "download", "--no-deps", "--only-binary=:all:", f"sporco=={SPORCO_VERSION}", "-d", str(cache)]
        subprocess.run([sys.executable, "-m", *fetch], check=True)
        wheels = sorted(cache.glob("sporco-*.whl"))
    with zipfile.ZipFile(wheels[-1]) as wheel:
        wheel.extractall(cache / "sporco", [f"sporco/data/{name}.png" for name in SPORCO])
    source = {"package": "sporco", "version": SPORCO_VERSION, "licence": "classic test image, as sporco ships it"}
    return {
        n: (cache / "sporco" / "sporco" / "data" / f"{n}.png", {**source, "path": f"sporco/data/{n}.png"})
        for n in SPORCO
    }


def skimage_images() -> dict[str, tuple[Path, dict]]:
    folder = Path(skimage.__file__).parent / "data"
    return {
        n: (folder / f"{n}.png", {"package": "scikit-image", "version": skimage.__version__,
                                  "path": f"skimage/data/{n}.png", "licence": SKIMAGE_LICENCES[n]})
        for n in SKIMAGE
    }  # fmt: skip


def held_back_photos(photos: Path) -> dict[str, tuple[Path, dict]]:
    entries = json.loads((photos / "manifest.json").read_text())
    found = {}
    for e in entries:
        if e["file"].startswith("bench/"):
            name = e["file"].split("__")[-1].removesuffix(".png").split("_by_")[0].lower()
            source = {k: e[k] for k in ("package", "version", "path", "licence")}
            found[name] = (photos / e["file"], {**source, "note": "downscaled by the photo set's script"})
    return found


def matplotlib_images() -> dict[str, tuple[Path, dict]]:
    path = Path(matplotlib.__file__).parent / "mpl-data" / "sample_data" / "grace_hopper.jpg"
    source = {"package": "matplotlib", "version": matplotlib.__version__,
              "path": "mpl-data/sample_data/grace_hopper.jpg",
              "licence": "public domain (US Navy photograph)"}  # fmt: skip
    return {"grace_hopper": (path, source)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=ROOT / "data" / "photos", help="scripts/photo_data.py's OUT")
    parser.add_argument("--cache", type=Path, default=ROOT / "data" / "bench-sources")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    chosen = {**sporco_images(args.cache), **skimage_images(), **held_back_photos(args.photos), **matplotlib_images()}
    SAMPLES.mkdir(exist_ok=True)
    for old in SAMPLES.glob("*.png"):
        old.unlink()
    record = {}
    for name, (path, source) in chosen.items():
        Image.fromarray(crop(rgb(path))).save(SAMPLES / f"{name}.png", optimize=True)
        record[f"{name}.png"] = {**source, "crop": f"central {SIZE}² after an integer box downscale"}
    (SAMPLES / "SOURCES.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"{len(record)} samples from {len({s['package'] for s in record.values()})} packages in {SAMPLES}")


if __name__ == "__main__":
    main()
