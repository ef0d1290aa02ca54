"""Painters of the things that stand in the scene: trees and bushes, poles with lamps, traffic lights
and signs, vehicles (car, truck, bus, tram), pedestrians, two-wheelers with or without riders, and
street furniture (ignored classes).

Why it exists: each painter draws one object at a world position; the composer decides what stands
where and paints them far to near, so these functions never need to know about each other's order.
"""

from __future__ import annotations

import math

import numpy as np

from segkd.data.synthstreets.canvas import T_BLOTCH, T_COARSE, T_FINE, T_LEAF, T_STREAK, Canvas
from segkd.data.synthstreets.geometry import (
    Frame,
    blobs,
    circle,
    front_quad,
    ground_quad,
    limb,
    rect2,
    side_quad,
    sub_quads,
    xyz,
)
from segkd.data.synthstreets.layout import Layout
from segkd.data.synthstreets.palette import (
    BICYCLE,
    BIKE_RGB,
    BUS,
    BUS_RGB,
    CAR,
    CAR_RGB,
    CLOTH_RGB,
    DYNAMIC,
    HAIR_RGB,
    LEAF_RGB,
    LIGHT,
    MOTORCYCLE,
    PERSON,
    POLE,
    RIDER,
    SIGN,
    SKIN_RGB,
    STATIC,
    TRAIN,
    TRUCK,
    TRUCK_BOX_RGB,
    TRUCK_CAB_RGB,
    VEGETATION,
    jitter,
    pick,
)

# ---- trees, bushes, poles with lamps, traffic lights and signs


def paint_tree(cv: Canvas, rng, X: float, Z: float, small: bool = False) -> None:
    """Trunk plus a crown of overlapping lumpy blobs with a darker, shadowed underside.

    Both trunk and crown are 'vegetation' (Cityscapes labels trunks so); what separates
    vegetation from terrain is the leafy texture and that it stands up, not the colour.
    """
    trunk_h = rng.uniform(1.6, 2.6) if small else rng.uniform(2.2, 4.2)
    crown_r = rng.uniform(0.9, 1.6) if small else rng.uniform(1.6, 3.6)
    fr = Frame(X, Z)
    centre = np.array([0.0, trunk_h + crown_r * 0.8])
    leaf = jitter(rng, pick(rng, LEAF_RGB), 10)
    trunk = limb((0, 0), (rng.normal(0, 0.2), trunk_h + crown_r * 0.6), rng.uniform(0.2, 0.4))
    m = cv.material(leaf, [(T_LEAF, rng.uniform(20, 32)), (T_BLOTCH, (6, 10, 4))], dist=Z)
    if cv.cam.px(crown_r, Z) < 3:  # far away: one blob on a stick is all that shows
        cv.fill([fr(trunk), fr(blobs(rng, 1)[0] * crown_r + centre)], VEGETATION, m)
        return
    cv.fill(fr(trunk), VEGETATION, cv.material(jitter(rng, (72, 64, 54), 10), [(T_STREAK, 10)], dist=Z))
    n = int(rng.integers(2, 5))
    lumps = blobs(rng, n + 1)
    scale = np.empty((n + 1, 1, 2))
    scale[0] = crown_r * np.array([1.1, 0.95])
    scale[1:n] = crown_r * rng.uniform(0.5, 0.8, (n - 1, 1, 1))
    scale[n] = crown_r * 0.55
    offset = np.empty((n + 1, 1, 2))
    offset[:] = centre
    offset[1:n, 0] += rng.normal(0, crown_r * 0.45, (n - 1, 2))
    offset[n, 0] += (0.2 * crown_r, -0.35 * crown_r)
    crowns = fr(lumps * scale + offset)
    cv.fill(crowns[:n], VEGETATION, m)
    cv.fill(crowns[n], VEGETATION, cv.material(leaf * 0.6, [(T_LEAF, 16)], dist=Z))


def paint_bush(cv: Canvas, rng, X: float, Z: float) -> None:
    """A low lumpy shrub on a verge: vegetation right next to terrain, told apart by texture."""
    r = rng.uniform(0.5, 1.3)
    m = cv.material(jitter(rng, pick(rng, LEAF_RGB), 10), [(T_LEAF, 24)], dist=Z)
    cv.fill([Frame(X, Z)(blobs(rng, 1)[0] * (r * 1.4, r) + (0, r * 0.6))], VEGETATION, m)


def _paint_traffic_light(cv: Canvas, rng, fr: Frame, a: float, y: float, facing: bool) -> None:
    """Housing with three lamps (one lit) centred at local (a, y)."""
    w, h = 0.32, 0.9
    housing = cv.material(jitter(rng, pick(rng, ((32, 34, 34), (40, 44, 40), (150, 128, 40))), 6), [(T_FINE, 5)])
    if rng.random() < 0.35:  # backplate
        cv.fill(fr(rect2(a - w, y - h * 0.6, a + w, y + h * 0.6)), LIGHT, cv.material(jitter(rng, (36, 36, 36), 6)))
    cv.fill(fr(rect2(a - w / 2, y - h / 2, a + w / 2, y + h / 2)), LIGHT, housing)
    if not facing:
        return
    lit = int(rng.integers(3))
    colours = ((235, 60, 40), (245, 170, 40), (70, 225, 150))
    for k in range(3):
        c = np.array([a, y + (1 - k) * h * 0.3])
        rgb = colours[k] if k == lit else np.asarray(colours[k]) * 0.18 + 20
        cv.fill([fr(circle(10) * 0.1 + c)], LIGHT, cv.material(rgb))


