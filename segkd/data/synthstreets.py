"""SynthStreets: procedurally generated driving scenes, written in the Cityscapes layout on first use.

Why it exists: the project must train and test end to end on a machine with no dataset and no
network, and a dataset of random blobs would not show whether distillation helps. These scenes
are built to be *learnable but not trivial*: a perspective street (road, sidewalks with kerbs,
verges, buildings, walls, fences, trees, sky) populated with vehicles, people, riders, poles,
traffic lights and signs, with Cityscapes-like class imbalance, occlusion, texture, lighting
changes, blur and sensor noise. Look-alike classes (road/sidewalk, vegetation/terrain,
person/rider, car/truck/bus) differ only by texture, shape and context, so a larger model has
something to gain over a tiny one.

Why the Cityscapes layout with *raw* label ids: the data is read back by the project's real
Cityscapes loader, so the default run exercises exactly the code path real data takes, including
the raw-id -> train-id mapping and ignored ids (ego vehicle, rectification border, static, ...).

Why the generation details are what they are:

* every image is a pure function of ``(seed, split, index, height, width)``, so datasets are
  reproducible byte for byte and a small dataset is a prefix of a larger one;
* the dataset is written to a temporary sibling directory and renamed into place, and the
  manifest (``synthstreets.json``) is the completeness marker, so an interrupted run never
  leaves something that looks like a finished dataset;
* objects live in a simple 3-D world (metres, pinhole camera), so size, position and occlusion
  follow perspective: everything is projected and painted far to near;
* drawing is a few OpenCV polygon fills per object into one raster of "paint ids"; label,
  colour, texture and shading are looked up once per pixel at the end, vectorised, so hundreds
  of images take seconds.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from segkd.data.labels import ID_BY_NAME, LABELS

__all__ = [
    "GENERATOR_VERSION",
    "MANIFEST_NAME",
    "TRAIN_CITIES",
    "VAL_CITIES",
    "ensure_synthstreets",
    "generate_synthstreets",
    "image_stem",
    "render_synthstreets_image",
]

logger = logging.getLogger("segkd.data.synthstreets")

#: Bump whenever the pictures or labels change, so stale caches are refused instead of reused.
GENERATOR_VERSION = 1
MANIFEST_NAME = "synthstreets.json"
#: Invented city names; val uses other cities, as Cityscapes does.
TRAIN_CITIES: tuple[str, ...] = ("synthberg", "procville", "noisendorf")
VAL_CITIES: tuple[str, ...] = ("pixelheim", "rasterburg")
_SPLITS = {"train": (1, TRAIN_CITIES), "val": (2, VAL_CITIES)}
_FRAME = 19  # Cityscapes' annotated frame number
# Sensor noise makes the photos compress poorly (~40%), so they are stored uncompressed: twice as
# fast to write and to decode in every training epoch. Label maps compress ~20x at level 1.
_PNG_IMAGE = [cv2.IMWRITE_PNG_COMPRESSION, 0]
_PNG_LABEL = [cv2.IMWRITE_PNG_COMPRESSION, 1]

# Raw Cityscapes ids (never train ids: the loader must do the mapping).
ROAD, SIDEWALK, BUILDING, WALL, FENCE = (ID_BY_NAME[n] for n in ("road", "sidewalk", "building", "wall", "fence"))
POLE, LIGHT, SIGN = ID_BY_NAME["pole"], ID_BY_NAME["traffic light"], ID_BY_NAME["traffic sign"]
VEGETATION, TERRAIN, SKY = ID_BY_NAME["vegetation"], ID_BY_NAME["terrain"], ID_BY_NAME["sky"]
PERSON, RIDER, CAR, TRUCK, BUS = (ID_BY_NAME[n] for n in ("person", "rider", "car", "truck", "bus"))
TRAIN, MOTORCYCLE, BICYCLE = ID_BY_NAME["train"], ID_BY_NAME["motorcycle"], ID_BY_NAME["bicycle"]
EGO, BORDER = ID_BY_NAME["ego vehicle"], ID_BY_NAME["rectification border"]
STATIC, DYNAMIC, GROUND = ID_BY_NAME["static"], ID_BY_NAME["dynamic"], ID_BY_NAME["ground"]
_VALID_IDS = frozenset(lb.id for lb in LABELS if lb.id >= 0)


# =============================================================================== public API


def image_stem(split: str, index: int) -> tuple[str, str]:
    """``(city, stem)`` of image ``index``; a function of the index alone, so prefixes stay stable."""
    cities = _SPLITS[split][1]
    city = cities[index % len(cities)]
    return city, f"{city}_{index // len(cities):06d}_{_FRAME:06d}"


def render_synthstreets_image(
    seed: int, split: str, index: int, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """One scene as ``(RGB uint8 HxWx3, raw-id uint8 HxW)``; depends only on its arguments."""
    code = _SPLITS[split][0]
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), code, int(index)]))
    return _compose_scene(rng, int(height), int(width))


def generate_synthstreets(
    root: str | os.PathLike,
    num_train: int = 300,
    num_val: int = 61,
    height: int = 128,
    width: int = 256,
    seed: int = 0,
) -> Path:
    """Write SynthStreets under ``root`` (which must not exist, or be an empty directory).

    The files go to a temporary sibling first; the manifest is written last and the directory is
    renamed into place, so ``root`` either holds a complete dataset or nothing.
    """
    params = _params(num_train, num_val, height, width, seed)
    root = Path(root).expanduser()
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root} already exists and is not empty; generate_synthstreets never overwrites")
    root.parent.mkdir(parents=True, exist_ok=True)
    stale = sorted(root.parent.glob(f".{root.name}.partial-*"))
    if stale:
        logger.warning("ignoring %d partial SynthStreets dir(s) next to %s, left by an interrupted or concurrent run: "
                       "%s (delete them once no generation is running)", len(stale), root.name,
                       ", ".join(p.name for p in stale))
    start = time.perf_counter()
    # not tempfile.mkdtemp: its 0700 mode would survive the rename and hide the data from other users
    tmp = root.parent / f".{root.name}.partial-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        for split, count in (("train", num_train), ("val", num_val)):
            for index in range(count):
                rgb, label = render_synthstreets_image(seed, split, index, height, width)
                _write_pair(tmp, split, index, rgb, label)
        (tmp / MANIFEST_NAME).write_text(json.dumps(params, indent=2, sort_keys=True) + "\n")
        _commit(tmp, root, params)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("generated SynthStreets: %d train + %d val images (%dx%d, seed %d) in %.1f s at %s",
                num_train, num_val, height, width, seed, time.perf_counter() - start, root)
    return root


def ensure_synthstreets(
    root: str | os.PathLike,
    num_train: int = 300,
    num_val: int = 61,
    height: int = 128,
    width: int = 256,
    seed: int = 0,
) -> Path:
    """Return ``root`` holding SynthStreets made with these parameters, generating it if absent.

    A directory made with other parameters (or by another generator version) is refused rather
    than silently reused or overwritten: either would make runs quietly incomparable.
    """
    params = _params(num_train, num_val, height, width, seed)
    root = Path(root).expanduser()
    manifest = root / MANIFEST_NAME
    if manifest.is_file():
        found = _read_manifest(manifest)
        if found == params:
            return root
        raise ValueError(
            f"{root} holds SynthStreets made with other parameters ({_describe_diff(found, params)}); "
            "delete that directory or choose another root."
        )
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ValueError(
            f"{root} exists and is not empty but has no {MANIFEST_NAME}, so it is not a finished SynthStreets "
            "dataset; delete it or choose another root."
        )
    return generate_synthstreets(root, num_train, num_val, height, width, seed)


def _params(num_train, num_val, height, width, seed) -> dict:
    """Validated parameters plus the generator version: exactly what the manifest stores and compares."""
    values = {"num_train": num_train, "num_val": num_val, "height": height, "width": width, "seed": seed}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"SynthStreets {name} must be an int, got {value!r}")
    if num_train < 1 or num_val < 0:
        raise ValueError(f"SynthStreets needs num_train >= 1 and num_val >= 0, got {num_train} and {num_val}")
    if height < 32 or width < 32:
        raise ValueError(f"SynthStreets images must be at least 32x32, got {height}x{width}")
    if seed < 0:
        raise ValueError(f"SynthStreets seed must be >= 0, got {seed}")
    return {**{k: int(v) for k, v in values.items()}, "version": GENERATOR_VERSION}


def _read_manifest(path: Path) -> dict:
    """The manifest as a dict; an unreadable one is reported as such rather than as a mismatch."""
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is unreadable ({err}); delete {path.parent} or choose another root.") from err
    return found if isinstance(found, dict) else {}


def _describe_diff(found: dict, wanted: dict) -> str:
    """Which parameters differ, so the error says what the cached dir was made with."""
    keys = sorted(set(found) | set(wanted))
    diffs = [f"{k}={found.get(k)!r} there, {wanted.get(k)!r} requested" for k in keys if found.get(k) != wanted.get(k)]
    return "; ".join(diffs) or "unrecognised manifest"


def _write_pair(root: Path, split: str, index: int, rgb: np.ndarray, label: np.ndarray) -> None:
    """One image (PNG, converted to cv2's BGR order) and its raw-id label map, Cityscapes names."""
    city, stem = image_stem(split, index)
    image_dir = root / "leftImg8bit" / split / city
    label_dir = root / "gtFine" / split / city
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    ok = cv2.imwrite(str(image_dir / f"{stem}_leftImg8bit.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), _PNG_IMAGE)
    ok &= cv2.imwrite(str(label_dir / f"{stem}_gtFine_labelIds.png"), label, _PNG_LABEL)
    if not ok:
        raise OSError(f"could not write SynthStreets image {stem} under {root}")


def _commit(tmp: Path, root: Path, params: dict) -> None:
    """Rename the finished temporary dir to ``root``; tolerate a concurrent identical generator."""
    if root.is_dir() and not any(root.iterdir()):
        root.rmdir()
    try:
        os.rename(tmp, root)
    except OSError:
        manifest = root / MANIFEST_NAME
        if manifest.is_file() and _read_manifest(manifest) == params:
            shutil.rmtree(tmp, ignore_errors=True)  # another process (e.g. a DDP rank) finished first
            return
        raise


# =============================================================================== camera and canvas

_SHIFT = 3  # sub-pixel bits for cv2 drawing: smooth edges on small, far objects
_ONE = float(1 << _SHIFT)

# texture channels, each an HxW field made once per image
T_NONE, T_FINE, T_BLOTCH, T_COARSE, T_CLOUD, T_SKY, T_LEAF, T_GRASS, T_STREAK = range(9)


@dataclass(frozen=True)
class _Camera:
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


class _Canvas:
    """What painters draw on: one raster of *paint ids*, resolved to label and colour at the end.

    Every fill gets a fresh paint id that records (label, material, shading); the raster keeps
    the id of the last fill covering each pixel. Painters therefore rasterise each polygon once
    (the painter's algorithm does occlusion), and the per-pixel work (label lookup, colour,
    texture, shading) happens once, vectorised, in :meth:`labels` and :meth:`render`. Because ids
    grow in painting order, a shadow only darkens what was painted before it.
    """

    def __init__(self, h: int, w: int, cam: _Camera) -> None:
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
            cv2.fillPoly(self.paint, pts, pid, cv2.LINE_8, _SHIFT)
        else:
            for p in pts:
                cv2.fillPoly(self.paint, [p], pid, cv2.LINE_8, _SHIFT)

    def _raster_lines(self, pts: list[np.ndarray], t: int, label: int, mat: int, shade: float, closed: bool) -> None:
        cv2.polylines(self.paint, pts, closed, self._paint_id(label, mat, shade), t, cv2.LINE_8, _SHIFT)

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
        cv2.fillPoly(self.shadow_stamp, pts, len(self._p_label), cv2.LINE_8, _SHIFT)
        cv2.fillPoly(self.shadow_value, pts, float(value), cv2.LINE_8, _SHIFT)

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


def _textures(rng: np.random.Generator, h: int, w: int, horizon: float) -> np.ndarray:
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


# =============================================================================== geometry helpers


def _ground_quad(x0, x1, z0, z1, y=0.0) -> np.ndarray:
    """Horizontal quad at height y (road, sidewalk, verge strips, car roofs and shadows)."""
    return np.array([[x0, y, z0], [x1, y, z0], [x1, y, z1], [x0, y, z1]], np.float64)


def _side_quad(x, z0, z1, y0, y1) -> np.ndarray:
    """Vertical plane X = x; corners ordered (u along +Z, v up)."""
    return np.array([[x, y0, z0], [x, y0, z1], [x, y1, z1], [x, y1, z0]], np.float64)


def _front_quad(x0, x1, z, y0, y1) -> np.ndarray:
    """Vertical plane Z = z, facing the camera; corners ordered (u along +X, v up)."""
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], np.float64)


def _sub_quads(q: np.ndarray, u0, u1, v0, v1) -> np.ndarray:
    """Parts [u0,u1]x[v0,v1] (fractions) of the planar quad ``q`` = [p00, p10, p11, p01]; (n,4,3).

    The u/v arguments are scalars or equal-length sequences (several parts in one call).
    """
    n = max(np.size(u0), np.size(u1), np.size(v0), np.size(v1))
    uv = np.empty((n, 4, 2))
    uv[:, 0, 0] = uv[:, 3, 0] = u0
    uv[:, 1, 0] = uv[:, 2, 0] = u1
    uv[:, 0, 1] = uv[:, 1, 1] = v0
    uv[:, 2, 1] = uv[:, 3, 1] = v1
    p00, p10, p11, p01 = q
    u, v = uv[..., :1], uv[..., 1:]
    return p00 + u * (p10 - p00) + v * (p01 - p00) + (u * v) * (p11 - p10 - p01 + p00)


@functools.lru_cache(maxsize=None)
def _circle(n: int = 16) -> np.ndarray:
    """Unit circle as an n-gon (cached and read-only: wheels and lamps ask for it constantly)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    out = np.stack([np.cos(t), np.sin(t)], -1)
    out.flags.writeable = False
    return out


_BLOB_N = 22
_BLOB_T = np.linspace(0, 2 * np.pi, _BLOB_N, endpoint=False)
_BLOB_K = np.arange(2, 8)
_BLOB_SIN = np.sin(_BLOB_K[:, None] * _BLOB_T)
_BLOB_COS = np.cos(_BLOB_K[:, None] * _BLOB_T)
_BLOB_UNIT = np.stack([np.cos(_BLOB_T), np.sin(_BLOB_T)], -1)


def _blobs(rng: np.random.Generator, n: int, rough: float = 0.25) -> np.ndarray:
    """n unit circles with lumpy outlines (crowns, bushes): a few random low harmonics; (n, 22, 2)."""
    coef = rng.normal(0, 1, (n, 2, len(_BLOB_K))) * (rough / _BLOB_K)
    r = 1 + coef[:, 0] @ _BLOB_SIN + coef[:, 1] @ _BLOB_COS + rng.normal(0, rough * 0.25, (n, _BLOB_N))
    return _BLOB_UNIT * np.clip(r, 0.55, 1.5)[..., None]


class _Frame:
    """A local vertical plane at (X, Z): local (a, y) -> world, with a rotated about the vertical."""

    def __init__(self, X: float, Z: float, heading: float = 0.0) -> None:
        self.X, self.Z = X, Z
        self.c, self.s = math.cos(heading), math.sin(heading)

    def __call__(self, pts) -> np.ndarray:
        pts = np.asarray(pts, np.float64)
        out = np.empty(pts.shape[:-1] + (3,))
        a = pts[..., 0]
        out[..., 0] = self.X + a * self.c
        out[..., 1] = pts[..., 1]
        out[..., 2] = self.Z + a * self.s
        return out


def _rect2(a0: float, y0: float, a1: float, y1: float) -> np.ndarray:
    """Axis-aligned rectangle in a local 2-D frame, corners in fill order."""
    return np.array([[a0, y0], [a1, y0], [a1, y1], [a0, y1]], np.float64)


def _limb(p, q, width: float) -> np.ndarray:
    """A quad of the given width from p to q (local 2-D)."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    d = q - p
    n = np.array([-d[1], d[0]]) / (np.hypot(*d) + 1e-9) * width / 2
    return np.array([p + n, q + n, q - n, p - n])


def _pick(rng: np.random.Generator, seq):
    """Uniform choice from a sequence (rng.choice would turn tuples of colours into arrays)."""
    return seq[int(rng.integers(len(seq)))]


def _jitter(rng: np.random.Generator, rgb, amount: float = 10.0) -> np.ndarray:
    """Per-instance colour: shared brightness shift plus a per-channel one (plain Python: it is hot)."""
    dr, dg, db, d = rng.normal(0, amount, 4).tolist()
    r, g, b = rgb
    return np.array([min(255.0, max(0.0, c + dc + d)) for c, dc in ((r, dr), (g, dg), (b, db))])


# photographic colours (deliberately not the Cityscapes palette)
_BUILDING_RGB = ((196, 182, 158), (214, 204, 182), (150, 148, 144), (148, 88, 68), (206, 190, 142),
                 (200, 172, 160), (222, 220, 212), (106, 104, 106), (176, 150, 114), (170, 176, 170), (128, 112, 98))
_CAR_RGB = ((232, 232, 228), (190, 192, 195), (120, 122, 126), (28, 28, 32), (34, 44, 76), (150, 32, 30),
            (66, 76, 92), (196, 186, 160), (42, 62, 48), (26, 68, 140), (90, 92, 96))
_CLOTH_RGB = ((30, 32, 40), (52, 54, 60), (92, 92, 96), (40, 52, 84), (182, 170, 150), (112, 40, 46),
              (72, 82, 60), (205, 205, 205), (62, 82, 124), (142, 102, 72), (160, 60, 40), (30, 70, 60))
_SKIN_RGB = ((228, 192, 164), (206, 166, 136), (166, 120, 92), (112, 80, 60))
_HAIR_RGB = ((30, 24, 20), (72, 52, 36), (150, 122, 82), (122, 122, 122), (196, 176, 128))
_LEAF_RGB = ((52, 74, 38), (64, 88, 44), (44, 62, 40), (76, 96, 52), (58, 70, 34))
_TRUCK_CAB_RGB = ((230, 230, 226), (160, 30, 30), (30, 60, 130), (200, 200, 200), (60, 90, 60))
_TRUCK_BOX_RGB = ((225, 225, 222), (200, 200, 200), (140, 140, 140), (40, 80, 140), (190, 160, 60))
_BUS_RGB = ((232, 230, 222), (226, 196, 40), (180, 36, 36), (40, 90, 160), (220, 220, 210))
_BIKE_RGB = ((30, 30, 34), (160, 30, 30), (40, 70, 140), (200, 200, 200), (60, 100, 60))


# =============================================================================== scene layout


@dataclass
class _Side:
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
class _Layout:
    """Everything the painters need to agree on: camera, street cross-section, lanes, weather."""

    cam: _Camera
    h: int
    w: int
    z_near: float
    z_far: float
    sides: tuple[_Side, _Side]
    lane_w: float
    lanes: list[tuple[float, bool]]  # (centre X, oncoming)
    centre_line: float | None
    tram_x: float | None
    crossing: tuple[float, float] | None
    sunny: bool
    kerb_h: float = 0.12


def _sample_side(rng: np.random.Generator, s: int, kerb: float, parking: bool, lay_far: float, z_near: float) -> _Side:
    """Random cross-section of one side: sidewalk, optional verge and boundary, building line."""
    kind = _pick(rng, ("urban",) * 13 + ("park",) * 4 + ("open",) * 3)
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
    return _Side(s, kind, kerb, walk, verge, boundary, bz, facade, parking, trees, 1.0)


def _sample_layout(rng: np.random.Generator, h: int, w: int) -> _Layout:
    """Camera (horizon height, vanishing point, focal length) and the street's cross-section."""
    f = w * rng.uniform(0.95, 1.2)
    cy = h * rng.uniform(0.36, 0.5)
    cam = _Camera(f=f, cx=w * rng.uniform(0.38, 0.62), cy=cy, height=rng.uniform(1.3, 1.65))
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
        tram_x = _pick(rng, [x for x, _ in lanes if x <= 0])
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
    return _Layout(cam, h, w, z_near, z_far, sides, lane_w, lanes, centre, tram_x, crossing, sunny)


# =============================================================================== painters: background


def _paint_sky(cv: _Canvas, rng: np.random.Generator, lay: _Layout) -> None:
    """Sky over the whole frame first: blue or overcast, lighter towards the horizon, with clouds."""
    if lay.sunny:
        zenith = _jitter(rng, (92, 138, 196), 10)
        haze = _jitter(rng, (196, 206, 216), 6)
        cloud = np.array([238.0, 238.0, 236.0])
        cloudiness = rng.uniform(0.3, 1.0)
    else:  # overcast: bright, flat, low contrast
        zenith = _jitter(rng, (172, 178, 186), 8)
        haze = zenith + rng.uniform(10, 30)
        cloud = zenith + rng.uniform(-30, 25)
        cloudiness = rng.uniform(0.4, 1.0)
    cv.haze = np.clip(haze, 0, 255)
    cv.haze_dist = rng.uniform(250, 600)
    m = cv.material(zenith, [(T_SKY, haze - zenith), (T_CLOUD, (cloud - zenith) * cloudiness)])
    cv.fill2([np.array([[0, 0], [cv.w + 1, 0], [cv.w + 1, cv.h + 1], [0, cv.h + 1]], np.float64)], SKY, m)


def _windows(cv: _Canvas, rng, face_pts: Callable, length: float, height: float, dist: float, ground_floor=True):
    """A window grid on a facade given by face_pts(u_metres, v_metres) -> 3-D point arrays."""
    bay = rng.uniform(2.4, 3.8)
    ww = bay * rng.uniform(0.35, 0.6)
    gf = rng.uniform(3.2, 4.5)
    fh = rng.uniform(2.9, 3.4)
    wh = fh * rng.uniform(0.4, 0.6)
    nb = int((length - 0.8) // bay)
    nf = int((height - gf - 0.8) // fh)
    glass = cv.material(_jitter(rng, (46, 54, 64), 10), [(T_COARSE, rng.uniform(14, 30)), (T_STREAK, 6)], dist=dist)
    if nb >= 1 and nf >= 1:
        u0 = (length - nb * bay) / 2 + (bay - ww) / 2 + np.arange(nb) * bay
        v0 = gf + np.arange(nf) * fh + (fh - wh) * 0.55
        U0, V0 = np.meshgrid(u0, v0)
        U0, V0 = U0.ravel(), V0.ravel()
        if rng.random() < 0.6:  # light frames/sills around the glass
            frame = cv.material(_jitter(rng, (215, 212, 205), 12), [(T_FINE, 4)], dist=dist)
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
        door = glass if shop else cv.material(_jitter(rng, (60, 48, 40), 12), dist=dist)
        cv.fill(_rects(face_pts, u0, u1, v0, v1), BUILDING, door, disjoint=True)


def _xyz(x, y, z, shape) -> np.ndarray:
    """Stack broadcastable coordinates into (*shape, 3) points (cheaper than np.stack)."""
    out = np.empty(tuple(shape) + (3,))
    out[..., 0], out[..., 1], out[..., 2] = x, y, z
    return out


def _rects(face_pts: Callable, u0, u1, v0, v1) -> np.ndarray:
    """(n,4,3) rectangles [u0,u1]x[v0,v1] (metres) on a facade given by face_pts(u, v)."""
    us = np.stack([u0, u1, u1, u0], 1)
    vs = np.stack([v0, v0, v1, v1], 1)
    return face_pts(us, vs)


def _paint_backdrop(cv: _Canvas, rng, lay: _Layout) -> None:
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
            m = cv.material(_jitter(rng, _pick(rng, _BUILDING_RGB), 12), [(T_COARSE, 10), (T_FINE, 4)], dist=zz)
            cv.fill([_front_quad(x0, x1, zz, 0, hh)], BUILDING, m)
            if cam.px(3.0, zz) >= 2.0:
                _windows(cv, rng, lambda u, v, x0=x0, zz=zz: _xyz(x0 + u, v, zz, np.shape(u)),
                         x1 - x0, hh, zz, ground_floor=False)
        elif kind == "tree":
            m = cv.material(_jitter(rng, _pick(rng, _LEAF_RGB), 8), [(T_LEAF, 22)], dist=zz)
            fr = _Frame(0, zz)
            polys = []
            for _ in range(int(rng.integers(2, 5))):
                r = rng.uniform(3, 7)
                c = np.array([rng.uniform(x0, x1), rng.uniform(r * 0.6, hh * 0.6 + r)])
                polys.append(fr(_blobs(rng, 1)[0] * r + c))
            polys.append(fr(np.array([[x0, 0], [x1, 0], [x1, 3], [x0, 3]])))
            cv.fill(polys, VEGETATION, m)


def _paint_ground(cv: _Canvas, rng, lay: _Layout) -> None:
    """Far grass, then per side: setback, verge, sidewalk with kerb; then the road and its markings."""
    cam, zn, zf = lay.cam, lay.z_near, lay.z_far + 400
    grass = cv.material(_jitter(rng, (104, 118, 70), 10), [(T_GRASS, (18, 20, 10)), (T_COARSE, (12, 10, 4))], dist=60)
    cv.fill2([np.array([[0, cam.cy], [cv.w + 1, cam.cy], [cv.w + 1, cv.h + 1], [0, cv.h + 1]], np.float64)],
             TERRAIN, grass)
    walk_rgb = _jitter(rng, (138, 136, 132), 14) + _pick(rng, ((0, 0, 0), (14, 6, -6), (20, -4, -10), (-6, -4, 0)))
    for side in lay.sides:
        s = side.s
        outer = side.facade if math.isfinite(side.facade) else side.bound + 80
        if outer > side.bound:
            r = rng.random()
            urban = side.kind == "urban"
            if urban and r < 0.3:  # paved forecourt
                lab, m = SIDEWALK, cv.material(_jitter(rng, walk_rgb, 8), [(T_BLOTCH, 6), (T_FINE, 5)])
            elif r < (0.45 if urban else 0.1):  # bare dirt: 'ground', ignored like in Cityscapes
                lab, m = GROUND, cv.material(_jitter(rng, (128, 114, 94), 10), [(T_BLOTCH, 14), (T_FINE, 8)])
            else:
                lab = TERRAIN
                m = cv.material(_jitter(rng, (100, 120, 66), 12), [(T_GRASS, (20, 22, 10)), (T_BLOTCH, (14, 10, 4))])
            cv.fill([_ground_quad(s * side.bound, s * outer, zn, zf)], lab, m)
        if side.verge > 0:
            m = cv.material(_jitter(rng, (102, 122, 64), 12), [(T_GRASS, (20, 24, 10)), (T_BLOTCH, (16, 10, 4))])
            cv.fill([_ground_quad(s * side.walk_out, s * side.bound, zn, zf, lay.kerb_h)], TERRAIN, m)
        _paint_sidewalk(cv, rng, lay, side, walk_rgb)
    _paint_road(cv, rng, lay)


def _paint_sidewalk(cv: _Canvas, rng, lay: _Layout, side: _Side, walk_rgb) -> None:
    """Paving a shade lighter than asphalt with joints and a kerb: same grey family as the road on purpose."""
    cam, s, hk = lay.cam, side.s, lay.kerb_h
    zn, zf = lay.z_near, lay.z_far + 400
    m = cv.material(_jitter(rng, walk_rgb, 6), [(T_BLOTCH, 7), (T_FINE, 6)])
    cv.fill([_ground_quad(s * side.kerb, s * side.walk_out, zn, zf, hk)], SIDEWALK, m)
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
    kerb = cv.material(_jitter(rng, np.asarray(walk_rgb) + 22, 8), [(T_FINE, 5)])
    cv.fill([_ground_quad(s * side.kerb, s * (side.kerb + 0.25), zn, zf, hk)], SIDEWALK, kerb)
    cv.fill([_side_quad(s * side.kerb, zn, zf, 0.0, hk)], SIDEWALK, kerb, shade=0.8)


def _paint_road(cv: _Canvas, rng, lay: _Layout) -> None:
    """Asphalt to the horizon with patches, lane markings (still road), crossings and tram rails."""
    cam, zn, zf = lay.cam, lay.z_near, lay.z_far + 400
    left, right = -lay.sides[0].kerb, lay.sides[1].kerb
    g = rng.uniform(68, 118)
    asphalt = np.array([g, g + rng.uniform(-2, 3), g + rng.uniform(0, 7)])
    m = cv.material(asphalt, [(T_FINE, rng.uniform(6, 12)), (T_COARSE, rng.uniform(5, 12))])
    cv.fill([_ground_quad(left, right, zn, zf)], ROAD, m)
    # repaired patches and manholes: same class, different look
    for _ in range(int(rng.integers(0, 4))):
        x0 = rng.uniform(left, right - 1)
        z0 = rng.uniform(zn, 50)
        pm = cv.material(asphalt * rng.uniform(0.8, 1.15), [(T_FINE, 8), (T_BLOTCH, 6)])
        cv.fill([_ground_quad(x0, min(right, x0 + rng.uniform(1, 4)), z0, z0 + rng.uniform(1, 8))], ROAD, pm)
    paint = cv.material(_jitter(rng, (206, 206, 200), 8), [(T_BLOTCH, 18), (T_FINE, 6)])
    quads = []
    lw = rng.uniform(0.1, 0.16)

    def dashes(x, period, length, z0):  # the dash pattern starts behind the camera; cut at the near plane
        zs = np.arange(z0, lay.z_far, period)
        return [_ground_quad(x - lw / 2, x + lw / 2, max(z, zn), z + length) for z in zs if z + length > zn]

    xs_lanes = sorted(x for x, _ in lay.lanes)
    for a, b in zip(xs_lanes[:-1], xs_lanes[1:]):
        x = (a + b) / 2
        if lay.centre_line is not None and abs(x - lay.centre_line) < 0.1:
            quads.append(_ground_quad(x - lw / 2, x + lw / 2, zn, lay.z_far))
            if rng.random() < 0.3:
                quads.append(_ground_quad(x + lw, x + 2 * lw, zn, lay.z_far))
        else:
            quads += dashes(x, rng.uniform(8, 12), 3.0, rng.uniform(zn - 6, zn + 3))
    if rng.random() < 0.4:
        for x in (left + 0.35, right - 0.35):
            quads.append(_ground_quad(x - lw / 2, x + lw / 2, zn, lay.z_far))
    if lay.crossing is not None:
        zc, wc = lay.crossing
        quads += [_ground_quad(x, x + 0.5, zc, zc + wc) for x in np.arange(left + 0.5, right - 0.5, 1.0)]
    cv.fill(quads, ROAD, paint, disjoint=True)
    if lay.tram_x is not None:  # embedded tram rails are still road
        steel = cv.material(_jitter(rng, (150, 150, 152), 8), [(T_STREAK, 14)])
        groove = cv.material(asphalt * 0.45)
        for x in (lay.tram_x - 0.72, lay.tram_x + 0.72):
            cv.fill([_ground_quad(x - 0.06, x + 0.06, zn, lay.z_far + 100)], ROAD, groove)
            cv.fill([_ground_quad(x - 0.04, x, zn, lay.z_far + 100)], ROAD, steel)


def _paint_facades(cv: _Canvas, rng, lay: _Layout, side: _Side) -> None:
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
        base = _jitter(rng, _pick(rng, _BUILDING_RGB), 12)
        wall = cv.material(base, [(T_COARSE, rng.uniform(8, 20)), (T_FINE, rng.uniform(3, 7))], dist=(z0 + z1) / 2)
        x = s * d
        depth = rng.uniform(8, 16)
        cv.fill([_front_quad(x, x + s * depth, z0, 0, hgt)], BUILDING, wall, shade=side.light * 0.82)
        cv.fill([_side_quad(x, z0, z1, 0, hgt)], BUILDING, wall, shade=side.light)

        def face(u, v, x=x, z0=z0):
            return _xyz(x, v, z0 + u, np.shape(u))

        _windows(cv, rng, face, z1 - z0, hgt, (z0 + z1) / 2)
        cornice = cv.material(base * rng.uniform(0.6, 0.85), [(T_FINE, 4)], dist=(z0 + z1) / 2)
        cv.fill([_side_quad(x, z0, z1, hgt - 0.5, hgt)], BUILDING, cornice, shade=side.light)


def _paint_boundary(cv: _Canvas, rng, lay: _Layout, side: _Side) -> None:
    """A wall, fence or hedge at the back of the sidewalk/verge."""
    if side.boundary == "none":
        return
    s, x = side.s, side.s * side.bound
    z0, z1 = side.bz
    cam = lay.cam
    if side.boundary == "wall":
        hgt = rng.uniform(0.8, 2.3)
        base = _jitter(rng, _pick(rng, ((150, 146, 138), (172, 160, 140), (120, 118, 116), (150, 100, 80))), 10)
        m = cv.material(base, [(T_BLOTCH, 12), (T_FINE, 7)])
        cv.fill([_side_quad(x, z0, z1, 0, hgt)], WALL, m, shade=side.light)
        cv.fill([_front_quad(x, x + s * 0.3, z0, 0, hgt)], WALL, m, shade=side.light * 0.8)
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
        cv.fill([_side_quad(x, z0, z1, hgt - 0.08, hgt + 0.05)], WALL, cap, shade=side.light)
    elif side.boundary == "fence":
        hgt = rng.uniform(1.0, 2.0)
        rgb = _pick(rng, ((40, 52, 44), (34, 34, 36), (110, 112, 114), (120, 88, 60)))
        m = cv.material(_jitter(rng, rgb, 8), [(T_FINE, 6)])
        style = _pick(rng, ("bars", "mesh", "planks"))
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
        m = cv.material(_jitter(rng, _pick(rng, _LEAF_RGB), 8), [(T_LEAF, 24), (T_BLOTCH, 6)])
        cv.fill([poly], VEGETATION, m, shade=side.light)
        cv.fill([_front_quad(x, x + s * 0.8, z0, 0, hgt)], VEGETATION, m, shade=side.light * 0.85)


# =============================================================================== painters: objects


def _paint_tree(cv: _Canvas, rng, X: float, Z: float, small: bool = False) -> None:
    """Trunk plus a crown of overlapping lumpy blobs with a darker, shadowed underside.

    Both trunk and crown are 'vegetation' (Cityscapes labels trunks so); what separates
    vegetation from terrain is the leafy texture and that it stands up, not the colour.
    """
    trunk_h = rng.uniform(1.6, 2.6) if small else rng.uniform(2.2, 4.2)
    crown_r = rng.uniform(0.9, 1.6) if small else rng.uniform(1.6, 3.6)
    fr = _Frame(X, Z)
    centre = np.array([0.0, trunk_h + crown_r * 0.8])
    leaf = _jitter(rng, _pick(rng, _LEAF_RGB), 10)
    trunk = _limb((0, 0), (rng.normal(0, 0.2), trunk_h + crown_r * 0.6), rng.uniform(0.2, 0.4))
    m = cv.material(leaf, [(T_LEAF, rng.uniform(20, 32)), (T_BLOTCH, (6, 10, 4))], dist=Z)
    if cv.cam.px(crown_r, Z) < 3:  # far away: one blob on a stick is all that shows
        cv.fill([fr(trunk), fr(_blobs(rng, 1)[0] * crown_r + centre)], VEGETATION, m)
        return
    cv.fill(fr(trunk), VEGETATION, cv.material(_jitter(rng, (72, 64, 54), 10), [(T_STREAK, 10)], dist=Z))
    n = int(rng.integers(2, 5))
    blobs = _blobs(rng, n + 1)
    scale = np.empty((n + 1, 1, 2))
    scale[0] = crown_r * np.array([1.1, 0.95])
    scale[1:n] = crown_r * rng.uniform(0.5, 0.8, (n - 1, 1, 1))
    scale[n] = crown_r * 0.55
    offset = np.empty((n + 1, 1, 2))
    offset[:] = centre
    offset[1:n, 0] += rng.normal(0, crown_r * 0.45, (n - 1, 2))
    offset[n, 0] += (0.2 * crown_r, -0.35 * crown_r)
    crowns = fr(blobs * scale + offset)
    cv.fill(crowns[:n], VEGETATION, m)
    cv.fill(crowns[n], VEGETATION, cv.material(leaf * 0.6, [(T_LEAF, 16)], dist=Z))


def _paint_bush(cv: _Canvas, rng, X: float, Z: float) -> None:
    """A low lumpy shrub on a verge: vegetation right next to terrain, told apart by texture."""
    r = rng.uniform(0.5, 1.3)
    m = cv.material(_jitter(rng, _pick(rng, _LEAF_RGB), 10), [(T_LEAF, 24)], dist=Z)
    cv.fill([_Frame(X, Z)(_blobs(rng, 1)[0] * (r * 1.4, r) + (0, r * 0.6))], VEGETATION, m)


def _paint_traffic_light(cv: _Canvas, rng, fr: _Frame, a: float, y: float, facing: bool) -> None:
    """Housing with three lamps (one lit) centred at local (a, y)."""
    w, h = 0.32, 0.9
    housing = cv.material(_jitter(rng, _pick(rng, ((32, 34, 34), (40, 44, 40), (150, 128, 40))), 6), [(T_FINE, 5)])
    if rng.random() < 0.35:  # backplate
        cv.fill(fr(_rect2(a - w, y - h * 0.6, a + w, y + h * 0.6)), LIGHT, cv.material(_jitter(rng, (36, 36, 36), 6)))
    cv.fill(fr(_rect2(a - w / 2, y - h / 2, a + w / 2, y + h / 2)), LIGHT, housing)
    if not facing:
        return
    lit = int(rng.integers(3))
    colours = ((235, 60, 40), (245, 170, 40), (70, 225, 150))
    for k in range(3):
        c = np.array([a, y + (1 - k) * h * 0.3])
        rgb = colours[k] if k == lit else np.asarray(colours[k]) * 0.18 + 20
        cv.fill([fr(_circle(10) * 0.1 + c)], LIGHT, cv.material(rgb))


def _paint_sign(cv: _Canvas, rng, fr: _Frame, a: float, y: float) -> None:
    """One traffic sign centred at local (a, y): several common shapes and colour schemes."""
    kind = _pick(rng, ("round", "round", "blue", "warn", "yield", "priority", "rect", "rect", "stop"))
    r = rng.uniform(0.3, 0.42)
    red = cv.material(_jitter(rng, (190, 36, 36), 10), [(T_FINE, 4)])
    white = cv.material(_jitter(rng, (222, 222, 218), 8), [(T_FINE, 4)])
    dark = cv.material((40, 40, 44))
    c = np.array([a, y])
    if kind == "round":
        cv.fill([fr(_circle(16) * r + c)], SIGN, red)
        cv.fill([fr(_circle(16) * r * 0.72 + c)], SIGN, white)
        if rng.random() < 0.5:
            cv.fill([fr(np.array([[-0.5, -0.12], [0.5, -0.12], [0.5, 0.12], [-0.5, 0.12]]) * r + c)], SIGN, dark)
        else:
            cv.fill([fr(np.array([[-0.5, -0.12], [0.5, -0.12], [0.5, 0.12], [-0.5, 0.12]]) * r + c)], SIGN, white)
            cv.fill([fr(_circle(16) * r * 0.72 + c)], SIGN, red)
            cv.fill([fr(np.array([[-0.55, -0.14], [0.55, -0.14], [0.55, 0.14], [-0.55, 0.14]]) * r + c)], SIGN, white)
    elif kind == "blue":
        cv.fill([fr(_circle(16) * r + c)], SIGN, cv.material(_jitter(rng, (30, 76, 160), 10)))
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
        cv.fill([fr(dia * 0.7 + c)], SIGN, cv.material(_jitter(rng, (230, 180, 30), 8)))
    elif kind == "rect":
        w, h = _pick(rng, ((1.4, 0.8), (1.0, 1.0), (1.8, 0.45)))
        scheme = _pick(rng, (((30, 76, 160), (222, 222, 218)), ((222, 222, 218), (40, 40, 44)),
                             ((230, 190, 40), (40, 40, 44))))
        box = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) * r * 0.75
        cv.fill([fr(box + c)], SIGN, cv.material(_jitter(rng, scheme[0], 8), [(T_FINE, 4)]))
        ink = cv.material(scheme[1])
        for k in range(int(rng.integers(1, 3))):
            yy = (0.3 - 0.5 * k) * h * r * 0.75
            cv.fill(fr(_rect2(-0.7 * w, -0.1, 0.6 * w, 0.1) * r * 0.75 + c + (0, yy)), SIGN, ink)
    else:  # stop
        t = np.pi / 8
        octa = _circle(8) @ np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])
        cv.fill([fr(octa * r + c)], SIGN, red)
        cv.fill([fr(np.array([[-0.6, -0.12], [0.6, -0.12], [0.6, 0.12], [-0.6, 0.12]]) * r + c)], SIGN, white)


