"""Predictions on disk: benchmark-format label maps and colour overlays, written by whichever rank made them.

Both writers are Lightning prediction-writer callbacks: under DDP each rank sees only its share of
the split (Lightning's predict sampler neither pads nor repeats), so every file is written exactly
once, by the process that predicted it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import cv2
import numpy as np
from lightning.pytorch.callbacks import BasePredictionWriter

from segkd.data.datasets import BDD100KDataset, CityscapesDataset, SegmentationFolder
from segkd.data.io import read_rgb
from segkd.data.labels import TRAIN_TO_ID
from segkd.inference.drawing import check_alpha, overlay


@dataclass(frozen=True)
class PredictionFormat:
    """How a benchmark wants one prediction: folder (in the run dir), file name and pixel values."""

    folder: str
    suffix: str
    label_ids: bool  # True: Cityscapes label ids (7 road, 26 car, ...); False: train ids 0..18

    def file_name(self, sample_id: str) -> str:
        return f"{sample_id}{self.suffix}"

    def encode(self, train_ids: np.ndarray) -> np.ndarray:
        train_ids = np.asarray(train_ids, dtype=np.uint8)
        return TRAIN_TO_ID[train_ids] if self.label_ids else train_ids


#: The Cityscapes benchmark: ``<city>_<seq>_<frame>_pred_labelIds.png`` holding label ids, as
#: cityscapesscripts' evalPixelLevelSemanticLabeling and the test server read them.
CITYSCAPES = PredictionFormat("cityscapes_results", "_pred_labelIds.png", label_ids=True)
#: BDD100K semantic segmentation: ``<image stem>.png`` holding train ids 0..18, like its own masks
#: (the layout bdd100k's ``bdd100k.eval.seg`` and the eval server compare against).
BDD100K = PredictionFormat("bdd100k_results", ".png", label_ids=False)
#: Any other folder dataset: train ids, named after the image.
TRAIN_IDS = PredictionFormat("predictions", ".png", label_ids=False)


def prediction_format(dataset: SegmentationFolder) -> PredictionFormat:
    """The benchmark format of a dataset's layout (the embedded SynthStreets is Cityscapes layout)."""
    if isinstance(dataset, CityscapesDataset):
        return CITYSCAPES
    if isinstance(dataset, BDD100KDataset):
        return BDD100K
    return TRAIN_IDS


def write_image(path: Path, array: np.ndarray) -> Path:
    """A PNG (or any cv2 format by suffix); ``array`` is HxW (ids) or HxWx3 RGB."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), array):
        raise OSError(f"cannot write {path}: is the disk full or the folder read-only?")
    return path


class BenchmarkWriter(BasePredictionWriter):
    """One label map per image in ``output_dir``, in the benchmark's format; nothing else goes in that folder."""

    def __init__(self, output_dir: str | Path, fmt: PredictionFormat) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)
        self.format = fmt

    def write_on_batch_end(self, trainer: Any, pl_module: Any, prediction: Any, batch_indices: Optional[Sequence[int]],
                           batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        for sample_id, train_ids in zip(batch["id"], prediction.cpu().numpy()):
            write_image(self.output_dir / self.format.file_name(sample_id), self.format.encode(train_ids))


class OverlayWriter(BasePredictionWriter):
    """``<id>.png``: the image with its prediction blended in, in the Cityscapes palette (read again from disk)."""

    def __init__(self, output_dir: str | Path, alpha: float = 0.5) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)
        self.alpha = check_alpha(alpha)

    def write_on_batch_end(self, trainer: Any, pl_module: Any, prediction: Any, batch_indices: Optional[Sequence[int]],
                           batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        for sample_id, path, train_ids in zip(batch["id"], batch["path"], prediction.cpu().numpy()):
            write_image(self.output_dir / f"{sample_id}.png", overlay(read_rgb(Path(path)), train_ids, self.alpha))
