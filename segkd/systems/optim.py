"""Optimizer and per-step LR schedule from their configs, shared by every system."""

from __future__ import annotations

from typing import Any, Optional

from hydra.utils import instantiate


def check_optimizer(optimizer: dict) -> None:
    """Refuse a learning rate that cannot train, naming the key, when the system is built.

    PyTorch would say "Invalid learning rate" only at fit time and without the config key; an
    lr of 0 it accepts, and the run would then train nothing.
    """
    lr = optimizer.get("lr")
    if lr is not None and not float(lr) > 0:
        raise ValueError(f"system.optimizer.lr must be > 0, got {lr}; e.g. system.optimizer.lr=0.002")


def optimizer_and_schedule(optimizer: dict, scheduler: Optional[dict], params: list, total_steps: int) -> tuple[Any, Any]:
    """Both configs are partials (``_partial_: true``): the parameters and step count exist only at fit time."""
    opt = instantiate(optimizer)(params)
    sched = instantiate(scheduler)(opt, total_iters=total_steps) if scheduler is not None else None
    return opt, sched


def batches_seen(trainer, batch_idx: int) -> int:
    """Training batches since the start of the run (resume-safe): the clock of loss schedules."""
    return trainer.current_epoch * int(trainer.num_training_batches) + batch_idx
