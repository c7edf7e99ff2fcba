"""Learning from noisy data, side by side at equal wall time: `mdn train --noisy` then `mdn denoise --model`,
`mdn zeroshot --preset microscopy` and `--method zs-n2n`, CAREamics' N2V2 (an optional peer in its own
environment) and the shipped default with no training, on held-out procedural fluorescence stacks
(`mdn.noise.specimens`) recorded by cameras of several gains.

    python scripts/noisy_benchmark.py runs/noisy-bench --minutes 5 --peer-minutes 10 \
        --careamics-python ~/careamics/bin/python

`--seed-offset N` records other specimens (a set no choice was made on); `--train-init CARD` starts `mdn train
--noisy` from another card.

Every method runs as a user runs it, in its own process with the same thread count, and is timed from start to
written output (training, prediction and model loading included). PSNR is the mean over frames against the
clean stack, on the clean stack's range. Writes results.json in the folder and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import tifffile

from mdn.noise import specimens

ROOT = Path(__file__).resolve().parent.parent
STACKS = {"gain32": (911, 32.0), "gain64": (922, 64.0), "gain128": (933, 128.0)}
"""Held-out stacks: name -> (specimen seed, counts per photon). Seeds no test or run uses elsewhere."""


def psnr(out: np.ndarray, clean: np.ndarray) -> float:
    span = float(clean.max() - clean.min())
    return float(np.mean([10 * np.log10(span**2 / np.mean((o - c) ** 2)) for o, c in zip(out, clean, strict=True)]))


def make_stack(folder: Path, name: str, frames: int, size: int, seed_offset: int = 0) -> tuple[Path, np.ndarray]:
    """The stack `name` of STACKS (its specimen seed moved by `seed_offset`: another set) and its clean signal."""
    seed, gain = STACKS[name]
    seed += seed_offset
    clean = specimens.fluorescence_stack(frames, size, seed)
    camera = specimens.Microscope(counts_per_photon=gain)
    path = folder / f"{name}.tif"
    tifffile.imwrite(path, camera.record(clean, np.random.default_rng(seed + 1)), photometric="minisblack")
    return path, camera.signal(clean).astype(np.float64)


def timed(command: list[str], log: Path) -> float:
    start = time.perf_counter()
    with log.open("w") as f:
        result = subprocess.run(command, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
    if result.returncode:
        raise SystemExit(f"failed ({result.returncode}): {' '.join(command)}; see {log}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--stacks", default=",".join(STACKS))
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--minutes", type=float, default=5.0, help="mdn train --noisy's time budget")
    parser.add_argument("--peer-minutes", type=float, default=10.0, help="N2V's and zeroshot's budget")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--careamics-python", type=Path, help="python of an environment with careamics")
    parser.add_argument("--methods", default="default,train-noisy,zeroshot,n2v2")
    parser.add_argument("--seed-offset", type=int, default=0, help="other specimens: each stack's seed plus this")
    parser.add_argument("--train-init", help="the card `mdn train --noisy` starts from (default: its own)")
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    mdn = [sys.executable, "-m", "mdn"]
    threads = ["--threads", str(args.threads)]
    results_path = args.folder / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for name in args.stacks.split(","):
        noisy, clean = make_stack(args.folder, name, args.frames, args.size, args.seed_offset)
        row = results.setdefault(name, {})
        row["noisy"] = {"psnr": psnr(tifffile.imread(noisy).astype(np.float64), clean), "seconds": 0.0}
        for method in args.methods.split(","):
            if method in row:
                continue
            out, log = args.folder / f"{name}_{method}.tif", args.folder / f"{name}_{method}.log"
            if method == "default":
                seconds = timed([*mdn, "denoise", str(noisy), "-o", str(out), "--overwrite", *threads], log)
            elif method == "train-noisy":
                cards = args.folder / "cards"
                train = [*mdn, "train", "--noisy", str(noisy), "--name", name, "--time-budget", f"{args.minutes}m",
                         "--threads", str(args.threads), "-o", str(cards), "--overwrite", "-q",
                         "--workdir", str(args.folder / "runs" / name)]  # fmt: skip
                train += ["--init", args.train_init] if args.train_init else []
                denoise = [*mdn, "denoise", str(noisy), "-o", str(out), "--model", str(cards / f"{name}.json"),
                           "--overwrite", *threads]  # fmt: skip
                shutil.rmtree(args.folder / "runs" / name, ignore_errors=True)
                seconds = timed(train, log) + timed(denoise, log.with_suffix(".denoise.log"))
            elif method in ("zeroshot", "zs-n2n"):
                budget = str(args.peer_minutes * 60)
                mpi = ["--preset", "microscopy", "--iters", "100000"]
                how = mpi if method == "zeroshot" else ["--method", "zs-n2n"]
                command = [*mdn, "zeroshot", str(noisy), "-o", str(out), *how, "--time-budget", budget, "--overwrite",
                           *threads]  # fmt: skip
                seconds = timed(command, log)
            elif method in ("n2v2", "n2v"):
                if args.careamics_python is None:
                    continue
                plain = ["--n2v"] if method == "n2v" else []
                command = [str(args.careamics_python), "scripts/careamics_n2v.py", str(noisy), str(out), "--minutes",
                           str(args.peer_minutes), "--threads", str(args.threads),
                           "--workdir", str(args.folder / "careamics"), *plain]  # fmt: skip
                seconds = timed(command, log)
            else:
                raise SystemExit(f"unknown method {method}")
            row[method] = {"psnr": psnr(tifffile.imread(out).astype(np.float64), clean), "seconds": seconds}
            results_path.write_text(json.dumps(results, indent=2) + "\n")
            print(name, method, f"{row[method]['psnr']:.2f} dB in {seconds:.0f} s", flush=True)
    methods = ["noisy", *args.methods.split(",")]
    print("| stack | " + " | ".join(methods) + " |")
    print("|---" * (len(methods) + 1) + "|")
    for name, row in results.items():
        cells = [f"{row[m]['psnr']:.2f} ({row[m]['seconds']:.0f} s)" if m in row else "-" for m in methods]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
