"""Bias and variance of a group of networks' log loss (Heskes 1998), accumulated over a whole split.

For M networks with class distributions p_1..p_M at a pixel labelled y, the normalised geometric mean

    p̄ = exp(mean_m log p_m) / Z,    Z = sum_c exp(mean_m log p_m(c))

splits the members' mean cross-entropy exactly into two terms:

    mean_m CE(y, p_m) = -mean_m log p_m(y)
                      = [log Z - mean_m log p_m(y)] + [-log Z]
                      = CE(y, p̄)                     + mean_m KL(p̄ || p_m)

The last step: KL(p̄ || p_m) = sum_c p̄(c) (log p̄(c) - log p_m(c)); averaged over m, log p_m(c)
becomes mean_m log p_m(c) = log p̄(c) + log Z, so the sum is -log Z. Z <= 1 by the AM-GM inequality
(the geometric mean of probabilities is at most their arithmetic mean, which sums to 1), so the
variance is >= 0, and 0 exactly when all members agree. ``bias`` = CE(y, p̄) is the loss of the
group's "central" prediction; with one sample per pixel it cannot be told apart from label noise,
so it contains the irreducible error too. Variance needs no label: it is how much the members
disagree, here averaged over labelled pixels so that it adds up with the bias.

This is the decomposition for log loss; the squared-error one (mean prediction) does not add up for
cross-entropy. Everything is float64 from log_softmax of the logits, so a probability that
underflows in float32 stays finite and the two terms add up to the expected CE to ~1e-12, over
millions of pixels too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

#: The three terms, in the order they are stored: expected CE = bias + variance.
TERMS = ("expected_ce", "bias", "variance")


@dataclass
class PixelTerms:
    """The decomposition at each labelled pixel (1-D, one entry per pixel), their labels, and the group's
    mean log-probability (N, C, H, W) at every pixel, whose argmax is the geometric ensemble's prediction."""

    labels: Tensor
    expected_ce: Tensor
    bias: Tensor
    variance: Tensor
    mean_log_probs: Tensor


def pixel_terms(member_logits: Iterable[Tensor], target: Tensor, ignore_index: int = 255) -> PixelTerms:
    """Expected CE, bias and variance at each pixel of ``target`` (N, H, W) whose label is not ``ignore_index``.

    ``member_logits`` yields each member's logits (N, C, H, W) in turn: only their running sum of
    log-probabilities is kept, so a group of any size costs the memory of two members.
    """
    total: Optional[Tensor] = None
    members = 0
    for logits in member_logits:
        if logits.ndim != 4 or logits.shape[0] != target.shape[0] or logits.shape[2:] != target.shape[1:]:
            raise ValueError(f"member logits {tuple(logits.shape)} do not match target {tuple(target.shape)} "
                             "as (N, C, H, W) to (N, H, W)")
        if total is not None and logits.shape != total.shape:
            raise ValueError(f"member {members} gives logits {tuple(logits.shape)}, member 0 {tuple(total.shape)}: "
                             "every member must predict the same classes")
        log_p = F.log_softmax(logits.double(), dim=1)
        total = log_p if total is None else total + log_p
        members += 1
    if total is None:
        raise ValueError("no member logits given")
    mean_log_p = total / members
    log_z = torch.logsumexp(mean_log_p, dim=1)  # (N, H, W), <= 0
    valid = target != ignore_index
    labels = target[valid]
    if labels.numel() and (labels.min() < 0 or labels.max() >= mean_log_p.shape[1]):
        raise ValueError(f"labels range over {int(labels.min())}..{int(labels.max())} but the members predict "
                         f"{mean_log_p.shape[1]} classes")
    at_label = mean_log_p.gather(1, torch.where(valid, target, 0).unsqueeze(1)).squeeze(1)[valid]
    log_z = log_z[valid]
    return PixelTerms(labels=labels, expected_ce=-at_label, bias=log_z - at_label, variance=-log_z,
                      mean_log_probs=mean_log_p)


class BiasVariance:
    """Sums of the three terms per ground-truth class over everything :meth:`update` saw: a split is
    decomposed batch by batch without keeping its pixels. :meth:`compute` gives the means."""

    def __init__(self, class_names: Sequence[str], ignore_index: int = 255) -> None:
        self.class_names = tuple(class_names)
        self.ignore_index = ignore_index
        self.sums = torch.zeros(len(TERMS), len(self.class_names), dtype=torch.float64)
        self.pixels = torch.zeros(len(self.class_names), dtype=torch.int64)

    def update(self, member_logits: Iterable[Tensor], target: Tensor) -> Tensor:
        """Add one batch (see :func:`pixel_terms`); returns the group's mean log-probabilities (N, C, H, W)."""
        terms = pixel_terms(member_logits, target, self.ignore_index)
        if terms.mean_log_probs.shape[1] != len(self.class_names):
            raise ValueError(f"the members predict {terms.mean_log_probs.shape[1]} classes, the data has "
                             f"{len(self.class_names)}")
        labels = terms.labels.cpu()
        for row, name in enumerate(TERMS):
            self.sums[row].index_add_(0, labels, getattr(terms, name).cpu())
        self.pixels += torch.bincount(labels, minlength=len(self.class_names))
        return terms.mean_log_probs

    def compute(self) -> dict:
        """Mean of each term over all labelled pixels and per class (None for a class with no pixels),
        with the pixel counts; ``variance_share`` is the variance's part of the expected CE.

        ``class_mean`` averages the per-class terms over the classes that have pixels, each class
        weighted equally as mIoU weights them: the pixel mean is ruled by road, building and
        vegetation, while mIoU moves with the rare classes.
        """
        total = int(self.pixels.sum())
        overall = {name: float(self.sums[row].sum() / total) if total else None for row, name in enumerate(TERMS)}
        seen = self.pixels > 0
        per_pixel = self.sums[:, seen] / self.pixels[seen]
        class_mean = {name: float(per_pixel[row].mean()) if seen.any() else None for row, name in enumerate(TERMS)}
        per_class = {}
        for c, class_name in enumerate(self.class_names):
            n = int(self.pixels[c])
            per_class[class_name] = {"pixels": n, **{name: float(self.sums[row, c] / n) if n else None
                                                     for row, name in enumerate(TERMS)}}
        share = overall["variance"] / overall["expected_ce"] if total and overall["expected_ce"] else None
        return {"pixels": total, **overall, "variance_share": share, "class_mean": class_mean, "per_class": per_class}
