"""Calibration: does a network's confidence match how often it is right (ECE, reliability diagram)?

A teacher whose 90%-confident pixels are right 60% of the time hands its student wrong soft targets
exactly where the student trusts them most. torchmetrics' MulticlassCalibrationError keeps every
confidence it has seen (a whole split is tens of millions of pixels), so this metric keeps only the
per-bin sums, with the same binning, and is exact for any split size and summed over DDP ranks.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric


class CalibrationBins(Metric):
    """Top-label calibration over the valid pixels of a split, in ``n_bins`` equal confidence bins.

    ``compute()`` gives ``ece`` = sum over bins of (pixels in bin / all pixels) * |accuracy - mean
    confidence| (the L1 expected calibration error of Guo et al. 2017, binned as torchmetrics bins it)
    and the per-bin ``confidence``, ``accuracy`` and ``count`` a reliability diagram draws.
    """

    full_state_update = False

    def __init__(self, n_bins: int = 15, ignore_index: int = 255) -> None:
        super().__init__()
        if n_bins < 1:
            raise ValueError(f"n_bins={n_bins} must be at least 1")
        self.n_bins = n_bins
        self.ignore_index = ignore_index
        self.register_buffer("edges", torch.linspace(0, 1, n_bins + 1), persistent=False)
        self.add_state("count", torch.zeros(n_bins, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("confidence_sum", torch.zeros(n_bins, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("correct_sum", torch.zeros(n_bins, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, logits: Tensor, target: Tensor) -> None:
        valid = target != self.ignore_index
        confidence, prediction = logits.detach().float().softmax(dim=1).max(dim=1)
        confidence, correct = confidence[valid], (prediction == target)[valid]
        # Bin b holds (edge_b, edge_b+1]: torchmetrics' bucketize(right=True) - 1, zero confidence in bin 0.
        bins = (torch.bucketize(confidence, self.edges, right=True) - 1).clamp_(0, self.n_bins - 1)
        self.count += torch.bincount(bins, minlength=self.n_bins).double()
        self.confidence_sum += torch.bincount(bins, weights=confidence.double(), minlength=self.n_bins)
        self.correct_sum += torch.bincount(bins, weights=correct.double(), minlength=self.n_bins)

    def compute(self) -> dict[str, Tensor]:
        seen = self.count.clamp_min(1)
        confidence, accuracy = self.confidence_sum / seen, self.correct_sum / seen
        total = self.count.sum()
        ece = ((self.count / total.clamp_min(1)) * (accuracy - confidence).abs()).sum()
        if total == 0:
            ece = torch.tensor(float("nan"), dtype=torch.float64, device=self.count.device)
        return {"ece": ece, "confidence": confidence, "accuracy": accuracy, "count": self.count}
