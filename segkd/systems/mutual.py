"""Online mutual distillation (Deep Mutual Learning, Zhang et al. 2018): networks learn together."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import lightning as L
import torch
from hydra.utils import instantiate
from torch import Tensor, nn

from segkd.config import plain_hparams, to_plain
from segkd.metrics import NetScores
from segkd.models import build_net
from segkd.systems.optim import batches_seen, optimizer_and_schedule


class MutualLearningSystem(L.LightningModule):
    """``net`` and its ``peers`` each learn from the labels and from the others' detached predictions.

    Network i minimises ``supervised * CE_i + distill * mean_j KD(logits_i, logits_j.detach())``, with
    weights and the set of networks that update taken from the loss schedule at every batch.
    Optimization is manual (one optimizer per network). All losses go through one backward pass:
    since every peer term is detached, the gradient of the sum with respect to network i is exactly
    the gradient of loss i, and DDP sees every parameter used in every step. When the schedule
    updates one network at a time, the others' gradients are computed and dropped (the price of
    DDP without ``find_unused_parameters``).

    ``val/mIoU`` is the first network's (``net``, the student of interest); peers log under
    ``val/<name>/``.
    """

    def __init__(
        self,
        net: dict[str, Any],
        peers: dict[str, dict[str, Any]],
        class_names: Sequence[str],
        loss: dict[str, Any],
        kd: dict[str, Any],
        optimizer: dict[str, Any],
        schedule: dict[str, Any],
        scheduler: Optional[dict[str, Any]] = None,
        ignore_index: int = 255,
    ) -> None:
        super().__init__()
        net, peers, loss, kd, optimizer, schedule, scheduler = (
            to_plain(x) for x in (net, peers, loss, kd, optimizer, schedule, scheduler)
        )
        class_names = list(class_names)
        if not peers:
            raise ValueError("mutual learning needs at least one peer network: set system.peers.<name>=<model spec>")
        if "net" in peers:
            raise ValueError("'net' names the first network; give the peers other names")
        self.save_hyperparameters()
        plain_hparams(self)
        self.automatic_optimization = False
        self.nets = nn.ModuleDict({"net": build_net(net), **{name: build_net(spec) for name, spec in peers.items()}})
        self.criterion = instantiate(loss)
        self.kd = instantiate(kd)
        self.schedule = instantiate(schedule)
        self.scores_of = nn.ModuleDict({name: NetScores(class_names, ignore_index) for name in self.nets})
        self.val_scores: Optional[dict] = None
        self.peer_scores: dict[str, dict] = {}
        self.val_curve: list[float] = []

    @property
    def net(self) -> nn.Module:
        return self.nets["net"]

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images)

    def training_step(self, batch: dict, batch_idx: int) -> None:
        images, target = batch["image"], batch["mask"]
        phase = self.schedule(batches_seen(self.trainer, batch_idx), self.current_epoch)
        names = list(self.nets)
        logits = {name: net(images) for name, net in self.nets.items()}
        losses, logs = {}, {}
        for name in names:
            supervised = self.criterion(logits[name], target)
            peers = [logits[p].detach() for p in names if p != name]
            distill = sum(self.kd(logits[name], p, target) for p in peers) / len(peers)
            losses[name] = phase.supervised * supervised + phase.distill * distill
            logs.update({f"train/{name}/supervised": supervised, f"train/{name}/distill": distill})
        total = sum(losses.values())

        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        for opt in optimizers:
            opt.zero_grad()
        self.manual_backward(total)
        updating = names if phase.update is None else [names[phase.update % len(names)]]
        for name, opt in zip(names, optimizers):
            if name in updating:
                opt.step()
        schedulers = self.lr_schedulers() or []
        for sched in schedulers if isinstance(schedulers, list) else [schedulers]:
            sched.step()

        n = len(images)
        self.log("train/loss", total, prog_bar=True, on_step=True, on_epoch=True, sync_dist=True, batch_size=n)
        self.log_dict(logs, on_step=False, on_epoch=True, sync_dist=True, batch_size=n)
        self.log_dict(
            {"schedule/supervised": phase.supervised, "schedule/distill": phase.distill,
             "schedule/updating": float(-1 if phase.update is None else phase.update)},
            on_step=True,
        )

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        for name, net in self.nets.items():
            self.scores_of[name].update(net(batch["image"]), batch["mask"])

    def on_validation_epoch_end(self) -> None:
        scores = {name: self.scores_of[name].compute_and_reset() for name in self.nets}
        self.log("val/mIoU", scores["net"]["mIoU"], prog_bar=True)
        for name, s in scores.items():
            flat = NetScores.loggable(s, "val" if name == "net" else f"val/{name}")
            self.log_dict({k: v for k, v in flat.items() if k != "val/mIoU"})
        if not self.trainer.sanity_checking:
            self.val_scores = scores["net"]
            self.peer_scores = {k: v for k, v in scores.items() if k != "net"}
            self.val_curve.append(scores["net"]["mIoU"])

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["val_curve"] = list(self.val_curve)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.val_curve = list(checkpoint.get("val_curve", []))

    def run_scores(self) -> dict:
        return {"val": self.val_scores, "peers": self.peer_scores, "val_curve": self.val_curve}

    def configure_optimizers(self) -> Any:
        pairs = [
            optimizer_and_schedule(self.hparams.optimizer, self.hparams.scheduler, list(net.parameters()),
                                   self.trainer.estimated_stepping_batches)
            for net in self.nets.values()
        ]
        return [opt for opt, _ in pairs], [sched for _, sched in pairs if sched is not None]
