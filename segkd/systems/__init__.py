"""LightningModules: how networks learn (alone, from a teacher, or together)."""

from segkd.systems.distillation import DistillationSystem
from segkd.systems.mutual import MutualLearningSystem
from segkd.systems.supervised import SegmentationSystem

__all__ = ["DistillationSystem", "MutualLearningSystem", "SegmentationSystem"]