def _paint_pole(cv: _Canvas, rng, X: float, Z: float, kind: str, towards_road: int) -> None:
    """A pole, bare (street lamp) or carrying traffic lights or signs; arms point towards the road."""
    fr = _Frame(X, Z)
    metal = cv.material(_jitter(rng, _pick(rng, ((130, 132, 134), (150, 150, 148), (60, 66, 62), (104, 108, 112))), 8),
                        [(T_FINE, 5)], dist=Z)
    r = rng.uniform(0.06, 0.11)
    if kind == "lamp":
        hgt = rng.uniform(5.5, 9.0)
        arm = rng.uniform(0.8, 2.0) * towards_road
        cv.fill([fr(_limb((0, 0), (0, hgt), 2 * r))], POLE, metal)
        cv.fill([fr(_limb((0, hgt - 0.2), (arm, hgt), 0.08))], POLE, metal)
        cv.fill(fr(_rect2(arm - 0.3, hgt - 0.12, arm + 0.3, hgt + 0.05)), POLE, metal)
    elif kind == "light":
        hgt = rng.uniform(3.0, 4.4)
        cv.fill([fr(_limb((0, 0), (0, hgt), 2 * r))], POLE, metal)
        facing = rng.random() < 0.7
        _paint_traffic_light(cv, rng, fr, 0.0, hgt - 0.45, facing)
        if rng.random() < 0.4:
            _paint_traffic_light(cv, rng, fr, 0.0, hgt - 1.6, facing)
        if rng.random() < 0.25:  # mast arm over the road with a hanging light
            span = rng.uniform(2.5, 5.0) * towards_road
            cv.fill([fr(_limb((0, hgt + 1.2), (span, hgt + 1.4), 0.12))], POLE, metal)
            cv.fill([fr(_limb((0, hgt), (0, hgt + 1.4), 2 * r))], POLE, metal)
            _paint_traffic_light(cv, rng, fr, span * 0.9, hgt + 0.75, True)
    else:
        hgt = rng.uniform(2.4, 3.4)
        cv.fill([fr(_limb((0, 0), (0, hgt + 0.1), 1.6 * r))], POLE, metal)
        _paint_sign(cv, rng, fr, 0.0, hgt - 0.3)
        if rng.random() < 0.35:
            _paint_sign(cv, rng, fr, 0.0, hgt - 1.15)


