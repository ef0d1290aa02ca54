"""Optional behaviour attached to a Trainer (timing, loss balance; image logging and profiling later)."""

from segkd.callbacks.grad_balance import GradientBalance
from segkd.callbacks.timing import EpochTimer
from segkd.callbacks.weight_averaging import EMA

__all__ = ["EMA", "EpochTimer", "GradientBalance"]
