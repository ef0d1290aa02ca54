"""Inference around a trained network: full-size class scores (whole/slide, TTA), the split evaluator,
benchmark-format writers and pictures of predictions. Used by segkd.evaluate and segkd.predict."""

from segkd.inference.data import EvaluationSet
from segkd.inference.drawing import colorize, overlay
from segkd.inference.evaluator import Evaluator
from segkd.inference.predictor import SegmentationPredictor
from segkd.inference.writers import BenchmarkWriter, OverlayWriter, prediction_format

__all__ = ["BenchmarkWriter", "EvaluationSet", "Evaluator", "OverlayWriter", "SegmentationPredictor", "colorize",
           "overlay", "prediction_format"]
