"""What the handlers share: the network inside a parallel wrapper, and the process that writes under
``torch.distributed``."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

__all__ = ["is_main_process", "max_over_ranks", "unwrap_module"]


def unwrap_module(module: Any) -> Any:
    """The module inside ``DistributedDataParallel``/``DataParallel``, so checkpoints load into a plain network."""
    return (
        module.module
        if isinstance(module, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel))
        else module
    )


def is_main_process() -> bool:
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def max_over_ranks(value: float) -> float:
    """``value`` under one process; its maximum over the ranks under ``torch.distributed``."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        flag = torch.tensor([float(value)])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return float(flag.item())
    return value
