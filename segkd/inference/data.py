"""A split as evaluation reads it: every image at its stored (full) size, its label if the split has one, and its id."""

from __future__ import annotations

from typing import Sequence

import albumentations as A
import numpy as np
import torch
from albumentations.pytorch import ToTensorV2
from torch import Tensor
from torch.utils.data import Dataset

from segkd.data.datasets import SegmentationFolder
from segkd.data.io import read_rgb
from segkd.data.transforms import IMAGENET_MEAN, IMAGENET_STD


def normalize(mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> A.Compose:
    """The training pipeline's last two steps (the same float maths), without resizing or padding:
    the predictor pads each pass itself, so predictions stay at the label's size."""
    return A.Compose([A.Normalize(mean=mean, std=std), ToTensorV2()])


def to_input(image: np.ndarray, transform: A.Compose) -> Tensor:
    """An HxWx3 uint8 RGB image as the network's normalised 3xHxW float input."""
    return transform(image=image)["image"]


class EvaluationSet(Dataset):
    """Samples of a :class:`SegmentationFolder` for segkd.evaluate: ``image`` (normalised, unpadded),
    ``mask`` (train ids, only when the folder was opened with labels), ``id`` (what the benchmark
    names the prediction after) and ``path`` (the image file, for overlays).

    The folder's own ``__getitem__`` serves training (augmentation, seeds, cached teacher outputs);
    evaluation needs none of it, and needs the id, which training batches do not carry.
    """

    def __init__(self, folder: SegmentationFolder, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD) -> None:
        self.folder = folder
        self.transform = normalize(mean, std)

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, index: int) -> dict:
        image_path, label_path = self.folder.samples[index]
        sample: dict = {"index": index, "id": self.folder.sample_id(index), "path": str(image_path)}
        if label_path is None:
            image = read_rgb(image_path)
        else:
            image, mask = self.folder.load(index)  # checks that the pair has one size
            sample["mask"] = torch.from_numpy(mask.astype(np.int64))
        sample["image"] = to_input(image, self.transform)
        return sample
