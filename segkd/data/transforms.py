"""Albumentations pipelines: random geometry and photometry for training, deterministic for evaluation."""

from __future__ import annotations

from typing import Optional, Sequence

import albumentations as A
import cv2
from albumentations.pytorch import ToTensorV2

from segkd.data.labels import IGNORE_INDEX

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: smp's UNet halves the resolution five times; evaluation inputs are padded to a multiple of this.
SIZE_DIVISOR = 32


def train_transform(
    crop_size: Sequence[int],
    scale_range: Sequence[float] = (0.5, 1.5),
    jitter: float = 0.3,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> A.Compose:
    """Random scale, crop (padded with the ignore label where the scaled image is smaller), flip, colour jitter."""
    height, width = crop_size
    low, high = scale_range
    return A.Compose(
        [
            A.RandomScale(
                scale_limit=(low - 1.0, high - 1.0),
                interpolation=cv2.INTER_LINEAR,
                mask_interpolation=cv2.INTER_NEAREST,
                p=1.0,
            ),
            A.PadIfNeeded(height, width, border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=IGNORE_INDEX),
            A.RandomCrop(height, width),
            A.HorizontalFlip(p=0.5),
            A.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter, hue=jitter / 6, p=0.8),
            A.Normalize(mean=mean, std=std),
            ToTensorV2(),
        ]
    )


def eval_transform(
    size: Optional[Sequence[int]] = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> A.Compose:
    """Optional resize, then pad bottom/right to a multiple of 32 with ignored labels, so scores are unchanged."""
    steps = []
    if size is not None:
        steps.append(A.Resize(*size, interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST))
    steps += [
        A.PadIfNeeded(
            min_height=None,
            min_width=None,
            pad_height_divisor=SIZE_DIVISOR,
            pad_width_divisor=SIZE_DIVISOR,
            position="top_left",
            border_mode=cv2.BORDER_CONSTANT,
            fill=0,
            fill_mask=IGNORE_INDEX,
        ),
        A.Normalize(mean=mean, std=std),
        ToTensorV2(),
    ]
    return A.Compose(steps)
