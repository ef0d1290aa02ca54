"""Supervised training of a teacher or a student: labels only, no distillation."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import lightning as L
import torch
from hydra.utils import instantiate
from torch import Tensor

from segkd.config import plain_hparams, to_plain
from segkd.losses.class_weights import class_weights
from segkd.metrics import NetScores
from segkd.models import build_net
from segkd.systems.optim import optimizer_and_schedule


class SegmentationSystem(L.LightningModule):
    """A segmentation net trained with its supervised loss; scored by mIoU over the whole val split.

    Everything needed to rebuild the net (its ``_target_`` spec and class names) is saved as
    hyperparameters, so ``SegmentationSystem.load_from_checkpoint(path)`` needs nothing else.
    Validation also logs the mean entropy of the softmax and the mass off the argmax, which say
    how much a teacher has to teach beyond the labels.
    """

    def __init__(
        self,
        net: dict[str, Any],
        class_names: Sequence[str],
        loss: dict[str, Any],
        optimizer: dict[str, Any],
        scheduler: Optional[dict[str, Any]] = None,
        ignore_index: int = 255,
    ) -> None:
        super().__init__()
        net, loss, optimizer, scheduler = (to_plain(x) for x in (net, loss, optimizer, scheduler))
        class_names = list(class_names)
        self.save_hyperparameters()
        plain_hparams(self)
        self.net = build_net(net)
        self.criterion = instantiate(loss)
        self.val_scores_of = NetScores(class_names, ignore_index)
        #: The last completed validation epoch's scores as plain floats (None before the first one).
        self.val_scores: Optional[dict] = None
        #: val mIoU after every epoch (kept in checkpoints, so a resumed run has its whole curve).
        self.val_curve: list[float] = []

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images)

    def setup(self, stage: str) -> None:
        scheme = getattr(self.criterion, "class_weighting", "none")
        if stage == "fit" and scheme != "none":
            stats = self.trainer.datamodule.class_statistics()
            weights = torch.as_tensor(class_weights(stats, scheme), dtype=torch.float32)
            self.criterion.set_class_weights(weights)

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        logits = self(batch["image"])
        loss = self.criterion(logits, batch["mask"])
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, sync_dist=True, batch_size=len(logits))
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        logits = self(batch["image"])
        loss = self.criterion(logits, batch["mask"])
        self.log("val/loss", loss, on_epoch=True, sync_dist=True, batch_size=logits.shape[0])
        self.val_scores_of.update(logits, batch["mask"])

    def on_validation_epoch_end(self) -> None:
        # The reduction runs over all ranks, so every rank logs the same numbers (no sync_dist needed).
        scores = self.val_scores_of.compute_and_reset()
        self.log("val/mIoU", scores["mIoU"], prog_bar=True)
        self.log_dict({k: v for k, v in NetScores.loggable(scores, "val").items() if k != "val/mIoU"})
        if not self.trainer.sanity_checking:
            self.val_scores = scores
            self.val_curve.append(scores["mIoU"])

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["val_curve"] = list(self.val_curve)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.val_curve = list(checkpoint.get("val_curve", []))

    def run_scores(self) -> dict:
        """What this system adds to summary.json."""
        return {"val": self.val_scores, "val_curve": self.val_curve}

    def configure_optimizers(self) -> Any:
        return self._optimizer_and_schedule([p for p in self.parameters() if p.requires_grad])

    def _optimizer_and_schedule(self, params: list) -> Any:
        optimizer, scheduler = optimizer_and_schedule(
            self.hparams.optimizer, self.hparams.scheduler, params, self.trainer.estimated_stepping_batches
        )
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
