"""Why the tempered KL of logit distillation is multiplied by T² (docs/METHODS.md, section 2), measured.

With p = softmax(t/T), q = softmax(s/T), d KL(p||q)/ds = (q - p)/T, and for T much larger than the logit
spread q - p ≈ (s - t)/(C T): the gradient of KL alone falls as 1/T², that of T²·KL stays constant.
:func:`kd_gradient` measures both with autograd through segkd's own LogitKD and checks LogitKD
against the closed forms; experiments/methods_figures.py tabulates and draws them.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

TEMPERATURES = (1.0, 2.0, 4.0, 8.0, 16.0)


def kd_gradient(teacher: Tensor, student: Tensor, valid: Tensor, temperature: float) -> dict:
    """Gradients of KL and of T²·KL (segkd's LogitKD) with respect to the student logits, per valid pixel.

    Returns the mean per-pixel L2 norm (over classes) of each, and the largest deviation of LogitKD's
    value and gradient from the direct formulas T²·Σ p (log p - log q) and T·(q - p).
    """
    from segkd.distill.losses.logit_kd import LogitKD

    t = temperature
    target = torch.where(valid, 0, 255)
    s = student.detach().clone().requires_grad_(True)
    loss = LogitKD(temperature=t, ignore_index=255)(s, teacher.detach(), target)
    (grad,) = torch.autograd.grad(loss, s)
    n_valid = valid.sum().clamp_min(1)
    per_pixel = grad * n_valid  # LogitKD averages over valid pixels; undo it to get d(per-pixel loss)/ds
    log_p = torch.log_softmax(teacher.double() / t, dim=1)
    log_q = torch.log_softmax(student.double() / t, dim=1)
    direct_loss = ((log_p.exp() * (log_p - log_q)).sum(1) * valid).sum() / n_valid * t * t
    direct_grad = t * (log_q.exp() - log_p.exp()) * valid.unsqueeze(1)
    norm_t2 = per_pixel.norm(dim=1)[valid].mean().item()
    return {
        "T": t,
        "grad_norm_kl": norm_t2 / (t * t),
        "grad_norm_t2_kl": norm_t2,
        "loss_t2_kl": loss.item(),
        "max_abs_loss_error": abs(loss.item() - direct_loss.item()),
        "max_abs_grad_error": (per_pixel.double() - direct_grad).abs().max().item(),
    }


def temperature_table(teacher: Tensor, student: Tensor, valid: Tensor,
                      temperatures: Sequence[float] = TEMPERATURES) -> list[dict]:
    return [kd_gradient(teacher, student, valid, t) for t in temperatures]
