"""last.ckpt every N minutes and when the job is about to be stopped, at an optimizer-step boundary.

On a cluster a job ends when its time limit comes or a higher-priority job preempts it; SLURM
warns it with a signal: USR2 ``signal_delay_s`` before the limit under segkd's submitit launcher
(and at preemption where the cluster sets ``preempt_send_user_signal``), SIGTERM followed by SIGKILL
after the partition's ``GraceTime`` at a preemption or ``scontrol requeue`` everywhere else.
End-of-epoch checkpoints alone would lose up to an epoch per stop (hours on Cityscapes), so this
callback also writes ``last.ckpt`` every ``every_minutes`` and on either signal. It saves only
between optimizer steps, where the model, optimizer, schedule and data position agree (the train
loader records the step: segkd.data.datamodule.ResumableLoader), never inside the signal handler.
Under DDP the ranks agree first (one all-reduce of two flags per step), so they save together even
when the signal reached one of them only.

It is a Lightning ``Checkpoint`` callback so that Lightning runs its ``on_train_batch_end`` after
every other callback's: the moving average of the weights (segkd.callbacks.EMA) has taken the step
before it is saved. Saved before it, the resumed run missed one update of the average per stop.

After saving on the signal it hands over. On USR2, to the handler that was there before: submitit's,
which requeues the job with its original arguments (the requeued job resumes from last.ckpt by
itself: ``auto_resume``). On SIGTERM inside a SLURM job it waits, idle, for SLURM to end the
process: SLURM requeues a preempted job (PreemptMode=REQUEUE) or one under ``scontrol requeue`` only
if it is still running when the grace time ends; one that exits first ends COMPLETED or FAILED and
never comes back (seen on a real Slurm 22.05: tests/slurm_cluster.py). The wait is bounded by
``sigterm_linger_s`` for a SIGTERM that no kill follows.
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
from lightning.pytorch.callbacks import Checkpoint, ModelCheckpoint
from torch.distributed import ReduceOp

log = logging.getLogger(__name__)


def preemption_signal() -> signal.Signals:
    """The signal submitit asks SLURM to send before a stop (its own rule: SUBMITIT_PREEMPT_SIGNAL, else USR2)."""
    name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
    return getattr(signal, name if name.startswith("SIG") else f"SIG{name}")


class Preemption(Checkpoint):
    """Write last.ckpt every ``every_minutes`` (``null``: never on time) and on the cluster's stop signals.

    ``sigterm``: also save on SIGTERM (``null``: when running in a SLURM job, where SIGTERM means
    preemption or requeue with a grace time; elsewhere it is left to Lightning, which stops the fit).
    ``sigterm_linger_s``: after that save, how long to wait for SLURM's kill before leaving anyway.
    """

    def __init__(self, every_minutes: Optional[float] = 30.0, sigterm: Optional[bool] = None,
                 sigterm_linger_s: float = 600.0) -> None:
        self.every_s = every_minutes * 60.0 if every_minutes else None
        self.linger_s = float(sigterm_linger_s)
        self.signals = stop_signals(in_slurm_job() if sigterm is None else sigterm)
        self.saves: list[dict[str, Any]] = []
        self._signalled: Optional[signal.Signals] = None
        self._previous: dict[signal.Signals, Any] = {}
        self._last_save = time.monotonic()

    # --------------------------------------------------------------------------- signal

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last_save = time.monotonic()
        if threading.current_thread() is threading.main_thread():  # Python takes handlers in the main thread only
            # After Lightning's own SIGTERM handler (set when the fit began): replaced here, called on hand-over.
            self._previous = {s: signal.signal(s, self._flag) for s in self.signals}

    def _flag(self, signum: int, frame: Any) -> None:
        self._signalled = signal.Signals(signum)  # acted on at the next step boundary

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore()

    def _restore(self) -> dict[signal.Signals, Any]:
        previous, self._previous = self._previous, {}
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        return previous

    # --------------------------------------------------------------------------- saving

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if (batch_idx + 1) % trainer.accumulate_grad_batches:
            return  # inside an accumulation: the step is not taken yet
        due = self.every_s is not None and time.monotonic() - self._last_save >= self.every_s
        flags = torch.tensor([float(self._signalled is not None), float(due)], device=pl_module.device)
        if trainer.world_size > 1:
            flags = trainer.strategy.reduce(flags, reduce_op=ReduceOp.MAX)
        signalled, due = bool(flags[0]), bool(flags[1])
        if not (signalled or due):
            return
        path = last_checkpoint_path(trainer.checkpoint_callbacks) or Path(trainer.default_root_dir) / "last.ckpt"
        started = time.monotonic()
        trainer.save_checkpoint(path)
        for logger in trainer.loggers:
            logger.save()  # the rows up to the checkpoint reach the disk with it
        self._last_save = time.monotonic()
        received = self._signalled or self.signals[0]  # a rank the signal missed leaves with its peers
        self.saves.append({"step": trainer.global_step, "reason": received.name if signalled else "time",
                           "save_s": round(self._last_save - started, 3)})
        if signalled:
            log.warning("stop signal %s: saved %s at step %d in %.1f s; handing over to the launcher",
                        received.name, path, trainer.global_step, self._last_save - started)
            self._hand_over(received)

    def _hand_over(self, received: signal.Signals) -> None:
        """What the signal would have done without us: submitit requeues (rank 0) and exits; else exit."""
        self._signalled = None
        previous = self._restore().get(received)
        if received == signal.SIGTERM and in_slurm_job():
            log.warning("SIGTERM in SLURM job %s: waiting (at most %.0f s) for SLURM to end this process, which "
                        "requeues the job if it was preempted or requeued", os.environ.get("SLURM_JOB_ID"),
                        self.linger_s)
            deadline = time.monotonic() + self.linger_s
            while time.monotonic() < deadline:
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        elif callable(previous):
            previous(received, None)  # submitit: requeue and exit on rank 0
        # Ranks > 0, a SIGTERM that no kill followed, or no launcher: leave; the ranks cannot go on without rank 0.
        raise SystemExit(128 + int(received))


def in_slurm_job() -> bool:
    """Whether this process runs inside a SLURM allocation (sbatch, srun or submitit's SLURM executor)."""
    return bool(os.environ.get("SLURM_JOB_ID"))


def stop_signals(sigterm: bool) -> list[signal.Signals]:
    """The signals that mean "save now, you are about to be stopped": the launcher's, and SIGTERM if asked."""
    signals = [preemption_signal()]
    if sigterm and signal.SIGTERM not in signals:
        signals.append(signal.SIGTERM)
    return signals


def last_checkpoint_path(callbacks: list) -> Optional[Path]:
    """Where a run's last.ckpt is written: the file of its unmonitored checkpoint callback."""
    for cb in callbacks:
        if isinstance(cb, ModelCheckpoint) and cb.monitor is None and cb.dirpath:
            return Path(cb.dirpath) / f"{cb.filename or 'last'}{cb.FILE_EXTENSION}"
    return None
