"""Reading images and label maps, with errors that say which file is bad and what to do about it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from segkd.data.errors import DatasetError


def _imread(path: Path, flags: int, what: str) -> np.ndarray:
    """cv2 returns None rather than raising on a missing, truncated or foreign file."""
    array = cv2.imread(str(path), flags)
    if array is None:
        raise _unreadable(path, what)
    return array


def _unreadable(path: Path, what: str) -> DatasetError:
    """Why ``path`` could not be read: gone or damaged, which have different fixes.

    The file list is made when the dataset is built, so a missing file vanished mid-run; existence
    is checked only after a failed read, so reading costs no extra system call.
    """
    if not Path(path).exists():
        return DatasetError(
            f"cannot read {what} {path}: the file no longer exists (deleted or moved while the run was using it?); "
            "restore it, or restart the run so that the file list is made again"
        )
    return DatasetError(
        f"cannot read {what} {path}: the file is corrupt or not an image; "
        "re-extract it from the dataset archive or delete it"
    )


def read_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` of an image from its header alone (~0.1 ms), without decoding the pixels."""
    try:
        with Image.open(path) as image:
            return image.height, image.width
    except OSError as err:
        raise _unreadable(path, "image") from err


def read_rgb(path: Path) -> np.ndarray:
    """An 8-bit RGB image as HxWx3 uint8."""
    return cv2.cvtColor(_imread(path, cv2.IMREAD_COLOR, "image"), cv2.COLOR_BGR2RGB)


def read_label(path: Path) -> np.ndarray:
    """A single-channel 8-bit label map (HxW uint8), as both Cityscapes and BDD100K store them."""
    label = _imread(path, cv2.IMREAD_UNCHANGED, "label map")
    if label.ndim != 2 or label.dtype != np.uint8:
        raise DatasetError(
            f"label map {path} is {label.dtype} with shape {label.shape}, expected a single-channel 8-bit id map; "
            "point the loader at the *_labelIds.png / sem_seg masks, not colour or instance files"
        )
    return label


def check_train_ids(label: np.ndarray, path: Path, num_classes: int, ignore_index: int) -> np.ndarray:
    """Reject values that are neither a train id nor the ignore value (a foreign or colour mask)."""
    bad = np.unique(label[(label >= num_classes) & (label != ignore_index)])
    if bad.size:
        raise DatasetError(
            f"label map {path} contains values {bad[:10].tolist()} that are not train ids 0..{num_classes - 1} "
            f"or {ignore_index} (ignored); check that these are train-id masks for this dataset"
        )
    return label
