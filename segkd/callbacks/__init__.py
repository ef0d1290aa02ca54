"""Optional behaviour attached to a Trainer: timing, loss balance, weight averaging, pictures."""

from segkd.callbacks.grad_balance import GradientBalance
from segkd.callbacks.layer_images import LayerImages
from segkd.callbacks.preemption import Preemption
from segkd.callbacks.teacher_report import TeacherReport
from segkd.callbacks.timing import EpochTimer, Throughput
from segkd.callbacks.weight_averaging import EMA

__all__ = ["EMA", "EpochTimer", "GradientBalance", "LayerImages", "Preemption", "TeacherReport", "Throughput"]
