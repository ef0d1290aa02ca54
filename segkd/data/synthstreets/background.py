"""Painters of the street's fixed surroundings: sky, the far backdrop, the ground (terrain, verges,
sidewalks with kerbs, road with markings and rails), facades, and walls, fences or hedges.

Why it exists: these are painted first, once per image, before any object; the composer calls the
public ``paint_*`` functions here in a fixed order.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from segkd.data.synthstreets.canvas import (
    T_BLOTCH,
    T_CLOUD,
    T_COARSE,
    T_FINE,
    T_GRASS,
    T_LEAF,
    T_SKY,
    T_STREAK,
    Canvas,
)
from segkd.data.synthstreets.geometry import Frame, blobs, front_quad, ground_quad, side_quad, xyz
from segkd.data.synthstreets.layout import Layout, Side
from segkd.data.synthstreets.palette import (
    BUILDING,
    BUILDING_RGB,
    FENCE,
    GROUND,
    LEAF_RGB,
    ROAD,
    SIDEWALK,
    SKY,
    TERRAIN,
    VEGETATION,
    WALL,
    jitter,
    pick,
)


def paint_sky(cv: Canvas, rng: np.random.Generator, lay: Layout) -> None:
    """Sky over the whole frame first: blue or overcast, lighter towards the horizon, with clouds."""
    if lay.sunny:
        zenith = jitter(rng, (92, 138, 196), 10)
        haze = jitter(rng, (196, 206, 216), 6)
        cloud = np.array([238.0, 238.0, 236.0])
        cloudiness = rng.uniform(0.3, 1.0)
    else:  # overcast: bright, flat, low contrast
        zenith = jitter(rng, (172, 178, 186), 8)
        haze = zenith + rng.uniform(10, 30)
        cloud = zenith + rng.uniform(-30, 25)
        cloudiness = rng.uniform(0.4, 1.0)
    cv.haze = np.clip(haze, 0, 255)
    cv.haze_dist = rng.uniform(250, 600)
    m = cv.material(zenith, [(T_SKY, haze - zenith), (T_CLOUD, (cloud - zenith) * cloudiness)])
    cv.fill2([np.array([[0, 0], [cv.w + 1, 0], [cv.w + 1, cv.h + 1], [0, cv.h + 1]], np.float64)], SKY, m)


def _windows(cv: Canvas, rng, face_pts: Callable, length: float, height: float, dist: float, ground_floor=True):
    """A window grid on a facade given by face_pts(u_metres, v_metres) -> 3-D point arrays."""
    bay = rng.uniform(2.4, 3.8)
    ww = bay * rng.uniform(0.35, 0.6)
    gf = rng.uniform(3.2, 4.5)
    fh = rng.uniform(2.9, 3.4)
    wh = fh * rng.uniform(0.4, 0.6)
    nb = int((length - 0.8) // bay)
    nf = int((height - gf - 0.8) // fh)
    glass = cv.material(jitter(rng, (46, 54, 64), 10), [(T_COARSE, rng.uniform(14, 30)), (T_STREAK, 6)], dist=dist)
    if nb >= 1 and nf >= 1:
        u0 = (length - nb * bay) / 2 + (bay - ww) / 2 + np.arange(nb) * bay
        v0 = gf + np.arange(nf) * fh + (fh - wh) * 0.55
        U0, V0 = np.meshgrid(u0, v0)
        U0, V0 = U0.ravel(), V0.ravel()
        if rng.random() < 0.6:  # light frames/sills around the glass
            frame = cv.material(jitter(rng, (215, 212, 205), 12), [(T_FINE, 4)], dist=dist)
            frames = _rects(face_pts, U0 - 0.1, U0 + ww + 0.1, V0 - 0.15, V0 + wh + 0.08)
            cv.fill(frames, BUILDING, frame, disjoint=True)
        cv.fill(_rects(face_pts, U0, U0 + ww, V0, V0 + wh), BUILDING, glass, disjoint=True)
    if ground_floor and length > 3:
        shop = rng.random() < 0.5
        n = max(1, int(length // (5.0 if shop else bay)))
        step = length / n
        u0 = np.arange(n) * step + step * 0.15
        u1 = u0 + step * (0.7 if shop else 0.35)
        v1 = np.full(n, gf * (0.75 if shop else 0.6))
        v0 = np.full(n, 0.25 if shop else 0.0)
        door = glass if shop else cv.material(jitter(rng, (60, 48, 40), 12), dist=dist)
        cv.fill(_rects(face_pts, u0, u1, v0, v1), BUILDING, door, disjoint=True)


def _rects(face_pts: Callable, u0, u1, v0, v1) -> np.ndarray:
    """(n,4,3) rectangles [u0,u1]x[v0,v1] (metres) on a facade given by face_pts(u, v)."""
    us = np.stack([u0, u1, u1, u0], 1)
    vs = np.stack([v0, v0, v1, v1], 1)
    return face_pts(us, vs)


def paint_backdrop(cv: Canvas, rng, lay: Layout) -> None:
    """Buildings and trees across the far end of the street, so the horizon is not a bare line."""
    cam = lay.cam
    z = lay.z_far
    half = max(cam.cx, lay.w - cam.cx) / cam.f * (z + 40) * 1.15
    items, x = [], -half
    while x < half:
        width = rng.uniform(6, 24)
        r = rng.random()
        kind = "gap" if r < 0.1 else "tree" if r < 0.4 else "building"
        items.append((z + rng.uniform(0, 30), kind, x, x + width, rng.uniform(5, 26)))
        x += width
    for zz, kind, x0, x1, hh in sorted(items, key=lambda t: -t[0]):
        if cam.cx + cam.f * x1 / zz < 0 or cam.cx + cam.f * x0 / zz > lay.w:
            continue  # off screen
        if kind == "building":
            m = cv.material(jitter(rng, pick(rng, BUILDING_RGB), 12), [(T_COARSE, 10), (T_FINE, 4)], dist=zz)
            cv.fill([front_quad(x0, x1, zz, 0, hh)], BUILDING, m)
            if cam.px(3.0, zz) >= 2.0:
                _windows(cv, rng, lambda u, v, x0=x0, zz=zz: xyz(x0 + u, v, zz, np.shape(u)),
                         x1 - x0, hh, zz, ground_floor=False)
        elif kind == "tree":
            m = cv.material(jitter(rng, pick(rng, LEAF_RGB), 8), [(T_LEAF, 22)], dist=zz)
            fr = Frame(0, zz)
            polys = []
            for _ in range(int(rng.integers(2, 5))):
                r = rng.uniform(3, 7)
                c = np.array([rng.uniform(x0, x1), rng.uniform(r * 0.6, hh * 0.6 + r)])
                polys.append(fr(blobs(rng, 1)[0] * r + c))
            polys.append(fr(np.array([[x0, 0], [x1, 0], [x1, 3], [x0, 3]])))
            cv.fill(polys, VEGETATION, m)


def paint_ground(cv: Canvas, rng, lay: Layout) -> None:
    """Far grass, then per side: setback, verge, sidewalk with kerb; then the road and its markings."""
    cam, zn, zf = lay.cam, lay.z_near, lay.z_far + 400
    grass = cv.material(jitter(rng, (104, 118, 70), 10), [(T_GRASS, (18, 20, 10)), (T_COARSE, (12, 10, 4))], dist=60)
    cv.fill2([np.array([[0, cam.cy], [cv.w + 1, cam.cy], [cv.w + 1, cv.h + 1], [0, cv.h + 1]], np.float64)],
             TERRAIN, grass)
    walk_rgb = jitter(rng, (138, 136, 132), 14) + pick(rng, ((0, 0, 0), (14, 6, -6), (20, -4, -10), (-6, -4, 0)))
    for side in lay.sides:
        s = side.s
        outer = side.facade if math.isfinite(side.facade) else side.bound + 80
        if outer > side.bound:
            r = rng.random()
            urban = side.kind == "urban"
            if urban and r < 0.3:  # paved forecourt
                lab, m = SIDEWALK, cv.material(jitter(rng, walk_rgb, 8), [(T_BLOTCH, 6), (T_FINE, 5)])
            elif r < (0.45 if urban else 0.1):  # bare dirt: 'ground', ignored like in Cityscapes
                lab, m = GROUND, cv.material(jitter(rng, (128, 114, 94), 10), [(T_BLOTCH, 14), (T_FINE, 8)])
            else:
                lab = TERRAIN
                m = cv.material(jitter(rng, (100, 120, 66), 12), [(T_GRASS, (20, 22, 10)), (T_BLOTCH, (14, 10, 4))])
            cv.fill([ground_quad(s * side.bound, s * outer, zn, zf)], lab, m)
        if side.verge > 0:
            m = cv.material(jitter(rng, (102, 122, 64), 12), [(T_GRASS, (20, 24, 10)), (T_BLOTCH, (16, 10, 4))])
            cv.fill([ground_quad(s * side.walk_out, s * side.bound, zn, zf, lay.kerb_h)], TERRAIN, m)
        _paint_sidewalk(cv, rng, lay, side, walk_rgb)
    _paint_road(cv, rng, lay)


def _paint_sidewalk(cv: Canvas, rng, lay: Layout, side: Side, walk_rgb) -> None:
    """Paving a shade lighter than asphalt with joints and a kerb: same grey family as the road on purpose."""
    cam, s, hk = lay.cam, side.s, lay.kerb_h
    zn, zf = lay.z_near, lay.z_far + 400
    m = cv.material(jitter(rng, walk_rgb, 6), [(T_BLOTCH, 7), (T_FINE, 6)])
    cv.fill([ground_quad(s * side.kerb, s * side.walk_out, zn, zf, hk)], SIDEWALK, m)
    # paving joints, only where they are at least a few pixels apart
    joint = cv.material(np.asarray(walk_rgb) * 0.72, [(T_FINE, 4)])
    spacing = rng.uniform(0.5, 1.2)
    z_max = min(lay.z_far, math.sqrt(cam.f * (cam.height - hk) * spacing / 3.5))
    zs = np.arange(zn, z_max, spacing)
    lines = [np.array([[s * side.kerb, hk, z], [s * side.walk_out, hk, z]]) for z in zs]
    xs = side.kerb + np.arange(spacing, side.walk, spacing)
    lines += [np.array([[s * x, hk, zn], [s * x, hk, lay.z_far]]) for x in xs]
    if lines:
        cv.lines_px(np.asarray(lines), SIDEWALK, joint)
    # kerb: light stone top and the vertical face towards the road
    kerb = cv.material(jitter(rng, np.asarray(walk_rgb) + 22, 8), [(T_FINE, 5)])
    cv.fill([ground_quad(s * side.kerb, s * (side.kerb + 0.25), zn, zf, hk)], SIDEWALK, kerb)
    cv.fill([side_quad(s * side.kerb, zn, zf, 0.0, hk)], SIDEWALK, kerb, shade=0.8)


def _paint_road(cv: Canvas, rng, lay: Layout) -> None:
    """Asphalt to the horizon with patches, lane markings (still road), crossings and tram rails."""
    cam, zn, zf = lay.cam, lay.z_near, lay.z_far + 400
    left, right = -lay.sides[0].kerb, lay.sides[1].kerb
    g = rng.uniform(68, 118)
    asphalt = np.array([g, g + rng.uniform(-2, 3), g + rng.uniform(0, 7)])
    m = cv.material(asphalt, [(T_FINE, rng.uniform(6, 12)), (T_COARSE, rng.uniform(5, 12))])
    cv.fill([ground_quad(left, right, zn, zf)], ROAD, m)
    # repaired patches and manholes: same class, different look
    for _ in range(int(rng.integers(0, 4))):
        x0 = rng.uniform(left, right - 1)
        z0 = rng.uniform(zn, 50)
        pm = cv.material(asphalt * rng.uniform(0.8, 1.15), [(T_FINE, 8), (T_BLOTCH, 6)])
        cv.fill([ground_quad(x0, min(right, x0 + rng.uniform(1, 4)), z0, z0 + rng.uniform(1, 8))], ROAD, pm)
    paint = cv.material(jitter(rng, (206, 206, 200), 8), [(T_BLOTCH, 18), (T_FINE, 6)])
    quads = []
    lw = rng.uniform(0.1, 0.16)

    def dashes(x, period, length, z0):  # the dash pattern starts behind the camera; cut at the near plane
        zs = np.arange(z0, lay.z_far, period)
        return [ground_quad(x - lw / 2, x + lw / 2, max(z, zn), z + length) for z in zs if z + length > zn]

    xs_lanes = sorted(x for x, _ in lay.lanes)
    for a, b in zip(xs_lanes[:-1], xs_lanes[1:]):
        x = (a + b) / 2
        if lay.centre_line is not None and abs(x - lay.centre_line) < 0.1:
            quads.append(ground_quad(x - lw / 2, x + lw / 2, zn, lay.z_far))
            if rng.random() < 0.3:
                quads.append(ground_quad(x + lw, x + 2 * lw, zn, lay.z_far))
        else:
            quads += dashes(x, rng.uniform(8, 12), 3.0, rng.uniform(zn - 6, zn + 3))
    if rng.random() < 0.4:
        for x in (left + 0.35, right - 0.35):
            quads.append(ground_quad(x - lw / 2, x + lw / 2, zn, lay.z_far))
    if lay.crossing is not None:
        zc, wc = lay.crossing
        quads += [ground_quad(x, x + 0.5, zc, zc + wc) for x in np.arange(left + 0.5, right - 0.5, 1.0)]
    cv.fill(quads, ROAD, paint, disjoint=True)
    if lay.tram_x is not None:  # embedded tram rails are still road
        steel = cv.material(jitter(rng, (150, 150, 152), 8), [(T_STREAK, 14)])
        groove = cv.material(asphalt * 0.45)
        for x in (lay.tram_x - 0.72, lay.tram_x + 0.72):
            cv.fill([ground_quad(x - 0.06, x + 0.06, zn, lay.z_far + 100)], ROAD, groove)
            cv.fill([ground_quad(x - 0.04, x, zn, lay.z_far + 100)], ROAD, steel)


def paint_facades(cv: Canvas, rng, lay: Layout, side: Side) -> None:
    """A row of buildings along the building line; painted far to near so end walls occlude right."""
    if not math.isfinite(side.facade):
        return
    s = side.s
    z = lay.z_near * rng.uniform(0.6, 1.0) if rng.random() < 0.85 else rng.uniform(6, 25)
    buildings = []
    while z < lay.z_far:
        length = rng.uniform(8, 30)
        if rng.random() < 0.14:  # a gap between buildings
            z += rng.uniform(3, 12)
            continue
        d = side.facade + (rng.uniform(0, 1.5) if rng.random() < 0.3 else 0.0)
        buildings.append((z, min(z + length, lay.z_far + 5), d, rng.uniform(7, 24)))
        z += length
    for z0, z1, d, hgt in reversed(buildings):
        base = jitter(rng, pick(rng, BUILDING_RGB), 12)
        wall = cv.material(base, [(T_COARSE, rng.uniform(8, 20)), (T_FINE, rng.uniform(3, 7))], dist=(z0 + z1) / 2)
        x = s * d
        depth = rng.uniform(8, 16)
        cv.fill([front_quad(x, x + s * depth, z0, 0, hgt)], BUILDING, wall, shade=side.light * 0.82)
        cv.fill([side_quad(x, z0, z1, 0, hgt)], BUILDING, wall, shade=side.light)

        def face(u, v, x=x, z0=z0):
            return xyz(x, v, z0 + u, np.shape(u))

        _windows(cv, rng, face, z1 - z0, hgt, (z0 + z1) / 2)
        cornice = cv.material(base * rng.uniform(0.6, 0.85), [(T_FINE, 4)], dist=(z0 + z1) / 2)
        cv.fill([side_quad(x, z0, z1, hgt - 0.5, hgt)], BUILDING, cornice, shade=side.light)


def paint_boundary(cv: Canvas, rng, lay: Layout, side: Side) -> None:
    """A wall, fence or hedge at the back of the sidewalk/verge."""
    if side.boundary == "none":
        return
    s, x = side.s, side.s * side.bound
    z0, z1 = side.bz
    cam = lay.cam
    if side.boundary == "wall":
        hgt = rng.uniform(0.8, 2.3)
        base = jitter(rng, pick(rng, ((150, 146, 138), (172, 160, 140), (120, 118, 116), (150, 100, 80))), 10)
        m = cv.material(base, [(T_BLOTCH, 12), (T_FINE, 7)])
        cv.fill([side_quad(x, z0, z1, 0, hgt)], WALL, m, shade=side.light)
        cv.fill([front_quad(x, x + s * 0.3, z0, 0, hgt)], WALL, m, shade=side.light * 0.8)
        joint = cv.material(base * 0.7)
        course = rng.uniform(0.25, 0.6)
        lines = [np.array([[x, y, z0], [x, y, z1]]) for y in np.arange(course, hgt, course)]
        blk = course * rng.uniform(1.5, 3.0)
        z_max = min(z1, math.sqrt(cam.f * abs(x) * blk / 4.0))
        for k, y in enumerate(np.arange(0, hgt - 1e-6, course)):
            zs = np.arange(z0 + (k % 2) * blk / 2, z_max, blk)
            lines += [np.array([[x, y, zz], [x, min(y + course, hgt), zz]]) for zz in zs]
        if lines:
            cv.lines_px(np.asarray(lines), WALL, joint, shade=side.light)
        cap = cv.material(base * 1.12)
        cv.fill([side_quad(x, z0, z1, hgt - 0.08, hgt + 0.05)], WALL, cap, shade=side.light)
    elif side.boundary == "fence":
        hgt = rng.uniform(1.0, 2.0)
        rgb = pick(rng, ((40, 52, 44), (34, 34, 36), (110, 112, 114), (120, 88, 60)))
        m = cv.material(jitter(rng, rgb, 8), [(T_FINE, 6)])
        style = pick(rng, ("bars", "mesh", "planks"))
        lines = []
        if style == "bars":
            gap = rng.uniform(0.12, 0.22)
            lines += [np.array([[x, 0.05, z], [x, hgt, z]]) for z in np.arange(z0, z1, gap)]
            width = 0.035
        elif style == "mesh":
            step = rng.uniform(0.15, 0.3)
            for z in np.arange(z0 - hgt, z1, step):
                a, b = max(z, z0), min(z + hgt, z1)
                lines.append(np.array([[x, a - z, a], [x, b - z, b]]))
                lines.append(np.array([[x, hgt - (a - z), a], [x, hgt - (b - z), b]]))
            width = 0.02
        else:
            lines += [np.array([[x, 0.0, z], [x, hgt, z]]) for z in np.arange(z0, z1, 0.16)]
            width = 0.1
        posts = [np.array([[x, 0, z], [x, hgt + 0.05, z]]) for z in np.arange(z0, z1, 2.5)]
        rails = [np.array([[x, y, z0], [x, y, z1]]) for y in (0.12, hgt - 0.05)]
        cv.stroke(lines, width, FENCE, m, shade=side.light)
        cv.stroke(posts, 0.08, FENCE, m, shade=side.light)
        cv.stroke(rails, 0.05, FENCE, m, shade=side.light)
    else:  # hedge
        hgt = rng.uniform(0.9, 1.9)
        zs = np.arange(z0, z1 + 0.5, 0.5)
        top = hgt + np.convolve(rng.normal(0, 0.12, len(zs) + 4), np.ones(5) / 5, "valid")
        poly = np.concatenate([np.stack([np.full_like(zs, x), top, zs], -1), [[x, 0, z1], [x, 0, z0]]])
        m = cv.material(jitter(rng, pick(rng, LEAF_RGB), 8), [(T_LEAF, 24), (T_BLOTCH, 6)])
        cv.fill([poly], VEGETATION, m, shade=side.light)
        cv.fill([front_quad(x, x + s * 0.8, z0, 0, hgt)], VEGETATION, m, shade=side.light * 0.85)
