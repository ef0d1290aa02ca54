"""The random street all painters agree on: camera, the cross-section of each side (kerb, sidewalk,
verge, boundary, building line), lanes, tram rails, crossing and weather.

Why it exists: it is sampled once per image before anything is painted, so the background and the
objects are placed consistently; it holds data and sampling only, no drawing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from segkd.data.synthstreets.canvas import Camera
from segkd.data.synthstreets.palette import pick


@dataclass
class Side:
    """One side of the street, described by distances from the camera axis (metres)."""

    s: int  # -1 left, +1 right
    kind: str  # "urban" | "park" | "open"
    kerb: float
    walk: float
    verge: float
    boundary: str  # "none" | "wall" | "fence" | "hedge"
    bz: tuple[float, float]
    facade: float  # building line (inf: no buildings along this side)
    parking: bool
    trees: bool
    light: float  # sun/shade factor for vertical surfaces on this side

    @property
    def walk_out(self) -> float:
        return self.kerb + self.walk

    @property
    def bound(self) -> float:
        return self.walk_out + self.verge


@dataclass
class Layout:
    """Everything the painters need to agree on: camera, street cross-section, lanes, weather."""

    cam: Camera
    h: int
    w: int
    z_near: float
    z_far: float
    sides: tuple[Side, Side]
    lane_w: float
    lanes: list[tuple[float, bool]]  # (centre X, oncoming)
    centre_line: float | None
    tram_x: float | None
    crossing: tuple[float, float] | None
    sunny: bool
    kerb_h: float = 0.12


def _sample_side(rng: np.random.Generator, s: int, kerb: float, parking: bool, lay_far: float, z_near: float) -> Side:
    """Random cross-section of one side: sidewalk, optional verge and boundary, building line."""
    kind = pick(rng, ("urban",) * 13 + ("park",) * 4 + ("open",) * 3)
    walk = rng.uniform(2.2, 5.0) if kind == "urban" else rng.uniform(1.8, 3.5)
    verge = 0.0
    if rng.random() < {"urban": 0.35, "park": 0.7, "open": 0.8}[kind]:
        verge = rng.uniform(0.8, 3.5) if kind == "urban" else rng.uniform(1.0, 5.0)
    p_bound = {"urban": (0.55, 0.15, 0.18, 0.12), "park": (0.3, 0.2, 0.35, 0.15), "open": (0.2, 0.3, 0.35, 0.15)}[kind]
    boundary = ("none", "wall", "fence", "hedge")[int(rng.choice(4, p=p_bound))]
    bound = kerb + walk + verge
    if kind == "urban":
        facade = bound + (0.0 if rng.random() < 0.6 else rng.uniform(1.0, 6.0))
        if boundary != "none" and facade - bound < 1.0:
            facade = bound + rng.uniform(1.5, 5.0)
    elif kind == "park":
        facade = bound + rng.uniform(18, 40) if rng.random() < 0.4 else math.inf
    else:
        facade = bound + rng.uniform(25, 60) if rng.random() < 0.3 else math.inf
    z0 = rng.uniform(z_near, 20.0)
    bz = (z0, min(lay_far, z0 + rng.uniform(12, 70)))
    trees = rng.random() < {"urban": 0.45, "park": 1.0, "open": 0.5}[kind]
    return Side(s, kind, kerb, walk, verge, boundary, bz, facade, parking, trees, 1.0)


def sample_layout(rng: np.random.Generator, h: int, w: int) -> Layout:
    """Camera (horizon height, vanishing point, focal length) and the street's cross-section."""
    f = w * rng.uniform(0.95, 1.2)
    cy = h * rng.uniform(0.36, 0.5)
    cam = Camera(f=f, cx=w * rng.uniform(0.38, 0.62), cy=cy, height=rng.uniform(1.3, 1.65))
    z_near = 0.7 * f * cam.height / (h - cy)  # everything drawn from here on covers the bottom row
    z_far = rng.uniform(55, 140)
    lane_w = rng.uniform(2.9, 3.5)
    n_left = int(rng.choice(4, p=(0.15, 0.45, 0.3, 0.1)))
    n_right = 1 if rng.random() < 0.15 else 0
    park_l, park_r = rng.random() < 0.25, rng.random() < 0.35
    kerb_r = lane_w / 2 + n_right * lane_w + (2.2 if park_r else rng.uniform(0.2, 0.8))
    kerb_l = lane_w / 2 + n_left * lane_w + (2.2 if park_l else rng.uniform(0.2, 0.8))
    lanes = [(0.0, False)] + [(k * lane_w, False) for k in range(1, n_right + 1)]
    lanes += [(-k * lane_w, k > n_left // 2) for k in range(1, n_left + 1)]
    centre = None
    if n_left >= 1:
        centre = -(n_left // 2) * lane_w - lane_w / 2
    tram_x = None
    if rng.random() < 0.17:
        tram_x = pick(rng, [x for x, _ in lanes if x <= 0])
    crossing = (rng.uniform(8, 30), rng.uniform(3.0, 4.5)) if rng.random() < 0.2 else None
    sides = (_sample_side(rng, -1, kerb_l, park_l, z_far, z_near), _sample_side(rng, 1, kerb_r, park_r, z_far, z_near))
    sunny = rng.random() < 0.6
    if sunny:
        lit = int(rng.integers(2))
        sides[lit].light = rng.uniform(1.0, 1.12)
        sides[1 - lit].light = rng.uniform(0.68, 0.85)
    else:
        for side in sides:
            side.light = rng.uniform(0.88, 1.0)
    return Layout(cam, h, w, z_near, z_far, sides, lane_w, lanes, centre, tram_x, crossing, sunny)
