"""Supervised segmentation losses, the class weights they use, and the softmax maths (``softmax``)
that they share with the distillation losses and the uncertainty metrics."""

from segkd.losses.cross_entropy import SegmentationCrossEntropy

__all__ = ["SegmentationCrossEntropy"]
