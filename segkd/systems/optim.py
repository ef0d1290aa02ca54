"""Optimizer and per-step LR schedule from their configs, shared by every system."""

from __future__ import annotations

from typing import Any, Optional

from hydra.utils import instantiate


def check_optimizer(optimizer: dict) -> None:
    """Refuse, when the system is built and naming the key, what the optimizer would refuse only at fit
    time in a long traceback (an argument it does not take, a value that is not a number) and what it
    would accept but cannot train (an lr of 0 trains nothing)."""
    import inspect

    from hydra.utils import get_class

    target = optimizer.get("_target_")
    try:
        cls = get_class(target) if target else None
    except Exception:  # Hydra's own error names an unknown target at instantiation
        cls = None
    if cls is not None:
        params = inspect.signature(cls.__init__).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        valid = [n for n in params if n not in ("self", "params")]
        for key in optimizer:
            if not key.startswith("_") and key not in params and not takes_any:
                raise ValueError(f"system.optimizer.{key}: {cls.__name__} takes no argument '{key}'; its arguments "
                                 f"are {valid} (remove it with ~system.optimizer.{key})")
        for key, value in optimizer.items():  # a number the optimizer expects, given as a word
            default = params[key].default if key in params else None
            numeric = isinstance(default, (int, float)) and not isinstance(default, bool) or key == "lr"
            if numeric and isinstance(value, str):
                try:
                    float(value)
                except ValueError:
                    raise ValueError(f"system.optimizer.{key}={value!r} is not a number; {cls.__name__}'s {key} "
                                     f"defaults to {default!r}, e.g. system.optimizer.{key}=0.002") from None
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
