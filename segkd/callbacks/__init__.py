"""Optional behaviour attached to a Trainer (timing, loss balance; image logging and profiling later)."""

from segkd.callbacks.grad_balance import GradientBalance
from segkd.callbacks.timing import EpochTimer

__all__ = ["EpochTimer", "GradientBalance"]
