"""Where a teacher's soft targets hold something beyond the label (docs/METHODS.md, section 1).

Logit distillation only teaches something beyond the label where the teacher's softmax is *not*
one-hot: its entropy (/ log C, 0 = certain, 1 = uniform) and its mass off the argmax (/ (1 - 1/C)),
segkd.visual.knowledge.teacher_maps, say where that is. :class:`DarkKnowledge` averages the two
over groups of pixels: class-boundary pixels (another valid class in the 3x3 neighbourhood of the
label, :func:`boundary_mask`) vs interior ones, each class (rare vs frequent), pixels of small vs
large objects (8-connected regions of one class, as segkd.analysis.dataset_stats.object_areas
counts them, :func:`component_area_map`). experiments/methods_figures.py runs it over the reference
teacher and draws the figures.
"""

from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np
import torch
from torch import nn

#: A class is rare when it holds less than this share of the labelled val pixels.
RARE_SHARE = 0.01
#: An object (8-connected region of one class) is small below this share of its image's pixels
#: (0.2% = 66 pixels of a 128x256 image).
SMALL_OBJECT_SHARE = 0.002
#: Object-size bins (shares of the image) for the finer table.
AREA_BINS = (0.0, 1e-3, 1e-2, 1e-1, 1.0 + 1e-9)


# ---------------------------------------------------------------------------------------------------------------------
# Masks


def boundary_mask(mask: np.ndarray, ignore_index: int = 255) -> tuple[np.ndarray, np.ndarray]:
    """``(boundary, interior)`` boolean maps of a train-id mask (H, W).

    A valid pixel is on a boundary when one of its 8 neighbours holds another *valid* class (ignored
    neighbours, and the outside of the image, do not count); every other valid pixel is interior, so
    the two partition the valid pixels.
    """
    valid = mask != ignore_index
    padded = np.pad(mask, 1, mode="edge")
    h, w = mask.shape
    boundary = np.zeros_like(valid)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            if dy == 1 and dx == 1:
                continue
            neighbour = padded[dy:dy + h, dx:dx + w]
            boundary |= (neighbour != mask) & (neighbour != ignore_index)
    boundary &= valid
    return boundary, valid & ~boundary


