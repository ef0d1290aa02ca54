"""SynthStreets: layout, determinism, label validity, class coverage and imbalance, cache handling.

The generator is the project's default dataset, read back by the real Cityscapes loader, so these
tests pin the contract that loader and the training runs rely on.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

import segkd.data.synthstreets as ss
import segkd.data.synthstreets.api as synth_api  # where the writer looks its helpers up
from segkd.data.labels import CLASS_NAMES, ID_BY_NAME, IGNORE_INDEX, LABELS, RAW_TO_TRAIN
from segkd.data.synthstreets import (
    GENERATOR_VERSION,
    MANIFEST_NAME,
    TRAIN_CITIES,
    VAL_CITIES,
    ensure_synthstreets,
    generate_synthstreets,
    render_synthstreets_image,
)

VALID_RAW_IDS = {lb.id for lb in LABELS if lb.id >= 0}
STEM = re.compile(r"^(?P<city>[a-z]+)_(?P<seq>\d{6})_(?P<frame>\d{6})$")
TRAIN_ID = {name: k for k, name in enumerate(CLASS_NAMES)}

# one dataset big enough for class statistics, shared by the read-only tests
BIG = dict(num_train=60, num_val=5, height=128, width=256, seed=0)
# tiny datasets for the tests that generate several times
TINY = dict(num_train=6, num_val=2, height=64, width=128, seed=0)


@pytest.fixture(scope="module")
def big_root(tmp_path_factory) -> Path:
    return generate_synthstreets(tmp_path_factory.mktemp("synth") / "big", **BIG)


def pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    images = sorted((root / "leftImg8bit" / split).glob("*/*_leftImg8bit.png"))
    out = []
    for image in images:
        stem = image.name[: -len("_leftImg8bit.png")]
        out.append((image, root / "gtFine" / split / image.parent.name / f"{stem}_gtFine_labelIds.png"))
    return out


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert bgr is not None and bgr.ndim == 3 and bgr.shape[2] == 3, f"{path} is not a 3-channel image"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_label(path: Path) -> np.ndarray:
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert label is not None, f"{path} is unreadable"
    return label


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def train_id_counts(root: Path, split: str = "train") -> np.ndarray:
    counts = np.zeros(256, np.int64)
    for _, label_path in pairs(root, split):
        counts += np.bincount(RAW_TO_TRAIN[read_label(label_path)].astype(np.int64).ravel() % 256, minlength=256)
    return counts


# ------------------------------------------------------------------------------------------ layout


def test_layout_follows_cityscapes(big_root):
    for split, count, cities in (("train", BIG["num_train"], TRAIN_CITIES), ("val", BIG["num_val"], VAL_CITIES)):
        found = pairs(big_root, split)
        assert len(found) == count
        assert {image.parent.name for image, _ in found} <= set(cities)
        label_files = sorted((big_root / "gtFine" / split).glob("*/*.png"))
        assert len(label_files) == count, "exactly one label file per image"
        for image, label_path in found:
            stem = image.name[: -len("_leftImg8bit.png")]
            match = STEM.match(stem)
            assert match and match["city"] == image.parent.name, stem
            assert label_path.is_file()
            rgb, label = read_rgb(image), read_label(label_path)
            assert rgb.dtype == np.uint8 and rgb.shape == (BIG["height"], BIG["width"], 3)
            assert label.dtype == np.uint8 and label.shape == (BIG["height"], BIG["width"])
    assert not list(big_root.rglob("*labelTrainIds*")), "the loader must exercise the raw-id mapping"
    assert set(TRAIN_CITIES).isdisjoint(VAL_CITIES)
    manifest = json.loads((big_root / MANIFEST_NAME).read_text())
    files = manifest.pop("files")
    assert manifest == {**BIG, "version": GENERATOR_VERSION}
    assert len(files) == 2 * (BIG["num_train"] + BIG["num_val"])
    assert all(files[str(p.relative_to(big_root))] == p.stat().st_size for p in big_root.rglob("*.png"))


def test_files_are_rgb_not_bgr(big_root):
    """Sky must come out blue and vegetation green once read back as RGB (cv2 writes BGR)."""
    sums = {name: np.zeros(3) for name in ("sky", "vegetation")}
    city, stem = ss.image_stem("train", 0)
    image = big_root / "leftImg8bit" / "train" / city / f"{stem}_leftImg8bit.png"
    label_path = big_root / "gtFine" / "train" / city / f"{stem}_gtFine_labelIds.png"
    expected_rgb, expected_label = render_synthstreets_image(BIG["seed"], "train", 0, BIG["height"], BIG["width"])
    np.testing.assert_array_equal(read_rgb(image), expected_rgb)
    np.testing.assert_array_equal(read_label(label_path), expected_label)
    for image, label_path in pairs(big_root, "train")[:20]:
        rgb, label = read_rgb(image), read_label(label_path)
        for name in sums:
            sums[name] += rgb[label == ID_BY_NAME[name]].sum(0)
    r, g, b = sums["sky"]
    assert b > r, "sky is not blue: channels swapped?"
    r, g, b = sums["vegetation"]
    assert g > b and g > r


def test_real_cityscapes_loader_reads_it(big_root):
    from segkd.data.datasets import CityscapesDataset

    dataset = CityscapesDataset(big_root, "val")
    assert len(dataset) == BIG["num_val"]
    image, mask = dataset.load(0)
    assert image.shape == (BIG["height"], BIG["width"], 3)
    assert set(np.unique(mask).tolist()) <= set(range(19)) | {IGNORE_INDEX}


# ------------------------------------------------------------------------------------------ determinism


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    a = all_files(generate_synthstreets(tmp_path / "a", **TINY))
    b = all_files(generate_synthstreets(tmp_path / "b", **TINY))
    assert a.keys() == b.keys() and len(a) == 2 * (TINY["num_train"] + TINY["num_val"]) + 1
    assert a == b
    c = all_files(generate_synthstreets(tmp_path / "c", **{**TINY, "seed": 1}))
    images = [k for k in a if k.endswith("_leftImg8bit.png")]
    assert images and all(a[k] != c[k] for k in images)


def test_small_dataset_is_a_prefix_of_a_larger_one(tmp_path):
    small = all_files(generate_synthstreets(tmp_path / "small", **{**TINY, "num_train": 5, "num_val": 1}))
    large = all_files(generate_synthstreets(tmp_path / "large", **{**TINY, "num_train": 10, "num_val": 3}))
    shared = [k for k in small if k != MANIFEST_NAME]
    assert len(shared) == 2 * (5 + 1)
    for key in shared:
        assert small[key] == large[key], key
    assert len(large) - 1 == 2 * (10 + 3)


# ------------------------------------------------------------------------------------------ labels


def test_labels_are_valid_raw_ids_with_some_ignored(big_root):
    counts = np.zeros(256, np.int64)
    for split in ("train", "val"):
        for _, label_path in pairs(big_root, split):
            counts += np.bincount(read_label(label_path).ravel(), minlength=256)
    used = set(np.flatnonzero(counts).tolist())
    assert used <= VALID_RAW_IDS, f"not Cityscapes raw ids: {sorted(used - VALID_RAW_IDS)}"
    train_ids = RAW_TO_TRAIN[sorted(used)]
    assert set(train_ids.tolist()) <= set(range(19)) | {IGNORE_INDEX}
    ignored = sum(counts[i] for i in used if RAW_TO_TRAIN[i] == IGNORE_INDEX) / counts.sum()
    assert 0 < ignored < 0.10, f"ignored fraction {ignored:.3f}"
    # the ignored pixels come from raw ids such as ego vehicle, as in Cityscapes (not painted 255)
    assert counts[255] == 0 and counts[ID_BY_NAME["ego vehicle"]] > 0


def test_all_19_classes_appear_in_train(big_root):
    counts = train_id_counts(big_root)
    missing = [CLASS_NAMES[k] for k in range(19) if counts[k] == 0]
    assert not missing, f"classes never painted in {BIG['num_train']} train images: {missing}"


def test_class_imbalance_is_cityscapes_like(big_root):
    counts = train_id_counts(big_root)[:19].astype(float)
    freq = counts / counts.sum()
    assert freq.argmax() == TRAIN_ID["road"]
    frequent = ("road", "building", "vegetation", "sky")
    rare = ("pole", "traffic sign", "traffic light", "rider", "bicycle")
    for big in frequent:
        for small in rare:
            assert freq[TRAIN_ID[big]] > freq[TRAIN_ID[small]], (big, small, freq[TRAIN_ID[big]], freq[TRAIN_ID[small]])
    for name in ("rider", "bicycle"):
        assert freq[TRAIN_ID[name]] < 0.02, (name, freq[TRAIN_ID[name]])
    assert 0.25 < freq[TRAIN_ID["road"]] < 0.45


def test_rare_classes_are_in_some_images_not_most(big_root):
    present = np.zeros(19, np.int64)
    found = pairs(big_root, "train")
    for _, label_path in found:
        train_ids = RAW_TO_TRAIN[read_label(label_path)].astype(np.int64) % 256
        present += np.bincount(train_ids.ravel(), minlength=256)[:19] > 0
    for name in ("train", "bus", "motorcycle", "truck"):
        assert 0 < present[TRAIN_ID[name]] < len(found) / 2, (name, present[TRAIN_ID[name]])
    assert present[TRAIN_ID["road"]] >= len(found) - 1


# ------------------------------------------------------------------------------------------ ensure


@pytest.fixture
def synth_log():
    """INFO records of the generator's logger, captured directly (immune to other tests' logging config)."""
    logger = logging.getLogger("segkd.data.synthstreets")
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append
    saved = logger.level, logger.disabled
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.disabled = False
    yield records
    logger.removeHandler(handler)
    logger.setLevel(saved[0])
    logger.disabled = saved[1]


def test_ensure_generates_once_then_reuses(tmp_path, monkeypatch, synth_log):
    root = tmp_path / "cache" / "synth"
    assert ensure_synthstreets(root, **TINY) == root
    lines = [r.getMessage() for r in synth_log if r.levelno == logging.INFO]
    assert len(lines) == 1 and str(TINY["num_train"]) in lines[0] and " s " in lines[0], lines
    manifest = root / MANIFEST_NAME
    before = manifest.stat().st_mtime_ns, all_files(root)

    def boom(*args, **kwargs):
        raise AssertionError("ensure_synthstreets regenerated an up-to-date dataset")

    monkeypatch.setattr(synth_api, "render_synthstreets_image", boom)
    assert ensure_synthstreets(str(root), **TINY) == root
    assert (manifest.stat().st_mtime_ns, all_files(root)) == before
    assert len([r for r in synth_log if r.levelno == logging.INFO]) == 1, "the reuse must not log a generation"


def test_ensure_refuses_other_parameters_with_a_fix(tmp_path):
    root = ensure_synthstreets(tmp_path / "synth", **TINY)
    with pytest.raises(ValueError, match=r"other parameters.*(delete|choose another root)") as err:
        ensure_synthstreets(root, **{**TINY, "num_train": TINY["num_train"] + 1})
    assert "num_train" in str(err.value)
    manifest = json.loads((root / MANIFEST_NAME).read_text())
    (root / MANIFEST_NAME).write_text(json.dumps({**manifest, "version": GENERATOR_VERSION + 1}))
    with pytest.raises(ValueError, match="version"):
        ensure_synthstreets(root, **TINY)


def test_ensure_refuses_a_foreign_non_empty_dir(tmp_path):
    root = tmp_path / "mine"
    root.mkdir()
    (root / "notes.txt").write_text("not a dataset")
    with pytest.raises(ValueError, match=rf"no {MANIFEST_NAME}.*delete it or choose another root"):
        ensure_synthstreets(root, **TINY)
    assert (root / "notes.txt").read_text() == "not a dataset"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert ensure_synthstreets(empty, **TINY) == empty and (empty / MANIFEST_NAME).is_file()


def test_crash_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    root = tmp_path / "synth"
    real_write = synth_api._write_pair
    written = []

    def crash_after_three(*args, **kwargs):
        if len(written) == 3:
            raise KeyboardInterrupt("simulated crash")
        written.append(args)
        real_write(*args, **kwargs)

    monkeypatch.setattr(synth_api, "_write_pair", crash_after_three)
    with pytest.raises(KeyboardInterrupt):
        ensure_synthstreets(root, **TINY)
    assert not root.exists(), "a half-written dataset must never sit at the final path"
    assert not list(tmp_path.glob(".synth.partial-*")), "the temporary dir is cleaned up on failure"
    monkeypatch.setattr(synth_api, "_write_pair", real_write)
    # a hard kill (no cleanup) leaves a partial sibling behind; it must not break the next run
    leftover = tmp_path / ".synth.partial-deadbeef"
    (leftover / "leftImg8bit" / "train").mkdir(parents=True)
    (leftover / "leftImg8bit" / "train" / "junk.png").write_bytes(b"not a png")
    assert ensure_synthstreets(root, **TINY) == root
    assert len(pairs(root, "train")) == TINY["num_train"] and (root / MANIFEST_NAME).is_file()
    assert not list(root.rglob("junk.png"))


def test_bad_parameters_are_refused(tmp_path):
    with pytest.raises(ValueError, match="num_train"):
        generate_synthstreets(tmp_path / "a", **{**TINY, "num_train": 0})
    with pytest.raises(ValueError, match="32x32"):
        generate_synthstreets(tmp_path / "b", **{**TINY, "height": 16})
    with pytest.raises(TypeError, match="seed"):
        generate_synthstreets(tmp_path / "c", **{**TINY, "seed": 1.5})
    assert not any(tmp_path.iterdir())


def _ensure_in_child(root: str, results) -> None:
    try:
        ensure_synthstreets(root, **TINY)
        results.put("ok")
    except Exception as err:  # reported to the parent, which asserts on it
        results.put(f"{type(err).__name__}: {err}")


def test_three_processes_generating_at_once_leave_one_complete_dataset(tmp_path):
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    root, results = tmp_path / "cache" / "synth", ctx.Queue()
    procs = [ctx.Process(target=_ensure_in_child, args=(str(root), results)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert sorted(results.get(timeout=5) for _ in procs) == ["ok"] * 3
    assert len(pairs(root, "train")) == TINY["num_train"] and len(pairs(root, "val")) == TINY["num_val"]
    assert not list(root.parent.glob(f".{root.name}.*")), "no partial dirs left behind"
    reference = tmp_path / "alone"
    ensure_synthstreets(reference, **TINY)
    assert all_files(root) == all_files(reference), "the same bytes as one writer's"
