"""Cityscapes and BDD100K loaders on small trees in their official layouts, and their clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cityscapesscripts.helpers import labels as official

from segkd.data import BDD100KDataset, CityscapesDataset, DatasetError
from segkd.data.labels import CLASS_NAMES, LABELS, RAW_TO_TRAIN
from segkd.data.transforms import eval_transform, train_transform

from conftest import write_bdd_tree, write_cityscapes_tree, write_png


def test_label_table_matches_official_cityscapesscripts():
    assert len(LABELS) == len(official.labels)
    for ours, theirs in zip(LABELS, official.labels):
        assert (ours.name, ours.id, ours.train_id, ours.category, ours.color) == (
            theirs.name, theirs.id, theirs.trainId, theirs.category, theirs.color,
        )
    official_names = [lb.name for lb in sorted(official.labels, key=lambda lb: lb.trainId) if 0 <= lb.trainId < 255]
    assert list(CLASS_NAMES) == official_names


def test_cityscapes_maps_raw_ids_to_train_ids_like_the_official_table(tmp_path):
    written = write_cityscapes_tree(tmp_path, "train")
    ds = CityscapesDataset(tmp_path, "train")
    assert len(ds) == len(written) == 4
    for i, (_, _, raw) in enumerate(written):
        image, mask = ds.load(i)
        expected = np.vectorize(lambda r: official.id2label[int(r)].trainId)(raw)
        expected[expected < 0] = 255
        np.testing.assert_array_equal(mask, expected)
        assert image.shape == (*raw.shape, 3) and image.dtype == np.uint8
    sample = ds[0]
    assert sample["image"].shape == (3, 32, 64) and sample["mask"].dtype == torch.long


def test_cityscapes_prefers_label_train_ids_file(tmp_path):
    (image, label, raw) = write_cityscapes_tree(tmp_path, "val", cities=("lindau",), per_city=1)[0]
    train_ids = np.full(raw.shape, 7, dtype=np.uint8)
    write_png(label.with_name(label.name.replace("labelIds", "labelTrainIds")), train_ids)
    _, mask = CityscapesDataset(tmp_path, "val").load(0)
    assert (mask == 7).all()


def test_bdd100k_reads_train_id_masks(tmp_path):
    written = write_bdd_tree(tmp_path, "val", n=3)
    ds = BDD100KDataset(tmp_path, "val")
    assert len(ds) == 3
    for i, (_, _, mask) in enumerate(written):
        np.testing.assert_array_equal(ds.load(i)[1], mask)


def test_transforms_keep_pairs_aligned_and_pad_with_ignore(tmp_path):
    write_cityscapes_tree(tmp_path, "train", size=(40, 72))
    ds = CityscapesDataset(tmp_path, "train", transform=train_transform((48, 96), (0.5, 0.6)))
    sample = ds[0]
    assert sample["image"].shape == (3, 48, 96) and sample["mask"].shape == (48, 96)
    assert (sample["mask"] == 255).any(), "a crop larger than the scaled image is padded with the ignore label"
    ev = CityscapesDataset(tmp_path, "train", transform=eval_transform())[0]
    assert ev["mask"].shape == (64, 96), "evaluation pads to a multiple of 32"
    assert (ev["mask"][40:] == 255).all() and (ev["mask"][:40, :72] != 255).float().mean() > 0.3


# ----------------------------------------------------------------------------- clear errors


def test_missing_root_names_the_setting(tmp_path):
    with pytest.raises(DatasetError, match=r"does not exist; set dataset\.root="):
        CityscapesDataset(tmp_path / "nope", "train")
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(DatasetError, match=r"root .*a_file is a file, not a folder; set dataset\.root="):
        CityscapesDataset(tmp_path / "a_file", "train")


def test_wrong_layout_names_the_expected_layout(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(DatasetError, match=r"has no leftImg8bit/train; expected the official layout"):
        CityscapesDataset(tmp_path, "train")
    with pytest.raises(DatasetError, match=r"has no images/10k/train"):
        BDD100KDataset(tmp_path / "..", "train")


def test_empty_split(tmp_path):
    (tmp_path / "leftImg8bit" / "val").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"split 'val' .* has no images"):
        CityscapesDataset(tmp_path, "val")


def test_image_without_label(tmp_path):
    (image, label, _) = write_cityscapes_tree(tmp_path, "train", per_city=1)[0]
    label.unlink()
    with pytest.raises(DatasetError, match=r"has no label file .*gtFine_labelIds\.png"):
        CityscapesDataset(tmp_path, "train")
    (bdd_image, bdd_mask, _) = write_bdd_tree(tmp_path / "bdd", n=1)[0]
    bdd_mask.unlink()
    with pytest.raises(DatasetError, match=r"has no label file"):
        BDD100KDataset(tmp_path / "bdd", "train")


def test_label_with_unknown_ids(tmp_path):
    (_, label, raw) = write_cityscapes_tree(tmp_path, "train", per_city=1)[0]
    raw = raw.copy()
    raw[0, :3] = [34, 200, 77]
    assert (RAW_TO_TRAIN[[34, 200, 77]] == -1).all()
    write_png(label, raw)
    ds = CityscapesDataset(tmp_path, "train")
    with pytest.raises(DatasetError, match=r"contains ids \[34, 77, 200\] that are not Cityscapes label ids"):
        ds.load(0)


def test_bdd_mask_with_values_outside_train_ids(tmp_path):
    (_, label, mask) = write_bdd_tree(tmp_path, n=1)[0]
    mask = mask.copy()
    mask[0, 0] = 19
    write_png(label, mask)
    with pytest.raises(DatasetError, match=r"values \[19\] that are not train ids 0\.\.18 or 255"):
        BDD100KDataset(tmp_path, "train").load(0)


def test_corrupt_image(tmp_path):
    (image, _, _) = write_cityscapes_tree(tmp_path, "train", per_city=1)[0]
    image.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(DatasetError, match=r"cannot read image .* corrupt or not an image; re-extract"):
        CityscapesDataset(tmp_path, "train")[0]


def test_a_truncated_jpeg_stops_training_with_the_file_named(tmp_path):
    """OpenCV decodes a JPEG cut to a third with its lower rows grey and names no file (issue 29 #4)."""
    (image, _, _) = write_bdd_tree(tmp_path, "train", n=2, size=(64, 96))[0]
    assert BDD100KDataset(tmp_path, "train")[0]["image"].shape[-2:] == (64, 96), "whole, it reads"
    data = image.read_bytes()
    image.write_bytes(data[: len(data) // 3])
    with pytest.raises(DatasetError, match=rf"cannot read image {image}: the file is corrupt or not an image"):
        BDD100KDataset(tmp_path, "train")[0]


def test_colour_label_file_is_rejected(tmp_path):
    (_, label, raw) = write_cityscapes_tree(tmp_path, "train", per_city=1)[0]
    write_png(label, np.stack([raw] * 3, axis=-1))
    with pytest.raises(DatasetError, match=r"expected a single-channel 8-bit id map"):
        CityscapesDataset(tmp_path, "train").load(0)
