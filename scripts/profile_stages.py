"""Where the default's stages after the network spend their time: the texture stage, collaborative Wiener filtering at
each quality and its block matching timed alone on a square photo (median of runs), beside the network, then the
balanced Wiener stage's operations from torch's profiler. The heap keeps freed memory as the engine has it do
(`allocator.keep_freed_memory`): without it, fresh pages for every band's temporaries double the Wiener stage's
time.

    python scripts/profile_stages.py --size 1024 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from skimage import data, transform

import mdn
from mdn import allocator
from mdn.stages import detail, wiener


def _median_seconds(run: Callable[[], object], runs: int) -> float:
    run()  # warm-up
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    allocator.keep_freed_memory()
    rng = np.random.default_rng(0)
    clean = transform.resize(data.astronaut(), (args.size, args.size), anti_aliasing=True).astype(np.float32)
    noisy = np.clip(clean + rng.normal(0, 25 / 255, clean.shape).astype(np.float32), 0, 1)
    model = mdn.load_model()
    network = mdn.denoise(noisy, model, detail=False, device="cpu")
    pilot = detail.restore_detail(noisy, network)  # what the Wiener stage gets in `mdn denoise`

    def matching() -> None:
        with torch.inference_mode():
            search = wiener.QUALITY["balanced"]
            planes = wiener._Planes(args.size, args.size, search.step, "cpu")
            wiener._Groups(planes(pilot, wiener.opponent(3)[0]), planes.padded_shape, search)

    rows = {
        f"the default's network ({model.name} --no-detail)": lambda: mdn.denoise(noisy, model, detail=False),
        "texture stage (detail.restore_detail)": lambda: detail.restore_detail(noisy, network.copy(), "cpu"),
        **{
            f"Wiener stage, {quality} (wiener.collaborative_wiener)": lambda search=search: wiener.collaborative_wiener(
                noisy, pilot.copy(), search=search
            )
            for quality, search in wiener.QUALITY.items()
        },
        "  balanced's block matching (luminance)": matching,
    }
    print(f"{args.size}² RGB, Gaussian sigma 25, {args.threads} threads, median of {args.runs}:")
    for name, run in rows.items():
        print(f"  {name:55s} {_median_seconds(run, args.runs):6.3f} s")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        wiener.collaborative_wiener(noisy, pilot.copy())
    print(profile.key_averages().table(sort_by="self_cpu_time_total", row_limit=10, max_name_column_width=30))


if __name__ == "__main__":
    main()
