"""The LightningModule segkd.evaluate runs: predict every image of a split, score the split, on any devices.

It scores with the very metric training validation uses (segkd.metrics.SegmentationMetrics: one
confusion matrix over the whole split, official Cityscapes conventions); torchmetrics sums that
matrix over DDP ranks when the split's scores are computed. It runs under ``Trainer.predict``,
whose sampler shares the split out without padding or repeating samples (validation's and test's
would count some images twice), and whose writer callbacks (segkd.inference.writers) put each
prediction on disk from the rank that made it.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import lightning as L
import torch
from torch import Tensor
from torchmetrics.aggregation import SumMetric

from segkd.data.labels import CATEGORIES, CLASS_CATEGORIES, CLASS_NAMES, IGNORE_INDEX
from segkd.inference.predictor import SegmentationPredictor
from segkd.metrics.segmentation import SegmentationMetrics, fold_confmat, scores_from_confmat


class Evaluator(L.LightningModule):
    """``predict_step`` returns each image's train-id prediction (N, H, W) and, where the batch has
    labels, adds it to the split's confusion matrix; after the split, :attr:`results` holds the
    scores of all ranks together (None for a split without labels), named as in summary.json:
    ``mIoU``, ``pixel_acc``, ``IoU`` (per class) and, for Cityscapes' classes, ``category_mIoU`` and
    ``category_IoU``."""

    def __init__(self, predictor: SegmentationPredictor, class_names: Sequence[str] = CLASS_NAMES,
                 ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.predictor = predictor
        self.class_names = tuple(class_names)
        self.metrics = SegmentationMetrics(len(self.class_names), self.class_names, ignore_index)
        self.images = SumMetric(nan_strategy="error")
        self.scored = SumMetric(nan_strategy="error")
        #: Set at the end of the split, on every rank: see :meth:`on_predict_epoch_end`.
        self.results: Optional[dict] = None
        self.images_seen = 0

    def forward(self, images: Tensor) -> Tensor:
        return self.predictor(images)

    def predict_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        labels = self.predictor(batch["image"]).argmax(dim=1)
        count = float(labels.shape[0])
        self.images.update(torch.tensor(count))
        self.scored.update(torch.tensor(count if "mask" in batch else 0.0))
        if "mask" in batch:
            self.metrics.update(labels, batch["mask"])
        return labels.to(torch.uint8)

    def on_predict_epoch_end(self) -> None:
        # Every compute() below is a collective under DDP: all ranks run it, in the same order.
        self.images_seen = int(self.images.compute())
        scored = int(self.scored.compute())
        self.results = self._scores() if scored else None
        for metric in (self.metrics, self.images, self.scored):
            metric.reset()

    def _scores(self) -> dict:
        scores = self.metrics.as_dict(self.metrics.compute())
        results = {
            "mIoU": _finite(scores["mIoU"]),
            "pixel_acc": _finite(scores["pixel_acc"]),
            "IoU": {name: _finite(iou) for name, iou in scores["IoU"].items()},
        }
        if self.class_names == CLASS_NAMES:  # Cityscapes' 19 classes (BDD100K shares them): its categories
            with self.metrics.sync_context():
                confmat = self.metrics.confmat.clone()
            category = scores_from_confmat(fold_confmat(confmat, CLASS_CATEGORIES, CATEGORIES))
            results["category_IoU"] = {name: _finite(float(v)) for name, v in zip(CATEGORIES, category["IoU"])}
            results["category_mIoU"] = _finite(float(category["mIoU"]))
        return results


def _finite(value: float) -> Optional[float]:
    """JSON has no NaN: a class with an empty union (the official evaluator's NaN) is written as null."""
    return value if math.isfinite(value) else None
