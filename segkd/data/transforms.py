"""Albumentations pipelines: random geometry and photometry for training, deterministic for evaluation."""

from __future__ import annotations

from typing import Optional, Sequence

import albumentations as A
import cv2
from albumentations.pytorch import ToTensorV2

from segkd.data.geometry import CropGeometry
from segkd.data.labels import IGNORE_INDEX

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Evaluation inputs are padded to a multiple of the network's output stride (segkd.models.size_divisor:
#: 32 for a 5-stage encoder, 16 for DeepLabV3+); the data layer knows no network, so whoever builds
#: a pipeline passes it in, and this is the default when nobody does.
SIZE_DIVISOR = 32


def train_transform(
    crop_size: Sequence[int],
    scale_range: Sequence[float] = (0.5, 1.5),
    jitter: float = 0.3,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> A.Compose:
    """Random scale, crop (padded with the ignore label where the scaled image is smaller), flip, colour jitter.

    The pipeline records what it applied (``save_applied_params``): :func:`geometry` reads the
    scale, padding, crop box and flip back as a :class:`~segkd.data.geometry.CropGeometry`, so a
    cached teacher output can be given the same view.
    """
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
            *([A.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter, hue=jitter / 6, p=0.8)]
              if jitter > 0 else []),
            A.Normalize(mean=mean, std=std),
            ToTensorV2(),
        ],
        save_applied_params=True,
    )


#: Fields of :func:`geometry`, in order (kept for readers of the 11-long ``sample["geometry"]`` tensor).
GEOMETRY_FIELDS = CropGeometry._fields


def geometry(applied: list[tuple[str, dict]], image_shape: Sequence[int]) -> CropGeometry:
    """The geometric part of one applied train pipeline: scale -> pad -> crop -> horizontal flip.

    ``applied`` is albumentations' ``applied_transforms`` (only the transforms that fired, each with
    its parameters and input shape). Returns the size of the scaled image, the padding added around
    it, the crop box in padded coordinates and whether the crop was mirrored. Anything else
    geometric would make that record wrong, so it is refused.
    """
    scaled = tuple(int(s) for s in image_shape[:2])
    pad = (0, 0, 0, 0)
    crop = None
    flip = 0
    for i, (name, params) in enumerate(applied):
        if name == "RandomScale":
            after = applied[i + 1][1]["shape"] if i + 1 < len(applied) else None
            scaled = tuple(int(s) for s in after[:2]) if after is not None else scaled
        elif name == "PadIfNeeded":
            pad = tuple(int(params[k]) for k in ("pad_top", "pad_bottom", "pad_left", "pad_right"))
        elif name == "RandomCrop":
            crop = tuple(int(c) for c in params["crop_coords"])
        elif name == "HorizontalFlip":
            flip = 1
        elif name in UNREPLAYABLE:
            raise ValueError(f"geometry() cannot record {name}; the teacher cache replays scale, pad, crop and flip only")
    if crop is None:
        crop = (0, 0, scaled[1] + pad[2] + pad[3], scaled[0] + pad[0] + pad[1])
    return CropGeometry(*scaled, *pad, *crop, flip)


#: Geometric transforms whose effect :func:`geometry` does not record.
UNREPLAYABLE = frozenset(
    {"Resize", "VerticalFlip", "Rotate", "Affine", "ShiftScaleRotate", "RandomResizedCrop", "CenterCrop", "Transpose"}
)


def eval_transform(
    size: Optional[Sequence[int]] = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    size_divisor: int = SIZE_DIVISOR,
) -> A.Compose:
    """Optional resize, then pad bottom/right to a multiple of ``size_divisor`` (the network's output
    stride) with ignored labels, so scores are unchanged."""
    steps = []
    if size is not None:
        steps.append(A.Resize(*size, interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST))
    steps += [
        A.PadIfNeeded(
            min_height=None,
            min_width=None,
            pad_height_divisor=size_divisor,
            pad_width_divisor=size_divisor,
            position="top_left",
            border_mode=cv2.BORDER_CONSTANT,
            fill=0,
            fill_mask=IGNORE_INDEX,
        ),
        A.Normalize(mean=mean, std=std),
        ToTensorV2(),
    ]
    return A.Compose(steps)