# ---- vehicles


def _visible_side(x0: float, x1: float) -> float | None:
    """X of the box side facing the camera, or None when the box straddles the camera axis."""
    return x0 if x0 > 0 else x1 if x1 < 0 else None


def _box(cv: _Canvas, lay: _Layout, x0, x1, z0, z1, y0, y1, label, mat, near=True) -> dict:
    """Draw the visible faces of an axis-aligned box (side, top, near) and return their corners."""
    faces = {}
    xs = _visible_side(x0, x1)
    if xs is not None:
        faces["side"] = _side_quad(xs, z0, z1, y0, y1)
        cv.fill([faces["side"]], label, mat, shade=0.8)
    if y1 < lay.cam.height:
        faces["top"] = _ground_quad(x0, x1, z0, z1, y1)
        cv.fill([faces["top"]], label, mat, shade=1.08)
    faces["near"] = _front_quad(x0, x1, z0, y0, y1)
    if near:
        cv.fill([faces["near"]], label, mat)
    return faces


def _wheels_on_side(cv: _Canvas, xs: float | None, zcs, radius: float, label: int, dist: float, extra=()) -> None:
    """Tyres (plus any ``extra`` tyre-coloured polygons) in one fill, then rims if they are big enough."""
    polys = list(extra)
    if xs is not None:
        ring = _circle(14)
        for zc in zcs:
            polys.append(_xyz(xs, radius + radius * ring[:, 1], zc + radius * ring[:, 0], (14,)))
    if not polys:
        return
    cv.fill(polys, label, cv.material((26, 26, 28), [(T_FINE, 4)], dist=dist))
    if xs is not None and cv.cam.px(radius, dist) >= 3:
        ring = _circle(10) * 0.55 * radius
        rims = [_xyz(xs, radius + ring[:, 1], zc + ring[:, 0], (10,)) for zc in zcs]
        cv.fill(rims, label, cv.material((120, 120, 124), [(T_FINE, 6)], dist=dist))


