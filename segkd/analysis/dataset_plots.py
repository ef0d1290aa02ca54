"""The figures of a dataset analysis (segkd.analyze), one PNG each.

Drawn on matplotlib Figures directly (segkd.reporting), never through pyplot's global state (as segkd.visual.report),
so they can be made from any process or thread. Classes are on the vertical axis in train-id order,
the same order as the report's table, so a figure and its table read side by side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from segkd.analysis.dataset_stats import AREA_BIN_EDGES, AREA_PERCENTILES
from segkd.reporting import new_figure, save_figure


def _figure(rows: int, width: float = 9.0):
    return new_figure(figsize=(width, max(3.5, 0.3 * rows + 1.5)))


def _class_axis(ax, names: Sequence[str]) -> np.ndarray:
    ys = np.arange(len(names))
    ax.set_yticks(ys, names, fontsize=8)
    ax.invert_yaxis()
    return ys


def draw_class_frequency(names: Sequence[str], share: np.ndarray, path: Path, title: str,
                         reference: Optional[np.ndarray] = None, reference_label: str = "reference") -> Path:
    """Share of labelled pixels per class on a log axis (rare classes span decades), with a reference
    distribution (e.g. published Cityscapes shares) as a second bar beside each class."""
    fig = _figure(len(names))
    ax = fig.subplots()
    ys = _class_axis(ax, names)
    height = 0.4 if reference is not None else 0.8
    offset = height / 2 if reference is not None else 0.0
    ax.barh(ys - offset, 100 * np.asarray(share), height=height, color="tab:blue", label="this split")
    if reference is not None:
        ax.barh(ys + offset, 100 * np.asarray(reference), height=height, color="tab:gray", label=reference_label)
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xscale("log")
    ax.set(xlabel="% of labelled pixels (log scale)", title=title)
    return save_figure(fig, path, dpi=110)


def draw_class_presence(names: Sequence[str], presence: np.ndarray, path: Path, title: str) -> Path:
    """Share of images in which each class appears: a class rare in pixels but present in most
    images is small, not scarce, and calls for other remedies than one that is absent from most."""
    fig = _figure(len(names))
    ax = fig.subplots()
    ys = _class_axis(ax, names)
    ax.barh(ys, 100 * np.asarray(presence), height=0.8, color="tab:green")
    ax.set(xlim=(0, 100), xlabel="% of images where the class appears", title=title)
    return save_figure(fig, path, dpi=110)


def draw_object_sizes(names: Sequence[str], shares: Sequence[np.ndarray], path: Path, title: str) -> Path:
    """Box plot of connected-component areas per class (share of the image, log scale): box at the
    quartiles, whiskers at the report's percentiles, the count of objects beside the class name."""
    fig = _figure(len(names))
    ax = fig.subplots()
    ys = np.arange(len(names))
    seen = [i for i, s in enumerate(shares) if len(s)]
    if seen:
        ax.boxplot([100 * np.asarray(shares[i]) for i in seen], positions=ys[seen], orientation="horizontal",
                   whis=AREA_PERCENTILES, showfliers=False, widths=0.6)
        ax.set_xscale("log")
    _class_axis(ax, [f"{name} ({len(s)})" for name, s in zip(names, shares)])  # after boxplot, which resets ticks
    ax.set_ylim(len(names) - 0.5, -0.5)
    low, high = AREA_PERCENTILES
    ax.set(xlabel=f"object area, % of the image (box: quartiles, whiskers: p{low}-p{high}); (count)", title=title)
    return save_figure(fig, path, dpi=110)


def draw_object_size_histograms(names: Sequence[str], histograms: Sequence[Sequence[int]], path: Path,
                                title: str) -> Path:
    """Each class's histogram of object areas on the shared log-spaced bins, as one row of a heat map
    (the share of the class's objects in each bin): one axis for all classes, so their size ranges
    line up, and cheap to draw, where 19 small histograms take seconds."""
    counts = np.asarray(histograms, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    fraction = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    fig = _figure(len(names))
    ax = fig.subplots()
    # Empty cells stay blank: at the small end some bins hold no whole number of pixels at all.
    mesh = ax.pcolormesh(100 * AREA_BIN_EDGES, np.arange(len(names) + 1) - 0.5,
                         np.ma.masked_equal(100 * fraction, 0), cmap="magma_r")
    ax.set_xscale("log")
    used = np.flatnonzero(counts.sum(axis=0))
    if used.size:  # the bins span 7 decades; show the ones this split fills
        ax.set_xlim(100 * AREA_BIN_EDGES[used[0]], 100 * AREA_BIN_EDGES[used[-1] + 1])
    _class_axis(ax, [f"{name} ({int(n)})" for name, n in zip(names, totals.ravel())])
    fig.colorbar(mesh, ax=ax, label="% of the class's objects")
    ax.set(xlabel="object area, % of the image (log bins); (count)", title=title)
    return save_figure(fig, path, dpi=110)
