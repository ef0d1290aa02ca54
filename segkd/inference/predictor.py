"""Class scores at an image's full size from any network: whole image or sliding window, optional TTA.

Training validates each image in one pass at its stored size. Full-resolution evaluation of large
images (1024x2048 Cityscapes) often runs a network on windows the size of its training crops
instead, and test-time augmentation (mirrored and rescaled copies) trades time for accuracy.
Both are inference policies around an unchanged network, so they live here, in one nn.Module that
segkd.evaluate and segkd.predict share, rather than in the systems that train.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from segkd.functional.resize import at_scale, padded_logits
from segkd.models.architectures import size_divisor as divisor_of

MODES = ("whole", "slide")


class SegmentationPredictor(nn.Module):
    """``forward(images)`` -> class probabilities (N, C, H, W) at the input's own size; argmax is the prediction.

    - ``mode="whole"``: the image in one pass, padded at the bottom and right to a multiple of the
      network's output stride (``size_divisor``, by default segkd.models.size_divisor of ``net``: 32
      for a UNet, 16 for DeepLabV3+; padding is 0 in normalised space, the mean colour) and cropped back.
    - ``mode="slide"``: windows of ``window`` pixels every ``stride`` pixels, the last row and
      column shifted to end at the border (as mmsegmentation's slide inference); logits of
      overlapping windows are averaged. An image smaller than the window is one window, the same
      pass as ``whole``.
    - TTA: each of ``scales`` (the image resized by that factor, bilinear) and, with ``flip``, its
      mirror image is one view; each view's logits are resized back to the input size (bilinear)
      before the softmax, and the views' probabilities are averaged (mmsegmentation's convention).

    Without TTA the output is the softmax of the logits, so its argmax is the network's own.
    """

    def __init__(
        self,
        net: nn.Module,
        mode: str = "whole",
        window: Sequence[int] = (512, 1024),
        stride: Optional[Sequence[int]] = None,
        flip: bool = False,
        scales: Sequence[float] = (1.0,),
        size_divisor: Optional[int] = None,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} is not an inference mode; use mode=whole or mode=slide")
        self.net = net
        self.mode = mode
        self.window = _pair(window, "window")
        #: Default stride: two thirds of the window, so neighbouring windows overlap by a third.
        self.stride = _pair(stride, "stride") if stride is not None else tuple(max(1, 2 * w // 3) for w in self.window)
        if any(s > w for s, w in zip(self.stride, self.window)):
            raise ValueError(f"stride={list(self.stride)} is larger than window={list(self.window)}: pixels between "
                             "windows would get no prediction; set stride to at most the window")
        self.flip = bool(flip)
        self.scales = tuple(float(s) for s in scales)
        if not self.scales or any(not math.isfinite(s) or s <= 0 for s in self.scales):
            raise ValueError(f"tta.scales={list(scales)} must be positive factors, e.g. [1.0] or [0.75, 1.0, 1.25]")
        self.size_divisor = int(size_divisor) if size_divisor is not None else divisor_of(net)

    def describe(self) -> dict:
        """The policy as plain values, for metrics.json (window and stride only where they apply)."""
        slide = self.mode == "slide"
        return {"mode": self.mode, "window": list(self.window) if slide else None,
                "stride": list(self.stride) if slide else None, "tta": {"flip": self.flip, "scales": list(self.scales)}}

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        total: Optional[Tensor] = None
        views = 0
        for scale in self.scales:
            for mirrored in (False, True) if self.flip else (False,):
                logits = self.scaled_logits(images.flip(-1) if mirrored else images, scale)
                if mirrored:
                    logits = logits.flip(-1)
                probs = logits.float().softmax(dim=1)
                total = probs if total is None else total + probs
                views += 1
        return total / views

    def scaled_logits(self, images: Tensor, scale: float) -> Tensor:
        """The network's logits on ``images`` resized by ``scale``, resized back to the input size (bilinear)."""
        return at_scale(self.logits, images, scale)

    def logits(self, images: Tensor) -> Tensor:
        """The network's logits at the size of ``images``, by the configured mode (no TTA)."""
        return self._whole(images) if self.mode == "whole" else self._slide(images)

    def _whole(self, images: Tensor) -> Tensor:
        return padded_logits(self.net, images, self.size_divisor)

    def _slide(self, images: Tensor) -> Tensor:
        height, width = images.shape[-2:]
        (win_h, win_w), (step_h, step_w) = self.window, self.stride
        rows = max(height - win_h + step_h - 1, 0) // step_h + 1
        cols = max(width - win_w + step_w - 1, 0) // step_w + 1
        summed: Optional[Tensor] = None
        count = images.new_zeros((1, 1, height, width))
        for row in range(rows):
            for col in range(cols):
                y1, x1 = row * step_h, col * step_w
                y2, x2 = min(y1 + win_h, height), min(x1 + win_w, width)
                y1, x1 = max(y2 - win_h, 0), max(x2 - win_w, 0)
                logits = self._whole(images[..., y1:y2, x1:x2])
                if summed is None:
                    summed = logits.new_zeros((images.shape[0], logits.shape[1], height, width))
                summed[..., y1:y2, x1:x2] += logits
                count[..., y1:y2, x1:x2] += 1
        return summed / count


def _pair(value: Sequence[int], key: str) -> tuple[int, int]:
    pair = tuple(value)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in pair):
        raise ValueError(f"{key}={list(pair)} is not a size; set it to [height, width] in pixels, both at least 1")
    return pair
