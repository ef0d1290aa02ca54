"""Predictions as pictures: train ids in the Cityscapes palette, alone or blended over the image."""

from __future__ import annotations

import numpy as np

from segkd.data.labels import IGNORE_INDEX, TRAIN_ID_COLORS

#: RGB colour of every byte value: the 19 train ids in the Cityscapes palette, everything else black.
PALETTE = np.zeros((256, 3), dtype=np.uint8)
PALETTE[: len(TRAIN_ID_COLORS)] = np.asarray(TRAIN_ID_COLORS, dtype=np.uint8)
PALETTE[IGNORE_INDEX] = 0


def colorize(train_ids: np.ndarray) -> np.ndarray:
    """HxW train ids -> HxWx3 RGB in the Cityscapes palette."""
    return PALETTE[np.asarray(train_ids, dtype=np.uint8)]


def check_alpha(alpha: float) -> float:
    """An overlay weight, refused before any work when it is not one."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"overlay_alpha={alpha} must be between 0 (image only) and 1 (mask only)")
    return alpha


def overlay(image: np.ndarray, train_ids: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The image (HxWx3 RGB uint8) with its colour-coded prediction blended in at ``alpha``."""
    check_alpha(alpha)
    blend = (1.0 - alpha) * image.astype(np.float32) + alpha * colorize(train_ids).astype(np.float32)
    return np.clip(np.rint(blend), 0, 255).astype(np.uint8)
