"""PyTorch's own distributed engine for ``torchrun --nproc_per_node N -m edgecalc train ...``.

torchrun sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT``; a plain
process (no ``WORLD_SIZE``) runs alone with every helper here a no-op. Backend: nccl on CUDA, gloo
on the CPU. Only rank 0 writes files; the others wait at barriers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> DistInfo:
    """Join the process group torchrun prepared (if any); pick nccl for CUDA, gloo for the CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    backend = "nccl" if device.startswith("cuda") else "gloo"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank)


def device_for(info: DistInfo, device: str) -> torch.device:
    """One GPU per local rank under torchrun; the CPU stays the CPU."""
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda was asked for, but torch sees no CUDA GPU here; use --device cpu")
        return torch.device("cuda", info.local_rank if info.enabled else (torch.device(device).index or 0))
    return torch.device("cpu")


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_buffers(model: torch.nn.Module, info: DistInfo) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

    DDP keeps parameters identical through the gradient all-reduce, but each rank updates its own
    BatchNorm statistics during the forward pass; without this the ranks would end with different
    running means.
    """
    if not info.enabled:
        return
    for buf in model.buffers():
        dist.broadcast(buf.data, src=0)


def all_true(flag: bool, info: DistInfo) -> bool:
    """True on every rank when ``flag`` holds on every rank (used to stop all ranks on a NaN)."""
    if not info.enabled:
        return flag
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor([0 if flag else 1], dtype=torch.int64, device=device)
    dist.all_reduce(t)
    return int(t.item()) == 0


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
