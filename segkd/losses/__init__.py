"""Supervised segmentation losses (distillation losses arrive with their own files)."""

from segkd.losses.cross_entropy import SegmentationCrossEntropy

__all__ = ["SegmentationCrossEntropy"]
