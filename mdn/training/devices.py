"""Where a run trains: its device and compute type, the hardware line of its card, and the process group of a
distributed run."""

from __future__ import annotations

import gc
import os
import platform

import torch
import torch.distributed as dist

from mdn.device import PRECISIONS as INFERENCE_PRECISIONS
from mdn.device import pick_device, pick_dtype
from mdn.errors import MdnError


def device_name(name: str) -> str:
    """A device name with `auto` made concrete: a CUDA GPU when there is one, else the CPU."""
    return name if name != "auto" else "cuda" if torch.cuda.is_available() else "cpu"


PRECISIONS = ("auto", *(name for name in INFERENCE_PRECISIONS if name != "fp16"))
"""The number formats training takes: inference's but fp16, which would need loss scaling."""


def training_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The compute type of training's forward pass: fp32, bf16, or auto (bf16 where the device computes it
    natively, as inference chooses). fp16 is refused: training has no loss scaling."""
    if precision == "fp16":
        raise MdnError("--precision fp16 cannot train (no loss scaling): use bf16 or fp32")
    if precision not in PRECISIONS:
        raise MdnError(f"unknown --precision {precision!r} (training takes {', '.join(PRECISIONS)})")
    return pick_dtype(precision, device)


def training_device(name: str, rank: int) -> torch.device:
    """The training device for a device name (see `_device_name`); a CUDA run without an index takes the GPU of
    its local rank."""
    device = pick_device(device_name(name))
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def hardware(device: torch.device, world: int) -> str:
    if device.type == "cuda":
        what = torch.cuda.get_device_name(device)
    else:
        threads = torch.get_num_threads()
        what = f"{platform.processor() or platform.machine()} CPU, {threads} thread{'s' if threads != 1 else ''}"
    return f"{world} x {what}" if world > 1 else what


def init_distributed(device: str = "auto") -> bool:
    """Join the process group when started by torchrun, NCCL for runs on CUDA GPUs and gloo for CPU runs;
    returns whether this is a distributed run."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    dist.init_process_group("nccl" if device_name(device).startswith("cuda") else "gloo")
    return True


def end_distributed() -> None:
    """Leave the process group together: every rank waits for the others (rank 0 may still write its card),
    then the group is torn down. Its worker threads are joined once nothing holds the group any more; a rank
    that exits with them still running can abort (a worker frees a tensor while Python shuts down)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
        gc.collect()
