"""The geometry one train sample was given: the contract between the augmentation and the teacher cache.

:func:`segkd.data.transforms.geometry` reads it off an applied train pipeline; the teacher-logit
cache (:func:`segkd.distill.teacher_cache.replay`) gives a cached whole-image map the same view.

On a sample it travels as an 11-long ``torch.long`` tensor (``sample["geometry"]``), in the order of
the fields below, because the DataLoader collates tensors into a batch (``(N, 11)``) where it would
collate a NamedTuple field by field. :meth:`CropGeometry.as_tensor` and
:meth:`CropGeometry.of` convert at that boundary.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence, Union

import torch
from torch import Tensor


class CropGeometry(NamedTuple):
    """scale -> pad -> crop -> horizontal flip, in pixels.

    The image (``H x W``) was resized to ``scaled_h x scaled_w``, padded by ``pad_*`` pixels on each
    side (with ignored labels), cropped to the box ``[crop_x0, crop_x1) x [crop_y0, crop_y1)`` in the
    padded image's coordinates, and mirrored left-right when ``flip`` is 1.
    """

    scaled_h: int
    scaled_w: int
    pad_top: int
    pad_bottom: int
    pad_left: int
    pad_right: int
    crop_x0: int
    crop_y0: int
    crop_x1: int
    crop_y1: int
    flip: int

    @classmethod
    def of(cls, value: Union["CropGeometry", Tensor, Sequence[int]]) -> "CropGeometry":
        """A geometry from what carries one: itself, a sample's 11-long tensor, or 11 ints in field order."""
        if isinstance(value, cls):
            return value
        values = value.tolist() if isinstance(value, Tensor) else list(value)
        if len(values) != len(cls._fields):
            raise ValueError(f"a crop geometry has {len(cls._fields)} values ({', '.join(cls._fields)}), got {len(values)}")
        return cls(*(int(v) for v in values))

    @classmethod
    def whole(cls, height: int, width: int) -> "CropGeometry":
        """The identity view: the whole image at scale 1, not padded, not mirrored."""
        return cls(height, width, 0, 0, 0, 0, 0, 0, width, height, 0)

    def as_tensor(self) -> Tensor:
        """What a sample carries (``sample["geometry"]``): the fields in order, as ``torch.long``."""
        return torch.tensor(tuple(self), dtype=torch.long)
