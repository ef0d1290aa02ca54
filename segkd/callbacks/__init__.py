"""Optional behaviour attached to a Trainer (timing now; image logging and profiling later)."""

from segkd.callbacks.timing import EpochTimer

__all__ = ["EpochTimer"]
