"""How soft a network's predictions are: mean entropy and the mass off the argmax ("dark knowledge").

A teacher whose softmax is nearly one-hot has little to teach beyond the labels; these two numbers,
averaged over the labelled pixels of the whole split, say how much it has.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from segkd.functional.softmax import entropy, off_argmax_mass, tempered_log_softmax


class PredictiveEntropy(Metric):
    """Mean per-pixel entropy (nats) of softmax(logits), and mean 1 - max probability, over valid pixels."""

    full_state_update = False

    def __init__(self, ignore_index: int = 255) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.add_state("entropy_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("dark_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, logits: Tensor, target: Tensor) -> None:
        log_p = tempered_log_softmax(logits.detach().float())
        valid = target != self.ignore_index
        self.entropy_sum += entropy(log_p)[valid].double().sum()
        self.dark_sum += off_argmax_mass(log_p)[valid].double().sum()
        self.count += valid.sum()

    def compute(self) -> dict[str, Tensor]:
        n = self.count.clamp_min(1).double()
        return {"entropy": self.entropy_sum / n, "dark_knowledge": self.dark_sum / n}