def _paint_sign(cv: Canvas, rng, fr: Frame, a: float, y: float) -> None:
    """One traffic sign centred at local (a, y): several common shapes and colour schemes."""
    kind = pick(rng, ("round", "round", "blue", "warn", "yield", "priority", "rect", "rect", "stop"))
    r = rng.uniform(0.3, 0.42)
    red = cv.material(jitter(rng, (190, 36, 36), 10), [(T_FINE, 4)])
    white = cv.material(jitter(rng, (222, 222, 218), 8), [(T_FINE, 4)])
    dark = cv.material((40, 40, 44))
    c = np.array([a, y])
    if kind == "round":
        cv.fill([fr(circle(16) * r + c)], SIGN, red)
        cv.fill([fr(circle(16) * r * 0.72 + c)], SIGN, white)
        if rng.random() < 0.5:
            cv.fill([fr(np.array([[-0.5, -0.12], [0.5, -0.12], [0.5, 0.12], [-0.5, 0.12]]) * r + c)], SIGN, dark)
        else:
            cv.fill([fr(np.array([[-0.5, -0.12], [0.5, -0.12], [0.5, 0.12], [-0.5, 0.12]]) * r + c)], SIGN, white)
            cv.fill([fr(circle(16) * r * 0.72 + c)], SIGN, red)
            cv.fill([fr(np.array([[-0.55, -0.14], [0.55, -0.14], [0.55, 0.14], [-0.55, 0.14]]) * r + c)], SIGN, white)
    elif kind == "blue":
        cv.fill([fr(circle(16) * r + c)], SIGN, cv.material(jitter(rng, (30, 76, 160), 10)))
        arrow = np.array([[-0.12, -0.6], [0.12, -0.6], [0.12, 0.1], [0.4, 0.1], [0, 0.6], [-0.4, 0.1], [-0.12, 0.1]])
        cv.fill(fr(arrow * r + c), SIGN, white)
    elif kind in ("warn", "yield"):
        tri = np.array([[-1, -0.58], [1, -0.58], [0, 1.15]]) * r * 1.2
        if kind == "yield":
            tri[:, 1] *= -1
        cv.fill([fr(tri + c)], SIGN, red)
        cv.fill([fr(tri * 0.65 + c + (0, 0.04 * (1 if kind == "warn" else -1)))], SIGN, white)
        if kind == "warn":
            cv.fill([fr(np.array([[-0.08, -0.3], [0.08, -0.3], [0.08, 0.35], [-0.08, 0.35]]) * r + c)], SIGN, dark)
    elif kind == "priority":
        dia = np.array([[0, -1], [1, 0], [0, 1], [-1, 0]]) * r * 1.1
        cv.fill([fr(dia + c)], SIGN, white)
        cv.fill([fr(dia * 0.7 + c)], SIGN, cv.material(jitter(rng, (230, 180, 30), 8)))
    elif kind == "rect":
        w, h = pick(rng, ((1.4, 0.8), (1.0, 1.0), (1.8, 0.45)))
        scheme = pick(rng, (((30, 76, 160), (222, 222, 218)), ((222, 222, 218), (40, 40, 44)),
                            ((230, 190, 40), (40, 40, 44))))
        box = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) * r * 0.75
        cv.fill([fr(box + c)], SIGN, cv.material(jitter(rng, scheme[0], 8), [(T_FINE, 4)]))
        ink = cv.material(scheme[1])
        for k in range(int(rng.integers(1, 3))):
            yy = (0.3 - 0.5 * k) * h * r * 0.75
            cv.fill(fr(rect2(-0.7 * w, -0.1, 0.6 * w, 0.1) * r * 0.75 + c + (0, yy)), SIGN, ink)
    else:  # stop
        t = np.pi / 8
        octa = circle(8) @ np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])
        cv.fill([fr(octa * r + c)], SIGN, red)
        cv.fill([fr(np.array([[-0.6, -0.12], [0.6, -0.12], [0.6, 0.12], [-0.6, 0.12]]) * r + c)], SIGN, white)


