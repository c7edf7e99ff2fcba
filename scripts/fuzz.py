"""Feed mutated image files through `mdn denoise` and `mdn noise` and count what goes wrong.

Small valid seeds (PNG 8/16-bit, JPEG, TIFF 8/16-bit/float and stacks, EXR half/float) are mutated by bit flips,
truncation, byte insertions and header corruption. The files go through mdn in batches (a batch keeps going on
bad files, so a traceback or a hang there is a bug); a failing batch is split in halves down to the file that
fails it. A sample of files also runs one per invocation. Counted: tracebacks, hangs (the timeout), inputs
changed, temporary files left in the output folder, and exit codes. Kept out of the test run:

    python scripts/fuzz.py --count 1000 --work /tmp/fuzz
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import imagecodecs
import imageio.v3 as iio
import numpy as np
import OpenEXR
import tifffile

MEMORY_LIMIT = 6 << 30
"""Address space each mdn process may take: a corrupt header that asks for gigabytes fails instead of swapping."""


def seeds(rng: np.random.Generator) -> dict[str, bytes]:
    """Small valid files of every kind mdn reads, by name."""
    grey8 = rng.integers(0, 256, (20, 24), dtype=np.uint8)
    rgb8 = rng.integers(0, 256, (18, 22, 3), dtype=np.uint8)
    rgba8 = rng.integers(0, 256, (16, 16, 4), dtype=np.uint8)
    grey16 = rng.integers(0, 65536, (20, 24), dtype=np.uint16)
    found = {
        "grey8.png": imagecodecs.png_encode(grey8),
        "rgba8.png": imagecodecs.png_encode(rgba8),
        "grey16.png": imagecodecs.png_encode(grey16),
        "rgb8.jpg": iio.imwrite("<bytes>", rgb8, extension=".jpg", quality=90),
        "grey8.jpg": iio.imwrite("<bytes>", grey8, extension=".jpg", quality=90),
    }
    with tempfile.TemporaryDirectory() as folder:
        tiffs: dict[str, Callable[[Path], None]] = {
            "grey8.tif": lambda p: tifffile.imwrite(p, grey8),
            "rgb16.tif": lambda p: tifffile.imwrite(p, rgb8.astype(np.uint16) * 257, photometric="rgb"),
            "stack16.tif": lambda p: tifffile.imwrite(
                p, np.stack([grey16, grey16 // 2, grey16 // 3]), imagej=True, metadata={"axes": "ZYX"}
            ),
            "float.tif": lambda p: tifffile.imwrite(p, grey8.astype(np.float32) / 255),
            "lzw.tif": lambda p: tifffile.imwrite(p, rgb8, photometric="rgb", compression="lzw"),
            "half.exr": lambda p: _exr(p, rgb8.astype(np.float16) / 64, OpenEXR.ZIP_COMPRESSION),
            "float.exr": lambda p: _exr(p, rgba8.astype(np.float32) / 64, OpenEXR.NO_COMPRESSION),
            "piz.exr": lambda p: _exr(p, rgb8.astype(np.float32) / 32, OpenEXR.PIZ_COMPRESSION),
        }
        for name, write in tiffs.items():
            path = Path(folder) / name
            write(path)
            found[name] = path.read_bytes()
    return found


def _exr(path: Path, pixels: np.ndarray, compression: OpenEXR.Compression) -> None:
    channels = {name: np.ascontiguousarray(pixels[..., i]) for i, name in enumerate("RGBA"[: pixels.shape[-1]])}
    OpenEXR.File({"compression": compression, "type": OpenEXR.scanlineimage}, channels).write(str(path))


def mutate(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """One random mutation of `data`: its kind and the mutated bytes."""
    buffer = bytearray(data)
    kind = str(rng.choice(["bitflip", "truncate", "insert", "header"]))
    if kind == "bitflip":
        for _ in range(int(rng.integers(1, 9))):
            position = int(rng.integers(len(buffer)))
            buffer[position] ^= 1 << int(rng.integers(8))
    elif kind == "truncate":
        del buffer[int(rng.integers(1, len(buffer))) :]
    elif kind == "insert":
        position = int(rng.integers(len(buffer) + 1))
        buffer[position:position] = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
    else:  # a header field: bytes near the start set to extremes or random values
        end = min(len(buffer), 96)
        for _ in range(int(rng.integers(1, 4))):
            position = int(rng.integers(end))
            width = min(int(rng.choice([1, 2, 4])), len(buffer) - position)
            value = rng.choice([0x00, 0xFF, 0x7F, 0x80, int(rng.integers(256))])
            buffer[position : position + width] = bytes([int(value)]) * width
    return kind, bytes(buffer)


@dataclass
class Tally:
    """What the runs found."""

    invocations: int = 0
    files: int = 0
    exit_codes: collections.Counter[int] = field(default_factory=collections.Counter)
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    tracebacks: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    changed_inputs: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    non_file_errors: list[str] = field(default_factory=list)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def invoke(
    command: str, files: list[Path], out: Path, timeout: float, extra: list[str]
) -> tuple[int | None, str, dict]:
    """Run one mdn command on `files` into a fresh `out`: (exit code or None on a hang, stderr, JSON report)."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    report = out.parent / f"{out.name}.json"
    report.unlink(missing_ok=True)
    args = [sys.executable, "-m", "mdn", command, *map(str, files), "-o", str(out), "--json", str(report), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    try:
        done = subprocess.run(
            [*args, *extra], capture_output=True, text=True, timeout=timeout, env=env, preexec_fn=_limit_memory
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        return None, stderr, {}
    return done.returncode, done.stderr, json.loads(report.read_text()) if report.is_file() else {}


def check(
    tally: Tally, command: str, files: list[Path], out: Path, timeout: float, extra: list[str], hashes: dict[Path, str]
) -> None:
    """Run a batch, record what it did, and split a batch that crashed or hung down to the files that did it."""
    code, stderr, report = invoke(command, files, out, timeout, extra)
    tally.invocations += 1
    tally.exit_codes[code if code is not None else -1] += 1
    leftovers = [p.name for p in out.rglob(".*")]
    tally.leftovers += [f"{command} {name}" for name in leftovers]
    tally.changed_inputs += [f"{command} {p.name}" for p in files if _hash(p) != hashes[p]]
    for line in stderr.splitlines():
        if "error" in line.lower() and not any(p.name in line for p in files) and "Traceback" not in stderr:
            tally.non_file_errors.append(f"{command}: {line.strip()}")
    crashed = code is None or "Traceback" in stderr
    if crashed and len(files) > 1:
        half = len(files) // 2
        check(tally, command, files[:half], out, timeout, extra, hashes)
        check(tally, command, files[half:], out, timeout, extra, hashes)
        return
    if crashed:
        where = tally.hangs if code is None else tally.tracebacks
        where.append(f"{command} {files[0].name}: {_last_line(stderr)}")
    tally.files += len(files)
    tally.statuses.update(f["status"] for f in report.get("files", []))


def _hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no output)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="Mutated files to make.")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "mdn-fuzz")
    parser.add_argument("--batch", type=int, default=250, help="Files per batch invocation.")
    parser.add_argument("--single", type=int, default=30, help="Files also run one per invocation.")
    parser.add_argument("--timeout", type=float, default=30.0, help="Seconds per file (batches: per file in them).")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    inputs = args.work / "inputs"
    shutil.rmtree(args.work, ignore_errors=True)
    inputs.mkdir(parents=True)
    originals = seeds(rng)
    names = sorted(originals)
    kinds: collections.Counter[str] = collections.Counter()
    files = []
    for index in range(args.count):
        name = names[index % len(names)]
        kind, data = mutate(originals[name], rng)
        kinds[kind] += 1
        files.append(inputs / f"{index:05d}_{kind}_{name}")
        files[-1].write_bytes(data)
    hashes = {path: _hash(path) for path in files}
    commands = {"denoise": ["--device", "cpu"], "noise": ["--type", "gaussian", "--seed", "1"]}
    tally = Tally()
    for command, extra in commands.items():
        for start in range(0, len(files), args.batch):
            batch = files[start : start + args.batch]
            timeout = 20 + args.timeout * len(batch) / 10  # a hang is far slower than ten files' worth
            check(tally, command, batch, args.work / "out", timeout, extra, hashes)
        for path in rng.choice(files, size=min(args.single, len(files)), replace=False):
            check(tally, command, [path], args.work / "single", args.timeout, extra, hashes)
    summary = {
        "files": len(files),
        "mutations": dict(kinds),
        "invocations": tally.invocations,
        "file_runs": tally.files,
        "exit_codes": dict(tally.exit_codes),
        "statuses": dict(tally.statuses),
        "tracebacks": tally.tracebacks,
        "hangs": tally.hangs,
        "changed_inputs": tally.changed_inputs,
        "leftover_temporary_files": tally.leftovers,
        "errors_not_naming_a_file": tally.non_file_errors,
    }
    print(json.dumps(summary, indent=2))
    return 1 if tally.tracebacks or tally.hangs or tally.changed_inputs or tally.leftovers else 0


if __name__ == "__main__":
    raise SystemExit(main())
