"""The Cityscapes label table, and the lookups every loader and writer shares.

A private copy rather than an import of ``cityscapesscripts``: the runtime must not depend on a
test-only package, and the tests check this table against the official one entry by entry.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

IGNORE_INDEX = 255


class Label(NamedTuple):
    name: str
    id: int  # raw id as stored in *_gtFine_labelIds.png
    train_id: int  # 0..18, or 255 (ignored in training and evaluation)
    category: str
    color: tuple[int, int, int]


# fmt: off
LABELS: tuple[Label, ...] = (
    Label("unlabeled",             0, 255, "void",         (0, 0, 0)),
    Label("ego vehicle",           1, 255, "void",         (0, 0, 0)),
    Label("rectification border",  2, 255, "void",         (0, 0, 0)),
    Label("out of roi",            3, 255, "void",         (0, 0, 0)),
    Label("static",                4, 255, "void",         (0, 0, 0)),
    Label("dynamic",               5, 255, "void",         (111, 74, 0)),
    Label("ground",                6, 255, "void",         (81, 0, 81)),
    Label("road",                  7, 0,   "flat",         (128, 64, 128)),
    Label("sidewalk",              8, 1,   "flat",         (244, 35, 232)),
    Label("parking",               9, 255, "flat",         (250, 170, 160)),
    Label("rail track",           10, 255, "flat",         (230, 150, 140)),
    Label("building",             11, 2,   "construction", (70, 70, 70)),
    Label("wall",                 12, 3,   "construction", (102, 102, 156)),
    Label("fence",                13, 4,   "construction", (190, 153, 153)),
    Label("guard rail",           14, 255, "construction", (180, 165, 180)),
    Label("bridge",               15, 255, "construction", (150, 100, 100)),
    Label("tunnel",               16, 255, "construction", (150, 120, 90)),
    Label("pole",                 17, 5,   "object",       (153, 153, 153)),
    Label("polegroup",            18, 255, "object",       (153, 153, 153)),
    Label("traffic light",        19, 6,   "object",       (250, 170, 30)),
    Label("traffic sign",         20, 7,   "object",       (220, 220, 0)),
    Label("vegetation",           21, 8,   "nature",       (107, 142, 35)),
    Label("terrain",              22, 9,   "nature",       (152, 251, 152)),
    Label("sky",                  23, 10,  "sky",          (70, 130, 180)),
    Label("person",               24, 11,  "human",        (220, 20, 60)),
    Label("rider",                25, 12,  "human",        (255, 0, 0)),
    Label("car",                  26, 13,  "vehicle",      (0, 0, 142)),
    Label("truck",                27, 14,  "vehicle",      (0, 0, 70)),
    Label("bus",                  28, 15,  "vehicle",      (0, 60, 100)),
    Label("caravan",              29, 255, "vehicle",      (0, 0, 90)),
    Label("trailer",              30, 255, "vehicle",      (0, 0, 110)),
    Label("train",                31, 16,  "vehicle",      (0, 80, 100)),
    Label("motorcycle",           32, 17,  "vehicle",      (0, 0, 230)),
    Label("bicycle",              33, 18,  "vehicle",      (119, 11, 32)),
    Label("license plate",        -1, -1,  "vehicle",      (0, 0, 142)),
)
# fmt: on

NUM_CLASSES = 19
ID_BY_NAME = {label.name: label.id for label in LABELS}
#: The 19 evaluated classes in train-id order (BDD100K uses the same list and order).
CLASS_NAMES: tuple[str, ...] = tuple(
    label.name for label in sorted((lb for lb in LABELS if 0 <= lb.train_id < IGNORE_INDEX), key=lambda lb: lb.train_id)
)
#: RGB colour of each train id, for overlays and palettes.
TRAIN_ID_COLORS: tuple[tuple[int, int, int], ...] = tuple(
    next(lb.color for lb in LABELS if lb.train_id == t) for t in range(NUM_CLASSES)
)

#: Raw label id -> train id. Entries for byte values that are not label ids hold UNKNOWN_ID, so a
#: loader can tell a corrupt or foreign label file from a legitimately ignored pixel.
UNKNOWN_ID = -1
RAW_TO_TRAIN = np.full(256, UNKNOWN_ID, dtype=np.int16)
for _label in LABELS:
    if _label.id >= 0:
        RAW_TO_TRAIN[_label.id] = _label.train_id


#: Train id -> label id, for predictions in the Cityscapes benchmark format (``*_pred_labelIds.png``).
#: The ignore value maps to 0 (``unlabeled``); a network never predicts it.
TRAIN_TO_ID = np.zeros(256, dtype=np.uint8)
for _label in LABELS:
    if 0 <= _label.train_id < IGNORE_INDEX:
        TRAIN_TO_ID[_label.train_id] = _label.id

#: The Cityscapes categories that hold evaluated classes, in the official order (``void`` holds none).
CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(lb.category for lb in LABELS if 0 <= lb.train_id < IGNORE_INDEX))
#: The category of each of the 19 classes, in train-id order: folding a class confusion matrix by
#: this gives the official category IoU (segkd.metrics.segmentation.fold_confmat).
CLASS_CATEGORIES: tuple[str, ...] = tuple(
    next(lb.category for lb in LABELS if lb.train_id == t) for t in range(NUM_CLASSES)
)