def paint_pole(cv: Canvas, rng, X: float, Z: float, kind: str, towards_road: int) -> None:
    """A pole, bare (street lamp) or carrying traffic lights or signs; arms point towards the road."""
    fr = Frame(X, Z)
    metal = cv.material(jitter(rng, pick(rng, ((130, 132, 134), (150, 150, 148), (60, 66, 62), (104, 108, 112))), 8),
                        [(T_FINE, 5)], dist=Z)
    r = rng.uniform(0.06, 0.11)
    if kind == "lamp":
        hgt = rng.uniform(5.5, 9.0)
        arm = rng.uniform(0.8, 2.0) * towards_road
        cv.fill([fr(limb((0, 0), (0, hgt), 2 * r))], POLE, metal)
        cv.fill([fr(limb((0, hgt - 0.2), (arm, hgt), 0.08))], POLE, metal)
        cv.fill(fr(rect2(arm - 0.3, hgt - 0.12, arm + 0.3, hgt + 0.05)), POLE, metal)
    elif kind == "light":
        hgt = rng.uniform(3.0, 4.4)
        cv.fill([fr(limb((0, 0), (0, hgt), 2 * r))], POLE, metal)
        facing = rng.random() < 0.7
        _paint_traffic_light(cv, rng, fr, 0.0, hgt - 0.45, facing)
        if rng.random() < 0.4:
            _paint_traffic_light(cv, rng, fr, 0.0, hgt - 1.6, facing)
        if rng.random() < 0.25:  # mast arm over the road with a hanging light
            span = rng.uniform(2.5, 5.0) * towards_road
            cv.fill([fr(limb((0, hgt + 1.2), (span, hgt + 1.4), 0.12))], POLE, metal)
            cv.fill([fr(limb((0, hgt), (0, hgt + 1.4), 2 * r))], POLE, metal)
            _paint_traffic_light(cv, rng, fr, span * 0.9, hgt + 0.75, True)
    else:
        hgt = rng.uniform(2.4, 3.4)
        cv.fill([fr(limb((0, 0), (0, hgt + 0.1), 1.6 * r))], POLE, metal)
        _paint_sign(cv, rng, fr, 0.0, hgt - 0.3)
        if rng.random() < 0.35:
            _paint_sign(cv, rng, fr, 0.0, hgt - 1.15)


# ---- vehicles


def _visible_side(x0: float, x1: float) -> float | None:
    """X of the box side facing the camera, or None when the box straddles the camera axis."""
    return x0 if x0 > 0 else x1 if x1 < 0 else None


def _box(cv: Canvas, lay: Layout, x0, x1, z0, z1, y0, y1, label, mat, near=True) -> dict:
    """Draw the visible faces of an axis-aligned box (side, top, near) and return their corners."""
    faces = {}
    xs = _visible_side(x0, x1)
    if xs is not None:
        faces["side"] = side_quad(xs, z0, z1, y0, y1)
        cv.fill([faces["side"]], label, mat, shade=0.8)
    if y1 < lay.cam.height:
        faces["top"] = ground_quad(x0, x1, z0, z1, y1)
        cv.fill([faces["top"]], label, mat, shade=1.08)
    faces["near"] = front_quad(x0, x1, z0, y0, y1)
    if near:
        cv.fill([faces["near"]], label, mat)
    return faces


def _wheels_on_side(cv: Canvas, xs: float | None, zcs, radius: float, label: int, dist: float, extra=()) -> None:
    """Tyres (plus any ``extra`` tyre-coloured polygons) in one fill, then rims if they are big enough."""
    polys = list(extra)
    if xs is not None:
        ring = circle(14)
        for zc in zcs:
            polys.append(xyz(xs, radius + radius * ring[:, 1], zc + radius * ring[:, 0], (14,)))
    if not polys:
        return
    cv.fill(polys, label, cv.material((26, 26, 28), [(T_FINE, 4)], dist=dist))
    if xs is not None and cv.cam.px(radius, dist) >= 3:
        ring = circle(10) * 0.55 * radius
        rims = [xyz(xs, radius + ring[:, 1], zc + ring[:, 0], (10,)) for zc in zcs]
        cv.fill(rims, label, cv.material((120, 120, 124), [(T_FINE, 6)], dist=dist))


def _contact_shadow(cv: Canvas, x0, x1, z0, z1) -> None:
    """Dark patch under a vehicle: grounds it visually, and darkens road that is still road."""
    cv.shadow([ground_quad(x0 - 0.15, x1 + 0.15, z0 - 0.3, z1 + 0.2, 0.0)], 0.45)


