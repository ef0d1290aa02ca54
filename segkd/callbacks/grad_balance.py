"""How hard each loss term pulls on the student, relative to the supervised loss, early in training.

Loss values say little about balance: an MSE between unnormalised features can be small and still
send a gradient several times the cross-entropy's into the encoder (measured in segkd: the
bottleneck term's was ~8x at initialisation). This callback measures, for the first ``steps``
training steps, the gradient norm of every weighted term on the student's parameters and divides
it by the supervised term's. Logged as ``grad_ratio/<term>``; medians go to summary.json.
"""

from __future__ import annotations

import statistics
from collections import defaultdict

import lightning as L
import torch
from lightning.pytorch import Callback
from torch import Tensor


def gradient_norm(loss: Tensor, params: list[torch.nn.Parameter]) -> float:
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    squares = [g.detach().float().pow(2).sum() for g in grads if g is not None]
    return float(torch.stack(squares).sum().sqrt()) if squares else 0.0


class GradientBalance(Callback):
    """For systems that expose ``loss_terms`` (name -> weighted loss, with ``supervised`` among them).

    The weights are the terms' own (``distill_paradigm.terms.<name>.weight``), not the loss
    schedule's momentary factor, so a ramp that starts at 0 still shows what its terms will do.
    Costs one extra backward pass per term, for the first ``steps`` steps only; systems without
    terms are left alone.
    """

    def __init__(self, steps: int = 20) -> None:
        self.steps = steps
        self.ratios: dict[str, list[float]] = defaultdict(list)

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: Tensor) -> None:
        terms = getattr(pl_module, "loss_terms", None)
        if not terms or trainer.global_step >= self.steps or "supervised" not in terms or len(terms) < 2:
            return
        params = [p for p in pl_module.net.parameters() if p.requires_grad]
        reference = gradient_norm(terms["supervised"], params)
        if reference == 0.0:
            return
        logs = {}
        for name, term in terms.items():
            if name == "supervised" or not term.requires_grad:
                continue
            ratio = gradient_norm(term, params) / reference
            self.ratios[name].append(ratio)
            logs[f"grad_ratio/{name}"] = ratio
        pl_module.log_dict(logs, on_step=True, on_epoch=False)

    def summary(self) -> dict:
        """Median ratio per term over the measured steps (what summary.json records)."""
        return {name: statistics.median(values) for name, values in self.ratios.items()}
