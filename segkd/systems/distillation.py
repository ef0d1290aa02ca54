"""Offline knowledge distillation: a student learns from labels and from a frozen teacher."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from hydra.utils import instantiate
from torch import Tensor

from segkd.config import to_plain
from segkd.distill.distiller import Distiller
from segkd.distill.teacher import load_teacher
from segkd.metrics import NetScores
from segkd.systems.optim import batches_seen
from segkd.systems.supervised import SegmentationSystem


class DistillationSystem(SegmentationSystem):
    """Student = ``net``; teacher = a checkpoint, frozen; distillation terms from ``distill``.

    The teacher is deliberately kept out of the module tree: it is not in the student's checkpoint,
    DDP never wraps it, and Lightning's train/eval switching never reaches it, so it stays in eval
    mode (BatchNorm statistics untouched) for the whole run. ``_apply`` carries it along on device
    and dtype moves. It is scored once on val (``teacher/val/*``).
    """

    def __init__(
        self,
        net: dict[str, Any],
        class_names: Sequence[str],
        loss: dict[str, Any],
        optimizer: dict[str, Any],
        teacher: dict[str, Any],
        distill: dict[str, Any],
        schedule: dict[str, Any],
        scheduler: Optional[dict[str, Any]] = None,
        ignore_index: int = 255,
        probe_size: Sequence[int] = (64, 64),
    ) -> None:
        teacher, distill, schedule = (to_plain(x) for x in (teacher, distill, schedule))
        probe_size = list(probe_size)
        super().__init__(net, class_names, loss, optimizer, scheduler, ignore_index)
        teacher_net, _ = load_teacher(teacher.get("checkpoint"), teacher.get("net"))
        self.__dict__["teacher"] = teacher_net  # not a submodule: see the class docstring
        self.distiller = Distiller(distill.get("terms") or {}, self.net, teacher_net, probe_size)
        self.schedule = instantiate(schedule)
        self.teacher_scores_of = NetScores(class_names, ignore_index)
        self.teacher_scores: Optional[dict] = None

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        self.teacher._apply(fn, *args, **kwargs)
        return self

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()
        return self

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        images, target = batch["image"], batch["mask"]
        phase = self.schedule(batches_seen(self.trainer, batch_idx), self.current_epoch)
        with self.distiller.record():
            logits = self.net(images)
            with torch.no_grad():
                teacher_logits = self.teacher(images)
            terms = self.distiller(logits, teacher_logits, target)
        supervised = self.criterion(logits, target)
        distill = sum((self.distiller.weights[n] * v for n, v in terms.items()), torch.zeros((), device=self.device))
        loss = phase.supervised * supervised + phase.distill * distill
        n = len(images)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, sync_dist=True, batch_size=n)
        self.log_dict(
            {"train/supervised": supervised, "train/distill": distill, **{f"train/kd/{k}": v for k, v in terms.items()}},
            on_step=False, on_epoch=True, sync_dist=True, batch_size=n,
        )
        self.log_dict({"schedule/supervised": phase.supervised, "schedule/distill": phase.distill}, on_step=True)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        super().validation_step(batch, batch_idx)
        if self.teacher_scores is None and not self.trainer.sanity_checking:
            with torch.no_grad():
                self.teacher_scores_of.update(self.teacher(batch["image"]), batch["mask"])

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if self.teacher_scores is None and not self.trainer.sanity_checking:
            self.teacher_scores = self.teacher_scores_of.compute_and_reset()
            self.log_dict(NetScores.loggable(self.teacher_scores, "teacher/val"))

    def run_scores(self) -> dict:
        return {**super().run_scores(), "teacher": self.teacher_scores}
