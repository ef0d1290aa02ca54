"""Datasets (Cityscapes, BDD100K, the embedded SynthStreets), transforms and the data module."""

from segkd.data.datamodule import SegmentationDataModule
from segkd.data.datasets import BDD100KDataset, CityscapesDataset, SegmentationFolder
from segkd.data.errors import DatasetError

__all__ = ["BDD100KDataset", "CityscapesDataset", "DatasetError", "SegmentationDataModule", "SegmentationFolder"]
