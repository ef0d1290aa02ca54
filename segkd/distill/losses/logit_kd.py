"""Pixel-wise logit distillation (Hinton et al., 2015) for dense prediction."""

from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from segkd.functional.softmax import softmax_kl


class LogitKD(nn.Module):
    """KL(teacher_T || student_T) per pixel, times T², averaged over the pixels that are not ignored.

    The temperature softens both distributions so the student also learns the teacher's ranking of
    the non-argmax classes ("dark knowledge"); T² keeps gradient magnitudes comparable across T.
    Reduction: sum over classes, mean over valid pixels (all pixels when no target is given).
    """

    def __init__(self, temperature: float = 4.0, ignore_index: int = 255) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.ignore_index = ignore_index

    def forward(self, student: Tensor, teacher: Tensor, target: Optional[Tensor] = None) -> Tensor:
        t = self.temperature
        per_pixel = softmax_kl(teacher.detach(), student, t)
        if target is None:
            return per_pixel.mean() * t * t
        valid = (target != self.ignore_index).to(per_pixel.dtype)
        return (per_pixel * valid).sum() / valid.sum().clamp_min(1.0) * t * t
