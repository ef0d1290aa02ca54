"""What every segkd system shares (the checkpoint side of its contract: segkd.models.checkpoint)."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import lightning as L
import torch
from hydra.utils import instantiate
from torch import Tensor, nn

from segkd.config import plain_hparams, to_plain
from segkd.losses.class_weights import class_weights
from segkd.metrics import NetScores
from segkd.models import build_net, common_divisor, measure_complexity
from segkd.models.checkpoint import MAIN_NET
from segkd.systems.optim import check_optimizer, optimizer_and_schedule


class SystemBase(L.LightningModule):
    """A LightningModule that trains ``net`` (and maybe more networks) and scores them on val.

    The contract segkd.train.train() relies on, for every system:

    - built as ``System(net=<model spec>, class_names=[...], **<cfg.system without _target_>)``; the
      keywords every system takes are ``net``, ``class_names``, ``loss``, ``optimizer``,
      ``scheduler`` and ``ignore_index``, and all of them are saved as hyperparameters, so a
      checkpoint rebuilds its networks with nothing else (:func:`segkd.models.checkpoint.load_net`);
    - ``.net`` is the network of interest; its weights are ``net.*`` in the checkpoint; further
      networks scored on val (mutual learning's peers) are ``peers.<name>.*``;
    - every validation logs ``val/mIoU`` of ``.net`` (the checkpoint callback monitors it) and the
      other scores under ``val/`` (peers under ``val/<name>/``);
    - ``run_scores()`` returns what the system adds to summary.json.

    Subclasses write ``training_step`` and, if they train something besides ``.net`` and its
    distillation connectors, ``configure_optimizers``.
    """

    #: What kind of run this system makes (W&B's job type); None: a teacher or a student by its tags.
    job_type: Optional[str] = None

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
        check_optimizer(optimizer)
        self.save_hyperparameters()
        plain_hparams(self)
        self.net = build_net(net)
        self.criterion = instantiate(loss)
        self.scores_of = nn.ModuleDict({MAIN_NET: NetScores(list(class_names), ignore_index)})
        #: The last completed validation's scores of ``.net`` as plain floats (None before the first).
        self.val_scores: Optional[dict] = None
        self.peer_scores: dict[str, dict] = {}
        #: val mIoU after every validation (kept in checkpoints, so a resumed run has its whole curve).
        self.val_curve: list[float] = []

    # ------------------------------------------------------------------ networks scored on val
    def scored_nets(self) -> dict[str, nn.Module]:
        """Every network validation scores, ``.net`` first."""
        return {MAIN_NET: self.net}

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images)

    @property
    def size_divisor(self) -> int:
        """What every network this system runs takes as input sides (the least common multiple of their
        output strides, segkd.models.size_divisor): the data module pads val images to it."""
        return common_divisor(list(self.scored_nets().values()))

    def setup(self, stage: str) -> None:
        scheme = getattr(self.criterion, "class_weighting", "none")
        if stage == "fit" and scheme != "none":
            stats = self.trainer.datamodule.class_statistics()
            self.criterion.set_class_weights(torch.as_tensor(class_weights(stats, scheme), dtype=torch.float32))

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        for name, net in self.scored_nets().items():
            logits = net(batch["image"])
            if name == MAIN_NET:
                loss = self.criterion(logits, batch["mask"])
                self.log("val/loss", loss, on_epoch=True, sync_dist=True, batch_size=logits.shape[0])
            self.scores_of[name].update(logits, batch["mask"])

    def on_validation_epoch_end(self) -> None:
        # The reduction runs over all ranks, so every rank logs the same numbers (no sync_dist needed).
        scores = {name: self.scores_of[name].compute_and_reset() for name in self.scored_nets()}
        self.log("val/mIoU", scores[MAIN_NET]["mIoU"], prog_bar=True)
        for name, s in scores.items():
            flat = NetScores.loggable(s, "val" if name == MAIN_NET else f"val/{name}")
            self.log_dict({k: v for k, v in flat.items() if k != "val/mIoU"})
        if not self.trainer.sanity_checking:
            self.val_scores = scores.pop(MAIN_NET)
            self.peer_scores = scores
            self.val_curve.append(self.val_scores["mIoU"])

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["val_curve"] = list(self.val_curve)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.val_curve = list(checkpoint.get("val_curve", []))

    def forward_gmacs(self, input_size: Sequence[int]) -> dict[str, dict[str, float]]:
        """Forward GMACs per sample of what one training step runs, at ``input_size``: the ``trained``
        parts (a backward pass follows) and the ``frozen`` ones (a live teacher). summary.json's cost
        block (segkd.models.complexity.training_cost) multiplies them out."""
        return {"trained": {MAIN_NET: measure_complexity(self.net, input_size)["gmacs"]}, "frozen": {}}

    def run_scores(self) -> dict:
        """What this system adds to summary.json."""
        scores = {"val": self.val_scores, "val_curve": self.val_curve}
        if self.peer_scores:
            scores["peers"] = self.peer_scores
        return scores

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        return self.optimizer_over([p for p in self.parameters() if p.requires_grad])

    def optimizer_over(self, params: list) -> Any:
        """The configured optimizer and its per-step schedule over ``params`` (tensors or param groups)."""
        optimizer, scheduler = optimizer_and_schedule(
            self.hparams.optimizer, self.hparams.scheduler, params, self.trainer.estimated_stepping_batches
        )
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
