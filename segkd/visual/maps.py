"""Feature maps and per-pixel quantities as pictures (uint8 RGB arrays, HxWx3).

Every map is normalised on its own (its 1st percentile to 0, its 99th to 1, clipped): feature
magnitudes differ by orders between layers and networks, and a shared scale would show one bright map
and many black ones; the percentiles keep a few extreme pixels (zero padding at the borders makes
them) from washing out the rest. So brightness says where a map is high relative to itself, never how
it compares with another map.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def normalise(maps: Tensor, clip: float = 0.01) -> Tensor:
    """Each map of (..., H, W) rescaled to [0, 1] on its own: its ``clip`` quantile to 0 and its
    1 - ``clip`` quantile to 1, clipped (``clip=0``: min and max); a constant map becomes 0."""
    flat = maps.detach().float().cpu().flatten(-2)
    low = flat.quantile(clip, dim=-1, keepdim=True, interpolation="nearest")
    high = flat.quantile(1.0 - clip, dim=-1, keepdim=True, interpolation="nearest")
    span = (high - low).clamp_min(1e-12)
    return (((flat - low) / span).clamp(0, 1) * (high > low)).view_as(maps)


def channel_mean(features: Tensor) -> Tensor:
    """(N, C, H, W) -> (N, H, W): mean activation over channels, normalised per map."""
    return normalise(features.float().mean(dim=1))


def pca_rgb(features: Tensor) -> Tensor:
    """(N, C, H, W) -> (N, 3, H, W): each image's features projected on their first three principal
    components (over its pixels), each component normalised per map.

    The sign of a principal component is arbitrary; it is fixed so that the component's largest
    loading is positive, so the same layer keeps its colours from one epoch to the next.
    """
    n, c, h, w = features.shape
    out = torch.zeros(n, 3, h, w)
    for i in range(n):
        x = features[i].detach().float().cpu().flatten(1).T  # (pixels, channels)
        x = x - x.mean(dim=0, keepdim=True)
        k = min(3, c, x.shape[0])
        _, _, vh = torch.linalg.svd(x, full_matrices=False)
        components = vh[:k]
        largest = components.gather(1, components.abs().argmax(dim=1, keepdim=True))
        components = components * torch.where(largest < 0, -1.0, 1.0)
        projected = x @ components.T  # (pixels, k)
        out[i, :k] = projected.T.reshape(k, h, w)
    return normalise(out)


def resize(maps: Tensor, size: Sequence[int], nearest: bool = True) -> Tensor:
    """(N, [C,] h, w) -> (N, [C,] H, W)."""
    squeeze = maps.ndim == 3
    x = maps.unsqueeze(1) if squeeze else maps
    x = F.interpolate(x.float(), size=tuple(size), mode="nearest" if nearest else "bilinear",
                      **({} if nearest else {"align_corners": False}))
    return x.squeeze(1) if squeeze else x


def colormap(values: Tensor | np.ndarray, name: str = "viridis") -> np.ndarray:
    """Values in [0, 1] (H, W) -> HxWx3 uint8 through a matplotlib colormap."""
    from matplotlib import colormaps

    table = (colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3] * 255).round().astype(np.uint8)
    index = np.clip(np.rint(np.asarray(values, dtype=np.float32) * 255), 0, 255).astype(np.int64)
    return table[index]


def to_rgb8(rgb: Tensor) -> np.ndarray:
    """(3, H, W) in [0, 1] -> HxWx3 uint8."""
    return np.clip(np.rint(rgb.permute(1, 2, 0).numpy() * 255), 0, 255).astype(np.uint8)


def montage(rows: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
    """Equal-sized HxWx3 panels, row by row, into one picture (no gaps: its size is rows*H x cols*W)."""
    return np.concatenate([np.concatenate(list(row), axis=1) for row in rows], axis=0)