def component_area_map(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """Per pixel, the area (pixels) of the 8-connected region of its class it lies in (0 when ignored):
    the regions :func:`segkd.analysis.dataset_stats.object_areas` counts, mapped back to pixels."""
    areas = np.zeros(mask.shape, dtype=np.int64)
    for cls in np.unique(mask):
        if cls >= num_classes:
            continue
        n, labels, stats, _ = cv2.connectedComponentsWithStats((mask == cls).astype(np.uint8), connectivity=8)
        inside = labels > 0
        areas[inside] = stats[labels[inside], cv2.CC_STAT_AREA]
    return areas


# ---------------------------------------------------------------------------------------------------------------------
# Dark knowledge


class DarkKnowledge:
    """Sums of the teacher's normalised entropy and off-argmax mass over groups of pixels."""

    GROUPS = ("boundary", "interior", "small", "large", "small_interior", "large_interior")

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.sums = {g: np.zeros(3) for g in self.GROUPS}  # count, entropy, off-argmax
        self.per_class = np.zeros((num_classes, 3))
        self.bins = np.zeros((len(AREA_BINS) - 1, 3))
        self.valid = np.zeros(3)

    @staticmethod
    def _add(acc: np.ndarray, where: np.ndarray, ent: np.ndarray, off: np.ndarray) -> None:
        acc += (where.sum(), ent[where].sum(), off[where].sum())

    def add(self, ent: np.ndarray, off: np.ndarray, mask: np.ndarray, ignore_index: int = 255) -> None:
        """One image: entropy and off-argmax maps (H, W) in [0, 1], its train-id mask (H, W)."""
        ent, off = ent.astype(np.float64), off.astype(np.float64)
        valid = mask != ignore_index
        boundary, interior = boundary_mask(mask, ignore_index)
        share = component_area_map(mask, self.num_classes) / mask.size
        small, large = valid & (share < SMALL_OBJECT_SHARE), valid & (share >= SMALL_OBJECT_SHARE)
        groups = {"boundary": boundary, "interior": interior, "small": small, "large": large,
                  "small_interior": small & interior, "large_interior": large & interior}
        for name, where in groups.items():
            self._add(self.sums[name], where, ent, off)
        self._add(self.valid, valid, ent, off)
        labels = mask[valid].astype(np.int64)
        self.per_class[:, 0] += np.bincount(labels, minlength=self.num_classes)
        self.per_class[:, 1] += np.bincount(labels, ent[valid], minlength=self.num_classes)
        self.per_class[:, 2] += np.bincount(labels, off[valid], minlength=self.num_classes)
        for i, (lo, hi) in enumerate(zip(AREA_BINS[:-1], AREA_BINS[1:])):
            self._add(self.bins[i], valid & (share >= lo) & (share < hi), ent, off)

    @staticmethod
    def _means(acc: Sequence[float]) -> dict:
        n = float(acc[0])
        return {"pixels": int(n), "entropy": acc[1] / n if n else None, "off_argmax": acc[2] / n if n else None}

    def summary(self, class_names: Sequence[str]) -> dict:
        out = {"all_valid": self._means(self.valid)}
        out.update({g: self._means(self.sums[g]) for g in self.GROUPS})
        shares = self.per_class[:, 0] / max(self.per_class[:, 0].sum(), 1.0)
        classes = {}
        for c, name in enumerate(class_names):
            classes[name] = {**self._means(self.per_class[c]), "share": float(shares[c])}
        out["per_class"] = classes
        present = self.per_class[:, 0] > 0
        rare, frequent = present & (shares < RARE_SHARE), present & (shares >= RARE_SHARE)
        out["rare"] = {**self._means(self.per_class[rare].sum(axis=0)),
                       "classes": [class_names[c] for c in np.flatnonzero(rare)]}
        out["frequent"] = {**self._means(self.per_class[frequent].sum(axis=0)),
                           "classes": [class_names[c] for c in np.flatnonzero(frequent)]}
        # Per-class means, unweighted by pixels: a rare class counts as much as road.
        out["rare"]["class_mean_entropy"] = float(np.mean(self.per_class[rare, 1] / self.per_class[rare, 0])) if rare.any() else None
        out["frequent"]["class_mean_entropy"] = (float(np.mean(self.per_class[frequent, 1] / self.per_class[frequent, 0]))
                                                 if frequent.any() else None)
        out["object_area_bins"] = [{"area_share": [lo, min(hi, 1.0)], **self._means(acc)}
                                   for lo, hi, acc in zip(AREA_BINS[:-1], AREA_BINS[1:], self.bins)]
        out["definitions"] = {
            "entropy": "teacher entropy / log C (segkd.visual.knowledge.teacher_maps)",
            "off_argmax": "(1 - max prob) / (1 - 1/C) (segkd.visual.knowledge.teacher_maps)",
            "boundary": "valid pixel with another valid class among its 8 neighbours in the label",
            "rare_share": RARE_SHARE, "small_object_share": SMALL_OBJECT_SHARE,
            "object": "8-connected region of one class (segkd.analysis.dataset_stats.object_areas)",
        }
        return out


@torch.no_grad()
def teacher_pass(net: nn.Module, dataset, batch_size: int = 8, limit: Optional[int] = None):
    """Yield (index, logits, mask) batches of ``dataset`` (a segkd dataset with the eval transform)."""
    from torch.utils.data import DataLoader, Subset

    data = dataset if limit is None else Subset(dataset, range(min(limit, len(dataset))))
    for batch in DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=0):
        yield batch["index"], net(batch["image"]).float(), batch["mask"]


def dark_knowledge(net: nn.Module, dataset, limit: Optional[int] = None, keep: int = 8) -> tuple[dict, dict]:
    """:class:`DarkKnowledge`'s summary of ``net`` over ``dataset`` (its first ``limit`` images), and the
    logits and masks of its first ``keep`` images (``{"logits": ..., "masks": ...}``)."""
    from segkd.visual.knowledge import teacher_maps

    stats = DarkKnowledge(dataset.num_classes)
    kept_logits, kept_masks = [], []
    for _, logits, masks in teacher_pass(net, dataset, limit=limit):
        maps = teacher_maps(logits, logits, masks, dataset.ignore_index)
        for i in range(len(masks)):
            stats.add(maps["entropy"][i].numpy(), maps["off_argmax"][i].numpy(), masks[i].numpy(), dataset.ignore_index)
        if sum(len(x) for x in kept_logits) < keep:
            kept_logits.append(logits)
            kept_masks.append(masks)
    kept = {"logits": torch.cat(kept_logits)[:keep], "masks": torch.cat(kept_masks)[:keep]}
    return stats.summary(dataset.class_names), kept
