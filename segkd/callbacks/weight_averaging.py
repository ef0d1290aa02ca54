"""An exponential moving average of the weights, for scores that do not hinge on the last few steps."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.callbacks import WeightAveraging
from torch import Tensor


class WarmedUpEMA:
    """``multi_avg_fn`` for torch's AveragedModel: EMA whose decay grows as min(decay, (1 + n) / (10 + n)).

    A fixed decay of 0.99 still gives the random initial weights a third of the average after
    100 steps, so early validation would score a blend with the untrained net; the warm-up (as in
    timm's ModelEmaV3) follows the net closely at first and settles on ``decay``. ``n`` is
    AveragedModel's own update count, which checkpoints keep, so a resumed run continues the ramp.
    """

    def __init__(self, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"weight averaging decay must be in (0, 1), got {decay}")
        self.decay = decay

    def __call__(self, averaged: list[Tensor], current: list[Tensor], num_averaged: Tensor) -> None:
        n = float(num_averaged)
        decay = min(self.decay, (1.0 + n) / (10.0 + n))
        if torch.is_floating_point(averaged[0]):
            torch._foreach_lerp_(averaged, current, 1.0 - decay)
        else:  # integer buffers (BatchNorm's num_batches_tracked): keep the net's count
            for a, c in zip(averaged, current):
                a.copy_(c)


class EMA(WeightAveraging):
    """Validate, checkpoint and finish with the moving average of the weights (and BatchNorm statistics).

    Lightning's WeightAveraging does the bookkeeping: the average is swapped in for validation, so
    val/mIoU, the best checkpoint and summary.json score the averaged net; a checkpoint's
    ``state_dict`` holds the average (so a teacher loaded from it, or an evaluation, gets the
    averaged net) and ``current_model_state`` the raw weights a resumed run continues from.
    Over a short student budget the last epochs of the raw weights swing by several mIoU points
    from one epoch to the next; the average is what makes paired comparisons of recipes tight.
    """

    def __init__(self, decay: float = 0.99, **kwargs: Any) -> None:
        super().__init__(multi_avg_fn=WarmedUpEMA(decay), **kwargs)
