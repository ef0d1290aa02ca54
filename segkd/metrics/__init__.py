"""The one segmentation metric implementation, shared by training, evaluation and reports."""

from segkd.metrics.segmentation import SegmentationMetrics, scores_from_confmat

__all__ = ["SegmentationMetrics", "scores_from_confmat"]
