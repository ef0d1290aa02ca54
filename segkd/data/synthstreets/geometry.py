"""3-D building blocks the painters assemble objects from: axis-aligned quads and parts of them,
circles, lumpy blobs, limbs, and local vertical frames (world metres; X right, Y up, Z ahead).

Why it exists: these are pure numpy shape makers (no drawing, no canvas), shared by every painter
module, so they sit below all of them.
"""

from __future__ import annotations

import functools
import math

import numpy as np


def ground_quad(x0, x1, z0, z1, y=0.0) -> np.ndarray:
    """Horizontal quad at height y (road, sidewalk, verge strips, car roofs and shadows)."""
    return np.array([[x0, y, z0], [x1, y, z0], [x1, y, z1], [x0, y, z1]], np.float64)


def side_quad(x, z0, z1, y0, y1) -> np.ndarray:
    """Vertical plane X = x; corners ordered (u along +Z, v up)."""
    return np.array([[x, y0, z0], [x, y0, z1], [x, y1, z1], [x, y1, z0]], np.float64)


def front_quad(x0, x1, z, y0, y1) -> np.ndarray:
    """Vertical plane Z = z, facing the camera; corners ordered (u along +X, v up)."""
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], np.float64)


def sub_quads(q: np.ndarray, u0, u1, v0, v1) -> np.ndarray:
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
def circle(n: int = 16) -> np.ndarray:
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


def blobs(rng: np.random.Generator, n: int, rough: float = 0.25) -> np.ndarray:
    """n unit circles with lumpy outlines (crowns, bushes): a few random low harmonics; (n, 22, 2)."""
    coef = rng.normal(0, 1, (n, 2, len(_BLOB_K))) * (rough / _BLOB_K)
    r = 1 + coef[:, 0] @ _BLOB_SIN + coef[:, 1] @ _BLOB_COS + rng.normal(0, rough * 0.25, (n, _BLOB_N))
    return _BLOB_UNIT * np.clip(r, 0.55, 1.5)[..., None]


class Frame:
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


def rect2(a0: float, y0: float, a1: float, y1: float) -> np.ndarray:
    """Axis-aligned rectangle in a local 2-D frame, corners in fill order."""
    return np.array([[a0, y0], [a1, y0], [a1, y1], [a0, y1]], np.float64)


def limb(p, q, width: float) -> np.ndarray:
    """A quad of the given width from p to q (local 2-D)."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    d = q - p
    n = np.array([-d[1], d[0]]) / (np.hypot(*d) + 1e-9) * width / 2
    return np.array([p + n, q + n, q - n, p - n])


def xyz(x, y, z, shape) -> np.ndarray:
    """Stack broadcastable coordinates into (*shape, 3) points (cheaper than np.stack)."""
    out = np.empty(tuple(shape) + (3,))
    out[..., 0], out[..., 1], out[..., 2] = x, y, z
    return out
