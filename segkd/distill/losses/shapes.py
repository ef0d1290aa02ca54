"""Shape checks shared by the losses that compare student and teacher tensors element by element."""

from __future__ import annotations

from torch import Tensor


def require_same_shape(loss: str, student: Tensor, teacher: Tensor) -> None:
    """Element-wise losses cannot compare maps of different widths; a connector maps one to the other."""
    if student.shape != teacher.shape:
        raise ValueError(
            f"{loss} needs equal shapes, got student {tuple(student.shape)} and teacher {tuple(teacher.shape)}; "
            "add a connector to this term"
        )
