"""Callbacks the scale-out tests add to real runs by their import path (``+callbacks.x._target_=scale_helpers.X``).

Subprocess runs find this module through PYTHONPATH=tests (set by the tests that start them).
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import lightning as L
from lightning.pytorch import Callback
from torch import nn


class StepRecorder(Callback):
    """Writes, per rank, the sample indices of every optimizer step and the step counts at the end."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.steps: list[list[int]] = []
        self._pending: list[int] = []

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self._pending.extend(int(i) for i in batch["index"])
        if (batch_idx + 1) % trainer.accumulate_grad_batches == 0:
            self.steps.append(sorted(self._pending))
            self._pending = []

    def on_train_end(self, trainer: L.Trainer, pl_module) -> None:
        scheduler = trainer.lr_scheduler_configs[0].scheduler
        record = {"steps": self.steps, "global_step": trainer.global_step, "scheduler_steps": scheduler.last_epoch,
                  "world_size": trainer.world_size, "accumulate": trainer.accumulate_grad_batches,
                  "distill": pl_module.hparams.get("distill"), "schedule": pl_module.hparams.get("schedule")}
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


class BatchNormEval(Callback):
    """BatchNorm in eval mode while training: per-process batch statistics out of the comparison."""

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        for module in pl_module.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()


class SignalAt(Callback):
    """Sends this process the cluster's stop signal in the middle of the step after optimizer step ``step``
    (as the next batch starts), once per run dir (a marker file keeps the resumed run from signalling
    again): what SLURM does before a time limit, at a moment when a step is under way."""

    def __init__(self, step: int, marker: str, signame: str = "SIGUSR2") -> None:
        self.step, self.marker, self.signum = step, Path(marker), getattr(signal, signame)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step and not self.marker.exists() and trainer.global_rank == 0:
            self.marker.write_text(str(self.step))
            os.kill(os.getpid(), self.signum)


class PauseAt(Callback):
    """Holds the run inside the step after optimizer step ``step`` (as the next batch starts) until a stop
    signal has reached segkd's Preemption callback or ``seconds`` pass, once per run dir (``marker``,
    written when the pause begins, tells a test the job is there): a window in which a test stops the
    job from outside (scancel, a time limit, a preemption, a requeue) while a step is under way."""

    def __init__(self, step: int, marker: str, seconds: float = 120.0) -> None:
        self.step, self.marker, self.seconds = step, Path(marker), seconds

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_step != self.step or self.marker.exists():
            return
        if trainer.global_rank == 0:
            self.marker.write_text(str(self.step))
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline and not any(getattr(cb, "_signalled", None) for cb in trainer.callbacks):
            time.sleep(0.1)
