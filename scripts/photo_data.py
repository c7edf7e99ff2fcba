"""Build a training set of natural photographs from Debian 12 (bookworm) packages.

Usage: python scripts/photo_data.py OUT [--cache DIR]

Each package in ALLOW_LIST is fetched with ``apt-get download`` (skipped when the .deb is already in the
cache), unpacked with ``dpkg -x`` and the listed photos (chosen by eye from contact sheets: natural photographs
only, no renders, drawings, logos, text or blur-only images) are box-downscaled by an integer factor >= 2 so
sensor noise and JPEG blocks average away. Outputs go to OUT/train, OUT/val (validation curves) and OUT/bench
(the bench's samples: never trained on nor validated with) as 8-bit RGB PNGs, with OUT/manifest.json recording
source, version, licence, sizes and residual noise of every image.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

MAX_SIDE = 1600
BENCH_STEMS = {"astronaut", "chelsea", "coffee", "kodim23", "monarch", "sail", "tulips", "barbara"}

_LOMIRI = "usr/share/backgrounds"
_MATE = "usr/share/backgrounds/mate/nature"
_PLASMA = "usr/share/wallpapers/{}/contents/images/2560x1600.jpg"
_KPA = "usr/share/kphotoalbum/demo"
_LXQT = "usr/share/lxqt/wallpapers"

ALLOW_LIST: dict[str, list[str]] = {
    "lomiri-wallpapers-16.04": [
        f"{_LOMIRI}/{name}.jpg"
        for name in (
            "Bridge_by_Sander_Klootwijk",
            "Dragonfly_by_Bolly",
            "Picture_0B_by_freespace",
            "Picture_1A_by_freespace",
            "Wine_by_Jakkub_Mede",
            "aitzgorri_by_Aitzol_Berasategi",
            "free_by_Peter_Nerlich",
            "friends_by_Aitzol_Berasategi",
            "greentock_by_Peter_Nerlich",
            "life_by_Aitzol_Berasategi",
            "picosdeeuropa_by_Aitzol_Berasategi",
            "seeding_by_Clements_Engelhardt",
            "sunset_by_Aitzol_Berasategi",
        )
    ],
    "lomiri-wallpapers-20.04": [f"{_LOMIRI}/Kleiber_by_Lukas_Baubkus.jpg"],
    "mate-backgrounds": [
        f"{_MATE}/{name}.jpg"
        for name in (
            "Aqua",
            "Blinds",
            "Dune",
            "FreshFlower",
            "Garden",
            "GreenMeadow",
            "LadyBird",
            "RainDrops",
            "Storm",
            "TwoWings",
            "Wood",
            "YellowFlower",
        )
    ],
    "palapeli-data": [
        f"usr/share/palapeli/collection/{name}.jpg"
        for name in (
            "castle-maintenon",
            "cincinnati-bridge",
            "citrus-fruits",
            "european-honey-bee",
            "panther-chameleon-female",
        )
    ],
    "plasma-workspace-wallpapers": [
        _PLASMA.format(name)
        for name in (
            "BytheWater",
            "ColdRipple",
            "ColorfulCups",
            "EveningGlow",
            "FallenLeaf",
            "Grey",
            "Kite",
            "OneStandsOut",
            "Path",
            "summer_1am",
        )
    ],
    "tuxtype-data": [f"usr/share/tuxtype/images/kcas{i}.jpg" for i in range(12)],
    "kphotoalbum": [
        f"{_KPA}/{name}.jpg"
        for name in (
            "anne_helene",
            "donna",
            "donna_2",
            "grand_canyon_1",
            "grand_canyon_2",
            "grand_canyon_3",
            "jesper",
            "jesper_2",
            "new_wave_1",
            "new_wave_2",
            "pool",
            "skagen",
            "skagen_2",
            "snow",
            "spiff",
            "sunset",
            "wayne",
        )
    ],
    "lxqt-themes": [
        f"{_LXQT}/{name}"
        for name in (
            "Butterfly-Kenneth-Wimer.jpg",
            "Valendas.png",
            "after-the-rain.jpg",
            "appleflower.png",
            "beam.png",
            "butterfly.png",
            "drop.png",
            "flowers.png",
            "fog.jpg",
            "this-is-not-windows.jpg",
        )
    ],
}

# Held back from training and validation for the bench's sample set (scripts/bench_samples.py): one per package
# family, spread over subjects (mountains, insect, sunset, lake, animal).
BENCH = {
    ("lomiri-wallpapers-16.04", f"{_LOMIRI}/picosdeeuropa_by_Aitzol_Berasategi.jpg"),
    ("mate-backgrounds", f"{_MATE}/LadyBird.jpg"),
    ("plasma-workspace-wallpapers", _PLASMA.format("EveningGlow")),
    ("tuxtype-data", "usr/share/tuxtype/images/kcas4.jpg"),
    ("kphotoalbum", f"{_KPA}/spiff.jpg"),
}
# Held back from training for validation curves: another one per family.
VAL = {
    ("lomiri-wallpapers-16.04", f"{_LOMIRI}/Dragonfly_by_Bolly.jpg"),
    ("mate-backgrounds", f"{_MATE}/Garden.jpg"),
    ("plasma-workspace-wallpapers", _PLASMA.format("Kite")),
    ("tuxtype-data", "usr/share/tuxtype/images/kcas7.jpg"),
    ("kphotoalbum", f"{_KPA}/grand_canyon_1.jpg"),
}
SPLITS = ("train", "val", "bench")


def check_not_bench(path: str) -> None:
    """Refuse files whose stem matches one of the project's bench sample images."""
    if Path(path).stem.lower() in BENCH_STEMS:
        raise ValueError(f"refusing bench sample image: {path}")


