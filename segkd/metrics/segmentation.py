"""mIoU, per-class IoU and pixel accuracy from one confusion matrix accumulated over a whole split.

torchmetrics keeps the matrix (so DDP reduction is a sum over ranks); the scores follow the official
Cityscapes evaluation: IoU_c = TP / (TP + FP + FN) over non-ignored pixels, a class whose union is
empty gets NaN and is skipped by the mean (torchmetrics' own JaccardIndex scores it differently).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor
from torchmetrics.classification import MulticlassConfusionMatrix


def scores_from_confmat(confmat: Tensor) -> dict[str, Tensor]:
    """Scores from a CxC matrix whose rows are ground truth and columns predictions."""
    confmat = confmat.double()
    tp = confmat.diag()
    union = confmat.sum(0) + confmat.sum(1) - tp
    iou = torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, float("nan")))
    total = confmat.sum()
    return {
        "mIoU": iou.nanmean() if (union > 0).any() else torch.tensor(float("nan"), dtype=torch.float64),
        "IoU": iou,
        "pixel_acc": tp.sum() / total if total > 0 else torch.tensor(float("nan"), dtype=torch.float64),
    }


def fold_confmat(confmat: Tensor, group_of_class: Sequence[str], groups: Sequence[str]) -> Tensor:
    """The GxG matrix of class groups (Cityscapes categories) summed out of a CxC class matrix.

    Scoring the folded matrix with :func:`scores_from_confmat` is the official category IoU: a
    pixel counts as right when its predicted class is in the same group as its true one.
    """
    member = torch.zeros(len(group_of_class), len(groups), dtype=torch.float64, device=confmat.device)
    for c, group in enumerate(group_of_class):
        member[c, list(groups).index(group)] = 1
    return member.T @ confmat.double() @ member  # counts stay exact in float64 up to 2**53 pixels


class SegmentationMetrics(MulticlassConfusionMatrix):
    """Confusion-matrix state; ``compute()`` returns the scores of everything seen since the last reset.

    ``update`` takes logits (N, C, H, W) or label maps (N, H, W) and ground truth (N, H, W); pixels whose
    target is ``ignore_index`` are not counted.
    """

    def __init__(self, num_classes: int, class_names: Sequence[str] | None = None, ignore_index: int = 255) -> None:
        super().__init__(num_classes=num_classes, ignore_index=ignore_index, normalize=None, validate_args=False)
        self.class_names = tuple(class_names) if class_names is not None else tuple(str(i) for i in range(num_classes))

    def update(self, preds: Tensor, target: Tensor) -> None:
        if preds.ndim == target.ndim + 1:
            preds = preds.argmax(dim=1)
        if preds.shape != target.shape:
            raise ValueError(f"prediction shape {tuple(preds.shape)} does not match target {tuple(target.shape)}")
        super().update(preds, target)

    def compute(self) -> dict[str, Tensor]:
        """The scores and, as ``confmat``, the CxC matrix itself (reduced over DDP ranks: torchmetrics
        syncs the state before this runs)."""
        confmat = super().compute()
        return {**scores_from_confmat(confmat), "confmat": confmat}

    def as_dict(self, scores: dict[str, Tensor]) -> dict:
        """Plain floats keyed by class name, for logs and summary.json (NaN stays NaN: class never seen)."""
        return {
            "mIoU": float(scores["mIoU"]),
            "pixel_acc": float(scores["pixel_acc"]),
            "IoU": {name: float(v) for name, v in zip(self.class_names, scores["IoU"].tolist())},
        }


def class_errors(confmat: Tensor, class_names: Sequence[str]) -> dict[str, dict]:
    """Per class (rows = ground truth): the share of its pixels predicted as something else, and the
    class most of those went to: where a network is wrong, not only how much."""
    confmat = confmat.double()
    errors = {}
    for c, name in enumerate(class_names):
        total = confmat[c].sum()
        off = confmat[c].clone()
        off[c] = 0
        worst = int(off.argmax())
        errors[name] = {
            "miss_rate": float(off.sum() / total) if total > 0 else None,
            "confused_with": class_names[worst] if off[worst] > 0 else None,
            "confused_share": float(off[worst] / total) if total > 0 else None,
        }
    return errors


class NetScores(torch.nn.Module):
    """Everything scored for one network on a split: confusion-matrix scores, predictive entropy and
    calibration (ECE)."""

    def __init__(self, class_names: Sequence[str], ignore_index: int = 255) -> None:
        super().__init__()
        from segkd.metrics.calibration import CalibrationBins
        from segkd.metrics.uncertainty import PredictiveEntropy

        self.segmentation = SegmentationMetrics(len(class_names), class_names, ignore_index)
        self.entropy = PredictiveEntropy(ignore_index)
        self.calibration = CalibrationBins(ignore_index=ignore_index)

    def update(self, logits: Tensor, target: Tensor) -> None:  # noqa: D102
        self.segmentation.update(logits, target)
        self.entropy.update(logits, target)
        self.calibration.update(logits, target)

    def compute_and_reset(self, details: bool = False) -> dict:
        """Plain floats for the whole split (reduced over DDP ranks), then a clean slate for the next one.

        ``details`` adds the reliability diagram's bins (``reliability``) and each class's errors
        (``errors``, :func:`class_errors`): the teacher's report, once per distillation run.
        """
        segmentation = self.segmentation.compute()
        scores = self.segmentation.as_dict(segmentation)
        scores.update({k: float(v) for k, v in self.entropy.compute().items()})
        calibration = self.calibration.compute()
        scores["ece"] = float(calibration["ece"])
        if details:
            scores["reliability"] = {k: calibration[k].tolist() for k in ("confidence", "accuracy", "count")}
            scores["errors"] = class_errors(segmentation["confmat"], self.segmentation.class_names)
        for metric in (self.segmentation, self.entropy, self.calibration):
            metric.reset()
        return scores

    @staticmethod
    def loggable(scores: dict, prefix: str) -> dict[str, float]:
        """The scalars of ``scores`` under ``prefix/``, per-class IoU as ``prefix/IoU/<class>``."""
        flat = {f"{prefix}/{k}": v for k, v in scores.items() if not isinstance(v, dict)}
        flat.update({f"{prefix}/IoU/{name}": v for name, v in scores["IoU"].items()})
        return flat
