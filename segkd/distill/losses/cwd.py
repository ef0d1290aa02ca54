"""Channel-wise distillation (Shu et al., ICCV 2021)."""

from __future__ import annotations

from torch import Tensor, nn

from segkd.distill.losses.shapes import require_same_shape
from segkd.functional.softmax import softmax_kl


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
        kl = softmax_kl(teacher.detach().reshape(n * c, -1), student.reshape(n * c, -1), self.tau)
        return kl.mean() * self.tau**2
