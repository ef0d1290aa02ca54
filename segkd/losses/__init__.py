"""Supervised segmentation losses and the class weights they use (the softmax maths they share with
the distillation losses and the uncertainty metrics is in segkd.functional)."""

from segkd.losses.cross_entropy import SegmentationCrossEntropy

__all__ = ["SegmentationCrossEntropy"]
