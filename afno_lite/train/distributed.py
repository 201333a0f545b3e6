"""Where a run trains: the ``torchrun`` environment, the device and process-group backend,
mixed precision.

Explained in the chapter "Scaling out" (``torchrun``, DistributedDataParallel, bf16/fp16).
"""
from __future__ import annotations

import os

import torch

from .config import ConfigError

__all__ = ["dist_env", "resolve_device", "amp_context", "_launched_by_torchrun"]


def dist_env() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return world, rank, local


def _launched_by_torchrun() -> bool:
    """``torchrun`` sets ``TORCHELASTIC_RUN_ID`` (and ``WORLD_SIZE``) in every process it starts."""
    return "TORCHELASTIC_RUN_ID" in os.environ and "WORLD_SIZE" in os.environ


def resolve_device(requested: str, local_rank: int = 0, cuda_available: bool | None = None,
                   cuda_count: int | None = None) -> tuple[torch.device, str]:
    """The device this process trains on and the matching process-group backend.

    * ``"auto"``: CUDA when a GPU is present, else the CPU.
    * ``"cuda"``: GPU ``local_rank`` (``LOCAL_RANK`` under ``torchrun``, 0 otherwise) — always an
      **indexed** device such as ``cuda:0``, which is what ``torch.cuda.set_device`` requires
      (the bare ``"cuda"`` is rejected there); backend ``"nccl"``.
    * ``"cpu"``: the CPU; backend ``"gloo"``.
    """
    if cuda_available is None:
        cuda_available = torch.cuda.is_available()
    if requested not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda', got {requested!r}")
    kind = ("cuda" if cuda_available else "cpu") if requested == "auto" else requested
    if kind == "cpu":
        return torch.device("cpu"), "gloo"
    if not cuda_available:
        raise ConfigError("device='cuda' was requested but no CUDA device is available; use device='auto' or 'cpu'")
    if cuda_count is None:
        cuda_count = torch.cuda.device_count()
    if not 0 <= local_rank < cuda_count:
        raise ConfigError(
            f"this process has LOCAL_RANK={local_rank} but only {cuda_count} CUDA device(s) are visible; "
            f"start at most {cuda_count} processes per node"
        )
    return torch.device("cuda", local_rank), "nccl"


def amp_context(amp: str, device: torch.device):
    if amp == "none":
        return lambda: torch.autocast(device_type=device.type, enabled=False)
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def sum_over_ranks(values: list[float], device: torch.device, distributed: bool) -> torch.Tensor:
    """``values`` as a float64 tensor on ``device``, summed over the ranks when ``distributed``.

    The tensor lives on the run's device because nccl reduces CUDA tensors only (a CPU tensor
    stops it with "No backend type associated with device type cpu"); gloo takes either."""
    import torch.distributed as dist

    totals = torch.tensor(values, dtype=torch.float64, device=device)
    if distributed:
        dist.all_reduce(totals)
    return totals
