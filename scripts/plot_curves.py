"""Plot validation curves of training runs side by side: PSNR on the training noise, the unseen-noise mean and
the brightness offset against the iterations each network has seen in all.

Usage: python scripts/plot_curves.py RUN_DIR [RUN_DIR ...] -o docs/curves.png [--start NAME=ITERS ...] [--zoom-from N]

Each RUN_DIR holds the `log.jsonl` that `mdn train` writes. `--start` shifts a run's iterations by those its
starting card (`--init`) had already trained, so that continued runs line up with their history.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

PANELS = (
    ("psnr", "PSNR on Gaussian sigma 15 (dB)"),
    ("unseen_psnr", "mean PSNR on unseen noises (dB)"),
    ("offset", "brightness offset (8-bit levels)"),
)


def read_log(run: Path) -> list[dict]:
    """The validated records of a run's log, in order."""
    lines = (run / "log.jsonl").read_text().splitlines()
    return [record for record in map(json.loads, lines) if "psnr" in record]


def plot(runs: dict[str, list[dict]], starts: dict[str, int], path: Path, zoom_from: int = 0) -> None:
    """One panel per measure, one line per run; each panel's vertical range fits the points from iteration
    `zoom_from` on (a fresh network's first score would flatten the rest)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(PANELS), figsize=(5 * len(PANELS), 4), constrained_layout=True)
    for axis, (key, title) in zip(axes, PANELS, strict=True):
        shown = []
        for name, records in runs.items():
            points = [(r["iteration"] + starts.get(name, 0), r[key]) for r in records if key in r]
            axis.plot(*zip(*points, strict=True), marker="o", markersize=3, label=name)
            shown += [value for iteration, value in points if iteration >= zoom_from]
        if shown and zoom_from:
            low, high = min(shown), max(shown)
            pad = 0.05 * (high - low) + 0.1
            axis.set_ylim(low - pad, high + pad)
        axis.set_title(title)
        axis.set_xlabel("iterations")
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run folders holding log.jsonl")
    parser.add_argument("-o", "--output", type=Path, required=True, help="PNG to write")
    parser.add_argument("--start", action="append", default=[], help="NAME=ITERS already trained before the run")
    parser.add_argument("--zoom-from", type=int, default=0, help="fit the vertical ranges to points from here on")
    args = parser.parse_args()
    starts = {name: int(iters) for name, _, iters in (item.partition("=") for item in args.start)}
    runs = {run.name: read_log(run) for run in args.runs}
    plot(runs, starts, args.output, args.zoom_from)
    for name, records in runs.items():
        last = records[-1]
        print(f"{name}: {len(records)} points, last at {last['iteration'] + starts.get(name, 0)}: "
              f"{last['psnr']:.2f} dB, unseen {last.get('unseen_psnr', float('nan')):.2f} dB, "
              f"offset {last['offset']:+.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
