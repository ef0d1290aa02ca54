"""Cityscapes and BDD100K in their official layouts, read as (image, train-id mask) pairs.

Both return train ids 0..18 with 255 ignored, so everything downstream (losses, metrics, the
embedded SynthStreets data, which is written in the Cityscapes layout) sees one label space.
Pairing and layout are checked when the dataset is built; label contents when a sample is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from segkd.data.errors import DatasetError
from segkd.data.io import check_train_ids, read_label, read_rgb, read_size
from segkd.data.labels import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES, RAW_TO_TRAIN, UNKNOWN_ID
from segkd.data.transforms import geometry

Transform = Callable[..., dict]


@dataclass(frozen=True)
class SplitManifest:
    """What one split is made of, for code that names, keys or fingerprints it (the teacher-logit
    cache) without reading a dataset's internals: :meth:`SegmentationFolder.manifest`.

    ``files`` holds, per sample in index order, its files (the image, then its label when the split
    has labels), absolute; :meth:`relative` names one under ``root``.
    """

    dataset: str   # the dataset class's name, e.g. "CityscapesDataset"
    split: str
    root: Path
    files: tuple[tuple[Path, ...], ...]

    def __len__(self) -> int:
        return len(self.files)

    def relative(self, path: Path) -> Path:
        return path.relative_to(self.root)


class SegmentationFolder(Dataset):
    """Shared reading and transform logic; subclasses say where the files are and how labels decode."""

    dataset_name = "segmentation"
    class_names: tuple[str, ...] = CLASS_NAMES
    ignore_index = IGNORE_INDEX

    def __init__(
        self, root: str | Path, split: str, transform: Optional[Transform] = None, with_labels: bool = True
    ) -> None:
        self.root = Path(root).expanduser()
        self.split = split
        self.transform = transform
        #: False for a split whose labels are not public (test): samples are then ``(image, None)``
        #: and only the images are read (segkd.evaluate writes predictions for them).
        self.with_labels = with_labels
        #: Callables that add fields to each transformed sample (e.g. cached teacher logits). The
        #: datamodule owns this list for its train split (SegmentationDataModule.attach_train_extra).
        self.extras: list[Callable[[dict], dict]] = []
        if not self.root.is_dir():
            what = "is a file, not a folder" if self.root.exists() else "does not exist"
            raise DatasetError(
                f"{self.dataset_name} root {self.root} {what}; set dataset.root=/path/to/"
                f"{self.dataset_name.lower()} (the folder that holds {self.layout_hint()})"
            )
        self.samples: list[tuple[Path, Optional[Path]]] = self.find_samples()
        if not self.samples:
            raise DatasetError(
                f"{self.dataset_name} split '{split}' under {self.root} has no images; expected {self.layout_hint()}"
            )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def layout_hint(self) -> str:
        raise NotImplementedError

    def find_samples(self) -> list[tuple[Path, Optional[Path]]]:
        raise NotImplementedError

    def sample_id(self, index: int) -> str:
        """The name a prediction of this sample is filed under: the image's stem unless the layout says otherwise."""
        return self.samples[index][0].stem

    def decode_label(self, label: np.ndarray, path: Path) -> np.ndarray:
        raise NotImplementedError

    def manifest(self) -> SplitManifest:
        """This split's identity and files (see :class:`SplitManifest`)."""
        files = tuple(tuple(path for path in sample if path is not None) for sample in self.samples)
        return SplitManifest(type(self).__name__, self.split, self.root, files)

    def image_size(self, index: int) -> tuple[int, int]:
        """``(height, width)`` of sample ``index`` before any transform, from a file header alone: its
        label map's when the split has labels (the size every field of the sample has), else its image's."""
        image_path, label_path = self.samples[index]
        return read_size(label_path if label_path is not None else image_path)

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The untransformed image (HxWx3 uint8 RGB) and train-id mask (HxW uint8)."""
        image_path, label_path = self.samples[index]
        if label_path is None:
            raise DatasetError(f"{self.dataset_name} split '{self.split}' was opened without labels (with_labels=False): "
                               "its samples are images only")
        image = read_rgb(image_path)
        mask = self.decode_label(read_label(label_path), label_path)
        if image.shape[:2] != mask.shape:
            raise DatasetError(
                f"image {image_path} is {image.shape[:2]} but its label {label_path} is {mask.shape}; "
                "the pair must have the same size"
            )
        return image, mask

    def load_mask(self, index: int) -> np.ndarray:
        """Only the train-id mask: class statistics need no images."""
        label_path = self.samples[index][1]
        return self.decode_label(read_label(label_path), label_path)

    def __getitem__(self, item: int | tuple[int, int]) -> dict:
        """``item`` is an index, or ``(index, seed)`` from :class:`~segkd.data.sampling.SeededSampler`:
        the seed makes this sample's augmentation a function of the run seed alone."""
        index, seed = item if isinstance(item, tuple) else (item, None)
        image, mask = self.load(index)
        sample: dict = {"index": index, "name": self.samples[index][0].name}
        if self.transform is not None:
            if seed is not None:
                self.transform.set_random_seed(seed)
            out = self.transform(image=image, mask=mask)
            if "applied_transforms" in out:
                # a tensor, so that batches collate it: CropGeometry.of(sample["geometry"]) reads it back
                sample["geometry"] = geometry(out["applied_transforms"], image.shape).as_tensor()
            image, mask = out["image"], out["mask"]
        if not isinstance(image, torch.Tensor):
            image = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        sample["image"] = image
        sample["mask"] = torch.as_tensor(np.asarray(mask), dtype=torch.long)
        for extra in self.extras:
            sample.update(extra(sample))
        return sample

    def _missing_label(self, image: Path, expected: Path) -> DatasetError:
        return DatasetError(
            f"image {image} has no label file (expected {expected}); restore the label or remove the image"
        )


