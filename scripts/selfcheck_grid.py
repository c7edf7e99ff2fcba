"""MPI's self-check against the truth on the grey zero-shot grid: per case the estimated gain (of the fill at one
blend weight), its range and the output's measured PSNR gain, which the range's low end should never exceed (the
bench's noisy inputs, `mdn zeroshot`'s default precision, one thread).

    python scripts/selfcheck_grid.py --preset fast
"""

from __future__ import annotations

import argparse

import torch

from mdn import bench, metrics, registry, zeroshot
from mdn.device import pick_dtype


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="fast", choices=list(zeroshot.PRESETS))
    parser.add_argument("--noise", default=bench.ZEROSHOT_GRID, help="Noise grid, as mdn bench --noise takes it.")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    references = bench.load_references(None, grey=True)
    net = registry.load(registry.find(zeroshot.fill_card(args.preset, grey=True), task="fill"))
    dtype = pick_dtype("auto", torch.device("cpu"))
    inside, errors = 0, []
    print("| noise | level | image | estimated (dB) | range | measured | above the floor |")
    print("|---|---|---|---|---|---|---|")
    for kind, level in bench.parse_grid(args.noise):
        for name, clean in references.items():
            noisy = bench.noisy_input(clean, name, kind, level, 0)
            runner = zeroshot.ZeroShot(zeroshot.PRESETS[args.preset], net, dtype=dtype)
            out = runner(noisy[None])[0]
            check = runner.checks[0]
            low, high = check.gain_range_db
            measured = metrics.psnr(out, clean) - metrics.psnr(noisy, clean)
            hit = low - 0.05 <= measured  # the PSNRs are 8-bit: allow their rounding
            inside += hit
            errors.append(check.gain_db - measured)
            row = f"| {kind} | {level:g} | {name} | {check.gain_db:.2f} | {low:.2f}-{high:.2f} | {measured:.2f} |"
            print(f"{row} {'yes' if hit else 'NO'} |", flush=True)
    print(f"\n{inside} of {len(errors)} measured gains at or above the range's low end; estimate minus measured: "
          f"{min(errors):+.2f} to {max(errors):+.2f} dB")  # fmt: skip
    return 0 if inside == len(errors) else 1


if __name__ == "__main__":
    raise SystemExit(main())
