"""A network's logits at an image's own size, whatever size the network needs: padded to its divisor,
or looked at through a rescaled copy. Evaluation (segkd.inference.predictor) and a teacher that
teaches from another scale (segkd.distill.teacher.RescaledTeacher) share these so that the teacher
answers exactly as segkd.evaluate scores it."""

from __future__ import annotations

from typing import Callable, Sequence

import torch.nn.functional as F
from torch import Tensor, nn


def padded_logits(net: nn.Module, images: Tensor, size_divisor: int) -> Tensor:
    """``net(images)`` with the images padded at the bottom and right to a multiple of ``size_divisor``
    (0 in normalised space: the mean colour), cropped back to the input size."""
    height, width = images.shape[-2:]
    pad_h, pad_w = (-height) % size_divisor, (-width) % size_divisor
    padded = F.pad(images, (0, pad_w, 0, pad_h)) if pad_h or pad_w else images
    return net(padded)[..., :height, :width]


def scaled_size(size: Sequence[int], scale: float) -> tuple[int, ...]:
    return tuple(max(1, int(round(s * scale))) for s in size)


def at_scale(logits_of: Callable[[Tensor], Tensor], images: Tensor, scale: float) -> Tensor:
    """``logits_of`` applied to ``images`` resized by ``scale``, its logits resized back to the input size
    (bilinear both ways)."""
    size = images.shape[-2:]
    if scale != 1.0:
        images = F.interpolate(images, size=scaled_size(size, scale), mode="bilinear", align_corners=False)
    logits = logits_of(images)
    if logits.shape[-2:] != size:
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
    return logits
