"""Throughput and peak memory of chunk-wise volume denoising, in this process's child or on a local dask cluster.

Makes a float32 zarr volume of synthetic cells on a flat background (it compresses well, so a volume many times
larger than the memory limit keeps the disk small), denoises it with `mdn denoise VOLUME -o OUT`, and samples the
resident memory of every process doing the work (the `mdn` process, or each dask worker) twice a second.

    python scripts/volume_benchmark.py /tmp/bench --planes 160 --size 4096 --chunk 1024 --workers 2 \\
        --memory-limit 1GB
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil
import zarr


def make_volume(path: Path, planes: int, size: int, chunk: int) -> None:
    """Planes of soft bright cells on a flat background with a little noise where the cells are."""
    array = zarr.create_array(str(path), shape=(planes, size, size), chunks=(1, chunk, chunk), dtype="float32")
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:chunk, 0:chunk].astype(np.float32)
    for z in range(planes):
        for top in range(0, size, chunk):
            for left in range(0, size, chunk):
                block = np.full((chunk, chunk), 0.1, np.float32)
                for cy, cx, r in rng.uniform((0, 0, 8), (chunk, chunk, 40), size=(6, 3)):
                    inside = (y - cy) ** 2 + (x - cx) ** 2 < r**2
                    block[inside] = 0.6 + 0.05 * rng.standard_normal(int(inside.sum()))
                array[z, top : top + chunk, left : left + chunk] = block


def sample_peak(processes: Callable[[], list[psutil.Process]], stop: threading.Event, peaks: dict[int, int]) -> None:
    """Keep the largest resident size seen of each process `processes()` lists, until `stop`."""
    while not stop.is_set():
        for process in processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                peaks[process.pid] = max(peaks.get(process.pid, 0), process.memory_info().rss)
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--planes", type=int, default=8)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--workers", type=int, default=0, help="dask workers (0: one mdn process, no cluster)")
    parser.add_argument("--memory-limit", default="1GB", help="each dask worker's memory limit")
    parser.add_argument("--max-memory", default="2G", help="mdn's memory budget for tiles and units")
    parser.add_argument("--tile", type=int, default=0, help="mdn's tile size (0: from the budget)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    args.folder.mkdir(parents=True, exist_ok=True)
    source, target = args.folder / "volume.zarr", args.folder / "denoised.zarr"
    if not source.exists():
        make_volume(source, args.planes, args.size, args.chunk)
    shutil.rmtree(target, ignore_errors=True)
    command = [sys.executable, "-m", "mdn", "denoise", str(source), "-o", str(target), "-q"]
    command += ["--max-memory", args.max_memory, "--tile", str(args.tile)]
    cluster = None
    if args.workers:
        from distributed import LocalCluster

        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, memory_limit=args.memory_limit,
                               dashboard_address=None)  # fmt: skip
        command += ["--scheduler", cluster.scheduler_address]
    peaks: dict[int, int] = {}
    stop = threading.Event()
    start = time.perf_counter()
    run = subprocess.Popen(command)
    me = psutil.Process()

    def workers() -> list[psutil.Process]:
        return [p for p in me.children(recursive=True) if p.pid != run.pid] if cluster else [psutil.Process(run.pid)]

    sampler = threading.Thread(target=sample_peak, args=(workers, stop, peaks), daemon=True)
    sampler.start()
    status = run.wait()
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    if cluster is not None:
        cluster.close()
    voxels = args.planes * args.size**2
    stored = sum(f.stat().st_size for f in source.rglob("*") if f.is_file())
    row = {
        "status": status, "workers": args.workers or 1, "cluster": bool(cluster), "memory_limit": args.memory_limit,
        "max_memory": args.max_memory, "tile": args.tile,
        "volume_gb": voxels * 4 / 1e9, "on_disk_mb": stored / 1e6, "chunk": args.chunk, "seconds": round(seconds, 1),
        "mvoxels_per_s": round(voxels / seconds / 1e6, 3),
        "peak_rss_mb": sorted(round(p / 1e6) for p in peaks.values()),
    }  # fmt: skip
    print(json.dumps(row))
    if args.json:
        args.json.write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
