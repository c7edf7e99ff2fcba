"""Copy scikit-image's bundled natural images into OUT/train and OUT/val for `mdn train`.

Validation (held back from training): astronaut, chelsea, coffee. Synthetic charts, binary images and text are
left out. The project's bench images (sporco's kodim23, monarch, sail, tulips, barbara) are never used here.

    python scripts/skimage_data.py data/skimage
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import skimage

TRAIN = [
    "brick.png", "camera.png", "coins.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png",
    "moon.png", "motorcycle_left.png", "motorcycle_right.png", "retina.jpg", "rocket.jpg", "page.png", "cell.png",
    "microaneurysms.png",
]  # fmt: skip
VALIDATION = ["astronaut.png", "chelsea.png", "coffee.png"]


def main(out: Path) -> int:
    source = Path(skimage.__file__).parent / "data"
    for folder, names in (("train", TRAIN), ("val", VALIDATION)):
        (out / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copy2(source / name, out / folder / name)
    print(f"{len(TRAIN)} training and {len(VALIDATION)} validation images in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "data/skimage")))
