"""Reductions over the DDP processes of a training step: what makes a loss mean the same on 1 and on 8 GPUs.

DDP averages gradients over processes. A loss normalised by the valid pixels of each process's own
share therefore weighs a pixel more on a process whose crops hold fewer valid pixels. Normalised by
the mean count over processes instead, the averaged gradient is exactly that of the whole global
batch's loss on one device. On one process (or outside DDP) every function here is the identity.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def world_size() -> int:
    """Processes in the current process group (1 outside DDP)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def mean_over_processes(value: Tensor) -> Tensor:
    """The mean of ``value`` over processes, outside autograd (a normaliser, not a term)."""
    if world_size() == 1:
        return value.detach()
    total = value.detach().clone()
    dist.all_reduce(total)
    return total / world_size()


def sum_over_processes(value: Tensor) -> Tensor:
    """The sum of ``value`` over processes, outside autograd."""
    if world_size() == 1:
        return value.detach()
    total = value.detach().clone()
    dist.all_reduce(total)
    return total


def kth_smallest_over_processes(values: Tensor, k: int) -> Tensor:
    """The k-th smallest of the values of all processes together (``1 <= k <= their total count``).

    Each process contributes only its own k smallest, padded to k with +inf: the global k smallest
    are among them, so the all-gather moves k numbers per process, not every pixel.
    """
    if world_size() == 1:
        return values.kthvalue(k).values
    own = values.topk(min(k, values.numel()), largest=False).values
    padded = torch.full((k,), float("inf"), dtype=values.dtype, device=values.device)
    padded[: own.numel()] = own
    gathered = [torch.empty_like(padded) for _ in range(world_size())]
    dist.all_gather(gathered, padded)
    return torch.cat(gathered).kthvalue(k).values
