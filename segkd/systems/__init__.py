"""LightningModules: how networks learn (alone, from a teacher, or together)."""

from segkd.systems.supervised import SegmentationSystem

__all__ = ["SegmentationSystem"]
