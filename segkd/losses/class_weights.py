"""Class-weighting schemes for the supervised loss: pixel counts in, one weight per class out.

The data package counts (:func:`segkd.data.class_stats.class_statistics`); how counts become weights
is a choice about the loss, so it lives here, beside the loss that names the scheme.
"""

from __future__ import annotations

import numpy as np

WEIGHTING_SCHEMES = ("none", "inverse", "median", "enet")


def class_weights(stats: dict, scheme: str, enet_c: float = 1.02) -> np.ndarray:
    """Per-class loss weights.

    - ``inverse``: 1 / frequency, rescaled to mean 1 over the classes present.
    - ``median``: median frequency balancing (Eigen & Fergus): freq_c = pixels_c / pixels of the images
      where c appears; weight = median(freq) / freq_c.
    - ``enet``: 1 / ln(c + p_class) with c = 1.02 (Paszke et al., ENet), bounded for rare classes.
    Classes absent from the split get weight 0: they cannot be learned from it and should not skew the mean.
    """
    if scheme not in WEIGHTING_SCHEMES:
        raise ValueError(f"unknown class weighting '{scheme}'; choose one of {', '.join(WEIGHTING_SCHEMES)}")
    pixels = np.asarray(stats["pixels"], dtype=np.float64)
    present = pixels > 0
    weights = np.zeros_like(pixels)
    if scheme == "none":
        return np.ones_like(pixels)
    if scheme == "inverse":
        freq = pixels / pixels.sum()
        weights[present] = 1.0 / freq[present]
        weights[present] /= weights[present].mean()
    elif scheme == "median":
        denom = np.asarray(stats["pixels_of_images_present"], dtype=np.float64)
        freq = np.zeros_like(pixels)
        freq[present] = pixels[present] / denom[present]
        weights[present] = np.median(freq[present]) / freq[present]
    elif scheme == "enet":
        prob = pixels / pixels.sum()
        weights[present] = 1.0 / np.log(enet_c + prob[present])
    return weights
