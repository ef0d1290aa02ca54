"""What a teacher knows, per pixel: how unsure it is, what it says beyond its argmax, and where it and
its student disagree (and which of them the labels side with there).

A student learns from the teacher's soft targets, so these maps say where there is something to learn
(high entropy on object borders and small classes) and where the teacher teaches a wrong answer
(teacher wrong, student right: distillation pulls the student away from the label there).
"""

from __future__ import annotations

import math

import numpy as np
from torch import Tensor

from segkd.functional.softmax import entropy, off_argmax_mass, tempered_log_softmax

#: Agreement of teacher and student with the label, per pixel: code -> (name, RGB).
AGREEMENT = {
    0: ("both right", (70, 70, 70)),
    1: ("teacher right, student wrong", (40, 120, 255)),   # something left to learn from the teacher
    2: ("student right, teacher wrong", (255, 60, 40)),    # the teacher teaches a wrong answer here
    3: ("both wrong", (255, 210, 0)),
    4: ("not labelled", (0, 0, 0)),
}
AGREEMENT_COLORS = np.array([rgb for _, rgb in AGREEMENT.values()], dtype=np.uint8)
#: One line that explains the colours, for captions.
AGREEMENT_LEGEND = "; ".join(f"{name}: rgb{rgb}" for name, rgb in AGREEMENT.values())


def teacher_maps(teacher_logits: Tensor, student_logits: Tensor, target: Tensor, ignore_index: int = 255) -> dict:
    """Per-pixel maps over a batch (N, H, W), as CPU tensors.

    ``entropy``: the teacher's entropy / log C (0 = certain, 1 = uniform); ``off_argmax``: its mass off
    the argmax, scaled by its largest possible value 1 - 1/C; ``agreement``: codes of :data:`AGREEMENT`.
    """
    classes = teacher_logits.shape[1]
    log_p = tempered_log_softmax(teacher_logits.detach().float())
    teacher_right = log_p.argmax(dim=1) == target
    student_right = student_logits.detach().argmax(dim=1) == target
    agreement = (~teacher_right).long() * 2 + (~student_right).long()  # the codes 0-3 of AGREEMENT
    agreement = agreement.where(target != ignore_index, agreement.new_tensor(4))
    return {
        "entropy": (entropy(log_p) / math.log(classes)).clamp(0, 1).cpu(),
        "off_argmax": (off_argmax_mass(log_p) / (1.0 - 1.0 / classes)).clamp(0, 1).cpu(),
        "agreement": agreement.cpu(),
    }


def agreement_counts(agreement: Tensor) -> dict[str, int]:
    """How many pixels of each agreement kind (labelled pixels only)."""
    return {name: int((agreement == code).sum()) for code, (name, _) in AGREEMENT.items() if code != 4}
