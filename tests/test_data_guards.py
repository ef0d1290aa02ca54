"""Nothing lost, nothing silent: a run that would train on nothing (or on less than it was given)
fails with one DatasetError that names the key to change, a SynthStreets cache whose files were
deleted or changed is regenerated with a warning, and a file that vanished mid-run is called missing.
"""

from __future__ import annotations

import errno
import json
import logging
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest

import segkd.data.synthstreets.api as synth_api
from segkd.config import build
from segkd.data import BDD100KDataset, CityscapesDataset, DatasetError, SegmentationDataModule
from segkd.data.io import read_size
from segkd.data.synthstreets import MANIFEST_NAME, ensure_synthstreets, image_stem
from segkd.train import train

from conftest import FAST, compose_train, write_bdd_tree, write_cityscapes_tree

TINY = dict(num_train=6, num_val=2, height=64, width=128, seed=0)


def prepared(cfg) -> SegmentationDataModule:
    datamodule = build(cfg.dataset)
    datamodule.prepare_data()
    return datamodule


def train_image(root: Path, index: int = 0) -> Path:
    city, stem = image_stem("train", index)
    return root / "leftImg8bit" / "train" / city / f"{stem}_leftImg8bit.png"


def inodes(root: Path) -> dict[str, tuple[int, int]]:
    """Every data file's (inode, mtime): unchanged means not rewritten."""
    return {str(p): (p.stat().st_ino, p.stat().st_mtime_ns) for p in root.rglob("*.png")}


@pytest.fixture
def synth_warnings(caplog):
    """The SynthStreets logger's warnings, whatever logging config an earlier test left behind."""
    logger = logging.getLogger("segkd.data.synthstreets")
    saved = logger.disabled, logger.propagate
    logger.disabled, logger.propagate = False, True
    caplog.set_level(logging.WARNING, logger=logger.name)
    yield lambda: [r.getMessage() for r in caplog.records if r.name == logger.name and r.levelno == logging.WARNING]
    logger.disabled, logger.propagate = saved


# ----------------------------------------------------------------------------- a run that trains nothing


def test_too_few_train_images_for_one_batch_fails_the_run(make_cfg, tmp_path):
    cfg = make_cfg("dataset.prepare.num_train=3")  # batch_size=4 and incomplete batches are dropped
    fix = r"lower dataset\.batch_size to 3 or less, or raise dataset\.prepare\.num_train"
    with pytest.raises(DatasetError, match=r"3 images, fewer than one batch of dataset\.batch_size=4.*" + fix):
        train(cfg)
    assert not (tmp_path / "run" / "summary.json").exists(), "no summary with val: null"


def test_a_global_batch_that_does_not_split_over_the_processes_is_refused_before_training(make_cfg):
    datamodule = prepared(make_cfg())  # 16 images, a global batch of 4
    datamodule.setup("fit")
    datamodule.trainer = SimpleNamespace(world_size=8, global_rank=0)
    with pytest.raises(DatasetError, match=r"dataset\.batch_size=4 is the global batch .* over 8 processes"):
        datamodule.setup("fit")


def test_real_data_with_too_few_images_says_add_images(tmp_path):
    write_cityscapes_tree(tmp_path, "train")  # 4 images
    write_cityscapes_tree(tmp_path, "val", cities=("lindau",), per_city=1)
    datamodule = SegmentationDataModule(partial(CityscapesDataset, root=tmp_path), batch_size=8, crop_size=(32, 64))
    with pytest.raises(DatasetError, match=r"4 images, fewer than one batch.*add images to the train split"):
        datamodule.setup("fit")


@pytest.mark.parametrize("key, value", [("batch_size", 0), ("val_batch_size", -1), ("batch_size", 2.5)])
def test_batch_sizes_below_one_are_refused(make_cfg, key, value):
    with pytest.raises(DatasetError, match=rf"dataset\.{key}={value} is not a batch size; set dataset\.{key}"):
        build(make_cfg(f"dataset.{key}={value}").dataset)


def test_non_positive_crop_is_refused(make_cfg):
    with pytest.raises(DatasetError, match=r"dataset\.crop_size=\[0, 64\] is not a crop size"):
        build(make_cfg("dataset.crop_size=[0,64]").dataset)