def paint_car(cv: Canvas, rng, lay: Layout, X: float, Z: float, oncoming: bool) -> None:
    """Lower body box, a cabin frustum set back from the ends, glass, wheels, lamps and plate.

    Small (far) cars skip the details nobody can see, which keeps generation fast.
    """
    w, length, hgt = rng.uniform(1.7, 1.92), rng.uniform(3.9, 4.9), rng.uniform(1.38, 1.58)
    x0, x1, z0, z1 = X - w / 2, X + w / 2, Z, Z + length
    size = lay.cam.px(w, Z)
    body = jitter(rng, pick(rng, CAR_RGB), 6)
    belt = rng.uniform(0.82, 0.98)
    xs = _visible_side(x0, x1)
    _contact_shadow(cv, x0, x1, z0, z1)
    mb = cv.material(body, [(T_COARSE, 10), (T_STREAK, 5)], dist=Z)
    glass = cv.material(jitter(rng, (40, 46, 54), 6), [(T_COARSE, 20), (T_STREAK, 8)], dist=Z)
    faces = _box(cv, lay, x0, x1, z0, z1, 0.22, belt, CAR, mb, near=False)
    near_tyres = sub_quads(front_quad(x0, x1, z0 + 0.3, 0.0, 0.3), [0.04, 0.76], [0.24, 0.96], 0, 1)
    _wheels_on_side(cv, xs, (z0 + 0.85, z1 - 0.85), 0.32, CAR, Z, extra=list(near_tyres))
    # cabin: a frustum set back from the near end (longer bonnet when we see the front)
    off_n = rng.uniform(1.0, 1.5) if oncoming else rng.uniform(0.5, 1.0)
    off_f = rng.uniform(0.5, 1.0) if oncoming else rng.uniform(1.0, 1.5)
    bz0, bz1 = z0 + off_n, z1 - off_f
    tz0, tz1 = bz0 + rng.uniform(0.4, 0.7), bz1 - rng.uniform(0.3, 0.6)
    bx0, bx1, tx0, tx1 = x0 + 0.06, x1 - 0.06, x0 + 0.2, x1 - 0.2
    rear = np.array([[bx0, belt, bz0], [bx1, belt, bz0], [tx1, hgt, tz0], [tx0, hgt, tz0]])
    if xs is not None:
        bxs, txs = (bx0, tx0) if xs == x0 else (bx1, tx1)
        side = np.array([[bxs, belt, bz0], [bxs, belt, bz1], [txs, hgt, tz1], [txs, hgt, tz0]])
        cv.fill(side, CAR, mb, shade=0.8)
        pillar = rng.uniform(0.45, 0.6)
        cv.fill(sub_quads(side, [0.08, pillar + 0.04], [pillar - 0.04, 0.93], 0.12, 0.9), CAR, glass)
    if hgt < lay.cam.height:
        cv.fill(np.array([[tx0, hgt, tz0], [tx1, hgt, tz0], [tx1, hgt, tz1], [tx0, hgt, tz1]]), CAR, mb, shade=1.1)
    cv.fill(rear, CAR, mb, shade=0.95)
    cv.fill(sub_quads(rear, 0.06, 0.94, 0.1, 0.92), CAR, glass)
    # near end: lamps always (they tell front from back), bumper, grille and plate when visible
    near = faces["near"]
    cv.fill(near, CAR, mb)
    lamp = (230, 226, 210) if oncoming else (190, 30, 30)
    cv.fill(sub_quads(near, [0.03, 0.75], [0.25, 0.97], 0.62, 0.85), CAR, cv.material(jitter(rng, lamp, 8), dist=Z))
    if size >= 14:
        cv.fill(sub_quads(near, 0, 1, 0, 0.22), CAR, cv.material(body * 0.55 + 10, dist=Z))
        if oncoming:
            cv.fill(sub_quads(near, 0.3, 0.7, 0.45, 0.8), CAR, cv.material((28, 28, 30), [(T_FINE, 4)], dist=Z))
        cv.fill(sub_quads(near, 0.38, 0.62, 0.3, 0.5), CAR, cv.material((205, 205, 196), dist=Z))


