"""Pixel statistics of a split: the counts that class weights (:mod:`segkd.losses.class_weights`) are built on.

They are counted from the untransformed train masks (what the split contains, not what one
epoch of random crops happened to see), and cached, since a full Cityscapes scan takes minutes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

log = logging.getLogger(__name__)


def class_statistics(dataset, num_classes: int, cache_dir: Optional[str | Path] = None) -> dict:
    """Pixel and per-image presence counts, cached by the list of label files (paths, sizes, mtimes)."""
    cache_file = None
    if cache_dir is not None:
        key = hashlib.sha1()
        for _, label in dataset.samples:
            stat = label.stat()
            key.update(f"{label}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
        cache_file = Path(cache_dir) / f"class_stats-{key.hexdigest()[:16]}.json"
        try:
            return json.loads(cache_file.read_text())
        except (OSError, json.JSONDecodeError):  # not cached yet, removed meanwhile, or unreadable
            pass
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
        _write_atomically(cache_file, json.dumps(stats))
    return stats


def _write_atomically(path: Path, text: str) -> None:
    """A temporary file of its own in the same dir, then a rename: processes computing the same
    statistics at once never see (or remove) each other's half-written file. A cache dir that
    cannot be written (read-only media) costs the cache, not the run."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as err:
        log.warning("class statistics not cached (%s: %s); they are recomputed next time", type(err).__name__, err)
