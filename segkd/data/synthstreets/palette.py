"""What SynthStreets paints with: the raw Cityscapes ids every fill is labelled with, and the
photographic colours, with the random picks and per-instance jitter applied to them.

Why it exists: painters in several modules share one vocabulary, and the label ids (raw ids, never
train ids) are defined in exactly one place.
"""

from __future__ import annotations

import numpy as np

from segkd.data.labels import ID_BY_NAME

# Raw Cityscapes ids (never train ids: the loader must do the mapping).
ROAD, SIDEWALK, BUILDING, WALL, FENCE = (ID_BY_NAME[n] for n in ("road", "sidewalk", "building", "wall", "fence"))
POLE, LIGHT, SIGN = ID_BY_NAME["pole"], ID_BY_NAME["traffic light"], ID_BY_NAME["traffic sign"]
VEGETATION, TERRAIN, SKY = ID_BY_NAME["vegetation"], ID_BY_NAME["terrain"], ID_BY_NAME["sky"]
PERSON, RIDER, CAR, TRUCK, BUS = (ID_BY_NAME[n] for n in ("person", "rider", "car", "truck", "bus"))
TRAIN, MOTORCYCLE, BICYCLE = ID_BY_NAME["train"], ID_BY_NAME["motorcycle"], ID_BY_NAME["bicycle"]
EGO, BORDER = ID_BY_NAME["ego vehicle"], ID_BY_NAME["rectification border"]
STATIC, DYNAMIC, GROUND = ID_BY_NAME["static"], ID_BY_NAME["dynamic"], ID_BY_NAME["ground"]


def pick(rng: np.random.Generator, seq):
    """Uniform choice from a sequence (rng.choice would turn tuples of colours into arrays)."""
    return seq[int(rng.integers(len(seq)))]


def jitter(rng: np.random.Generator, rgb, amount: float = 10.0) -> np.ndarray:
    """Per-instance colour: shared brightness shift plus a per-channel one (plain Python: it is hot)."""
    dr, dg, db, d = rng.normal(0, amount, 4).tolist()
    r, g, b = rgb
    return np.array([min(255.0, max(0.0, c + dc + d)) for c, dc in ((r, dr), (g, dg), (b, db))])


# photographic colours (deliberately not the Cityscapes palette)
BUILDING_RGB = ((196, 182, 158), (214, 204, 182), (150, 148, 144), (148, 88, 68), (206, 190, 142),
                (200, 172, 160), (222, 220, 212), (106, 104, 106), (176, 150, 114), (170, 176, 170), (128, 112, 98))
CAR_RGB = ((232, 232, 228), (190, 192, 195), (120, 122, 126), (28, 28, 32), (34, 44, 76), (150, 32, 30),
           (66, 76, 92), (196, 186, 160), (42, 62, 48), (26, 68, 140), (90, 92, 96))
CLOTH_RGB = ((30, 32, 40), (52, 54, 60), (92, 92, 96), (40, 52, 84), (182, 170, 150), (112, 40, 46),
             (72, 82, 60), (205, 205, 205), (62, 82, 124), (142, 102, 72), (160, 60, 40), (30, 70, 60))
SKIN_RGB = ((228, 192, 164), (206, 166, 136), (166, 120, 92), (112, 80, 60))
HAIR_RGB = ((30, 24, 20), (72, 52, 36), (150, 122, 82), (122, 122, 122), (196, 176, 128))
LEAF_RGB = ((52, 74, 38), (64, 88, 44), (44, 62, 40), (76, 96, 52), (58, 70, 34))
TRUCK_CAB_RGB = ((230, 230, 226), (160, 30, 30), (30, 60, 130), (200, 200, 200), (60, 90, 60))
TRUCK_BOX_RGB = ((225, 225, 222), (200, 200, 200), (140, 140, 140), (40, 80, 140), (190, 160, 60))
BUS_RGB = ((232, 230, 222), (226, 196, 40), (180, 36, 36), (40, 90, 160), (220, 220, 210))
BIKE_RGB = ((30, 30, 34), (160, 30, 30), (40, 70, 140), (200, 200, 200), (60, 100, 60))