def _contact_shadow(cv: _Canvas, x0, x1, z0, z1) -> None:
    """Dark patch under a vehicle: grounds it visually, and darkens road that is still road."""
    cv.shadow([_ground_quad(x0 - 0.15, x1 + 0.15, z0 - 0.3, z1 + 0.2, 0.0)], 0.45)


def _paint_car(cv: _Canvas, rng, lay: _Layout, X: float, Z: float, oncoming: bool) -> None:
    """Lower body box, a cabin frustum set back from the ends, glass, wheels, lamps and plate.

    Small (far) cars skip the details nobody can see, which keeps generation fast.
    """
    w, length, hgt = rng.uniform(1.7, 1.92), rng.uniform(3.9, 4.9), rng.uniform(1.38, 1.58)
    x0, x1, z0, z1 = X - w / 2, X + w / 2, Z, Z + length
    size = lay.cam.px(w, Z)
    body = _jitter(rng, _pick(rng, _CAR_RGB), 6)
    belt = rng.uniform(0.82, 0.98)
    xs = _visible_side(x0, x1)
    _contact_shadow(cv, x0, x1, z0, z1)
    mb = cv.material(body, [(T_COARSE, 10), (T_STREAK, 5)], dist=Z)
    glass = cv.material(_jitter(rng, (40, 46, 54), 6), [(T_COARSE, 20), (T_STREAK, 8)], dist=Z)
    faces = _box(cv, lay, x0, x1, z0, z1, 0.22, belt, CAR, mb, near=False)
    near_tyres = _sub_quads(_front_quad(x0, x1, z0 + 0.3, 0.0, 0.3), [0.04, 0.76], [0.24, 0.96], 0, 1)
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
        cv.fill(_sub_quads(side, [0.08, pillar + 0.04], [pillar - 0.04, 0.93], 0.12, 0.9), CAR, glass)
    if hgt < lay.cam.height:
        cv.fill(np.array([[tx0, hgt, tz0], [tx1, hgt, tz0], [tx1, hgt, tz1], [tx0, hgt, tz1]]), CAR, mb, shade=1.1)
    cv.fill(rear, CAR, mb, shade=0.95)
    cv.fill(_sub_quads(rear, 0.06, 0.94, 0.1, 0.92), CAR, glass)
    # near end: lamps always (they tell front from back), bumper, grille and plate when visible
    near = faces["near"]
    cv.fill(near, CAR, mb)
    lamp = (230, 226, 210) if oncoming else (190, 30, 30)
    cv.fill(_sub_quads(near, [0.03, 0.75], [0.25, 0.97], 0.62, 0.85), CAR, cv.material(_jitter(rng, lamp, 8), dist=Z))
    if size >= 14:
        cv.fill(_sub_quads(near, 0, 1, 0, 0.22), CAR, cv.material(body * 0.55 + 10, dist=Z))
        if oncoming:
            cv.fill(_sub_quads(near, 0.3, 0.7, 0.45, 0.8), CAR, cv.material((28, 28, 30), [(T_FINE, 4)], dist=Z))
        cv.fill(_sub_quads(near, 0.38, 0.62, 0.3, 0.5), CAR, cv.material((205, 205, 196), dist=Z))


