"""Loss schedules: how much the supervised and the distillation losses count at each step, and which
networks update. A schedule is a plain callable of (step, epoch); systems ask it once per batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

UNITS = ("steps", "epochs")


@dataclass(frozen=True)
class Phase:
    supervised: float = 1.0
    distill: float = 1.0
    #: index of the only network that updates in this step (mutual learning); None means all of them
    update: Optional[int] = None


def _check_unit(unit: str) -> None:
    if unit not in UNITS:
        raise ValueError(f"unknown schedule unit '{unit}'; choose one of {', '.join(UNITS)}")


class Constant:
    """The configured weights throughout."""

    def __init__(self, supervised: float = 1.0, distill: float = 1.0) -> None:
        self.phase = Phase(supervised, distill)

    def __call__(self, step: int, epoch: int) -> Phase:
        return self.phase


class Ramp:
    """Distillation weight rises linearly from ``start`` to ``distill`` over ``warmup`` steps or epochs.

    A student's early, random predictions make peer/teacher matching noisy; warming up lets the
    supervised loss shape it first.
    """

    def __init__(self, warmup: int, unit: str = "epochs", start: float = 0.0, supervised: float = 1.0, distill: float = 1.0) -> None:
        _check_unit(unit)
        if warmup < 1:
            raise ValueError(f"warmup must be >= 1 {unit}, got {warmup}")
        self.warmup, self.unit, self.start = warmup, unit, start
        self.supervised, self.distill = supervised, distill

    def __call__(self, step: int, epoch: int) -> Phase:
        t = step if self.unit == "steps" else epoch
        frac = min(1.0, t / self.warmup)
        return Phase(self.supervised, self.start + (self.distill - self.start) * frac)


class Alternating:
    """Phases of ``period`` steps or epochs that take turns.

    ``mode="loss"``: supervised-only phases alternate with distillation-only phases.
    ``mode="network"``: both losses count, and the networks take turns to update (mutual learning).
    """

    MODES = ("loss", "network")

    def __init__(
        self,
        period: int,
        unit: str = "epochs",
        mode: str = "loss",
        num_networks: int = 2,
        supervised: float = 1.0,
        distill: float = 1.0,
    ) -> None:
        _check_unit(unit)
        if mode not in self.MODES:
            raise ValueError(f"unknown alternating mode '{mode}'; choose one of {', '.join(self.MODES)}")
        if period < 1:
            raise ValueError(f"period must be >= 1 {unit}, got {period}")
        if num_networks < 1:
            raise ValueError(f"num_networks must be >= 1, got {num_networks}")
        self.period, self.unit, self.mode, self.num_networks = period, unit, mode, num_networks
        self.supervised, self.distill = supervised, distill

    def __call__(self, step: int, epoch: int) -> Phase:
        k = (step if self.unit == "steps" else epoch) // self.period
        if self.mode == "loss":
            return Phase(self.supervised, 0.0) if k % 2 == 0 else Phase(0.0, self.distill)
        return Phase(self.supervised, self.distill, update=k % self.num_networks)
