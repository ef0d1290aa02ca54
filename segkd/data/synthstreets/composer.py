"""Composes one scene: samples the layout, paints the background, plans what stands where, paints
the objects far to near, adds the frame effects, then renders colours and labels.

Why it exists: the painting order, and so the order in which every step draws from the image's one
random generator, is fixed here; it defines every image, so change it only with ``GENERATOR_VERSION``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from segkd.data.synthstreets.background import paint_backdrop, paint_boundary, paint_facades, paint_ground, paint_sky
from segkd.data.synthstreets.canvas import Canvas, textures
from segkd.data.synthstreets.effects import cast_shadow, paint_border, paint_ego_hood, photometric
from segkd.data.synthstreets.layout import Layout, Side, sample_layout
from segkd.data.synthstreets.objects import (
    paint_bus,
    paint_bush,
    paint_car,
    paint_furniture,
    paint_person,
    paint_pole,
    paint_tram,
    paint_tree,
    paint_truck,
    paint_two_wheeler,
)
from segkd.data.synthstreets.palette import pick


def _sidewalk_x(rng, side: Side, margin: float = 0.4) -> float:
    """A lateral position on one side's sidewalk."""
    return side.s * rng.uniform(side.kerb + margin, max(side.kerb + margin + 0.05, side.walk_out - margin))


def _depth(rng, lay: Layout, lo: float = 0.0, scale: float = 18.0, hi: float | None = None) -> float:
    """A depth biased towards the camera (near objects are the ones that matter), clipped to the scene."""
    hi = lay.z_far - 5 if hi is None else hi
    return float(min(hi, lay.z_near + lo + rng.exponential(scale)))