def choose_factor(width: int, height: int, max_side: int = MAX_SIDE) -> int:
    """Smallest integer factor >= 2 that brings the long side to at most ``max_side``."""
    return max(2, math.ceil(max(width, height) / max_side))


def box_downscale(img: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` x ``factor`` blocks of an (H, W[, C]) array, cropping any remainder."""
    h, w = img.shape[0] // factor * factor, img.shape[1] // factor * factor
    blocks = img[:h, :w].astype(np.float64).reshape(h // factor, factor, w // factor, factor, *img.shape[2:])
    return blocks.mean(axis=(1, 3))


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Round and clip a float array to 8-bit."""
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def noise_sigma(img: np.ndarray) -> float:
    """Donoho's robust noise estimate: median(|HH|) / 0.6745 of the finest Haar diagonal band of the grey image."""
    grey = img.astype(np.float64)
    if grey.ndim == 3:
        grey = grey @ np.array([0.299, 0.587, 0.114])
    h, w = grey.shape[0] // 2 * 2, grey.shape[1] // 2 * 2
    g = grey[:h, :w]
    hh = (g[0::2, 0::2] - g[0::2, 1::2] - g[1::2, 0::2] + g[1::2, 1::2]) / 2
    return float(np.median(np.abs(hh)) / 0.6745)


def fetch_deb(package: str, cache: Path) -> Path:
    """Return the cached .deb of ``package``, downloading it with apt-get if missing."""
    found = sorted(cache.glob(f"{package}_*.deb"))
    if not found:
        subprocess.run(["apt-get", "download", package], cwd=cache, check=True)
        found = sorted(cache.glob(f"{package}_*.deb"))
    return found[-1]


def unpack_deb(deb: Path, dest: Path) -> Path:
    """Unpack ``deb`` into ``dest`` (once) and return it."""
    if not dest.is_dir():
        tmp = dest.with_name(dest.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        subprocess.run(["dpkg", "-x", str(deb), str(tmp)], check=True)
        tmp.rename(dest)
    return dest


def deb_version(deb: Path) -> str:
    """Version field of a .deb."""
    done = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True, text=True)
    return done.stdout.strip()


def _dep5_paragraphs(text: str) -> list[tuple[list[str], str]]:
    """(Files patterns, License short name) for each Files paragraph of a DEP-5 copyright file."""
    result = []
    for para in re.split(r"\n\s*\n", text):
        files = re.search(r"^Files:(.*(?:\n[ \t].*)*)", para, re.M)
        licence = re.search(r"^License:[ \t]*(.*)", para, re.M)
        if files and licence:
            result.append((files.group(1).split(), licence.group(1).strip()))
    return result


def _matches(pattern: str, path: str) -> bool:
    """Whether a source-tree pattern names the installed ``path`` (by path suffix, or by file name)."""
    if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, "*/" + pattern):
        return True
    base = pattern.rsplit("/", 1)[-1]
    return "*" not in base and base == path.rsplit("/", 1)[-1]


def licence_for(copyright_text: str, path: str) -> str:
    """Licence of ``path`` from a copyright file: the last matching DEP-5 Files paragraph, else licence lines."""
    paragraphs = _dep5_paragraphs(copyright_text)
    if paragraphs:
        hits = [lic for pats, lic in paragraphs if any(_matches(p, path) for p in pats)]
        return hits[-1] if hits else " / ".join(sorted({lic for _, lic in paragraphs}))
    keyword = re.compile(r"GNU|GPL|Creative Commons|CC[- ]BY|BSD|MIT|public domain", re.I)
    lines = [ln.strip() for ln in copyright_text.splitlines() if "licen" in ln.lower() and keyword.search(ln)]
    return " / ".join(lines[:2]) or "unknown"


def load_rgb(path: Path) -> np.ndarray:
    """Load an image as an (H, W, 3) uint8 array, honouring EXIF orientation."""
    with Image.open(path) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


def output_name(package: str, path: str) -> str:
    """``<package>__<stem>.png``; Plasma wallpapers, whose files are named by size, take their theme name."""
    stem = Path(path).stem
    if re.fullmatch(r"\d+x\d+", stem):
        stem = Path(path).parents[2].name
    return f"{package}__{stem}.png"


def process(src: Path, dst: Path) -> tuple[tuple[int, int], int, np.ndarray]:
    """Downscale ``src`` into ``dst`` (unless already there); return original (w, h), factor and the output."""
    with Image.open(src) as im:
        w, h = ImageOps.exif_transpose(im).size
    factor = choose_factor(w, h)
    if dst.exists():
        return (w, h), factor, np.asarray(Image.open(dst).convert("RGB"))
    out = to_uint8(box_downscale(load_rgb(src), factor))
    Image.fromarray(out).save(dst, optimize=True)
    return (w, h), factor, out


def build(out_dir: Path, cache: Path) -> list[dict]:
    """Fetch, select and downscale every allow-listed photo; return the manifest entries."""
    cache.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        (out_dir / split).mkdir(parents=True, exist_ok=True)
    entries = []
    for package, paths in ALLOW_LIST.items():
        deb = fetch_deb(package, cache)
        root = unpack_deb(deb, cache / "unpacked" / package)
        copyright_text = (root / "usr/share/doc" / package / "copyright").read_text(errors="replace")
        version = deb_version(deb)
        for path in paths:
            check_not_bench(path)
            split = "bench" if (package, path) in BENCH else "val" if (package, path) in VAL else "train"
            dst = out_dir / split / output_name(package, path)
            if any(e["file"].endswith("/" + dst.name) for e in entries):
                raise ValueError(f"duplicate output name: {dst.name}")
            (w, h), factor, out = process(root / path, dst)
            entries.append(
                {
                    "file": str(dst.relative_to(out_dir)),
                    "package": package,
                    "version": version,
                    "path": path,
                    "licence": licence_for(copyright_text, path),
                    "original_size": [w, h],
                    "factor": factor,
                    "output_size": [out.shape[1], out.shape[0]],
                    "noise_sigma": round(noise_sigma(out), 3),
                }
            )
            print(f"{dst.relative_to(out_dir)}  x1/{factor}  sigma={entries[-1]['noise_sigma']:.2f}", flush=True)
    return entries


def summarise(entries: list[dict]) -> None:
    """Print counts, megapixels, per-package counts and the median residual noise."""
    for split in SPLITS:
        sel = [e for e in entries if e["file"].startswith(split + "/")]
        mp = sum(e["output_size"][0] * e["output_size"][1] for e in sel) / 1e6
        print(f"{split}: {len(sel)} images, {mp:.1f} MP")
    for package in ALLOW_LIST:
        print(f"  {package}: {sum(e['package'] == package for e in entries)}")
    print(f"median noise sigma: {np.median([e['noise_sigma'] for e in entries]):.3f} (8-bit units)")


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="output folder")
    parser.add_argument("--cache", type=Path, help="folder for downloaded .debs (default: OUT/.debs)")
    args = parser.parse_args()
    cache = (args.cache or args.out / ".debs").resolve()
    entries = build(args.out, cache)
    (args.out / "manifest.json").write_text(json.dumps(entries, indent=1) + "\n")
    summarise(entries)


if __name__ == "__main__":
    main()