def paint_truck(cv: Canvas, rng, lay: Layout, X: float, Z: float, oncoming: bool) -> None:
    """Cab plus a tall cargo box: bigger, boxier and higher off the ground than a car."""
    cargo_len = rng.uniform(5.5, 9.0)
    w = rng.uniform(2.3, 2.55)
    cab_rgb = jitter(rng, pick(rng, TRUCK_CAB_RGB))
    box_rgb = jitter(rng, pick(rng, TRUCK_BOX_RGB))
    mcab = cv.material(cab_rgb, [(T_COARSE, 10)], dist=Z)
    mbox = cv.material(box_rgb, [(T_COARSE, 12), (T_STREAK, 6)], dist=Z)
    glass = cv.material(jitter(rng, (40, 46, 54), 6), [(T_COARSE, 20)], dist=Z)
    dark = cv.material((30, 30, 32), [(T_FINE, 4)], dist=Z)
    box_top = rng.uniform(3.3, 3.9)
    x0, x1 = X - w / 2, X + w / 2
    xs = _visible_side(x0, x1)
    if oncoming:
        cab = (Z, Z + 2.2)
        cargo = (Z + 2.4, Z + 2.4 + cargo_len)
    else:
        cargo = (Z, Z + cargo_len)
        cab = (Z + cargo_len + 0.2, Z + cargo_len + 2.4)
    _contact_shadow(cv, x0, x1, Z, Z + cargo_len + 2.4)
    parts = [("cargo", cargo), ("cab", cab)]
    parts.sort(key=lambda p: -p[1][0])  # far part first
    for name, (a, b) in parts:
        if name == "cargo":
            faces = _box(cv, lay, x0, x1, a, b, 0.95, box_top, TRUCK, mbox)
            if "side" in faces and rng.random() < 0.6:
                stripe_rgb = jitter(rng, pick(rng, ((180, 30, 30), (30, 60, 140), (230, 160, 20))), 8)
                stripe = cv.material(stripe_rgb, dist=Z)
                cv.fill(sub_quads(faces["side"], 0.05, 0.95, 0.35, 0.5), TRUCK, stripe, shade=0.8)
            if not oncoming:
                cv.fill(sub_quads(faces["near"], 0.495, 0.505, 0.02, 0.98), TRUCK, dark)
                cv.fill(sub_quads(faces["near"], [0.02, 0.84], [0.16, 0.98], 0.0, 0.06), TRUCK,
                        cv.material((190, 30, 30), dist=Z))
        else:
            cx0, cx1 = x0 + 0.05, x1 - 0.05
            faces = _box(cv, lay, cx0, cx1, a, b, 0.55, rng.uniform(2.7, 3.0), TRUCK, mcab)
            if "side" in faces:
                cv.fill(sub_quads(faces["side"], 0.15 if oncoming else 0.5, 0.85 if oncoming else 0.95, 0.55, 0.85),
                        TRUCK, glass, shade=0.8)
            if oncoming:
                cv.fill(sub_quads(faces["near"], 0.05, 0.95, 0.52, 0.88), TRUCK, glass)
                cv.fill(sub_quads(faces["near"], 0.25, 0.75, 0.1, 0.35), TRUCK, dark)
                cv.fill(sub_quads(faces["near"], [0.04, 0.8], [0.2, 0.96], 0.08, 0.2), TRUCK,
                        cv.material((230, 226, 210), dist=Z))
    # chassis and wheels below everything
    cv.fill([front_quad(x0 + 0.2, x1 - 0.2, Z, 0.3, 0.95)], TRUCK, dark)
    cv.fill(sub_quads(front_quad(x0, x1, Z + 0.3, 0.0, 0.6), [0.02, 0.72], [0.28, 0.98], 0, 1), TRUCK, dark)
    _wheels_on_side(cv, xs, (Z + 1.2, Z + cargo_len * 0.6, Z + cargo_len + 1.6), 0.48, TRUCK, Z)