def _paint_truck(cv: _Canvas, rng, lay: _Layout, X: float, Z: float, oncoming: bool) -> None:
    """Cab plus a tall cargo box: bigger, boxier and higher off the ground than a car."""
    cargo_len = rng.uniform(5.5, 9.0)
    w = rng.uniform(2.3, 2.55)
    cab_rgb = _jitter(rng, _pick(rng, _TRUCK_CAB_RGB))
    box_rgb = _jitter(rng, _pick(rng, _TRUCK_BOX_RGB))
    mcab = cv.material(cab_rgb, [(T_COARSE, 10)], dist=Z)
    mbox = cv.material(box_rgb, [(T_COARSE, 12), (T_STREAK, 6)], dist=Z)
    glass = cv.material(_jitter(rng, (40, 46, 54), 6), [(T_COARSE, 20)], dist=Z)
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
                stripe_rgb = _jitter(rng, _pick(rng, ((180, 30, 30), (30, 60, 140), (230, 160, 20))), 8)
                stripe = cv.material(stripe_rgb, dist=Z)
                cv.fill(_sub_quads(faces["side"], 0.05, 0.95, 0.35, 0.5), TRUCK, stripe, shade=0.8)
            if not oncoming:
                cv.fill(_sub_quads(faces["near"], 0.495, 0.505, 0.02, 0.98), TRUCK, dark)
                cv.fill(_sub_quads(faces["near"], [0.02, 0.84], [0.16, 0.98], 0.0, 0.06), TRUCK,
                        cv.material((190, 30, 30), dist=Z))
        else:
            cx0, cx1 = x0 + 0.05, x1 - 0.05
            faces = _box(cv, lay, cx0, cx1, a, b, 0.55, rng.uniform(2.7, 3.0), TRUCK, mcab)
            if "side" in faces:
                cv.fill(_sub_quads(faces["side"], 0.15 if oncoming else 0.5, 0.85 if oncoming else 0.95, 0.55, 0.85),
                        TRUCK, glass, shade=0.8)
            if oncoming:
                cv.fill(_sub_quads(faces["near"], 0.05, 0.95, 0.52, 0.88), TRUCK, glass)
                cv.fill(_sub_quads(faces["near"], 0.25, 0.75, 0.1, 0.35), TRUCK, dark)
                cv.fill(_sub_quads(faces["near"], [0.04, 0.8], [0.2, 0.96], 0.08, 0.2), TRUCK,
                        cv.material((230, 226, 210), dist=Z))
    # chassis and wheels below everything
    cv.fill([_front_quad(x0 + 0.2, x1 - 0.2, Z, 0.3, 0.95)], TRUCK, dark)
    cv.fill(_sub_quads(_front_quad(x0, x1, Z + 0.3, 0.0, 0.6), [0.02, 0.72], [0.28, 0.98], 0, 1), TRUCK, dark)
    _wheels_on_side(cv, xs, (Z + 1.2, Z + cargo_len * 0.6, Z + cargo_len + 1.6), 0.48, TRUCK, Z)


