"""Cross-entropy for segmentation: ignore_index, optional class weights, label smoothing and OHEM."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segkd.losses.class_weights import WEIGHTING_SCHEMES
from segkd.functional.softmax import entropy, tempered_log_softmax
from segkd.runtime.distributed import kth_smallest_over_processes, mean_over_processes, sum_over_processes


class SegmentationCrossEntropy(nn.Module):
    """Pixel-wise cross-entropy averaged over the (weighted) pixels that count.

    Class weights are a buffer filled by the system from the train split's statistics
    (``class_weighting``: none, inverse, median, enet), so they travel with the checkpoint.

    OHEM (online hard example mining, as in PSPNet/BiSeNet): keep the pixels whose probability of the
    true class is below ``ohem_thresh``, and at least the ``ohem_min_kept`` hardest pixels of the batch,
    so easy road and sky pixels stop dominating the gradient.

    In training, the normaliser (the valid pixels' weight) and OHEM's threshold are taken over the
    whole global batch, all DDP processes together (segkd.runtime.distributed), so the loss does not depend
    on how the batch is split over GPUs. Validation, where processes may run different numbers of
    batches, stays per process.

    For teachers: ``label_smoothing`` and ``confidence_penalty`` (Pereyra et al., 2017: minus beta times
    the mean entropy of the softmax over valid pixels) keep outputs soft, so the non-argmax classes
    carry information a student can learn from.

    Class weights weigh pixels, not the smoothed target: a pixel of class y counts w_y times the
    smoothed cross-entropy of Szegedy et al. (2016), whose target is (1 - eps) on y plus eps / C on
    every class. PyTorch's ``cross_entropy(weight=..., label_smoothing=...)`` instead weighs each
    class's share of the smoothing by that class's weight, so under median-frequency weights every
    pixel is pulled towards the rare classes: a teacher trained that way on SynthStreets was far softer
    and worse calibrated than label smoothing 0.1 should make it (docs/METHODS.md section 3).
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int = 255,
        class_weighting: str = "none",
        label_smoothing: float = 0.0,
        ohem_thresh: Optional[float] = None,
        ohem_min_kept: int = 100_000,
        confidence_penalty: float = 0.0,
    ) -> None:
        super().__init__()
        if class_weighting not in WEIGHTING_SCHEMES:
            raise ValueError(
                f"unknown class_weighting '{class_weighting}'; choose one of {', '.join(WEIGHTING_SCHEMES)}"
            )
        if ohem_thresh is not None and not 0.0 < ohem_thresh <= 1.0:
            raise ValueError(f"ohem_thresh must be in (0, 1], got {ohem_thresh}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_weighting = class_weighting
        self.label_smoothing = label_smoothing
        self.ohem_thresh = ohem_thresh
        self.ohem_min_kept = ohem_min_kept
        self.confidence_penalty = confidence_penalty
        self.register_buffer("weight", torch.ones(num_classes))

    def set_class_weights(self, weights: Tensor) -> None:
        if weights.shape != (self.num_classes,):
            raise ValueError(f"expected {self.num_classes} class weights, got shape {tuple(weights.shape)}")
        self.weight.copy_(weights)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        weight = None if self.class_weighting == "none" else self.weight
        # Unweighted per pixel (the smoothing target stays uniform); the class weight multiplies below.
        per_pixel = F.cross_entropy(
            logits, target, ignore_index=self.ignore_index, reduction="none", label_smoothing=self.label_smoothing
        )
        valid = target != self.ignore_index
        if self.ohem_thresh is not None:
            valid = valid & self._hard_pixels(logits, target, valid)
        pixel_weight = valid.float() if weight is None else weight[target.clamp(max=self.num_classes - 1)] * valid
        normaliser = pixel_weight.sum()
        if self.training:
            normaliser = mean_over_processes(normaliser)
        loss = (per_pixel * pixel_weight).sum() / normaliser.clamp_min(1e-12)
        if self.confidence_penalty:
            mask = (target != self.ignore_index).float()
            count = mean_over_processes(mask.sum()) if self.training else mask.sum()
            mean_entropy = (entropy(tempered_log_softmax(logits)) * mask).sum() / count.clamp_min(1.0)
            loss = loss - self.confidence_penalty * mean_entropy
        return loss

    @torch.no_grad()
    def _hard_pixels(self, logits: Tensor, target: Tensor, valid: Tensor) -> Tensor:
        prob = logits.softmax(dim=1).gather(1, target.clamp(max=self.num_classes - 1).unsqueeze(1)).squeeze(1)
        prob = prob.masked_fill(~valid, 1.0)
        num_valid = valid.sum()
        if self.training:
            num_valid = sum_over_processes(num_valid)
        threshold = self.ohem_thresh
        if 0 < self.ohem_min_kept and int(num_valid) > 0:
            k = min(self.ohem_min_kept, int(num_valid))
            kth = kth_smallest_over_processes(prob[valid], k) if self.training else prob[valid].kthvalue(k).values
            threshold = max(threshold, float(kth))
        return prob <= threshold
