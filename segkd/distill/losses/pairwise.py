"""Pair-wise affinity distillation, the pair-wise term of structured KD (Liu et al., CVPR 2019)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def affinity(features: Tensor, grid: int) -> Tensor:
    """Cosine similarity between all pairs of cells of a grid x grid pooling of the feature map."""
    pooled = F.adaptive_avg_pool2d(features, grid).flatten(2)  # N, C, grid²
    pooled = F.normalize(pooled, dim=1)
    return pooled.transpose(1, 2) @ pooled  # N, grid², grid²


class PairwiseAffinityKD(nn.Module):
    """Squared difference between the student's and the teacher's pair-wise affinity matrices.

    Pooling to a grid keeps the HW x HW matrix small and makes the loss independent of channel
    counts, so no connector is needed. Reduction: mean over N and all grid² x grid² pairs.
    """

    def __init__(self, grid: int = 8) -> None:
        super().__init__()
        self.grid = grid

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        return (affinity(student, self.grid) - affinity(teacher.detach(), self.grid)).pow(2).mean()
