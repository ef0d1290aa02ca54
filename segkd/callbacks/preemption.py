"""last.ckpt every N minutes and when the job is about to be stopped, at an optimizer-step boundary.

On a cluster a job ends when its time limit comes or a higher-priority job preempts it; SLURM
warns it with a signal (USR2, ``signal_delay_s`` before the limit, under segkd's submitit launcher).
End-of-epoch checkpoints alone would lose up to an epoch per stop (hours on Cityscapes), so this
callback also writes ``last.ckpt`` every ``every_minutes`` and on that signal. It saves only
between optimizer steps, where the model, optimizer, schedule and data position agree (the train
loader records the step: segkd.data.datamodule.ResumableLoader), never inside the signal handler.
Under DDP the ranks agree first (one all-reduce of two flags per step), so they save together even
when the signal reached one of them only.

After saving on the signal it hands over to the handler that was there before: submitit's, which
requeues the job with its original arguments (the requeued job resumes from last.ckpt by itself:
``auto_resume``), or, with no handler, the process exits.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Optional

import lightning as L
import torch
from lightning.pytorch import Callback
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.distributed import ReduceOp

log = logging.getLogger(__name__)


def preemption_signal() -> signal.Signals:
    """The signal submitit asks SLURM to send before a stop (its own rule: SUBMITIT_PREEMPT_SIGNAL, else USR2)."""
    name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
    return getattr(signal, name if name.startswith("SIG") else f"SIG{name}")


class Preemption(Callback):
    """Write last.ckpt every ``every_minutes`` (``null``: never on time) and on the launcher's stop signal."""

    def __init__(self, every_minutes: Optional[float] = 30.0) -> None:
        self.every_s = every_minutes * 60.0 if every_minutes else None
        self.signal = preemption_signal()
        self.saves: list[dict[str, Any]] = []
        self._signalled = False
        self._previous: Any = None
        self._installed = False
        self._last_save = time.monotonic()

    # --------------------------------------------------------------------------- signal

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last_save = time.monotonic()
        if threading.current_thread() is threading.main_thread():  # Python takes handlers in the main thread only
            self._previous = signal.signal(self.signal, self._flag)
            self._installed = True

    def _flag(self, signum: int, frame: Any) -> None:
        self._signalled = True  # acted on at the next step boundary

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._installed:
            signal.signal(self.signal, self._previous if self._previous is not None else signal.SIG_DFL)
            self._installed = False

    # --------------------------------------------------------------------------- saving

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if (batch_idx + 1) % trainer.accumulate_grad_batches:
            return  # inside an accumulation: the step is not taken yet
        due = self.every_s is not None and time.monotonic() - self._last_save >= self.every_s
        flags = torch.tensor([float(self._signalled), float(due)], device=pl_module.device)
        if trainer.world_size > 1:
            flags = trainer.strategy.reduce(flags, reduce_op=ReduceOp.MAX)
        signalled, due = bool(flags[0]), bool(flags[1])
        if not (signalled or due):
            return
        path = last_checkpoint_path(trainer.checkpoint_callbacks) or Path(trainer.default_root_dir) / "last.ckpt"
        trainer.save_checkpoint(path)
        for logger in trainer.loggers:
            logger.save()  # the rows up to the checkpoint reach the disk with it
        self._last_save = time.monotonic()
        self.saves.append({"step": trainer.global_step, "reason": "signal" if signalled else "time"})
        if signalled:
            log.warning("stop signal %s: saved %s at step %d; handing over to the launcher",
                        self.signal.name, path, trainer.global_step)
            self._hand_over(trainer)

    def _hand_over(self, trainer: L.Trainer) -> None:
        """What the signal would have done without us: submitit requeues (rank 0) and exits; else exit."""
        self._signalled = False
        previous = self._previous
        if self._installed:
            signal.signal(self.signal, previous if previous is not None else signal.SIG_DFL)
            self._installed = False
        if callable(previous):
            previous(self.signal, None)  # submitit: requeue and exit on rank 0, return elsewhere
        # Ranks > 0 (or no launcher): leave too; the ranks cannot go on without rank 0.
        raise SystemExit(128 + int(self.signal))


def last_checkpoint_path(callbacks: list) -> Optional[Path]:
    """Where a run's last.ckpt is written: the file of its unmonitored checkpoint callback."""
    for cb in callbacks:
        if isinstance(cb, ModelCheckpoint) and cb.monitor is None and cb.dirpath:
            return Path(cb.dirpath) / f"{cb.filename or 'last'}{cb.FILE_EXTENSION}"
    return None
