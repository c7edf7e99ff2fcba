"""Denoise an OME-Zarr volume on a Slurm cluster through Dask: dask-jobqueue starts the workers as Slurm jobs,
and mdn sends them one chunk each, loading the model once per worker.

    pip install 'mdn[distributed]' dask-jobqueue
    python examples/dask_denoise.py /shared/lightsheet.ome.zarr /shared/lightsheet_denoised.ome.zarr

Without Slurm, `scheduler="local:2"` runs two worker processes on this machine. The input and output must be on a
file system every worker sees. Run it again after an interruption: finished chunks are kept.
"""

import sys

import mdn


def main(source: str, target: str) -> None:
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        scheduler, cluster = "local:2", None
    else:
        cluster = SLURMCluster(cores=8, processes=8, memory="16GB", walltime="02:00:00")  # 8 one-thread workers a job
        cluster.scale(jobs=16)
        scheduler = cluster.scheduler_address
    try:
        report = mdn.denoise_volume(source, target, scheduler=scheduler)
    finally:
        if cluster is not None:
            cluster.close()
    print(f"{report['chunks']} chunks of {report['shape']} denoised into {target}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
