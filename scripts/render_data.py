"""Render the procedural training set for a render denoiser (needs Mitsuba 3: pip install mitsuba).

Usage:
    python scripts/render_data.py data/renders/train --scenes 400 --minutes 60 --textures data/photos/train
    python scripts/render_data.py data/renders/val --scenes 16 --held-out --textures data/photos/val
    python scripts/render_data.py data/renders/rooms --scenes 200 --rooms 1 --textures data/photos/train
    python scripts/render_data.py data/renders/boxes --scenes 150 --boxes 1 --textures data/photos/train
    python scripts/render_data.py data/renders/mirrors160 --scenes 80 --boxes 1 --mirrors 0.7 --first 4000 --size 160
    python scripts/render_data.py data/renders/train256 --first 1000 --size 256 --textures data/photos/train

Time-bounded and resumable: run it again (with a larger --scenes, or after a stop) and it renders only the
scenes the folder lacks. --held-out numbers scenes from `dataset.HELD_OUT` on, for evaluation sets that share
no scene with a training set.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mdn.renders import dataset, procedural

IMAGE_TYPES = (".png", ".jpg", ".jpeg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where the scene folders go")
    parser.add_argument("--scenes", type=int, default=100, help="scenes the set should hold (default 100)")
    parser.add_argument("--minutes", type=float, help="stop starting new scenes after this long")
    parser.add_argument("--textures", type=Path, action="append", default=[], help="folder of photos for textures")
    parser.add_argument("--held-out", action="store_true", help="number scenes for evaluation")
    parser.add_argument("--first", type=int, default=0, help="number of the first scene, after --held-out's base")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (default 128)")
    parser.add_argument("--rooms", type=float, default=0.0, help="share of scenes that are closed rooms (default 0)")
    parser.add_argument(
        "--boxes", type=float, default=0.0, help="share of scenes that are Cornell-like boxes (default 0)"
    )
    parser.add_argument(
        "--mirrors", type=float, default=0.0, help="share of a box's objects that are large polished metal (default 0)"
    )
    parser.add_argument("--reference-spp", type=int, default=1024, help="reference samples per pixel")
    parser.add_argument("--threads", type=int, default=0, help="renderer threads (0: all)")
    args = parser.parse_args()
    textures = sorted(p for folder in args.textures for p in folder.rglob("*") if p.suffix.lower() in IMAGE_TYPES)
    first = (dataset.HELD_OUT if args.held_out else 0) + args.first
    scene = procedural.SceneOptions(size=args.size, rooms=args.rooms, boxes=args.boxes, mirrors=args.mirrors)
    options = dataset.DatasetOptions(reference_spp=args.reference_spp, scene=scene)
    deadline = time.monotonic() + 60 * args.minutes if args.minutes else None
    columns = (TextColumn("rendering"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns) as bar:
        task = bar.add_task("scenes", total=args.scenes)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        started = time.monotonic()
        present = dataset.generate(
            args.folder, range(first, first + args.scenes), textures, options, deadline, args.threads, report
        )
    print(f"{len(present)} of {args.scenes} scenes in {args.folder} ({time.monotonic() - started:.0f} s this run)")


if __name__ == "__main__":
    main()
