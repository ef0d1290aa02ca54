"""Supervised training of a teacher or a student: labels only, no distillation."""

from __future__ import annotations

from torch import Tensor

from segkd.systems.base import SystemBase


class SegmentationSystem(SystemBase):
    """A segmentation net trained with its supervised loss; scored by mIoU over the whole val split.

    Everything needed to rebuild the net (its ``_target_`` spec and class names) is saved as
    hyperparameters, so ``SegmentationSystem.load_from_checkpoint(path)`` needs nothing else.
    Validation also logs the mean entropy of the softmax and the mass off the argmax, which say
    how much a teacher has to teach beyond the labels.
    """

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        logits = self(batch["image"])
        loss = self.criterion(logits, batch["mask"])
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, sync_dist=True, batch_size=len(logits))
        return loss
