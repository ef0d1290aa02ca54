"""What a segmentation split contains, as numbers: class shares, object sizes, colour statistics.

Pure functions and accumulators over arrays (masks of train ids, RGB images), so that each number
of ``segkd.analyze`` can be checked on hand-made arrays. Pixel and presence counts are not counted
here: they come from :func:`segkd.data.class_stats.class_statistics`, the counts training's class
weighting reads, so the report and the loss can never disagree about them.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

import cv2
import numpy as np

from segkd.losses.class_weights import WEIGHTING_SCHEMES, class_weights

#: Object areas are histogrammed in shares of the image on log-spaced bins, 4 per decade from 1e-7
#: (a pixel of a 1024x2048 Cityscapes image is 4.8e-7) to the whole image: one set of bins serves
#: every dataset, so histograms of two datasets can be compared bin by bin.
AREA_BIN_EDGES = np.logspace(-7, 0, 7 * 4 + 1)

#: Percentiles of object area reported beside the median: the small and the large end of a class.
AREA_PERCENTILES = (10, 90)

# Published per-class share of pixels for Cityscapes, in % of ALL pixels (void labels included), in
# train-id order (road ... bicycle). Source: the "pixel-wise occ [%]" column of
# https://github.com/m-birke/automotive-segmentation-datasets/blob/af5e0aef52a8823dca25b78904d23f8c19421bbc/cityscapes.md
# A third-party compilation, not the Cityscapes authors' (their paper, Cordts et al. CVPR 2016, Fig. 1,
# plots the counts without a table). It counts fine annotations (its 0.01% 'unlabeled' rules out the
# coarse ones and the test split's dummy labels) but does not say whether of train or train+val. An
# independent count over the 2975 train labelTrainIds, found in public code without a citable origin
# (so not used), agrees with it to within 10% per class after renormalisation: a reference for orders
# of magnitude, not for the third digit.
CITYSCAPES_PUBLISHED_PERCENT = (
    32.7, 5.3, 20.1, 0.59, 0.77, 1.1243, 0.1823, 0.5015, 14.3, 0.98,
    3.5, 1.1, 0.1295, 6.0, 0.2406, 0.2271, 0.1907, 0.0848, 0.4030,
)
CITYSCAPES_REFERENCE_SOURCE = (
    "https://github.com/m-birke/automotive-segmentation-datasets/blob/"
    "af5e0aef52a8823dca25b78904d23f8c19421bbc/cityscapes.md"
)


def cityscapes_reference_shares() -> np.ndarray:
    """The published Cityscapes shares renormalised over the 19 evaluated classes: the same
    denominator (labelled pixels, void excluded) as :func:`class_shares` uses, so the two compare."""
    percent = np.asarray(CITYSCAPES_PUBLISHED_PERCENT, dtype=np.float64)
    return percent / percent.sum()


def class_shares(stats: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(pixel share, image presence)`` per class from :func:`class_statistics`' counts.

    The pixel share is of labelled pixels (ignored ones excluded), since that is what a loss sees;
    presence is the share of images in which the class has at least one pixel.
    """
    pixels = np.asarray(stats["pixels"], dtype=np.float64)
    present = np.asarray(stats["images_present"], dtype=np.float64)
    total = pixels.sum()
    share = pixels / total if total > 0 else np.zeros_like(pixels)
    return share, present / max(int(stats["num_images"]), 1)


def weights_by_scheme(stats: dict) -> dict[str, np.ndarray]:
    """Each weighting scheme the loss offers (``none`` left out: all ones), as the loss computes it."""
    return {scheme: class_weights(stats, scheme) for scheme in WEIGHTING_SCHEMES if scheme != "none"}


def object_areas(mask: np.ndarray, num_classes: int) -> dict[int, np.ndarray]:
    """Pixel areas of the 8-connected components of each class present in ``mask`` (train ids).

    An "object" here is a connected region of one class, not an annotated instance: two touching
    cars are one region, which is what a segmentation network has to delineate. Ignored pixels
    (ids >= num_classes) belong to no class.
    """
    counts = np.bincount(mask.ravel(), minlength=256)[:num_classes]
    areas = {}
    for cls in np.flatnonzero(counts):
        n, _, stats, _ = cv2.connectedComponentsWithStats((mask == cls).astype(np.uint8), connectivity=8)
        areas[int(cls)] = stats[1:n, cv2.CC_STAT_AREA].astype(np.int64)  # label 0 is the background
    return areas


class ObjectSizes:
    """Connected-component areas of every class over a split, as shares of their image's pixels
    (so images of different sizes and datasets compare)."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self._shares: list[list[np.ndarray]] = [[] for _ in range(num_classes)]

    def add(self, mask: np.ndarray) -> None:
        for cls, areas in object_areas(mask, self.num_classes).items():
            self._shares[cls].append(areas / mask.size)

    def shares(self, cls: int) -> np.ndarray:
        """Area shares of every object of class ``cls`` seen so far."""
        parts = self._shares[cls]
        return np.concatenate(parts) if parts else np.zeros(0)

    def summary(self, cls: int) -> dict:
        """Count, median and the :data:`AREA_PERCENTILES` of the class's object areas (shares of the
        image; None without objects), plus their histogram on :data:`AREA_BIN_EDGES`."""
        shares = self.shares(cls)
        low, high = AREA_PERCENTILES
        quantiles = np.percentile(shares, [50, low, high]) if shares.size else [None] * 3
        return {
            "objects": int(shares.size),
            "median_area": _float(quantiles[0]),
            f"p{low}_area": _float(quantiles[1]),
            f"p{high}_area": _float(quantiles[2]),
            "area_histogram": np.histogram(shares, bins=AREA_BIN_EDGES)[0].tolist(),
        }


class ChannelMoments:
    """Mean and standard deviation of each RGB channel over every pixel of a split, on the 0-1 scale
    that normalisation constants (ImageNet's 0.485/0.229 ...) are given in.

    Kept as a 256-bin histogram per channel: exact integer counts, so the result does not depend on
    the order or number of images, and it cannot overflow on a large split.
    """

    def __init__(self) -> None:
        self.histogram = np.zeros((3, 256), dtype=np.int64)

    def add(self, image: np.ndarray) -> None:
        """``image``: HxWx3 uint8 RGB."""
        for channel in range(3):
            self.histogram[channel] += np.bincount(image[..., channel].ravel(), minlength=256)

    def mean_std(self) -> tuple[np.ndarray, np.ndarray]:
        values = np.arange(256, dtype=np.float64) / 255.0
        count = self.histogram.sum(axis=1).astype(np.float64)
        mean = self.histogram @ values / count
        var = self.histogram @ values**2 / count - mean**2
        return mean, np.sqrt(np.maximum(var, 0.0))


def rarest(names: Sequence[str], values: Iterable[float], k: int = 3) -> list[tuple[str, float]]:
    """The ``k`` classes with the smallest positive value (absent classes are reported apart)."""
    pairs = [(name, float(v)) for name, v in zip(names, values) if v is not None and v > 0]
    return sorted(pairs, key=lambda p: p[1])[:k]


def _float(value) -> Optional[float]:
    return None if value is None else float(value)
