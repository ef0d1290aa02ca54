"""Pixel statistics of a split and the class-weighting schemes built on them.

Weights are computed from the untransformed train masks (what the split contains, not what one
epoch of random crops happened to see), and cached, since a full Cityscapes scan takes minutes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional

import numpy as np

WEIGHTING_SCHEMES = ("none", "inverse", "median", "enet")


def class_statistics(dataset, num_classes: int, cache_dir: Optional[str | Path] = None) -> dict:
    """Pixel and per-image presence counts, cached by the list of label files (paths, sizes, mtimes)."""
    cache_file = None
    if cache_dir is not None:
        key = hashlib.sha1()
        for _, label in dataset.samples:
            stat = label.stat()
            key.update(f"{label}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
        cache_file = Path(cache_dir) / f"class_stats-{key.hexdigest()[:16]}.json"
        if cache_file.is_file():
            return json.loads(cache_file.read_text())
    pixels = np.zeros(num_classes, dtype=np.int64)
    images = np.zeros(num_classes, dtype=np.int64)
    image_pixels = np.zeros(num_classes, dtype=np.int64)
    for i in range(len(dataset)):
        mask = dataset.load_mask(i)
        counts = np.bincount(mask[mask < num_classes].ravel(), minlength=num_classes)[:num_classes]
        pixels += counts
        present = counts > 0
        images += present
        image_pixels[present] += mask.size
    stats = {
        "num_images": len(dataset),
        "pixels": pixels.tolist(),
        "images_present": images.tolist(),
        "pixels_of_images_present": image_pixels.tolist(),
    }
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(stats))
        tmp.replace(cache_file)
    return stats


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