class CityscapesDataset(SegmentationFolder):
    """Official layout: leftImg8bit/{split}/{city}/*_leftImg8bit.png + gtFine/{split}/{city}/*_gtFine_labelIds.png.

    A ``*_gtFine_labelTrainIds.png`` (made by cityscapesscripts' createTrainIdLabelImgs) is preferred
    when present: it is already in train ids, so reading it skips the mapping.
    """

    dataset_name = "Cityscapes"

    def layout_hint(self) -> str:
        return (
            f"leftImg8bit/{self.split}/<city>/*_leftImg8bit.png and gtFine/{self.split}/<city>/*_gtFine_labelIds.png"
        )

    def find_samples(self) -> list[tuple[Path, Optional[Path]]]:
        image_dir = self.root / "leftImg8bit" / self.split
        if not image_dir.is_dir():
            raise DatasetError(
                f"Cityscapes root {self.root} has no leftImg8bit/{self.split}; expected the official layout "
                f"{self.layout_hint()}"
            )
        samples = []
        for image in sorted(image_dir.glob("*/*_leftImg8bit.png")):
            if not self.with_labels:
                samples.append((image, None))
                continue
            stem = image.name[: -len("_leftImg8bit.png")]
            label_dir = self.root / "gtFine" / self.split / image.parent.name
            train_ids = label_dir / f"{stem}_gtFine_labelTrainIds.png"
            raw_ids = label_dir / f"{stem}_gtFine_labelIds.png"
            if train_ids.is_file():
                samples.append((image, train_ids))
            elif raw_ids.is_file():
                samples.append((image, raw_ids))
            else:
                raise self._missing_label(image, raw_ids)
        return samples

    def sample_id(self, index: int) -> str:
        """``<city>_<seq>_<frame>``: how the benchmark matches a prediction to its ground truth."""
        return self.samples[index][0].name[: -len("_leftImg8bit.png")]

    def decode_label(self, label: np.ndarray, path: Path) -> np.ndarray:
        if path.name.endswith("_labelTrainIds.png"):
            return check_train_ids(label, path, NUM_CLASSES, IGNORE_INDEX)
        train = RAW_TO_TRAIN[label]
        if (train == UNKNOWN_ID).any():
            bad = np.unique(label[train == UNKNOWN_ID])
            raise DatasetError(
                f"label map {path} contains ids {bad[:10].tolist()} that are not Cityscapes label ids (0..33); "
                "is it a *_gtFine_labelIds.png file (not color or instanceIds)?"
            )
        return train.astype(np.uint8)


class BDD100KDataset(SegmentationFolder):
    """BDD100K semantic segmentation, 10k layout: images/10k/{split}/*.jpg + labels/sem_seg/masks/{split}/*.png.

    Its masks already hold the Cityscapes train ids (19 classes, 255 ignored).
    """

    dataset_name = "BDD100K"

    def layout_hint(self) -> str:
        return f"images/10k/{self.split}/*.jpg and labels/sem_seg/masks/{self.split}/*.png"

    def find_samples(self) -> list[tuple[Path, Optional[Path]]]:
        image_dir = self.root / "images" / "10k" / self.split
        mask_dir = self.root / "labels" / "sem_seg" / "masks" / self.split
        if not image_dir.is_dir():
            raise DatasetError(
                f"BDD100K root {self.root} has no images/10k/{self.split}; expected the official layout "
                f"{self.layout_hint()}"
            )
        samples = []
        for image in sorted(image_dir.glob("*.jpg")):
            if not self.with_labels:
                samples.append((image, None))
                continue
            mask = mask_dir / f"{image.stem}.png"
            if not mask.is_file():
                raise self._missing_label(image, mask)
            samples.append((image, mask))
        return samples

    def decode_label(self, label: np.ndarray, path: Path) -> np.ndarray:
        return check_train_ids(label, path, NUM_CLASSES, IGNORE_INDEX)
