"""Reading images and label maps, with errors that say which file is bad and what to do about it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from segkd.data.errors import DatasetError


JPEG_SUFFIXES = (".jpg", ".jpeg", ".jpe")


def decode_image(path: Path, flags: int = cv2.IMREAD_COLOR) -> "np.ndarray | None":
    """The image, or None when it cannot be read whole. cv2 returns None on a missing or foreign file,
    but decodes a truncated JPEG with its missing rows grey (libjpeg only prints "Premature end of
    JPEG file", naming no file): a JPEG is read from its bytes and must end with its end-of-image marker."""
    if Path(path).suffix.lower() in JPEG_SUFFIXES:
        try:
            data = np.fromfile(path, dtype=np.uint8)
        except OSError:
            return None
        return cv2.imdecode(data, flags) if jpeg_complete(data) else None
    return cv2.imread(str(path), flags)


def _imread(path: Path, flags: int, what: str) -> np.ndarray:
    array = decode_image(path, flags)
    if array is None:
        raise _unreadable(path, what)
    return array


def jpeg_complete(data: np.ndarray) -> bool:
    """Does a JPEG file's content end with its EOI marker (FF D9; trailing padding bytes allowed)?"""
    tail = bytes(data[-64:]).rstrip(b"\x00\r\n ")
    return len(data) > 4 and bytes(data[:2]) == b"\xff\xd8" and tail.endswith(b"\xff\xd9")


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
        "re-extract it from the dataset archive or delete it (dataset.verify=true reads every file once "
        "before training and lists every unreadable one)"
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