def test_crop_mostly_padding_is_refused_a_little_larger_is_not(make_cfg):
    # images are 64x128, scaled by at most 1.25: Cityscapes' crop would be ~4% image
    datamodule = prepared(make_cfg("dataset.crop_size=[512,1024]", "dataset.scale_range=[0.5,1.25]"))
    with pytest.raises(DatasetError, match=r"dataset\.crop_size=\[512, 1024\] is far larger than the train images "
                                           r"\(the largest is 64x128.*set dataset\.crop_size to at most \[80, 160\]"):
        datamodule.setup("fit")
    prepared(make_cfg("dataset.crop_size=[96,192]", "dataset.scale_range=[0.5,1.25]")).setup("fit")  # 69% image: padded, legal


# ----------------------------------------------------------------------------- empty splits


def test_empty_split_is_one_error_for_every_dataset(tmp_path, make_cfg):
    (tmp_path / "cs" / "leftImg8bit" / "val" / "frankfurt").mkdir(parents=True)  # city dir, no images
    with pytest.raises(DatasetError, match=r"Cityscapes split 'val' .* has no images; expected leftImg8bit/val/<city>"):
        CityscapesDataset(tmp_path / "cs", "val")
    write_bdd_tree(tmp_path / "bdd", "val", n=1)
    for jpg in (tmp_path / "bdd" / "images" / "10k" / "val").glob("*.jpg"):
        jpg.rename(jpg.with_suffix(".png"))  # images the 10k layout does not list
    with pytest.raises(DatasetError, match=r"BDD100K split 'val' .* has no images; expected images/10k/val/\*\.jpg"):
        BDD100KDataset(tmp_path / "bdd", "val")
    with pytest.raises(DatasetError, match=r"num_val=0; set dataset\.prepare\.num_train and dataset\.prepare\.num_val"):
        prepared(make_cfg("dataset.prepare.num_val=0"))


# ----------------------------------------------------------------------------- SynthStreets cache vs disk


def test_deleted_synthstreets_image_is_regenerated_with_a_warning(tmp_path, synth_warnings):
    cfg = compose_train(FAST, tmp_path / "run", tmp_path / "cache")
    root = Path(prepared(cfg).root)
    deleted = train_image(root, 3)
    original = deleted.read_bytes()
    deleted.unlink()
    datamodule = prepared(cfg)
    warnings = synth_warnings()
    assert len(warnings) == 1 and "1 of 42 files are missing or changed" in warnings[0] and deleted.name in warnings[0]
    assert "regenerating" in warnings[0]
    datamodule.setup("fit")
    assert len(datamodule.train_set) == 16
    assert deleted.read_bytes() == original, "regenerated byte for byte"
    assert [p.name for p in root.parent.iterdir()] == [root.name], "no partial or replaced dir left beside it"


def test_truncated_label_is_regenerated(tmp_path, synth_warnings):
    root = ensure_synthstreets(tmp_path / "synth", **TINY)
    label = next((root / "gtFine" / "val").rglob("*.png"))
    original = label.read_bytes()
    label.write_bytes(original[:100])
    ensure_synthstreets(root, **TINY)
    assert len(synth_warnings()) == 1 and label.name in synth_warnings()[0]
    assert label.read_bytes() == original


def test_up_to_date_cache_is_reused_untouched(tmp_path, synth_warnings):
    root = ensure_synthstreets(tmp_path / "synth", **TINY)
    before = inodes(root), (root / MANIFEST_NAME).stat().st_mtime_ns
    ensure_synthstreets(root, **TINY)
    assert (inodes(root), (root / MANIFEST_NAME).stat().st_mtime_ns) == before and not synth_warnings()


def test_old_manifest_is_upgraded_in_place_without_regeneration(tmp_path, monkeypatch, synth_warnings):
    root = ensure_synthstreets(tmp_path / "synth", **TINY)
    manifest = root / MANIFEST_NAME
    params = {k: v for k, v in json.loads(manifest.read_text()).items() if k != "files"}
    manifest.write_text(json.dumps(params, indent=2, sort_keys=True) + "\n")  # as written before file sizes
    before = inodes(root)

    def boom(*args, **kwargs):
        raise AssertionError("an old manifest over complete files must not cost a regeneration")

    monkeypatch.setattr(synth_api, "render_synthstreets_image", boom)
    assert ensure_synthstreets(root, **TINY) == root
    assert inodes(root) == before and not synth_warnings()
    upgraded = json.loads(manifest.read_text())
    assert len(upgraded["files"]) == 2 * (TINY["num_train"] + TINY["num_val"])
    assert upgraded["files"][train_image(root).relative_to(root).as_posix()] == train_image(root).stat().st_size


