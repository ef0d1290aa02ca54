"""Channel-wise distillation (Shu et al., ICCV 2021)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from segkd.distill.losses.shapes import require_same_shape


class ChannelWiseKD(nn.Module):
    """Each channel's activation map, softmax-normalised over space, matched by KL to the teacher's.

    Where pixel-wise KD asks every location to agree, CWD asks each channel to put its mass on the
    same regions, which suits segmentation's spatially structured outputs.
    Reduction: sum over H·W, mean over N·C, times tau².
    """

    def __init__(self, tau: float = 4.0) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        self.tau = tau

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        require_same_shape("CWD", student, teacher)
        n, c = student.shape[:2]
        s = student.reshape(n * c, -1) / self.tau
        t = teacher.detach().reshape(n * c, -1) / self.tau
        log_p_t = F.log_softmax(t, dim=1)
        kl = (log_p_t.exp() * (log_p_t - F.log_softmax(s, dim=1))).sum(dim=1)
        return kl.mean() * self.tau**2
