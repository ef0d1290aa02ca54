"""Pair-wise affinity distillation, the pair-wise term of structured KD (Liu et al., CVPR 2019)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

POOLS = ("max", "avg")


def affinity(features: Tensor, grid: int, pool: str = "max") -> Tensor:
    """Cosine similarity between all pairs of cells of a grid x grid pooling of the feature map."""
    pooled = (F.adaptive_max_pool2d if pool == "max" else F.adaptive_avg_pool2d)(features, grid).flatten(2)
    pooled = F.normalize(pooled, dim=1)  # N, C, grid²
    return pooled.transpose(1, 2) @ pooled  # N, grid², grid²


class PairwiseAffinityKD(nn.Module):
    """Squared difference between the student's and the teacher's pair-wise affinity matrices.

    Pooling to a grid keeps the HW x HW matrix small and makes the loss independent of channel
    counts, so no connector is needed. SKD's own setting (``pool_scale`` 0.5) is max pooling over
    windows of half the map's height and width, i.e. ``grid=2, pool=max``.
    Reduction: mean over N and all grid² x grid² pairs.
    """

    def __init__(self, grid: int = 2, pool: str = "max") -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"unknown pool '{pool}'; choose one of {', '.join(POOLS)}")
        if grid < 1:
            raise ValueError(f"grid must be >= 1, got {grid}")
        self.grid, self.pool = grid, pool

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        a_s, a_t = affinity(student, self.grid, self.pool), affinity(teacher.detach(), self.grid, self.pool)
        return (a_s - a_t).pow(2).mean()