def test_old_manifest_with_a_missing_file_is_regenerated(tmp_path, synth_warnings):
    root = ensure_synthstreets(tmp_path / "synth", **TINY)
    manifest = root / MANIFEST_NAME
    params = {k: v for k, v in json.loads(manifest.read_text()).items() if k != "files"}
    manifest.write_text(json.dumps(params))
    train_image(root, 5).unlink()
    ensure_synthstreets(root, **TINY)
    assert len(synth_warnings()) == 1 and train_image(root, 5).is_file()
    assert "files" in json.loads(manifest.read_text())


def test_cache_that_cannot_be_regenerated_is_one_clear_error(tmp_path, monkeypatch, synth_warnings):
    root = ensure_synthstreets(tmp_path / "synth", **TINY)
    train_image(root).unlink()
    before = inodes(root)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(synth_api, "_write_pair", read_only)
    with pytest.raises(DatasetError, match=r"1 missing or changed files \(first: leftImg8bit/train/.*\) and cannot be "
                                           r"regenerated \(.*Read-only file system\); make .* writable"):
        ensure_synthstreets(root, **TINY)
    assert inodes(root) == before, "the old dataset is left as it was"
    assert [p.name for p in tmp_path.iterdir()] == ["synth"], "no partial dir left beside it"


# ----------------------------------------------------------------------------- missing vs corrupt files


def test_vanished_file_is_missing_not_corrupt(tmp_path):
    write_cityscapes_tree(tmp_path, "train", per_city=1)
    dataset = CityscapesDataset(tmp_path, "train")
    gone, damaged = dataset.samples[0][0], dataset.samples[1][0]
    gone.unlink()
    damaged.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    missing = r"cannot read image .* no longer exists \(deleted or moved while the run was using it\?\)"
    with pytest.raises(DatasetError, match=missing):
        dataset[0]
    with pytest.raises(DatasetError, match=missing):
        read_size(gone)
    corrupt = r"cannot read image .* the file is corrupt or not an image; re-extract"
    with pytest.raises(DatasetError, match=corrupt):
        dataset[1]
    with pytest.raises(DatasetError, match=corrupt):
        read_size(damaged)


def test_a_val_split_of_several_sizes_is_refused_up_front_unless_batched_by_one(tmp_path, make_cfg):
    """Cityscapes/BDD100K layouts can mix image sizes; torch would stop mid-validation (issue 29 #12)."""
    root = tmp_path / "cs"
    write_cityscapes_tree(root, "train", per_city=2, size=(64, 128))
    write_cityscapes_tree(root, "val", cities=("frankfurt",), per_city=1, size=(64, 128), seed=1)
    write_cityscapes_tree(root, "val", cities=("lindau",), per_city=1, size=(96, 128), seed=2)
    base = ["dataset=cityscapes", f"dataset.root={root}", "dataset.crop_size=[64,64]", "dataset.batch_size=2"]
    with pytest.raises(DatasetError, match=r"the val split holds images of more than one size \(.* is 64x128 padded "
                                           r"to /32, .* 96x128\), and val batches stack images of one size: set "
                                           r"dataset\.val_batch_size=1, or dataset\.val_size=\[H,W\]"):
        build(make_cfg(*base, "dataset.val_batch_size=2", fast=False).dataset).setup("fit")
    build(make_cfg(*base, "dataset.val_batch_size=1", fast=False).dataset).setup("fit")
    build(make_cfg(*base, "dataset.val_batch_size=2", "dataset.val_size=[64,128]", fast=False).dataset).setup("fit")


def test_dataset_verify_lists_every_unreadable_file_before_training(tmp_path, make_cfg):
    """A corrupt label is otherwise found when first read, mid-epoch, one at a time (issue 29 #24)."""
    root = tmp_path / "cs"
    written = write_cityscapes_tree(root, "train", per_city=2, size=(64, 128))
    write_cityscapes_tree(root, "val", cities=("frankfurt",), per_city=1, size=(64, 128), seed=1)
    for _, label, _ in written[:2]:
        label.write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    base = ["dataset=cityscapes", f"dataset.root={root}", "dataset.crop_size=[64,64]", "dataset.batch_size=2"]
    with pytest.raises(DatasetError, match=r"^2 of the 4 samples of the train split cannot be read: cannot read label map "
                                           rf"{written[0][1]}: .*; cannot read label map {written[1][1]}: "):
        build(make_cfg(*base, "dataset.verify=true", fast=False).dataset).setup("fit")
    datamodule = build(make_cfg(*base, fast=False).dataset)
    datamodule.setup("fit")  # without it, nothing is read up front
    with pytest.raises(DatasetError, match=r"dataset\.verify=true reads every file once before training"):
        datamodule.train_set.load(0)
