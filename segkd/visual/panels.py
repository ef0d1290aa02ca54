"""Pictures of a fixed batch, one row per image, one column per view (all panels at the input's size).

- :func:`layer_panels`: a layer's feature maps, per network its channel mean and, when two networks
  are shown, the |difference| of their (normalised) means, then per network a PCA-to-RGB view;
- :func:`prediction_panels`: input, ground truth and each network's prediction in the Cityscapes palette;
- :func:`knowledge_panels`: the teacher's entropy, its off-argmax mass and where it and the student
  agree with the label (segkd.visual.knowledge).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from torch import Tensor

from segkd.inference.drawing import overlay
from segkd.visual.knowledge import AGREEMENT_COLORS, teacher_maps
from segkd.visual.maps import channel_mean, colormap, montage, pca_rgb, resize, to_rgb8

#: Colour maps: feature activations, and "how much" quantities (difference, entropy, off-argmax mass).
FEATURE_CMAP, AMOUNT_CMAP = "viridis", "magma"


def layer_columns(roles: Sequence[str]) -> list[str]:
    """The column titles of :func:`layer_panels` for these networks, left to right."""
    columns = [f"{role} mean" for role in roles]
    if len(roles) == 2:
        columns.append("|difference|")
    return columns + [f"{role} PCA" for role in roles]


def layer_panels(features: dict[str, Tensor], size: Sequence[int]) -> np.ndarray:
    """``{role: (N, C, h, w)}`` (one or two networks, any channels and grids) -> one picture of
    N rows and :func:`layer_columns` columns of ``size`` (H, W) panels."""
    means = {role: channel_mean(f.detach().float().cpu()) for role, f in features.items()}
    views = [resize(m, size) for m in means.values()]  # nearest: each map's own grid stays visible
    cmaps = [FEATURE_CMAP] * len(views)
    if len(means) == 2:
        # Compared on a common grid: each normalised mean map resized smoothly to the input's size.
        a, b = (resize(m, size, nearest=False).clamp(0, 1) for m in means.values())
        views.append((a - b).abs())
        cmaps.append(AMOUNT_CMAP)
    pcas = [resize(pca_rgb(f), size) for f in features.values()]
    rows = []
    for i in range(len(views[0])):
        row = [colormap(view[i].numpy(), cmap) for view, cmap in zip(views, cmaps)]
        row += [to_rgb8(pca[i]) for pca in pcas]
        rows.append(row)
    return montage(rows)


def prediction_panels(rgb: np.ndarray, mask: Tensor, logits: dict[str, Tensor], alpha: float = 0.5) -> np.ndarray:
    """Input | ground truth | each network's prediction (over the input, at ``alpha``), per image."""
    mask = mask.cpu().numpy()
    predictions = {role: x.detach().argmax(dim=1).cpu().numpy() for role, x in logits.items()}
    rows = [[rgb[i], overlay(rgb[i], mask[i], alpha)] + [overlay(rgb[i], p[i], alpha) for p in predictions.values()]
            for i in range(len(rgb))]
    return montage(rows)


def knowledge_panels(teacher_logits: Tensor, student_logits: Tensor, mask: Tensor, ignore_index: int = 255) -> np.ndarray:
    """Teacher entropy | teacher off-argmax mass | agreement with the student and the label, per image
    (both on fixed 0-1 scales: comparable across images and runs)."""
    maps = teacher_maps(teacher_logits, student_logits, mask.to(teacher_logits.device), ignore_index)
    rows = [[colormap(maps["entropy"][i].numpy(), AMOUNT_CMAP), colormap(maps["off_argmax"][i].numpy(), AMOUNT_CMAP),
             AGREEMENT_COLORS[maps["agreement"][i].numpy()]] for i in range(len(mask))]
    return montage(rows)
