"""Pack training sets into one small folder that travels: JPEG at the highest quality that fits a size limit.

Usage: python scripts/training_pack.py OUT SOURCE [SOURCE ...] [--max-mib 40]

Each SOURCE is a folder as `scripts/photo_data.py` and `scripts/skimage_data.py` write them (train/, val/,
bench/ and a manifest.json giving each file's source and licence; bench/ stays behind) or any folder of images
(all taken for training). Every image is re-encoded as baseline JPEG with 4:4:4 chroma (grey stays grey), at
the highest quality from QUALITIES whose whole pack fits in --max-mib; the PSNR of each file against its source
is recorded, so the manifest says what the compression cost. OUT then holds train/, val/ and manifest.json,
and is read directly:

    mdn train --data OUT/train --val OUT/val ...

OUT is written to a temporary folder beside it and renamed into place, so a stopped run leaves no half pack.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

QUALITIES = (98, 97, 96, 95, 93, 90)
SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"}


def source_entries(source: Path) -> list[dict]:
    """The images of one source folder with what its manifest says of them (split, package, licence)."""
    manifest = source / "manifest.json"
    if manifest.is_file():
        entries = json.loads(manifest.read_text())
        return [{**e, "file": str(source / e["file"]), "split": e["file"].split("/")[0]} for e in entries]
    files = sorted(p for p in source.rglob("*") if p.suffix.lower() in SUFFIXES)
    return [{"file": str(p), "split": "train", "package": source.name, "licence": "unknown"} for p in files]


def load_pixels(path: Path) -> np.ndarray:
    """8-bit pixels, (H, W) for grey and (H, W, 3) for colour (alpha dropped)."""
    with Image.open(path) as image:
        grey = image.mode in ("L", "I;16", "I", "1") or (image.mode == "LA")
        return np.asarray(image.convert("L" if grey else "RGB"))


def encode(pixels: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=quality, subsampling=0, optimize=True)
    return buffer.getvalue()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def pick_quality(images: list[np.ndarray], max_bytes: int) -> int:
    """The highest quality whose pack fits in `max_bytes`."""
    for quality in QUALITIES:
        if sum(len(encode(p, quality)) for p in images) <= max_bytes:
            return quality
    raise SystemExit(f"the images do not fit in {max_bytes / 2**20:.0f} MiB even at JPEG quality {QUALITIES[-1]}")


def build(out: Path, sources: list[Path], max_mib: float) -> dict:
    """Write the pack into `out` and return its manifest."""
    entries = [e for source in sources for e in source_entries(source) if e["split"] in ("train", "val")]
    names = [f"{Path(e['file']).parent.parent.name}__{Path(e['file']).stem}.jpg" for e in entries]
    if len(set(names)) != len(names):
        raise SystemExit("two sources hold images of the same name: rename one")
    pixels = [load_pixels(Path(e["file"])) for e in entries]
    quality = pick_quality(pixels, int(max_mib * 2**20))
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    files = []
    for entry, name, image in zip(entries, names, pixels, strict=True):
        data = encode(image, quality)
        target = partial / entry["split"] / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        decoded = np.asarray(Image.open(io.BytesIO(data)))
        source = {k: v for k, v in entry.items() if k not in ("file", "split", "output_size")}
        files.append(
            {
                "file": f"{entry['split']}/{name}",
                "from": entry["file"],
                **source,
                "size": [image.shape[1], image.shape[0]],
                "channels": 1 if image.ndim == 2 else 3,
                "bytes": len(data),
                "psnr_vs_source": round(psnr(decoded, image), 2),
            }
        )
    manifest = {
        "format": f"JPEG quality {quality}, 4:4:4 chroma (grey kept grey)",
        "max_mib": max_mib,
        "mib": round(sum(f["bytes"] for f in files) / 2**20, 2),
        "splits": {s: sum(f["file"].startswith(s + "/") for f in files) for s in ("train", "val")},
        "megapixels": round(sum(f["size"][0] * f["size"][1] for f in files) / 1e6, 1),
        "files": files,
    }
    (partial / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the pack's folder (replaced)")
    parser.add_argument("sources", type=Path, nargs="+", help="folders of clean images")
    parser.add_argument("--max-mib", type=float, default=40.0, help="size limit of the pack (default 40 MiB)")
    args = parser.parse_args()
    manifest = build(args.out, args.sources, args.max_mib)
    worst = min(f["psnr_vs_source"] for f in manifest["files"])
    print(
        f"{args.out}: {manifest['splits']['train']} training and {manifest['splits']['val']} validation images, "
        f"{manifest['megapixels']} MP, {manifest['mib']} MiB, {manifest['format']}; "
        f"lowest PSNR against the source {worst:.1f} dB"
    )


if __name__ == "__main__":
    main()