def paint_bus(cv: Canvas, rng, lay: Layout, X: float, Z: float, oncoming: bool) -> None:
    """A long, tall box with a band of windows and a destination display."""
    length = rng.uniform(11.5, 12.5) if rng.random() < 0.8 else 18.0
    w = 2.55
    x0, x1, z0, z1 = X - w / 2, X + w / 2, Z, Z + length
    body_rgb = jitter(rng, pick(rng, BUS_RGB))
    mb = cv.material(body_rgb, [(T_COARSE, 10), (T_STREAK, 5)], dist=Z)
    glass = cv.material(jitter(rng, (38, 44, 52), 6), [(T_COARSE, 22), (T_STREAK, 8)], dist=Z)
    dark = cv.material((28, 28, 30), dist=Z)
    xs = _visible_side(x0, x1)
    _contact_shadow(cv, x0, x1, z0, z1)
    faces = _box(cv, lay, x0, x1, z0, z1, 0.3, 3.05, BUS, mb)
    if "side" in faces:
        n = int(length // 1.7)
        u = np.linspace(0.04, 0.96, n + 1)
        panes = sub_quads(faces["side"], u[:-1] + 0.006, u[1:] - 0.006, 0.33, 0.8)
        cv.fill(panes, BUS, glass, shade=0.8, disjoint=True)
        stripe_rgb = jitter(rng, pick(rng, ((180, 30, 30), (40, 90, 160), (230, 180, 30), (60, 60, 64))), 8)
        stripe = cv.material(stripe_rgb, dist=Z)
        cv.fill(sub_quads(faces["side"], 0.0, 1.0, 0.17, 0.25), BUS, stripe, shade=0.8)
    _wheels_on_side(cv, xs, (z0 + 2.6, z1 - 3.0), 0.5, BUS, Z)
    near = faces["near"]
    if oncoming:
        cv.fill(sub_quads(near, 0.03, 0.97, 0.3, 0.86), BUS, glass)
        cv.fill(sub_quads(near, 0.15, 0.85, 0.89, 0.97), BUS, cv.material((230, 150, 30), [(T_FINE, 30)], dist=Z))
        cv.fill(sub_quads(near, [0.04, 0.8], [0.2, 0.96], 0.1, 0.17), BUS, cv.material((230, 226, 210), dist=Z))
    else:
        cv.fill(sub_quads(near, 0.1, 0.9, 0.6, 0.88), BUS, glass)
        cv.fill(sub_quads(near, 0.25, 0.75, 0.1, 0.35), BUS, dark)
        cv.fill(sub_quads(near, [0.04, 0.84], [0.16, 0.96], 0.1, 0.3), BUS, cv.material((190, 30, 30), dist=Z))
    cv.fill(sub_quads(front_quad(x0, x1, z0 + 0.5, 0.0, 0.3), [0.05, 0.75], [0.25, 0.95], 0, 1), BUS, dark)


def paint_tram(cv: Canvas, rng, lay: Layout, X: float, Z: float) -> None:
    """A long articulated tram on the rails, with a pantograph: the 'train' class, as in Cityscapes."""
    length = rng.uniform(22, 34)
    w = 2.4
    x0, x1, z0, z1 = X - w / 2, X + w / 2, Z, Z + length
    scheme = pick(rng, (((232, 232, 226), (190, 30, 30)), ((226, 196, 40), (60, 60, 60)),
                        ((220, 220, 210), (30, 120, 70)), ((200, 40, 40), (230, 230, 230))))
    mb = cv.material(jitter(rng, scheme[0], 6), [(T_COARSE, 10), (T_STREAK, 5)], dist=Z)
    accent = cv.material(jitter(rng, scheme[1], 6), [(T_FINE, 4)], dist=Z)
    glass = cv.material(jitter(rng, (36, 42, 50), 6), [(T_COARSE, 22), (T_STREAK, 8)], dist=Z)
    metal = cv.material((70, 72, 76), dist=Z)
    _contact_shadow(cv, x0, x1, z0, z1)
    # pantograph first: it sits on the roof, behind the front face
    zp = z0 + length * rng.uniform(0.3, 0.5)
    fr = Frame(X, zp)
    cv.stroke([fr(np.array([[-0.5, 3.35], [0.3, 4.0], [-0.3, 4.4]])), fr(np.array([[-0.8, 4.45], [0.8, 4.45]]))],
              0.06, TRAIN, metal)
    faces = _box(cv, lay, x0, x1, z0, z1, 0.35, 3.35, TRAIN, mb)
    if "side" in faces:
        n = int(length // 2.2)
        u = np.linspace(0.03, 0.97, n + 1)
        panes = sub_quads(faces["side"], u[:-1] + 0.006, u[1:] - 0.006, 0.3, 0.75)
        cv.fill(panes, TRAIN, glass, shade=0.8, disjoint=True)
        cv.fill(sub_quads(faces["side"], 0.0, 1.0, 0.05, 0.2), TRAIN, accent, shade=0.8)
        joints = np.arange(1, int(length // 8) + 1) * 8.0 / length
        joints = joints[joints < 0.98]
        if len(joints):
            bellows = sub_quads(faces["side"], joints - 0.01, joints + 0.01, 0.0, 0.95)
            cv.fill(bellows, TRAIN, metal, shade=0.8, disjoint=True)
    near = faces["near"]
    cv.fill(sub_quads(near, 0.04, 0.96, 0.35, 0.85), TRAIN, glass)
    cv.fill(sub_quads(near, 0.0, 1.0, 0.05, 0.25), TRAIN, accent)
    cv.fill(sub_quads(near, 0.2, 0.8, 0.88, 0.97), TRAIN, cv.material((230, 150, 30), [(T_FINE, 30)], dist=Z))
    cv.fill(sub_quads(near, [0.05, 0.8], [0.2, 0.95], 0.12, 0.2), TRAIN, cv.material((232, 228, 210), dist=Z))


# ---- people and two-wheelers


def _person_colours(cv: Canvas, rng, dist: float) -> dict:
    """Skin, hair and clothes for one person, shared by pedestrians and riders."""
    return {
        "skin": cv.material(jitter(rng, pick(rng, SKIN_RGB), 6), dist=dist),
        "hair": cv.material(jitter(rng, pick(rng, HAIR_RGB), 6), [(T_FINE, 6)], dist=dist),
        "top": cv.material(jitter(rng, pick(rng, CLOTH_RGB), 10), [(T_BLOTCH, 8)], dist=dist),
        "legs": cv.material(jitter(rng, pick(rng, CLOTH_RGB[:6] + ((62, 82, 124),)), 8), [(T_FINE, 5)], dist=dist),
        "shoe": cv.material(jitter(rng, (34, 30, 28), 6), dist=dist),
    }


def paint_person(cv: Canvas, rng, X: float, Z: float, profile: bool, direction: int, height: float) -> None:
    """A pedestrian, frontal (walking along the sidewalk) or in profile (crossing), on a billboard.

    Parts are drawn in a 1.75 m body frame and scaled, one fill per material (legs, shoes,
    clothing, skin, hair), which keeps the many small people cheap.
    """
    k = height / 1.75
    fr = Frame(X, Z)
    col = _person_colours(cv, rng, Z)
    d = direction
    hip, shoulder, head = 0.9, 1.45, 1.62
    hem = hip - (0.3 if rng.random() < 0.3 else 0.02)  # coats reach below the hip
    if profile:
        stride = rng.uniform(0.1, 0.35) * d
        legs = [limb((0, hip), (stride, 0.04), 0.14), limb((0, hip), (-stride, 0.04), 0.14)]
        shoes = [rect2(f, 0.0, f + 0.14 * d, 0.08) for f in (stride, -stride)]
        lean = 0.04 * d
        top = [np.array([[-0.13, hem], [0.13, hem], [0.12 + lean, shoulder], [-0.12 + lean, shoulder]]),
               limb((lean, shoulder - 0.05), (rng.uniform(-0.25, 0.25), hip - 0.05), 0.09)]
        skin = []
        bag = rect2(-0.28 * d, hip + 0.15, -0.1 * d, shoulder - 0.05)  # backpack
    else:
        legs = [np.array([[sg * 0.17, 0.04], [sg * 0.03, 0.04], [sg * 0.02, hip], [sg * 0.18, hip]]) for sg in (-1, 1)]
        shoes = [rect2(sg * 0.18, 0.0, sg * 0.03, 0.07) for sg in (-1, 1)]
        top = [np.array([[-0.19, hem], [0.19, hem], [0.23, shoulder], [-0.23, shoulder]])]
        top += [limb((sg * 0.22, shoulder - 0.04), (sg * 0.27, hip - 0.1), 0.085) for sg in (-1, 1)]
        skin = [circle(8) * 0.045 + (sg * 0.27, hip - 0.12) for sg in (-1, 1)]
        bag = rect2(0.26, hip - 0.25, 0.42, hip)  # handbag
    skin += [limb((0, shoulder - 0.05), (0, head), 0.1), circle(12) * (0.095, 0.115) + (0, head)]
    hair = circle(12) * (0.1, 0.07) + (-0.01 * d if profile else 0.0, head + 0.06)
    cv.fill([fr(p * k) for p in legs], PERSON, col["legs"])
    cv.fill([fr(p * k) for p in shoes], PERSON, col["shoe"], disjoint=True)
    cv.fill([fr(p * k) for p in top], PERSON, col["top"])
    if rng.random() < 0.28:
        cv.fill(fr(bag * k), PERSON, cv.material(jitter(rng, pick(rng, CLOTH_RGB)), dist=Z))
    cv.fill([fr(p * k) for p in skin], PERSON, col["skin"])
    cv.fill(fr(hair * k), PERSON, col["hair"])


def _bike_geometry(motor: bool) -> dict:
    """Wheel radius, half wheelbase and the rider's contact points, in metres along the bike."""
    if motor:
        return {"r": 0.32, "wb": 0.72, "hip": (-0.3, 0.92), "bar": (0.42, 1.05),
                "foot": (0.05, 0.42), "knee": (0.12, 0.88)}
    return {"r": 0.34, "wb": 0.52, "hip": (-0.2, 0.98), "bar": (0.38, 1.02), "foot": (0.02, 0.22), "knee": (0.12, 0.72)}


def paint_two_wheeler(
    cv: Canvas, rng, X: float, Z: float, heading: float, direction: int, motor: bool, rider: bool
) -> None:
    """A bicycle or motorcycle in (foreshortened) profile, optionally ridden.

    The rider gets the 'rider' label and the machine its own class, which is what separates a
    rider from a person: context (sitting on a two-wheeler), not appearance.
    """
    fr = Frame(X, Z, heading)
    g = _bike_geometry(motor)
    r, wb = g["r"], g["wb"]
    d = direction

    def P(a, y):
        return np.array([a * d, y])

    label = MOTORCYCLE if motor else BICYCLE
    frame_rgb = jitter(rng, pick(rng, CAR_RGB if motor else BIKE_RGB), 8)
    mframe = cv.material(frame_rgb, [(T_FINE, 5)], dist=Z)
    tyre = cv.material((24, 24, 26), dist=Z)
    ring = circle(20)
    wheels = [fr(ring * r + P(-wb, r)), fr(ring * r + P(wb, r))]
    if motor:
        cv.fill(wheels, label, tyre)
        hub = cv.material((130, 130, 134), dist=Z)
        cv.fill([fr(ring * r * 0.5 + P(-wb, r)), fr(ring * r * 0.5 + P(wb, r))], label, hub)
        body = np.array([P(-0.85, 0.75), P(-0.3, 0.85), P(-0.05, 0.98), P(0.38, 0.95), P(0.5, 0.8), P(0.35, 0.45),
                         P(0.0, 0.28), P(-0.4, 0.35)])
        cv.fill([fr(body)], label, mframe)
        cv.fill([fr(np.array([P(-0.25, 0.25), P(0.25, 0.25), P(0.28, 0.55), P(-0.2, 0.6)]))], label,
                cv.material((70, 70, 74), [(T_FINE, 8)], dist=Z))
        cv.fill([fr(limb(P(0.45, 1.0), P(wb, r), 0.07))], label, tyre)
        cv.fill([fr(circle(8) * 0.08 + P(0.55, 0.9))], label, cv.material((230, 226, 210), dist=Z))
    else:
        cv.stroke(wheels, 0.05, label, tyre, closed=True)
        bb, seat, head = P(-0.02, 0.3), P(-0.18, 0.88), P(0.38, 0.85)
        lines = [np.array([P(-wb, r), bb, seat, P(-wb, r)]), np.array([seat, head, P(wb, r)]), np.array([bb, head])]
        cv.stroke([fr(p) for p in lines], 0.04, label, mframe)
        cv.stroke([fr(np.array([head, P(0.33, 1.0), P(0.43, 1.02)])), fr(np.array([P(-0.28, 0.92), P(-0.1, 0.92)]))],
                  0.045, label, tyre)
    if not rider:
        return
    col = _person_colours(cv, rng, Z)
    hip, bar, foot, knee = P(*g["hip"]), P(*g["bar"]), P(*g["foot"]), P(*g["knee"])
    shoulder = hip + P(0.22 if motor else 0.3, 0.52)
    cv.fill([fr(limb(hip, knee, 0.15)), fr(limb(knee, foot, 0.12))], RIDER, col["legs"])
    cv.fill([fr(limb(hip - P(0.05, 0), shoulder, 0.3))], RIDER, col["top"])
    cv.fill([fr(limb(shoulder, bar, 0.09))], RIDER, col["top"], shade=0.85)
    head = shoulder + P(0.08, 0.2)
    if motor or rng.random() < 0.4:
        helmet = cv.material(jitter(rng, pick(rng, CAR_RGB), 10), [(T_COARSE, 10)], dist=Z)
        cv.fill([fr(circle(12) * 0.14 + head)], RIDER, helmet)
        if motor:
            cv.fill([fr(circle(8) * (0.05, 0.05) + head + P(0.08, 0.0))], RIDER, cv.material((30, 32, 36), dist=Z))
    else:
        cv.fill([fr(circle(12) * (0.1, 0.115) + head)], RIDER, col["skin"])
        cv.fill([fr(circle(12) * (0.1, 0.07) + head + P(-0.01, 0.06))], RIDER, col["hair"])


# ---- street furniture (ignored classes)


def paint_furniture(cv: Canvas, rng, lay: Layout, X: float, Z: float, dynamic: bool) -> None:
    """Bins, cabinets, benches, advertising columns ('static') or a wheeled container ('dynamic')."""
    fr = Frame(X, Z)
    if dynamic:
        rgb = jitter(rng, pick(rng, ((40, 80, 50), (40, 60, 120), (90, 90, 94))), 8)
        m = cv.material(rgb, [(T_COARSE, 8)], dist=Z)
        w, h, dep = rng.uniform(0.6, 1.2), rng.uniform(1.0, 1.3), rng.uniform(0.6, 1.0)
        _box(cv, lay, X - w / 2, X + w / 2, Z, Z + dep, 0.12, h, DYNAMIC, m)
        castors = [fr(circle(8) * 0.07 + (sx * w * 0.35, 0.07)) for sx in (-1, 1)]
        cv.fill(castors, DYNAMIC, cv.material((25, 25, 25), dist=Z))
        return
    kind = pick(rng, ("bin", "cabinet", "bench", "column"))
    if kind == "bin":
        rgb = jitter(rng, pick(rng, ((50, 70, 56), (90, 90, 92), (200, 120, 30))), 8)
        m = cv.material(rgb, [(T_FINE, 5)], dist=Z)
        cv.fill([fr(np.array([[-0.25, 0], [0.25, 0], [0.28, 0.95], [-0.28, 0.95]]))], STATIC, m)
    elif kind == "cabinet":
        m = cv.material(jitter(rng, (150, 156, 146), 8), [(T_COARSE, 10), (T_FINE, 5)], dist=Z)
        w = rng.uniform(0.6, 1.0)
        _box(cv, lay, X - w / 2, X + w / 2, Z, Z + 0.4, 0.0, rng.uniform(1.0, 1.5), STATIC, m)
    elif kind == "bench":
        m = cv.material(jitter(rng, pick(rng, ((120, 86, 56), (70, 70, 72))), 8), [(T_STREAK, 8)], dist=Z)
        cv.stroke([fr(np.array([[-0.9, 0.45], [0.9, 0.45]])), fr(np.array([[-0.9, 0.8], [0.9, 0.8]])),
                   fr(np.array([[-0.8, 0.0], [-0.8, 0.8]])), fr(np.array([[0.8, 0.0], [0.8, 0.8]]))], 0.07, STATIC, m)
    else:
        m = cv.material(jitter(rng, (60, 80, 70), 8), dist=Z)
        cv.fill([fr(np.array([[-0.6, 0], [0.6, 0], [0.6, 3.0], [-0.6, 3.0]]))], STATIC, m)
        poster = cv.material(jitter(rng, pick(rng, CAR_RGB), 30), [(T_BLOTCH, 40)], dist=Z)
        cv.fill([fr(np.array([[-0.58, 0.5], [0.58, 0.5], [0.58, 2.6], [-0.58, 2.6]]))], STATIC, poster)
        cv.fill([fr(circle(12) * (0.7, 0.25) + (0, 3.0))], STATIC, m)
