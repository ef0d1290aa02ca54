"""Frame effects, applied once the scene is painted: the camera car's bonnet and rectification
borders (ignored labels, as in Cityscapes), a cast shadow that darkens without relabelling, and the
camera's photometric changes (saturation, exposure, colour cast, blur, sensor noise).

Why it exists: these act on the whole frame rather than on one object, and the last one works on
the rendered colours instead of the canvas.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from segkd.data.synthstreets.canvas import SHIFT, T_COARSE, T_STREAK, Canvas
from segkd.data.synthstreets.layout import Layout
from segkd.data.synthstreets.palette import BORDER, EGO, jitter, pick


def paint_ego_hood(cv: Canvas, rng) -> None:
    """The camera car's bonnet at the bottom, labelled 'ego vehicle' (ignored), as in Cityscapes."""
    h, w = cv.h, cv.w
    xs = np.linspace(-0.05 * w, 1.05 * w, 25)
    base, bulge, xc = h * rng.uniform(0.03, 0.06), h * rng.uniform(0.01, 0.035), w * rng.uniform(0.4, 0.6)
    top = h - base - bulge * np.clip(1 - ((xs - xc) / (0.7 * w)) ** 2, 0, 1)
    poly = np.concatenate([np.stack([xs, top], -1), [[1.05 * w, h + 2], [-0.05 * w, h + 2]]])
    paint = jitter(rng, pick(rng, ((30, 30, 34), (60, 62, 66), (150, 152, 156), (28, 36, 60))), 6)
    cv.fill2([poly], EGO, cv.material(paint, [(T_COARSE, 18), (T_STREAK, 10)]))
    glare = np.concatenate([np.stack([xs, top + 1], -1), np.stack([xs[::-1], top[::-1] + 0.3 * (h - top[::-1])], -1)])
    cv.fill2([glare], EGO, cv.material(paint * 0.6 + cv.haze * 0.35, [(T_STREAK, 12)]))


def paint_border(cv: Canvas, rng) -> None:
    """Thin black 'rectification border' strips at some edges (ignored, as in Cityscapes)."""
    h, w = cv.h, cv.w
    m = cv.material((4, 4, 4))
    b = max(1.0, rng.uniform(0.004, 0.014) * w)
    polys = []
    if rng.random() < 0.7:
        polys.append(np.array([[0, 0], [b, 0], [b * rng.uniform(0.5, 2.5), h + 1], [0, h + 1]]))
    if rng.random() < 0.7 or not polys:
        polys.append(np.array([[w + 1, 0], [w - b, 0], [w - b * rng.uniform(0.5, 2.5), h + 1], [w + 1, h + 1]]))
    if rng.random() < 0.3:
        polys.append(np.array([[0, h + 1], [w + 1, h + 1], [w + 1, h - b], [0, h - b * 0.5]]))
    cv.fill2(polys, BORDER, m)


def cast_shadow(cv: Canvas, rng, lay: Layout) -> None:
    """Sunlight blocked by one side's buildings: a stepped dark band over sidewalk and road.

    It only darkens (labels are untouched), so the model must learn that a shadowed road is
    still road.
    """
    side = pick(rng, lay.sides)
    s = side.s
    outer = (side.facade if math.isfinite(side.facade) else side.bound) + 1.0
    far_kerb = lay.sides[0 if s > 0 else 1].kerb
    n = 8  # roof line steps along the street
    cuts = np.sort(rng.uniform(lay.z_near, lay.z_far, n - 1))
    z = np.concatenate([[lay.z_near * 0.5], np.repeat(cuts, 2), [lay.z_far + 40]])
    reach = (outer + far_kerb) * np.clip(rng.uniform(0.25, 0.9) + rng.normal(0, 0.12, n), 0.05, 1.0)
    edge = s * (outer - np.repeat(reach, 2))
    poly = np.concatenate([np.stack([edge, np.zeros(2 * n), z], -1),
                           [[s * outer, 0, lay.z_far + 40], [s * outer, 0, lay.z_near * 0.5]]])
    mask = np.zeros((cv.h, cv.w), np.uint8)
    pts = cv._int_polys([poly])
    if pts:
        cv2.fillPoly(mask, pts, 1, cv2.LINE_8, SHIFT)
    cv.light[mask > 0] *= rng.uniform(0.5, 0.72)


def photometric(rng, img: np.ndarray) -> np.ndarray:
    """Per-image saturation, vignetting, exposure, colour cast, gamma, contrast, blur and sensor noise.

    Tone changes go through one 256-entry lookup table per channel: same effect as float maths,
    a fraction of the cost.
    """
    h, w = img.shape[:2]
    f32 = np.float32
    sat = rng.uniform(0.6, 1.0)
    grey = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    x = cv2.addWeighted(img, sat, grey, 1.0 - sat, 0.0)
    yy, xx = np.ogrid[:h, :w]
    r2 = (((yy - h / 2) / (h / 2)) ** 2 + ((xx - w / 2) / (w / 2)) ** 2).astype(f32)
    x *= (1 - f32(rng.uniform(0, 0.09)) * r2)[..., None]
    np.clip(x, 0, 255, out=x)
    x8 = cv2.convertScaleAbs(x)
    gains = rng.uniform(0.72, 1.18) * (1 + rng.normal(0, 0.04, 3))
    gamma, contrast = rng.uniform(0.8, 1.25), rng.uniform(0.85, 1.15)
    levels = np.arange(256) / 255.0
    lut = np.empty((1, 256, 3))
    for c in range(3):
        t = np.clip(levels * gains[c], 0, 1) ** gamma
        lut[0, :, c] = (t - 0.45) * contrast + 0.45
    x8 = cv2.LUT(x8, np.clip(np.rint(lut * 255), 0, 255).astype(np.uint8))
    x8 = cv2.GaussianBlur(x8, (0, 0), rng.uniform(0.35, 0.85) * max(w / 256, 0.5))
    sigma = rng.uniform(1.0, 4.0)  # luminance noise; uniform draws are cheap and look the same
    noise = np.rint((rng.random((h, w), dtype=f32) - f32(0.5)) * f32(sigma * 3.46)).astype(np.int16)
    return np.clip(x8.astype(np.int16) + noise[..., None], 0, 255).astype(np.uint8)
