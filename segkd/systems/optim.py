"""Optimizer and per-step LR schedule from their configs, shared by every system."""

from __future__ import annotations

from typing import Any, Optional

from hydra.utils import instantiate


def optimizer_and_schedule(optimizer: dict, scheduler: Optional[dict], params: list, total_steps: int) -> tuple[Any, Any]:
    """Both configs are partials (``_partial_: true``): the parameters and step count exist only at fit time."""
    opt = instantiate(optimizer)(params)
    sched = instantiate(scheduler)(opt, total_iters=total_steps) if scheduler is not None else None
    return opt, sched


def batches_seen(trainer, batch_idx: int) -> int:
    """Training batches since the start of the run (resume-safe): the clock of loss schedules."""
    return trainer.current_epoch * int(trainer.num_training_batches) + batch_idx
