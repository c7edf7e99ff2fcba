"""Copy scikit-image's bundled natural images into OUT/train for `mdn train`, and OUT/bench for the bench.

Held back from training and validation for the bench: astronaut, chelsea, coffee. Synthetic charts, binary
images and text are left out. The bench's other images (sporco's kodim23, monarch, sail, tulips, barbara) are
never used here.
OUT/manifest.json records each file's source and licence, as `scripts/photo_data.py` does.

    python scripts/skimage_data.py data/skimage
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import skimage
from PIL import Image

TRAIN = [
    "brick.png", "camera.png", "coins.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png",
    "moon.png", "motorcycle_left.png", "motorcycle_right.png", "retina.jpg", "rocket.jpg", "page.png", "cell.png",
    "microaneurysms.png",
]  # fmt: skip
BENCH = ["astronaut.png", "chelsea.png", "coffee.png"]
LICENCES = {
    "brick.png": "CC0-1.0", "camera.png": "CC0-1.0", "coins.png": "no known copyright restrictions",
    "grass.png": "CC0-1.0", "gravel.png": "CC0-1.0", "hubble_deep_field.jpg": "public domain (NASA)",
    "ihc.png": "no known copyright restrictions", "retina.jpg": "CC0-1.0", "rocket.jpg": "public domain (SpaceX)",
    "cell.png": "CC0-1.0", "microaneurysms.png": "CC0-1.0", "astronaut.png": "public domain (NASA)",
    "chelsea.png": "CC0-1.0", "coffee.png": "CC0-1.0",
}  # fmt: skip
"""Each image's terms as its `skimage.data` docstring states them; the rest ship under the package's BSD-3-Clause."""


def main(out: Path) -> int:
    source = Path(skimage.__file__).parent / "data"
    entries = []
    for folder, names in (("train", TRAIN), ("bench", BENCH)):
        (out / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copy2(source / name, out / folder / name)
            with Image.open(source / name) as image:
                size = list(image.size)
            entries.append(
                {
                    "file": f"{folder}/{name}",
                    "package": "scikit-image",
                    "version": skimage.__version__,
                    "path": f"skimage/data/{name}",
                    "licence": LICENCES.get(name, "BSD-3-Clause (scikit-image)"),
                    "output_size": size,
                }
            )
    (out / "manifest.json").write_text(json.dumps(entries, indent=1) + "\n")
    print(f"{len(TRAIN)} training and {len(BENCH)} bench images in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "data/skimage")))
