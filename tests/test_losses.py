"""Supervised loss and class weighting against plain references written here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from segkd.losses import SegmentationCrossEntropy
from segkd.losses.class_weights import class_weights


def _batch(seed=0, num_classes=4):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, num_classes, 5, 6, generator=g, requires_grad=True)
    target = torch.randint(0, num_classes, (2, 5, 6), generator=g)
    target[0, 0] = 255
    return logits, target


def test_plain_and_weighted_cross_entropy_match_torch():
    logits, target = _batch()
    loss = SegmentationCrossEntropy(4)
    assert loss(logits, target).item() == pytest.approx(F.cross_entropy(logits, target, ignore_index=255).item())
    weighted = SegmentationCrossEntropy(4, class_weighting="inverse")
    w = torch.tensor([0.5, 1.0, 2.0, 4.0])
    weighted.set_class_weights(w)
    expected = F.cross_entropy(logits, target, weight=w, ignore_index=255)
    assert weighted(logits, target).item() == pytest.approx(expected.item(), rel=1e-6)


def test_ohem_keeps_hard_pixels_and_at_least_min_kept():
    logits, target = _batch(1)
    valid = target != 255
    per_pixel = F.cross_entropy(logits, target, ignore_index=255, reduction="none")
    prob = torch.exp(-per_pixel)
    # threshold 0.3: keep pixels whose true-class probability <= 0.3 (min_kept small enough not to bind)
    loss = SegmentationCrossEntropy(4, ohem_thresh=0.3, ohem_min_kept=1)
    keep = valid & (prob <= 0.3)
    assert 0 < keep.sum() < valid.sum()
    assert loss(logits, target).item() == pytest.approx(per_pixel[keep].mean().item(), rel=1e-5)
    # min_kept binds: the 40 hardest valid pixels are kept even if easier than the threshold
    loss = SegmentationCrossEntropy(4, ohem_thresh=0.01, ohem_min_kept=40)
    hardest = per_pixel[valid].sort(descending=True).values[:40]
    assert loss(logits, target).item() == pytest.approx(hardest.mean().item(), rel=1e-5)


def test_bad_loss_options_fail_with_choices():
    with pytest.raises(ValueError, match="choose one of none, inverse, median, enet"):
        SegmentationCrossEntropy(4, class_weighting="log")
    with pytest.raises(ValueError, match=r"ohem_thresh must be in \(0, 1\]"):
        SegmentationCrossEntropy(4, ohem_thresh=1.5)


STATS = {
    "pixels": [600, 300, 100, 0],
    "pixels_of_images_present": [1000, 1000, 400, 0],
    "images_present": [10, 10, 4, 0],
    "num_images": 10,
}


def test_class_weighting_schemes_against_their_formulas():
    freq = np.array([0.6, 0.3, 0.1])
    inv = class_weights(STATS, "inverse")
    np.testing.assert_allclose(inv[:3], (1 / freq) / (1 / freq).mean())
    assert inv[3] == 0.0
    med = class_weights(STATS, "median")
    f = np.array([600 / 1000, 300 / 1000, 100 / 400])
    np.testing.assert_allclose(med[:3], np.median(f) / f)
    enet = class_weights(STATS, "enet")
    np.testing.assert_allclose(enet[:3], 1 / np.log(1.02 + freq))
    assert enet[2] > enet[1] > enet[0], "rarer classes weigh more"
    np.testing.assert_array_equal(class_weights(STATS, "none"), np.ones(4))


def test_confidence_penalty_subtracts_beta_times_mean_entropy_of_valid_pixels():
    logits, target = _batch(2)
    plain = SegmentationCrossEntropy(4)(logits, target)
    penalised = SegmentationCrossEntropy(4, confidence_penalty=0.5)(logits, target)
    p = logits.softmax(1)
    entropy = -(p * p.log()).sum(1)
    valid = target != 255
    assert penalised.item() == pytest.approx(plain.item() - 0.5 * entropy[valid].mean().item(), rel=1e-6)
    # the penalty pushes towards softer outputs: its gradient raises entropy
    soft = SegmentationCrossEntropy(4, confidence_penalty=10.0)
    logits2 = logits.detach().clone().requires_grad_(True)
    soft(logits2, target).backward()
    stepped = (logits2 - 0.01 * logits2.grad).softmax(1)
    new_entropy = -(stepped * stepped.log()).sum(1)[valid].mean()
    assert new_entropy > entropy[valid].mean()


def test_label_smoothing_matches_torch():
    logits, target = _batch(3)
    loss = SegmentationCrossEntropy(4, label_smoothing=0.1)
    expected = F.cross_entropy(logits, target, ignore_index=255, label_smoothing=0.1)
    assert loss(logits, target).item() == pytest.approx(expected.item(), rel=1e-6)


def test_class_weights_weigh_pixels_and_leave_the_smoothed_target_uniform():
    eps, w = 0.1, torch.tensor([0.2, 1.0, 5.0, 20.0])  # median-frequency-like: rare classes weigh a lot
    logits, target = _batch(4)
    loss = SegmentationCrossEntropy(4, class_weighting="median", label_smoothing=eps)
    loss.set_class_weights(w)
    valid = target != 255
    per_pixel = F.cross_entropy(logits, target, ignore_index=255, reduction="none", label_smoothing=eps)
    pixel_w = w[target.clamp(max=3)] * valid
    assert loss(logits, target).item() == pytest.approx(((per_pixel * pixel_w).sum() / pixel_w.sum()).item(), rel=1e-6)

    # At the textbook smoothed target (1 - eps + eps/C on the label, eps/C elsewhere) the gradient
    # vanishes whatever the weights; PyTorch's weighted smoothing pulls towards the heavy classes.
    smoothed = torch.full((2, 4, 5, 6), eps / 4).scatter_(1, target.clamp(max=3).unsqueeze(1), 1 - eps + eps / 4)
    at_target = smoothed.log().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(at_target, target), at_target)
    assert grad.abs().max().item() < 1e-7
    torch_weighted = F.cross_entropy(at_target, target, weight=w, ignore_index=255, label_smoothing=eps)
    (grad_torch,) = torch.autograd.grad(torch_weighted, at_target)
    assert grad_torch.abs().max().item() > 1e-3
