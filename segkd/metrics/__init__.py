"""The one segmentation metric implementation, shared by training, evaluation and reports."""

from segkd.metrics.segmentation import NetScores, SegmentationMetrics, scores_from_confmat
from segkd.metrics.uncertainty import PredictiveEntropy

__all__ = ["NetScores", "PredictiveEntropy", "SegmentationMetrics", "scores_from_confmat"]
