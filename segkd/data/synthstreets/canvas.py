"""The pinhole camera, the canvas every painter draws on, and the per-image texture fields.

Why it exists: this is the one place that talks to OpenCV's fixed-point rasteriser and turns paint
ids into labels and colours; painters only say which polygons to fill with which label and material.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from segkd.data.labels import LABELS

# the label table's valid (non-negative) raw ids; Canvas.labels refuses anything else
_VALID_IDS = frozenset(lb.id for lb in LABELS if lb.id >= 0)

SHIFT = 3  # sub-pixel bits for cv2 drawing: smooth edges on small, far objects
_ONE = float(1 << SHIFT)

# texture channels, each an HxW field made once per image
T_NONE, T_FINE, T_BLOTCH, T_COARSE, T_CLOUD, T_SKY, T_LEAF, T_GRASS, T_STREAK = range(9)


@dataclass(frozen=True)
class Camera:
    """Pinhole camera at height ``height`` looking along +Z; X right, Y up, metres."""

    f: float
    cx: float
    cy: float  # horizon row
    height: float

    def project(self, pts) -> np.ndarray:
        pts = np.asarray(pts, np.float64)
        out = np.empty(pts.shape[:-1] + (2,))
        inv = self.f / np.maximum(pts[..., 2], 1e-3)
        out[..., 0] = self.cx + pts[..., 0] * inv
        out[..., 1] = self.cy + (self.height - pts[..., 1]) * inv
        return out

    def px(self, metres: float, z: float) -> float:
        """Pixel size of ``metres`` at depth ``z``."""
        return metres * self.f / max(z, 1e-3)


class Canvas:
    """What painters draw on: one raster of *paint ids*, resolved to label and colour at the end.

    Every fill gets a fresh paint id that records (label, material, shading); the raster keeps
    the id of the last fill covering each pixel. Painters therefore rasterise each polygon once
    (the painter's algorithm does occlusion), and the per-pixel work (label lookup, colour,
    texture, shading) happens once, vectorised, in :meth:`labels` and :meth:`render`. Because ids
    grow in painting order, a shadow only darkens what was painted before it.
    """

    def __init__(self, h: int, w: int, cam: Camera) -> None:
        self.h, self.w, self.cam = h, w, cam
        self.paint = np.zeros((h, w), np.uint16)
        self._p_label: list[int] = [0]  # paint id 0: nothing painted ("unlabeled")
        self._p_mat: list[int] = [0]
        self._p_shade: list[float] = [1.0]
        self.shadow_stamp = np.zeros((h, w), np.uint16)  # ids below the stamp are in that shadow
        self.shadow_value = np.ones((h, w), np.float32)
        self.light = np.ones((h, w), np.float32)  # cast shadows over everything, applied last
        self.haze = np.array([200.0, 205.0, 210.0])
        self.haze_dist = 400.0
        self._rgb: list[tuple[float, float, float]] = [(0.0, 0.0, 0.0)]
        self._kind: list[tuple[int, int]] = [(T_NONE, T_NONE)]
        self._amp: list[tuple[object, object, float]] = [(0.0, 0.0, 1.0)]
        # projection constants folded with cv2's fixed point and pixel-centre offset (+0.5 makes
        # the int cast round rather than truncate)
        self._f8 = cam.f * _ONE
        self._cx8 = (cam.cx - 0.5) * _ONE + 0.5
        self._cy8 = (cam.cy - 0.5) * _ONE + 0.5
        self._w8, self._h8 = w * _ONE, h * _ONE
        self._guard = 16000 * _ONE  # well inside cv2's limit (~32k px); clip beyond it
        # Scene geometry keeps |X| / Z below ~40 (nearest things ~1 m away, widest strips ~100 m out
        # at the near plane), i.e. within ~48 image widths of the centre: small images never reach
        # the guard and skip the check, which is a measurable share of the drawing time.
        self._check_guard = 48 * w * _ONE > self._guard
        self._box8 = (-2.0 * self._w8, -2.0 * self._h8, 3.0 * self._w8, 3.0 * self._h8)

    def material(self, rgb, tex: Sequence[tuple[int, object]] = (), dist: float | None = None) -> int:
        """Register a surface: base colour plus up to two (texture, amplitude) terms, faded with distance.

        Amplitudes are a scalar (grey variation) or an RGB triple (tinted variation, e.g. clouds).
        """
        r, g, b = (float(c) for c in rgb)
        (k1, a1), (k2, a2) = (tuple(tex) + ((T_NONE, 0.0), (T_NONE, 0.0)))[:2]
        fade = 1.0
        if dist is not None:  # aerial perspective: far things fade towards the haze colour
            a = 1.0 - math.exp(-max(dist, 0.0) / self.haze_dist)
            hr, hg, hb = self.haze
            r, g, b = r + (hr - r) * a, g + (hg - g) * a, b + (hb - b) * a
            fade = 1.0 - a
        self._rgb.append((r, g, b))
        self._kind.append((k1, k2))
        self._amp.append((a1, a2, fade))
        if len(self._rgb) >= 65535:
            raise RuntimeError("too many materials in one SynthStreets scene")
        return len(self._rgb) - 1

    def _amplitudes(self) -> np.ndarray:
        amp = np.empty((len(self._amp), 2, 3), np.float32)
        for i, (a1, a2, fade) in enumerate(self._amp):
            amp[i, 0] = a1
            amp[i, 1] = a2
            amp[i] *= fade
        return amp

    # ---- rasterisation
    def _project8(self, pts3d: np.ndarray) -> np.ndarray:
        """Project (..., 3) world points straight to cv2's fixed-point pixels, as floats."""
        inv = self._f8 / np.maximum(pts3d[..., 2], 1e-3)
        out = np.empty(pts3d.shape[:-1] + (2,))
        out[..., 0] = pts3d[..., 0] * inv + self._cx8
        out[..., 1] = (self.cam.height - pts3d[..., 1]) * inv + self._cy8
        return out

    def _to_int(self, pts3d: np.ndarray) -> np.ndarray:
        """Fixed-point pixels for lines (the hot path: a few numpy ops; callers keep lines on screen-ish)."""
        return self._project8(pts3d).astype(np.int32)

    def _int_polys(self, polys3d) -> list[np.ndarray]:
        """Fixed-point polygons; the rare ones reaching far off screen are clipped to a guard band,
        because cv2 overflows on coordinates beyond ~32k pixels (near ground strips, big images)."""
        if isinstance(polys3d, np.ndarray):
            pts = self._project8(polys3d)
            if pts.ndim == 2:
                pts = pts[None]
            elif len(pts) > 12:  # many small polygons (windows, pickets): drop those off screen
                x, y = pts[..., 0], pts[..., 1]
                pts = pts[(x.max(1) >= 0) & (x.min(1) < self._w8) & (y.max(1) >= 0) & (y.min(1) < self._h8)]
            if not self._check_guard or len(pts) == 0 or np.abs(pts).max() < self._guard:
                return list(pts.astype(np.int32))
        else:
            pts = [self._project8(np.asarray(p, np.float64)) for p in polys3d]
            if not self._check_guard or max(float(np.abs(p).max()) for p in pts) < self._guard:
                return [p.astype(np.int32) for p in pts]
        clipped = (_clip_polygon(p, self._box8) for p in pts)
        return [p.astype(np.int32) for p in clipped if len(p) >= 3]

    @staticmethod
    def _int_polys2(polys2d) -> list[np.ndarray]:
        return [np.round((np.asarray(p, np.float64) - 0.5) * _ONE).astype(np.int32).reshape(-1, 2) for p in polys2d]

    def _paint_id(self, label: int, mat: int, shade: float) -> int:
        self._p_label.append(label)
        self._p_mat.append(mat)
        self._p_shade.append(shade)
        if len(self._p_label) >= 65535:
            raise RuntimeError("too many fills in one SynthStreets scene")
        return len(self._p_label) - 1

    def _raster(self, pts: list[np.ndarray], label: int, mat: int, shade: float, disjoint: bool) -> None:
        # cv2.fillPoly treats several contours as one shape with the even-odd rule, so overlapping
        # polygons (blobs of a crown, limbs meeting at a knee) must be filled one by one
        if not pts:
            return
        pid = self._paint_id(label, mat, shade)
        if disjoint or len(pts) == 1:
            cv2.fillPoly(self.paint, pts, pid, cv2.LINE_8, SHIFT)
        else:
            for p in pts:
                cv2.fillPoly(self.paint, [p], pid, cv2.LINE_8, SHIFT)

    def _raster_lines(self, pts: list[np.ndarray], t: int, label: int, mat: int, shade: float, closed: bool) -> None:
        cv2.polylines(self.paint, pts, closed, self._paint_id(label, mat, shade), t, cv2.LINE_8, SHIFT)

    def fill(self, polys3d, label: int, mat: int, shade: float = 1.0, disjoint: bool = False) -> None:
        """Fill 3-D polygons: one (k,3) array, a list of them, or a stacked (n,k,3) array.

        ``disjoint=True`` promises the polygons do not overlap (window grids, lane dashes), which
        lets cv2 draw them all in one call.
        """
        if len(polys3d):
            self._raster(self._int_polys(polys3d), label, mat, shade, disjoint)

    def fill2(self, polys2d, label: int, mat: int, shade: float = 1.0) -> None:
        """Fill polygons given in image coordinates (frame effects: sky, bonnet, border)."""
        if len(polys2d):
            self._raster(self._int_polys2(polys2d), label, mat, shade, False)

    def stroke(self, lines3d, width_m: float, label: int, mat: int, shade: float = 1.0, closed=False) -> None:
        """Polylines whose pixel width follows each line's mean depth (grouped so cv2 is called rarely)."""
        if len(lines3d) == 0:
            return
        if not isinstance(lines3d, np.ndarray):
            if len({np.shape(p) for p in lines3d}) > 1:
                for p in lines3d:
                    self.stroke(np.asarray(p, np.float64)[None], width_m, label, mat, shade, closed)
                return
            lines3d = np.asarray(lines3d, np.float64)
        depth = np.maximum(lines3d[:, :, 2].mean(1), 1e-3)
        widths = np.maximum(1, np.round(width_m * self.cam.f / depth)).astype(int)
        pts = self._to_int(lines3d)
        for t in np.unique(widths):
            self._raster_lines(list(pts[widths == t]), int(t), label, mat, shade, closed)

    def lines_px(self, lines3d: np.ndarray, label: int, mat: int, shade: float = 1.0) -> None:
        """One-pixel lines (paving joints, mortar): stacked (n,2,3) array."""
        if len(lines3d):
            self._raster_lines(list(self._to_int(np.asarray(lines3d, np.float64))), 1, label, mat, shade, False)

    def shadow(self, polys3d, value: float) -> None:
        """Darken whatever is already there (contact shadows); later paint covers it again."""
        pts = self._int_polys(polys3d)
        if not pts:
            return
        cv2.fillPoly(self.shadow_stamp, pts, len(self._p_label), cv2.LINE_8, SHIFT)
        cv2.fillPoly(self.shadow_value, pts, float(value), cv2.LINE_8, SHIFT)

    def labels(self) -> np.ndarray:
        """Raw Cityscapes ids per pixel (checked against the label table: a bad id is a bug here)."""
        bad = set(self._p_label) - _VALID_IDS
        if bad:
            raise AssertionError(f"SynthStreets painted ids {sorted(bad)} that are not Cityscapes label ids")
        return np.asarray(self._p_label, np.uint8)[self.paint]

    def render(self, tex: np.ndarray) -> np.ndarray:
        """Colour every pixel from its paint: base + texture terms, times shading (float32 HxWx3)."""
        h, w = self.h, self.w
        pid = self.paint.ravel().astype(np.intp)
        pmat = np.asarray(self._p_mat, np.intp)  # per paint id tables: one gather per pixel each
        shade = np.asarray(self._p_shade, np.float32)[pid]
        shade *= np.where(pid < self.shadow_stamp.ravel(), self.shadow_value.ravel(), np.float32(1))
        shade *= self.light.ravel()
        kind = np.asarray(self._kind, np.intp)[pmat] * (h * w)
        amp = self._amplitudes()[pmat]
        flat = tex.reshape(-1)
        pix = np.arange(h * w)
        out = np.asarray(self._rgb, np.float32)[pmat][pid]
        for j in range(2):
            out += flat[kind[:, j][pid] + pix][:, None] * amp[:, j][pid]
        out *= shade[:, None]
        return out.reshape(h, w, 3)