def _paint_bus(cv: _Canvas, rng, lay: _Layout, X: float, Z: float, oncoming: bool) -> None:
    """A long, tall box with a band of windows and a destination display."""
    length = rng.uniform(11.5, 12.5) if rng.random() < 0.8 else 18.0
    w = 2.55
    x0, x1, z0, z1 = X - w / 2, X + w / 2, Z, Z + length
    body_rgb = _jitter(rng, _pick(rng, _BUS_RGB))
    mb = cv.material(body_rgb, [(T_COARSE, 10), (T_STREAK, 5)], dist=Z)
    glass = cv.material(_jitter(rng, (38, 44, 52), 6), [(T_COARSE, 22), (T_STREAK, 8)], dist=Z)
    dark = cv.material((28, 28, 30), dist=Z)
    xs = _visible_side(x0, x1)
    _contact_shadow(cv, x0, x1, z0, z1)
    faces = _box(cv, lay, x0, x1, z0, z1, 0.3, 3.05, BUS, mb)
    if "side" in faces:
        n = int(length // 1.7)
        u = np.linspace(0.04, 0.96, n + 1)
        panes = _sub_quads(faces["side"], u[:-1] + 0.006, u[1:] - 0.006, 0.33, 0.8)
        cv.fill(panes, BUS, glass, shade=0.8, disjoint=True)
        stripe_rgb = _jitter(rng, _pick(rng, ((180, 30, 30), (40, 90, 160), (230, 180, 30), (60, 60, 64))), 8)
        stripe = cv.material(stripe_rgb, dist=Z)
        cv.fill(_sub_quads(faces["side"], 0.0, 1.0, 0.17, 0.25), BUS, stripe, shade=0.8)
    _wheels_on_side(cv, xs, (z0 + 2.6, z1 - 3.0), 0.5, BUS, Z)
    near = faces["near"]
    if oncoming:
        cv.fill(_sub_quads(near, 0.03, 0.97, 0.3, 0.86), BUS, glass)
        cv.fill(_sub_quads(near, 0.15, 0.85, 0.89, 0.97), BUS, cv.material((230, 150, 30), [(T_FINE, 30)], dist=Z))
        cv.fill(_sub_quads(near, [0.04, 0.8], [0.2, 0.96], 0.1, 0.17), BUS, cv.material((230, 226, 210), dist=Z))
    else:
        cv.fill(_sub_quads(near, 0.1, 0.9, 0.6, 0.88), BUS, glass)
        cv.fill(_sub_quads(near, 0.25, 0.75, 0.1, 0.35), BUS, dark)
        cv.fill(_sub_quads(near, [0.04, 0.84], [0.16, 0.96], 0.1, 0.3), BUS, cv.material((190, 30, 30), dist=Z))
    cv.fill(_sub_quads(_front_quad(x0, x1, z0 + 0.5, 0.0, 0.3), [0.05, 0.75], [0.25, 0.95], 0, 1), BUS, dark)


def _paint_tram(cv: _Canvas, rng, lay: _Layout, X: float, Z: float) -> None:
    """A long articulated tram on the rails, with a pantograph: the 'train' class, as in Cityscapes."""
    length = rng.uniform(22, 34)
    w = 2.4
    x0, x1, z0, z1 = X - w / 2, X + w / 2, Z, Z + length
    scheme = _pick(rng, (((232, 232, 226), (190, 30, 30)), ((226, 196, 40), (60, 60, 60)),
                         ((220, 220, 210), (30, 120, 70)), ((200, 40, 40), (230, 230, 230))))
    mb = cv.material(_jitter(rng, scheme[0], 6), [(T_COARSE, 10), (T_STREAK, 5)], dist=Z)
    accent = cv.material(_jitter(rng, scheme[1], 6), [(T_FINE, 4)], dist=Z)
    glass = cv.material(_jitter(rng, (36, 42, 50), 6), [(T_COARSE, 22), (T_STREAK, 8)], dist=Z)
    metal = cv.material((70, 72, 76), dist=Z)
    _contact_shadow(cv, x0, x1, z0, z1)
    # pantograph first: it sits on the roof, behind the front face
    zp = z0 + length * rng.uniform(0.3, 0.5)
    fr = _Frame(X, zp)
    cv.stroke([fr(np.array([[-0.5, 3.35], [0.3, 4.0], [-0.3, 4.4]])), fr(np.array([[-0.8, 4.45], [0.8, 4.45]]))],
              0.06, TRAIN, metal)
    faces = _box(cv, lay, x0, x1, z0, z1, 0.35, 3.35, TRAIN, mb)
    if "side" in faces:
        n = int(length // 2.2)
        u = np.linspace(0.03, 0.97, n + 1)
        panes = _sub_quads(faces["side"], u[:-1] + 0.006, u[1:] - 0.006, 0.3, 0.75)
        cv.fill(panes, TRAIN, glass, shade=0.8, disjoint=True)
        cv.fill(_sub_quads(faces["side"], 0.0, 1.0, 0.05, 0.2), TRAIN, accent, shade=0.8)
        joints = np.arange(1, int(length // 8) + 1) * 8.0 / length
        joints = joints[joints < 0.98]
        if len(joints):
            bellows = _sub_quads(faces["side"], joints - 0.01, joints + 0.01, 0.0, 0.95)
            cv.fill(bellows, TRAIN, metal, shade=0.8, disjoint=True)
    near = faces["near"]
    cv.fill(_sub_quads(near, 0.04, 0.96, 0.35, 0.85), TRAIN, glass)
    cv.fill(_sub_quads(near, 0.0, 1.0, 0.05, 0.25), TRAIN, accent)
    cv.fill(_sub_quads(near, 0.2, 0.8, 0.88, 0.97), TRAIN, cv.material((230, 150, 30), [(T_FINE, 30)], dist=Z))
    cv.fill(_sub_quads(near, [0.05, 0.8], [0.2, 0.95], 0.12, 0.2), TRAIN, cv.material((232, 228, 210), dist=Z))


# ---- people and two-wheelers


def _person_colours(cv: _Canvas, rng, dist: float) -> dict:
    """Skin, hair and clothes for one person, shared by pedestrians and riders."""
    return {
        "skin": cv.material(_jitter(rng, _pick(rng, _SKIN_RGB), 6), dist=dist),
        "hair": cv.material(_jitter(rng, _pick(rng, _HAIR_RGB), 6), [(T_FINE, 6)], dist=dist),
        "top": cv.material(_jitter(rng, _pick(rng, _CLOTH_RGB), 10), [(T_BLOTCH, 8)], dist=dist),
        "legs": cv.material(_jitter(rng, _pick(rng, _CLOTH_RGB[:6] + ((62, 82, 124),)), 8), [(T_FINE, 5)], dist=dist),
        "shoe": cv.material(_jitter(rng, (34, 30, 28), 6), dist=dist),
    }


def _paint_person(cv: _Canvas, rng, X: float, Z: float, profile: bool, direction: int, height: float) -> None:
    """A pedestrian, frontal (walking along the sidewalk) or in profile (crossing), on a billboard.

    Parts are drawn in a 1.75 m body frame and scaled, one fill per material (legs, shoes,
    clothing, skin, hair), which keeps the many small people cheap.
    """
    k = height / 1.75
    fr = _Frame(X, Z)
    col = _person_colours(cv, rng, Z)
    d = direction
    hip, shoulder, head = 0.9, 1.45, 1.62
    hem = hip - (0.3 if rng.random() < 0.3 else 0.02)  # coats reach below the hip
    if profile:
        stride = rng.uniform(0.1, 0.35) * d
        legs = [_limb((0, hip), (stride, 0.04), 0.14), _limb((0, hip), (-stride, 0.04), 0.14)]
        shoes = [_rect2(f, 0.0, f + 0.14 * d, 0.08) for f in (stride, -stride)]
        lean = 0.04 * d
        top = [np.array([[-0.13, hem], [0.13, hem], [0.12 + lean, shoulder], [-0.12 + lean, shoulder]]),
               _limb((lean, shoulder - 0.05), (rng.uniform(-0.25, 0.25), hip - 0.05), 0.09)]
        skin = []
        bag = _rect2(-0.28 * d, hip + 0.15, -0.1 * d, shoulder - 0.05)  # backpack
    else:
        legs = [np.array([[sg * 0.17, 0.04], [sg * 0.03, 0.04], [sg * 0.02, hip], [sg * 0.18, hip]]) for sg in (-1, 1)]
        shoes = [_rect2(sg * 0.18, 0.0, sg * 0.03, 0.07) for sg in (-1, 1)]
        top = [np.array([[-0.19, hem], [0.19, hem], [0.23, shoulder], [-0.23, shoulder]])]
        top += [_limb((sg * 0.22, shoulder - 0.04), (sg * 0.27, hip - 0.1), 0.085) for sg in (-1, 1)]
        skin = [_circle(8) * 0.045 + (sg * 0.27, hip - 0.12) for sg in (-1, 1)]
        bag = _rect2(0.26, hip - 0.25, 0.42, hip)  # handbag
    skin += [_limb((0, shoulder - 0.05), (0, head), 0.1), _circle(12) * (0.095, 0.115) + (0, head)]
    hair = _circle(12) * (0.1, 0.07) + (-0.01 * d if profile else 0.0, head + 0.06)
    cv.fill([fr(p * k) for p in legs], PERSON, col["legs"])
    cv.fill([fr(p * k) for p in shoes], PERSON, col["shoe"], disjoint=True)
    cv.fill([fr(p * k) for p in top], PERSON, col["top"])
    if rng.random() < 0.28:
        cv.fill(fr(bag * k), PERSON, cv.material(_jitter(rng, _pick(rng, _CLOTH_RGB)), dist=Z))
    cv.fill([fr(p * k) for p in skin], PERSON, col["skin"])
    cv.fill(fr(hair * k), PERSON, col["hair"])


def _bike_geometry(motor: bool) -> dict:
    """Wheel radius, half wheelbase and the rider's contact points, in metres along the bike."""
    if motor:
        return {"r": 0.32, "wb": 0.72, "hip": (-0.3, 0.92), "bar": (0.42, 1.05),
                "foot": (0.05, 0.42), "knee": (0.12, 0.88)}
    return {"r": 0.34, "wb": 0.52, "hip": (-0.2, 0.98), "bar": (0.38, 1.02), "foot": (0.02, 0.22), "knee": (0.12, 0.72)}


def _paint_two_wheeler(
    cv: _Canvas, rng, X: float, Z: float, heading: float, direction: int, motor: bool, rider: bool
) -> None:
    """A bicycle or motorcycle in (foreshortened) profile, optionally ridden.

    The rider gets the 'rider' label and the machine its own class, which is what separates a
    rider from a person: context (sitting on a two-wheeler), not appearance.
    """
    fr = _Frame(X, Z, heading)
    g = _bike_geometry(motor)
    r, wb = g["r"], g["wb"]
    d = direction

    def P(a, y):
        return np.array([a * d, y])

    label = MOTORCYCLE if motor else BICYCLE
    frame_rgb = _jitter(rng, _pick(rng, _CAR_RGB if motor else _BIKE_RGB), 8)
    mframe = cv.material(frame_rgb, [(T_FINE, 5)], dist=Z)
    tyre = cv.material((24, 24, 26), dist=Z)
    ring = _circle(20)
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
        cv.fill([fr(_limb(P(0.45, 1.0), P(wb, r), 0.07))], label, tyre)
        cv.fill([fr(_circle(8) * 0.08 + P(0.55, 0.9))], label, cv.material((230, 226, 210), dist=Z))
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
    cv.fill([fr(_limb(hip, knee, 0.15)), fr(_limb(knee, foot, 0.12))], RIDER, col["legs"])
    cv.fill([fr(_limb(hip - P(0.05, 0), shoulder, 0.3))], RIDER, col["top"])
    cv.fill([fr(_limb(shoulder, bar, 0.09))], RIDER, col["top"], shade=0.85)
    head = shoulder + P(0.08, 0.2)
    if motor or rng.random() < 0.4:
        helmet = cv.material(_jitter(rng, _pick(rng, _CAR_RGB), 10), [(T_COARSE, 10)], dist=Z)
        cv.fill([fr(_circle(12) * 0.14 + head)], RIDER, helmet)
        if motor:
            cv.fill([fr(_circle(8) * (0.05, 0.05) + head + P(0.08, 0.0))], RIDER, cv.material((30, 32, 36), dist=Z))
    else:
        cv.fill([fr(_circle(12) * (0.1, 0.115) + head)], RIDER, col["skin"])
        cv.fill([fr(_circle(12) * (0.1, 0.07) + head + P(-0.01, 0.06))], RIDER, col["hair"])


# ---- street furniture (ignored classes) and frame effects


def _paint_furniture(cv: _Canvas, rng, lay: _Layout, X: float, Z: float, dynamic: bool) -> None:
    """Bins, cabinets, benches, advertising columns ('static') or a wheeled container ('dynamic')."""
    fr = _Frame(X, Z)
    if dynamic:
        rgb = _jitter(rng, _pick(rng, ((40, 80, 50), (40, 60, 120), (90, 90, 94))), 8)
        m = cv.material(rgb, [(T_COARSE, 8)], dist=Z)
        w, h, dep = rng.uniform(0.6, 1.2), rng.uniform(1.0, 1.3), rng.uniform(0.6, 1.0)
        _box(cv, lay, X - w / 2, X + w / 2, Z, Z + dep, 0.12, h, DYNAMIC, m)
        castors = [fr(_circle(8) * 0.07 + (sx * w * 0.35, 0.07)) for sx in (-1, 1)]
        cv.fill(castors, DYNAMIC, cv.material((25, 25, 25), dist=Z))
        return
    kind = _pick(rng, ("bin", "cabinet", "bench", "column"))
    if kind == "bin":
        rgb = _jitter(rng, _pick(rng, ((50, 70, 56), (90, 90, 92), (200, 120, 30))), 8)
        m = cv.material(rgb, [(T_FINE, 5)], dist=Z)
        cv.fill([fr(np.array([[-0.25, 0], [0.25, 0], [0.28, 0.95], [-0.28, 0.95]]))], STATIC, m)
    elif kind == "cabinet":
        m = cv.material(_jitter(rng, (150, 156, 146), 8), [(T_COARSE, 10), (T_FINE, 5)], dist=Z)
        w = rng.uniform(0.6, 1.0)
        _box(cv, lay, X - w / 2, X + w / 2, Z, Z + 0.4, 0.0, rng.uniform(1.0, 1.5), STATIC, m)
    elif kind == "bench":
        m = cv.material(_jitter(rng, _pick(rng, ((120, 86, 56), (70, 70, 72))), 8), [(T_STREAK, 8)], dist=Z)
        cv.stroke([fr(np.array([[-0.9, 0.45], [0.9, 0.45]])), fr(np.array([[-0.9, 0.8], [0.9, 0.8]])),
                   fr(np.array([[-0.8, 0.0], [-0.8, 0.8]])), fr(np.array([[0.8, 0.0], [0.8, 0.8]]))], 0.07, STATIC, m)
    else:
        m = cv.material(_jitter(rng, (60, 80, 70), 8), dist=Z)
        cv.fill([fr(np.array([[-0.6, 0], [0.6, 0], [0.6, 3.0], [-0.6, 3.0]]))], STATIC, m)
        poster = cv.material(_jitter(rng, _pick(rng, _CAR_RGB), 30), [(T_BLOTCH, 40)], dist=Z)
        cv.fill([fr(np.array([[-0.58, 0.5], [0.58, 0.5], [0.58, 2.6], [-0.58, 2.6]]))], STATIC, poster)
        cv.fill([fr(_circle(12) * (0.7, 0.25) + (0, 3.0))], STATIC, m)


def _paint_ego_hood(cv: _Canvas, rng) -> None:
    """The camera car's bonnet at the bottom, labelled 'ego vehicle' (ignored), as in Cityscapes."""
    h, w = cv.h, cv.w
    xs = np.linspace(-0.05 * w, 1.05 * w, 25)
    base, bulge, xc = h * rng.uniform(0.03, 0.06), h * rng.uniform(0.01, 0.035), w * rng.uniform(0.4, 0.6)
    top = h - base - bulge * np.clip(1 - ((xs - xc) / (0.7 * w)) ** 2, 0, 1)
    poly = np.concatenate([np.stack([xs, top], -1), [[1.05 * w, h + 2], [-0.05 * w, h + 2]]])
    paint = _jitter(rng, _pick(rng, ((30, 30, 34), (60, 62, 66), (150, 152, 156), (28, 36, 60))), 6)
    cv.fill2([poly], EGO, cv.material(paint, [(T_COARSE, 18), (T_STREAK, 10)]))
    glare = np.concatenate([np.stack([xs, top + 1], -1), np.stack([xs[::-1], top[::-1] + 0.3 * (h - top[::-1])], -1)])
    cv.fill2([glare], EGO, cv.material(paint * 0.6 + cv.haze * 0.35, [(T_STREAK, 12)]))


def _paint_border(cv: _Canvas, rng) -> None:
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


def _cast_shadow(cv: _Canvas, rng, lay: _Layout) -> None:
    """Sunlight blocked by one side's buildings: a stepped dark band over sidewalk and road.

    It only darkens (labels are untouched), so the model must learn that a shadowed road is
    still road.
    """
    side = _pick(rng, lay.sides)
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
        cv2.fillPoly(mask, pts, 1, cv2.LINE_8, _SHIFT)
    cv.light[mask > 0] *= rng.uniform(0.5, 0.72)


def _photometric(rng, img: np.ndarray) -> np.ndarray:
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


# =============================================================================== scene composer


def _sidewalk_x(rng, side: _Side, margin: float = 0.4) -> float:
    """A lateral position on one side's sidewalk."""
    return side.s * rng.uniform(side.kerb + margin, max(side.kerb + margin + 0.05, side.walk_out - margin))


def _depth(rng, lay: _Layout, lo: float = 0.0, scale: float = 18.0, hi: float | None = None) -> float:
    """A depth biased towards the camera (near objects are the ones that matter), clipped to the scene."""
    hi = lay.z_far - 5 if hi is None else hi
    return float(min(hi, lay.z_near + lo + rng.exponential(scale)))


def _plan_objects(rng, lay: _Layout, cv: _Canvas) -> list[tuple[float, Callable[[], None]]]:
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
                add(Z, lambda X=X, Z=Z: _paint_tree(cv, rng, X, Z))
        if side.trees:
            x = side.walk_out - rng.uniform(0.6, 1.0) if side.verge < 1.2 else side.walk_out + side.verge / 2
            spacing = rng.uniform(7, 15)
            for Z in np.arange(rng.uniform(lay.z_near - 2, lay.z_near + 8), min(lay.z_far, 100), spacing):
                if rng.random() < 0.85:
                    add(Z, lambda X=s * x, Z=Z: _paint_tree(cv, rng, X, Z, small=side.kind == "open"))
        if side.verge > 0 and rng.random() < 0.4:
            for _ in range(int(rng.integers(1, 4))):
                Z = _depth(rng, lay, 2)
                add(Z, lambda X=s * (side.walk_out + side.verge / 2), Z=Z: _paint_bush(cv, rng, X, Z))

    # ---- poles with lamps, lights and signs
    for _ in range(2 + int(rng.poisson(2.0))):
        side = _pick(rng, lay.sides)
        X = side.s * (side.kerb + rng.uniform(0.3, 0.8))
        Z = _depth(rng, lay, 1, 20, 70)
        kind = _pick(rng, ("lamp", "lamp", "light", "light", "sign", "sign", "sign"))
        add(Z, lambda X=X, Z=Z, kind=kind, s=side.s: _paint_pole(cv, rng, X, Z, kind, -s))

    # ---- vehicles in lanes (rare classes inserted into random slots)
    lane_plans = {x: [] for x, _ in lay.lanes}
    for x, _ in lay.lanes:
        if rng.random() < 0.5:
            lane_plans[x] = ["car"] * (1 + int(rng.poisson(0.6)))
    for kind, p in (("truck", 0.1), ("bus", 0.13), ("motorcycle", 0.15)):
        if rng.random() < p:
            x = _pick(rng, [x for x, _ in lay.lanes])
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
                add(z, lambda X=X, Z=z, o=oncoming: _paint_car(cv, rng, lay, X, Z, o))
            elif kind == "truck":
                add(z, lambda X=X, Z=z, o=oncoming: _paint_truck(cv, rng, lay, X, Z, o))
            elif kind == "bus":
                add(z, lambda X=X, Z=z, o=oncoming: _paint_bus(cv, rng, lay, X, Z, o))
            else:
                hd = rng.uniform(0.9, 1.25) * (1 if rng.random() < 0.5 else -1)
                add(z, lambda X=X, Z=z, hd=hd: _paint_two_wheeler(cv, rng, X, Z, hd, 1, True, True))
            z += lengths[kind] + rng.uniform(4, 22)
    if tram_z is not None:
        add(tram_z, lambda Z=tram_z: _paint_tram(cv, rng, lay, lay.tram_x, Z))

    # ---- parked cars along the kerb
    for side in lay.sides:
        if not side.parking:
            continue
        X = side.s * (side.kerb - 1.05)
        z = max(1.0, rng.uniform(lay.z_near - 3, lay.z_near + 6))
        while z < min(lay.z_far - 5, 70):
            if rng.random() < 0.5:
                if rng.random() < 0.015:
                    add(z, lambda X=X, Z=z: _paint_truck(cv, rng, lay, X, Z, False))
                    z += 10.0
                else:
                    x, front = X + rng.normal(0, 0.1), rng.random() < 0.3
                    add(z, lambda X=x, Z=z, o=front: _paint_car(cv, rng, lay, X, Z, o))
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
                side = _pick(rng, lay.sides)
                X, Z, profile = _sidewalk_x(rng, side), _depth(rng, lay, 1, 13), rng.random() < 0.35
            add(Z, lambda X=X, Z=Z, p=profile, d=direction, hh=height: _paint_person(cv, rng, X, Z, p, d, hh))

    # ---- riders on bicycles, parked bicycles and motorcycles
    if rng.random() < 0.28:
        for _ in range(1 + int(rng.random() < 0.3)):
            side = lay.sides[1] if rng.random() < 0.7 else lay.sides[0]
            X = side.s * (side.kerb - rng.uniform(0.4, 1.2)) if rng.random() < 0.6 else _sidewalk_x(rng, side)
            Z = _depth(rng, lay, 2, 15)
            hd = rng.uniform(-0.9, 0.9)
            d = 1 if rng.random() < 0.5 else -1
            add(Z, lambda X=X, Z=Z, hd=hd, d=d: _paint_two_wheeler(cv, rng, X, Z, hd, d, False, True))
    if rng.random() < 0.3:
        side = _pick(rng, lay.sides)
        X0, Z0 = side.s * (side.walk_out - 0.6), _depth(rng, lay, 1, 12)
        hd = rng.uniform(-0.5, 0.5) if rng.random() < 0.5 else rng.uniform(1.1, 1.4)
        for k in range(int(rng.integers(1, 5))):  # a row of parked bicycles
            Z = Z0 + 0.7 * k
            add(Z, lambda X=X0, Z=Z, hd=hd: _paint_two_wheeler(cv, rng, X, Z, hd, 1, False, False))
    if rng.random() < 0.05:
        side = _pick(rng, lay.sides)
        X, Z = _sidewalk_x(rng, side), _depth(rng, lay, 1, 12)
        add(Z, lambda X=X, Z=Z: _paint_two_wheeler(cv, rng, X, Z, rng.uniform(-0.6, 0.6), 1, True, False))

    # ---- street furniture (ignored classes)
    if rng.random() < 0.45:
        for _ in range(int(rng.integers(1, 4))):
            side = _pick(rng, lay.sides)
            X, Z = side.s * (side.walk_out - rng.uniform(0.4, 0.9)), _depth(rng, lay, 1, 20)
            add(Z, lambda X=X, Z=Z: _paint_furniture(cv, rng, lay, X, Z, False))
    if rng.random() < 0.12:
        side = _pick(rng, lay.sides)
        X, Z = _sidewalk_x(rng, side), _depth(rng, lay, 1, 15)
        add(Z, lambda X=X, Z=Z: _paint_furniture(cv, rng, lay, X, Z, True))
    return items


def _compose_scene(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Lay out a street, paint it back to front, render colours, apply camera effects."""
    lay = _sample_layout(rng, h, w)
    cv = _Canvas(h, w, lay.cam)
    tex = _textures(rng, h, w, lay.cam.cy)
    _paint_sky(cv, rng, lay)
    _paint_backdrop(cv, rng, lay)
    _paint_ground(cv, rng, lay)
    for side in lay.sides:
        _paint_facades(cv, rng, lay, side)
    for side in lay.sides:
        _paint_boundary(cv, rng, lay, side)
    items = _plan_objects(rng, lay, cv)
    for k in sorted(range(len(items)), key=lambda k: (-items[k][0], k)):  # far to near: near occludes far
        items[k][1]()
    if lay.sunny and rng.random() < 0.8:
        _cast_shadow(cv, rng, lay)
    if rng.random() < 0.35:
        _paint_ego_hood(cv, rng)
    if rng.random() < 0.25:
        _paint_border(cv, rng)
    rgb = _photometric(rng, cv.render(tex))
    return rgb, cv.labels()
