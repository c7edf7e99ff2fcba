"""Chunks of a volume as tasks on a dask.distributed cluster: a local one, or any scheduler address that a user's
dask-jobqueue (Slurm, PBS), Kubernetes or cloud cluster gives.

Each task denoises and writes a unit of adjacent chunks (`chunks.denoise_unit`); a worker opens the stores and
loads the model once for all the units it runs. A task that fails is retried; one that keeps failing is named in
the result, never dropped. Workers must see the input and output paths (a shared file system, as on a cluster).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

from mdn.errors import MdnError
from mdn.volumes.chunks import VolumeJob, denoise_unit
from mdn.volumes.store import Unit, unit_name

RETRIES = 2
"""Times a failed chunk is tried again, on any worker, before it is reported."""


def local_workers(address: str) -> int | None:
    """N for `local` (2) or `local:N` (N >= 1); None for another address. An MdnError for a bad N."""
    if address != "local" and not address.startswith("local:"):
        return None
    count = address.partition(":")[2] or "2"
    if not count.isdigit() or int(count) < 1:
        raise MdnError(f"--scheduler local:N takes a number of workers, 1 or more, not {count!r}")
    return int(count)


def check_address(address: str) -> None:
    """An MdnError, before any work, for a `--scheduler` that is neither local[:N] nor a scheduler's address
    (tcp://HOST:PORT, HOST:PORT, or another protocol's)."""
    if local_workers(address) is None and not re.fullmatch(r"([a-z]+://)?[^\s:/]+(:\d+)?/?", address):
        raise MdnError(f"--scheduler takes local, local:N or a scheduler's address (tcp://HOST:PORT), not {address!r}")


def client(address: str) -> Any:
    """A dask.distributed client: `local` (or `local:N`) starts a cluster of N single-threaded worker processes
    on this machine (default 2), anything else is a scheduler's address."""
    check_address(address)
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise MdnError("--scheduler needs the distributed extra: pip install 'mdn[distributed]'") from None
    workers = local_workers(address)
    if workers is not None:
        return Client(LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None))
    try:
        return Client(address, timeout="20s")
    except (OSError, ValueError, TypeError) as exc:
        raise MdnError(f"cannot reach the dask scheduler at {address}: {exc}") from None


def run_on_cluster(job: VolumeJob, units: list[Unit], address: str, failed: list[str]) -> Iterator[list[str]]:
    """The units of chunks as tasks on the cluster at `address`; yields the names of each unit's chunks as they
    are written, and appends the units that failed every try, with their errors, to `failed`."""
    from distributed import as_completed

    run = uuid.uuid4().hex[:12]  # a scheduler shared by several runs keeps each run's tasks apart
    with client(address) as cluster:
        names = {}
        for unit in units:
            name = unit_name(unit, job.chunks)
            key = f"mdn-{run}-{name.replace(' ', '-')}"
            names[cluster.submit(denoise_unit, job, unit, key=key, retries=RETRIES, pure=False)] = name
        for future in as_completed(list(names)):
            if future.status == "error":
                failed.append(f"{names[future]}: {future.exception()}")
            else:
                yield future.result()