def _clip_polygon(poly: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """Sutherland-Hodgman clip of a 2-D polygon to an axis-aligned box (exact: no shape change on screen)."""
    pts = [tuple(p) for p in poly]
    for axis, bound, keep_below in ((0, box[0], False), (1, box[1], False), (0, box[2], True), (1, box[3], True)):
        if not pts:
            break
        inside = [(p[axis] <= bound) if keep_below else (p[axis] >= bound) for p in pts]
        out = []
        for k, (p, p_in) in enumerate(zip(pts, inside)):
            q, q_in = pts[k - 1], inside[k - 1]
            if p_in != q_in:  # the edge q->p crosses the boundary
                t = (bound - q[axis]) / (p[axis] - q[axis])
                out.append((q[0] + t * (p[0] - q[0]), q[1] + t * (p[1] - q[1])))
            if p_in:
                out.append(p)
        pts = out
    return np.asarray(pts, np.float64).reshape(-1, 2) if len(pts) >= 3 else np.zeros((0, 2))


def textures(rng: np.random.Generator, h: int, w: int, horizon: float) -> np.ndarray:
    """The per-image texture fields (unit-ish amplitude) that materials mix in, stacked (K,H,W)."""
    s = max(w / 256.0, 0.25)
    f32 = np.float32

    def smooth(cell_y: float, cell_x: float) -> np.ndarray:
        gh = max(2, min(h, int(h / (cell_y * s)) + 2))
        gw = max(2, min(w, int(w / (cell_x * s)) + 2))
        # bilinear: 5x cheaper than bicubic; its faint grid vanishes under texture amplitudes and blur
        n = cv2.resize(rng.standard_normal((gh, gw), dtype=f32), (w, h), interpolation=cv2.INTER_LINEAR)
        return n * f32(1.0 / (n[::3, ::3].std() + 1e-6))

    tex = np.empty((9, h, w), f32)
    tex[T_NONE] = 0
    # uniform white noise is 3x cheaper to draw than normal and looks the same once blurred
    fine = cv2.GaussianBlur(rng.random((h, w), dtype=f32), (0, 0), 0.55 * s)
    fine -= f32(0.5)
    fine *= f32(1.0 / (fine[::3, ::3].std() + 1e-6))
    tex[T_FINE] = fine
    tex[T_BLOTCH] = smooth(3, 3)
    tex[T_COARSE] = smooth(14, 14)
    cloud = f32(0.75) * smooth(9, 28) + f32(0.35) * smooth(3, 8)
    tex[T_CLOUD] = np.clip((cloud - f32(rng.uniform(0.0, 1.2))) * f32(0.7), 0, 1)
    tex[T_SKY] = np.clip(np.arange(h, dtype=f32) / f32(max(horizon, 1.0)), 0, 1.3)[:, None]
    leaf = f32(0.8) * smooth(1.6, 1.6) + f32(0.55) * fine + f32(0.4) * tex[T_BLOTCH]
    tex[T_LEAF] = np.clip(leaf, -1, 1, out=leaf)  # saturated clumps of light and shadow
    tex[T_GRASS] = f32(0.7) * smooth(3.0, 0.8) + f32(0.5) * fine
    tex[T_STREAK] = smooth(0.8, 6.0)
    return tex
