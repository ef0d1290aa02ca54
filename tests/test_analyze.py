"""segkd.analyze: exact counts on a hand-made Cityscapes tree (pixels, presence, connected regions and
their areas, colour statistics), the files it writes, the class-weight cache training reads, and its
one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from segkd.analysis.dataset_stats import (ChannelMoments, ObjectSizes, cityscapes_reference_shares, class_shares,
                                          object_areas)
from segkd.analyze import FIGURES, REPORT_FILE, STATS_FILE, WEIGHTS_FILE, analyze
from segkd.config import build, compose_config
from segkd.data.class_stats import class_statistics
from segkd.data.labels import CLASS_NAMES, ID_BY_NAME, RAW_TO_TRAIN
from segkd.losses.class_weights import class_weights
from segkd.runtime.errors import errors_in_one_line

from conftest import random_image, write_bdd_tree, write_png

H, W = 16, 32
TRAIN_ID = {name: i for i, name in enumerate(CLASS_NAMES)}


def hand_made_masks() -> list[np.ndarray]:
    """Three 16x32 label maps of raw Cityscapes ids with known contents:

    - A: road, two separate car rectangles (4x6 and 4x8), the last row unlabeled (ignored);
    - B: sky above, road below with a 6x2 person inside it;
    - C: building with two 2x2 cars touching only at a corner: one region under 8-connectivity.
    """
    a = np.full((H, W), ID_BY_NAME["road"], np.uint8)
    a[2:6, 3:9] = ID_BY_NAME["car"]
    a[10:14, 20:28] = ID_BY_NAME["car"]
    a[15, :] = ID_BY_NAME["unlabeled"]
    b = np.full((H, W), ID_BY_NAME["road"], np.uint8)
    b[:8, :] = ID_BY_NAME["sky"]
    b[9:15, 10:12] = ID_BY_NAME["person"]
    c = np.full((H, W), ID_BY_NAME["building"], np.uint8)
    c[2:4, 2:4] = ID_BY_NAME["car"]
    c[4:6, 4:6] = ID_BY_NAME["car"]
    return [a, b, c]


#: What the three masks hold, counted by hand: pixels, images, and region areas (pixels) per class.
EXPECTED = {
    "road": (424 + 244, 2, [424, 244]),
    "car": (24 + 32 + 8, 2, [24, 32, 8]),
    "sky": (256, 1, [256]),
    "person": (12, 1, [12]),
    "building": (504, 1, [504]),
}


def write_tiny_tree(root: Path) -> list[np.ndarray]:
    """The hand-made masks in the official Cityscapes layout, with random images (returned), and an
    empty val split beside train."""
    rng, images = np.random.default_rng(0), []
    for i, raw in enumerate(hand_made_masks()):
        stem = f"aachen_{i:06d}_000019"
        image = random_image(rng, (H, W))
        write_png(root / "leftImg8bit" / "train" / "aachen" / f"{stem}_leftImg8bit.png", image)
        write_png(root / "gtFine" / "train" / "aachen" / f"{stem}_gtFine_labelIds.png", raw)
        images.append(image)
    (root / "leftImg8bit" / "val").mkdir()
    return images


def analyze_cfg(tmp_path: Path, *overrides: str):
    """The analyze config with overrides; caches (class statistics) and the run dir in ``tmp_path``."""
    return compose_config("analyze", [*overrides, f"paths.cache_dir={tmp_path / 'cache'}",
                                      f"paths.log_dir={tmp_path}"], tmp_path / "run")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> dict:
    """One real ``analyze`` over the hand-made tree, shared by the tests that read its results (each
    run draws four figures: seconds on a busy CPU)."""
    tmp_path = tmp_path_factory.mktemp("analyze")
    root = tmp_path / "cityscapes"
    images = write_tiny_tree(root)
    cfg = analyze_cfg(tmp_path, "dataset=cityscapes", f"dataset.root={root}")
    return {"root": root, "images": images, "cfg": cfg, "report": analyze(cfg), "out": tmp_path / "run"}


# ----------------------------------------------------------------------------- the pure pieces

def test_regions_are_8_connected_and_ignored_pixels_belong_to_no_class():
    mask = np.full((6, 6), 255, np.uint8)
    mask[0:2, 0:2] = 3          # these two squares touch at a corner only: one region
    mask[2:4, 2:4] = 3
    mask[5, 0:3] = 3            # a separate bar
    mask[0, 5] = 7
    areas = object_areas(mask, num_classes=19)
    assert set(areas) == {3, 7}
    assert sorted(areas[3].tolist()) == [3, 8]
    assert areas[7].tolist() == [1]


def test_object_sizes_summarise_areas_as_shares_of_their_image():
    sizes = ObjectSizes(num_classes=19)
    for raw in hand_made_masks():
        sizes.add(RAW_TO_TRAIN[raw].astype(np.uint8))  # what the loader hands over: train ids, 255 ignored
    car = sizes.summary(TRAIN_ID["car"])
    assert car["objects"] == 3
    assert car["median_area"] == pytest.approx(24 / (H * W))
    assert car["p10_area"] == pytest.approx((8 + 0.2 * (24 - 8)) / (H * W))   # linear interpolation
    assert car["p90_area"] == pytest.approx((24 + 0.8 * (32 - 24)) / (H * W))
    assert sum(car["area_histogram"]) == 3
    assert sizes.summary(TRAIN_ID["wall"]) | {"area_histogram": None} == {
        "objects": 0, "median_area": None, "p10_area": None, "p90_area": None, "area_histogram": None}


def test_channel_moments_are_the_pooled_mean_and_std_of_every_pixel():
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (5, 7, 3), dtype=np.uint8), rng.integers(0, 256, (3, 2, 3), dtype=np.uint8)]
    moments = ChannelMoments()
    for image in images:
        moments.add(image)
    pixels = np.concatenate([im.reshape(-1, 3) for im in images]) / 255.0
    mean, std = moments.mean_std()
    np.testing.assert_allclose(mean, pixels.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(std, pixels.std(axis=0), rtol=1e-9)


def test_cityscapes_reference_is_a_distribution_over_the_19_classes():
    shares = cityscapes_reference_shares()
    assert shares.shape == (19,) and shares.sum() == pytest.approx(1.0)
    assert CLASS_NAMES[int(np.argmax(shares))] == "road"


# ----------------------------------------------------------------------------- the command, end to end

def test_analyze_counts_a_hand_made_split_exactly(tiny_run):
    report = tiny_run["report"]
    rows = {row["class"]: row for row in report["classes"]}
    labelled = sum(pixels for pixels, _, _ in EXPECTED.values())
    assert labelled == 3 * H * W - W  # every pixel but the ignored row
    assert report["images"] == 3 and report["image_sizes"] == {f"{H}x{W}": 3}
    assert report["labelled_pixels"] == labelled
    for name, row in rows.items():
        pixels, present, areas = EXPECTED.get(name, (0, 0, []))
        assert row["pixels"] == pixels, name
        assert row["pixel_share"] == pytest.approx(pixels / labelled), name
        assert row["images_present"] == present and row["presence"] == pytest.approx(present / 3), name
        assert row["objects"] == len(areas), name
        if areas:
            assert row["median_area"] == pytest.approx(np.median(areas) / (H * W)), name
    assert rows["car"]["objects"] == 3  # two blobs in A, one (diagonally joined) in C

    pixels = np.concatenate([im.reshape(-1, 3) for im in tiny_run["images"]]) / 255.0
    np.testing.assert_allclose(report["rgb_mean"], pixels.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(report["rgb_std"], pixels.std(axis=0), rtol=1e-9)


def test_analyze_writes_the_report_the_numbers_and_the_figures(tiny_run):
    out, report = tiny_run["out"], tiny_run["report"]
    for png in FIGURES.values():
        image = cv2.imread(str(out / png))
        assert image is not None and image.shape[0] > 100, png
    assert json.loads((out / STATS_FILE).read_text())["classes"] == report["classes"]
    text = (out / REPORT_FILE).read_text()
    car = next(row for row in report["classes"] if row["class"] == "car")
    assert f"| car | {100 * car['pixel_share']:.3g} | {100 * car['cityscapes_share']:.3g} | 66.7 | 3 | " in text
    assert "m-birke/automotive-segmentation-datasets" in text  # the reference's source
    assert "system.loss.class_weighting=median" in text and "counted and cached in" in text


def test_class_weights_are_the_losss_and_their_counts_are_cached_where_training_reads_them(tiny_run):
    report = tiny_run["report"]
    saved = json.loads((tiny_run["out"] / WEIGHTS_FILE).read_text())["schemes"]
    assert set(saved) == {"inverse", "median", "enet"}
    for scheme, weights in saved.items():
        np.testing.assert_allclose(list(weights.values()), class_weights(report["class_statistics"], scheme))
    assert saved["median"]["wall"] == 0.0  # absent classes get no weight

    # Training's class weighting reads the train split through class_statistics with dataset.stats_cache_dir:
    # it must find the counts without reading a single mask.
    datamodule = build(tiny_run["cfg"].dataset)
    folder = datamodule.dataset(split="train", transform=None)
    folder.load_mask = lambda i: pytest.fail("class statistics were counted again instead of read from the cache")
    assert class_statistics(folder, 19, datamodule.stats_cache_dir) == report["class_statistics"]


def test_bdd100k_has_no_cityscapes_column_and_cached_counts_are_read(tmp_path):
    written = write_bdd_tree(tmp_path / "bdd", n=2)
    cfg = analyze_cfg(tmp_path, "dataset=bdd100k", f"dataset.root={tmp_path / 'bdd'}")
    datamodule = build(cfg.dataset)
    cached = class_statistics(datamodule.dataset(split="train", transform=None), 19, datamodule.stats_cache_dir)
    report = analyze(cfg)
    assert report["stats_from_cache"] is True and report["class_statistics"] == cached
    masks = [mask for _, _, mask in written]
    share, _ = class_shares(report["class_statistics"])
    assert report["cityscapes_reference"] is None and "cityscapes_share" not in report["classes"][0]
    assert report["labelled_pixels"] == sum(int((m < 19).sum()) for m in masks)
    assert [row["pixel_share"] for row in report["classes"]] == share.tolist()
    text = (tmp_path / "run" / REPORT_FILE).read_text()
    assert "Cityscapes" not in text and "were read from" in text


# ----------------------------------------------------------------------------- errors in one line

@pytest.mark.parametrize("root, split, expected", [
    ("cityscapes", "trian", ["split=trian does not exist", "its splits are train, val"]),
    ("/nonexistent/cityscapes", "train", ["/nonexistent/cityscapes does not exist", "dataset.root"]),
])
def test_bad_input_is_one_line_saying_what_to_fix(tmp_path, capsys, monkeypatch, root, split, expected):
    write_tiny_tree(tmp_path / "cityscapes")
    cfg = analyze_cfg(tmp_path, "dataset=cityscapes", f"dataset.root={tmp_path / root}", f"split={split}")
    monkeypatch.delenv("SEGKD_DEBUG", raising=False)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(SystemExit) as exit_info, errors_in_one_line():
        analyze(cfg)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 1 and len(err.splitlines()) == 1 and err.startswith("segkd: error: "), err
    assert all(part in err for part in expected), err