def _plan_objects(rng, lay: Layout, cv: Canvas) -> list[tuple[float, Callable[[], None]]]:
    """Decide what stands where; returns (depth key, painter) pairs to be painted far to near."""
    items: list[tuple[float, Callable[[], None]]] = []

    def add(z: float, fn: Callable[[], None]) -> None:
        items.append((z, fn))

    # ---- trees and bushes
    for side in lay.sides:
        s = side.s
        if side.kind == "park":
            for _ in range(int(rng.integers(5, 13))):
                X, Z = s * rng.uniform(side.bound + 0.5, side.bound + 25), rng.uniform(lay.z_near, lay.z_far)
                add(Z, lambda X=X, Z=Z: paint_tree(cv, rng, X, Z))
        if side.trees:
            x = side.walk_out - rng.uniform(0.6, 1.0) if side.verge < 1.2 else side.walk_out + side.verge / 2
            spacing = rng.uniform(7, 15)
            for Z in np.arange(rng.uniform(lay.z_near - 2, lay.z_near + 8), min(lay.z_far, 100), spacing):
                if rng.random() < 0.85:
                    add(Z, lambda X=s * x, Z=Z: paint_tree(cv, rng, X, Z, small=side.kind == "open"))
        if side.verge > 0 and rng.random() < 0.4:
            for _ in range(int(rng.integers(1, 4))):
                Z = _depth(rng, lay, 2)
                add(Z, lambda X=s * (side.walk_out + side.verge / 2), Z=Z: paint_bush(cv, rng, X, Z))

    # ---- poles with lamps, lights and signs
    for _ in range(2 + int(rng.poisson(2.0))):
        side = pick(rng, lay.sides)
        X = side.s * (side.kerb + rng.uniform(0.3, 0.8))
        Z = _depth(rng, lay, 1, 20, 70)
        kind = pick(rng, ("lamp", "lamp", "light", "light", "sign", "sign", "sign"))
        add(Z, lambda X=X, Z=Z, kind=kind, s=side.s: paint_pole(cv, rng, X, Z, kind, -s))

    # ---- vehicles in lanes (rare classes inserted into random slots)
    lane_plans = {x: [] for x, _ in lay.lanes}
    for x, _ in lay.lanes:
        if rng.random() < 0.5:
            lane_plans[x] = ["car"] * (1 + int(rng.poisson(0.6)))
    for kind, p in (("truck", 0.1), ("bus", 0.13), ("motorcycle", 0.15)):
        if rng.random() < p:
            x = pick(rng, [x for x, _ in lay.lanes])
            lane_plans[x].insert(int(rng.integers(len(lane_plans[x]) + 1)), kind)
    oncoming_of = dict(lay.lanes)
    tram_z = None
    if lay.tram_x is not None and rng.random() < 0.75:  # otherwise: rails without a tram
        tram_z = rng.uniform(12, 45)  # vehicles in the tram's lane stop before it
    lengths = {"car": 4.5, "truck": 10.5, "bus": 12.5, "motorcycle": 2.0}
    for x, plan in lane_plans.items():
        z = rng.uniform(10, 25) + (0 if x != 0 else 2)
        oncoming = oncoming_of[x]
        for kind in plan:
            if z > lay.z_far - 5:
                break
            if tram_z is not None and x == lay.tram_x and z + lengths[kind] > tram_z:
                break
            X = x + rng.uniform(-0.35, 0.35)
            if kind == "car":
                add(z, lambda X=X, Z=z, o=oncoming: paint_car(cv, rng, lay, X, Z, o))
            elif kind == "truck":
                add(z, lambda X=X, Z=z, o=oncoming: paint_truck(cv, rng, lay, X, Z, o))
            elif kind == "bus":
                add(z, lambda X=X, Z=z, o=oncoming: paint_bus(cv, rng, lay, X, Z, o))
            else:
                hd = rng.uniform(0.9, 1.25) * (1 if rng.random() < 0.5 else -1)
                add(z, lambda X=X, Z=z, hd=hd: paint_two_wheeler(cv, rng, X, Z, hd, 1, True, True))
            z += lengths[kind] + rng.uniform(4, 22)
    if tram_z is not None:
        add(tram_z, lambda Z=tram_z: paint_tram(cv, rng, lay, lay.tram_x, Z))

    # ---- parked cars along the kerb
    for side in lay.sides:
        if not side.parking:
            continue
        X = side.s * (side.kerb - 1.05)
        z = max(1.0, rng.uniform(lay.z_near - 3, lay.z_near + 6))
        while z < min(lay.z_far - 5, 70):
            if rng.random() < 0.5:
                if rng.random() < 0.015:
                    add(z, lambda X=X, Z=z: paint_truck(cv, rng, lay, X, Z, False))
                    z += 10.0
                else:
                    x, front = X + rng.normal(0, 0.1), rng.random() < 0.3
                    add(z, lambda X=x, Z=z, o=front: paint_car(cv, rng, lay, X, Z, o))
                    z += 4.7
            z += rng.uniform(0.6, 3.0) if rng.random() < 0.8 else rng.uniform(5, 15)

    # ---- pedestrians
    if rng.random() < 0.75:
        for _ in range(1 + int(rng.poisson(2.5))):
            height = rng.uniform(1.55, 1.95) if rng.random() < 0.88 else rng.uniform(1.05, 1.4)
            direction = 1 if rng.random() < 0.5 else -1
            if lay.crossing is not None and rng.random() < 0.3:
                zc, wc = lay.crossing
                X, Z, profile = rng.uniform(-lay.sides[0].kerb, lay.sides[1].kerb), zc + rng.uniform(0, wc), True
            else:
                side = pick(rng, lay.sides)
                X, Z, profile = _sidewalk_x(rng, side), _depth(rng, lay, 1, 13), rng.random() < 0.35
            add(Z, lambda X=X, Z=Z, p=profile, d=direction, hh=height: paint_person(cv, rng, X, Z, p, d, hh))

    # ---- riders on bicycles, parked bicycles and motorcycles
    if rng.random() < 0.28:
        for _ in range(1 + int(rng.random() < 0.3)):
            side = lay.sides[1] if rng.random() < 0.7 else lay.sides[0]
            X = side.s * (side.kerb - rng.uniform(0.4, 1.2)) if rng.random() < 0.6 else _sidewalk_x(rng, side)
            Z = _depth(rng, lay, 2, 15)
            hd = rng.uniform(-0.9, 0.9)
            d = 1 if rng.random() < 0.5 else -1
            add(Z, lambda X=X, Z=Z, hd=hd, d=d: paint_two_wheeler(cv, rng, X, Z, hd, d, False, True))
    if rng.random() < 0.3:
        side = pick(rng, lay.sides)
        X0, Z0 = side.s * (side.walk_out - 0.6), _depth(rng, lay, 1, 12)
        hd = rng.uniform(-0.5, 0.5) if rng.random() < 0.5 else rng.uniform(1.1, 1.4)
        for k in range(int(rng.integers(1, 5))):  # a row of parked bicycles
            Z = Z0 + 0.7 * k
            add(Z, lambda X=X0, Z=Z, hd=hd: paint_two_wheeler(cv, rng, X, Z, hd, 1, False, False))
    if rng.random() < 0.05:
        side = pick(rng, lay.sides)
        X, Z = _sidewalk_x(rng, side), _depth(rng, lay, 1, 12)
        add(Z, lambda X=X, Z=Z: paint_two_wheeler(cv, rng, X, Z, rng.uniform(-0.6, 0.6), 1, True, False))

    # ---- street furniture (ignored classes)
    if rng.random() < 0.45:
        for _ in range(int(rng.integers(1, 4))):
            side = pick(rng, lay.sides)
            X, Z = side.s * (side.walk_out - rng.uniform(0.4, 0.9)), _depth(rng, lay, 1, 20)
            add(Z, lambda X=X, Z=Z: paint_furniture(cv, rng, lay, X, Z, False))
    if rng.random() < 0.12:
        side = pick(rng, lay.sides)
        X, Z = _sidewalk_x(rng, side), _depth(rng, lay, 1, 15)
        add(Z, lambda X=X, Z=Z: paint_furniture(cv, rng, lay, X, Z, True))
    return items


def compose_scene(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Lay out a street, paint it back to front, render colours, apply camera effects."""
    lay = sample_layout(rng, h, w)
    cv = Canvas(h, w, lay.cam)
    tex = textures(rng, h, w, lay.cam.cy)
    paint_sky(cv, rng, lay)
    paint_backdrop(cv, rng, lay)
    paint_ground(cv, rng, lay)
    for side in lay.sides:
        paint_facades(cv, rng, lay, side)
    for side in lay.sides:
        paint_boundary(cv, rng, lay, side)
    items = _plan_objects(rng, lay, cv)
    for k in sorted(range(len(items)), key=lambda k: (-items[k][0], k)):  # far to near: near occludes far
        items[k][1]()
    if lay.sunny and rng.random() < 0.8:
        cast_shadow(cv, rng, lay)
    if rng.random() < 0.35:
        paint_ego_hood(cv, rng)
    if rng.random() < 0.25:
        paint_border(cv, rng)
    rgb = photometric(rng, cv.render(tex))
    return rgb, cv.labels()
