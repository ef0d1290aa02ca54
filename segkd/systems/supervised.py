"""Supervised training of a teacher or a student: labels only, no distillation."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import lightning as L
import torch
from hydra.utils import instantiate
from torch import Tensor

from segkd.config import to_plain
from segkd.data.class_stats import class_weights
from segkd.metrics import SegmentationMetrics
from segkd.models import build_net


class SegmentationSystem(L.LightningModule):
    """A segmentation net trained with its supervised loss; scored by mIoU over the whole val split.

    Everything needed to rebuild the net (its ``_target_`` spec and class names) is saved as
    hyperparameters, so ``SegmentationSystem.load_from_checkpoint(path)`` needs nothing else.
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
        self.net = build_net(net)
        self.criterion = instantiate(loss)
        self.val_metrics = SegmentationMetrics(len(class_names), class_names, ignore_index)
        #: The last completed validation epoch's scores as plain floats (None before the first one).
        self.val_scores: Optional[dict] = None

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
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, sync_dist=True, batch_size=logits.shape[0])
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        logits = self(batch["image"])
        loss = self.criterion(logits, batch["mask"])
        self.log("val/loss", loss, on_epoch=True, sync_dist=True, batch_size=logits.shape[0])
        self.val_metrics.update(logits, batch["mask"])

    def on_validation_epoch_end(self) -> None:
        # compute() reduces the confusion matrix over all ranks, so every rank logs the same numbers.
        scores = self.val_metrics.compute()
        self.val_metrics.reset()
        plain = self.val_metrics.as_dict(scores)
        self.log("val/mIoU", plain["mIoU"], prog_bar=True)
        self.log("val/pixel_acc", plain["pixel_acc"])
        for name, value in plain["IoU"].items():
            self.log(f"val/IoU/{name}", value)
        if not self.trainer.sanity_checking:
            self.val_scores = plain

    def configure_optimizers(self) -> Any:
        params = [p for p in self.parameters() if p.requires_grad]
        # Both configs are partials (``_partial_: true``): the parameters and step count exist only now.
        optimizer = instantiate(self.hparams.optimizer)(params)
        if self.hparams.scheduler is None:
            return optimizer
        scheduler = instantiate(self.hparams.scheduler)(optimizer, total_iters=self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
