"""The one metric implementation against a confusion matrix counted by hand and the official conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from segkd.metrics import SegmentationMetrics, scores_from_confmat


def hand_confmat(pred: np.ndarray, target: np.ndarray, num_classes: int, ignore: int = 255) -> np.ndarray:
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    for p, t in zip(pred.ravel(), target.ravel()):
        if t != ignore:
            cm[t, p] += 1
    return cm


def test_scores_match_hand_counted_confusion_matrix_over_several_batches():
    rng = np.random.default_rng(0)
    num_classes = 5
    metric = SegmentationMetrics(num_classes)
    total = np.zeros((num_classes, num_classes), dtype=np.int64)
    for _ in range(3):
        target = rng.integers(0, num_classes - 1, (2, 6, 7))  # class 4 never in ground truth
        target[rng.random(target.shape) < 0.2] = 255
        logits = torch.randn(2, num_classes, 6, 7, generator=torch.Generator().manual_seed(int(rng.integers(1e6))))
        pred = logits.argmax(1).numpy()
        metric.update(logits, torch.as_tensor(target))
        total += hand_confmat(pred, target, num_classes)
    scores = metric.compute()

    tp = np.diag(total).astype(float)
    fp = total.sum(0) - tp
    fn = total.sum(1) - tp
    iou = tp / (tp + fp + fn)
    np.testing.assert_allclose(scores["IoU"].numpy(), iou, rtol=1e-12)
    assert scores["mIoU"].item() == pytest.approx(iou.mean())
    assert scores["pixel_acc"].item() == pytest.approx(tp.sum() / total.sum())
    # class 4 has no ground truth but is predicted: official convention scores it 0, not NaN
    assert scores["IoU"][4].item() == 0.0


def test_class_absent_from_both_is_nan_and_skipped_by_the_mean():
    cm = torch.tensor([[3, 1, 0], [0, 2, 0], [0, 0, 0]])
    scores = scores_from_confmat(cm)
    assert math.isnan(scores["IoU"][2].item())
    assert scores["mIoU"].item() == pytest.approx((3 / 4 + 2 / 3) / 2)


def test_matches_official_cityscapes_iou_function():
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official
    from cityscapesscripts.helpers.labels import trainId2label

    rng = np.random.default_rng(1)
    target = rng.integers(0, 19, (1, 16, 16))
    target[0, :2] = 255
    pred = rng.integers(0, 19, (1, 16, 16))
    pred[target == 3] = 3  # wall perfect
    metric = SegmentationMetrics(19)
    metric.update(torch.as_tensor(pred), torch.as_tensor(target))
    ours = metric.compute()["IoU"].numpy()

    # The official tool works on raw label ids with a 256x256 confusion matrix.
    raw_of = {t: trainId2label[t].id for t in range(19)}
    conf = np.zeros((256, 256), dtype=np.uint64)
    for p, t in zip(pred.ravel(), target.ravel()):
        if t != 255:
            conf[raw_of[int(t)], raw_of[int(p)]] += 1
    args = official.args
    args.evalLabels = [raw_of[t] for t in range(19)]
    for t in range(19):
        theirs = official.getIouScoreForLabel(raw_of[t], conf, args)
        assert ours[t] == pytest.approx(theirs, nan_ok=True)


def test_shape_mismatch_is_a_clear_error():
    metric = SegmentationMetrics(3)
    with pytest.raises(ValueError, match=r"prediction shape \(1, 4, 4\) does not match target \(1, 4, 5\)"):
        metric.update(torch.zeros(1, 4, 4, dtype=torch.long), torch.zeros(1, 4, 5, dtype=torch.long))


def test_predictive_entropy_and_dark_knowledge_over_valid_pixels():
    from segkd.metrics import PredictiveEntropy

    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 4, 3, 5, generator=g)
    target = torch.randint(0, 4, (2, 3, 5), generator=g)
    target[0, 0] = 255
    metric = PredictiveEntropy()
    metric.update(logits[:1], target[:1])
    metric.update(logits[1:], target[1:])
    out = metric.compute()
    p = logits.double().softmax(1)
    valid = target != 255
    entropy = -(p * p.log()).sum(1)[valid].mean()
    dark = (1 - p.max(1).values)[valid].mean()
    assert out["entropy"].item() == pytest.approx(entropy.item(), rel=1e-6)
    assert out["dark_knowledge"].item() == pytest.approx(dark.item(), rel=1e-6)
    # one-hot predictions carry no dark knowledge
    sharp = PredictiveEntropy()
    sharp.update(torch.nn.functional.one_hot(target.clamp(max=3), 4).permute(0, 3, 1, 2).float() * 100, target)
    assert sharp.compute()["dark_knowledge"].item() < 1e-6
