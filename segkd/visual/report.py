"""A network's report card as one figure: reliability diagram and per-class errors (from NetScores with
``details=True``). Drawn on a matplotlib Figure directly, never through pyplot's global state, so it is
safe inside a training process and its threads."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def draw_scores_report(scores: dict, path: str | Path, title: str) -> Path:
    """Write ``path`` (PNG): left, accuracy vs confidence per bin with the diagonal of perfect
    calibration and the ECE; right, each class's IoU and the share of its pixels given to another
    class, named with the class most of them went to."""
    from matplotlib.figure import Figure

    reliability, errors = scores["reliability"], scores["errors"]
    count = np.asarray(reliability["count"], dtype=float)
    n_bins = len(count)
    centres = (np.arange(n_bins) + 0.5) / n_bins
    seen = count > 0

    names = list(errors)
    fig = Figure(figsize=(12, max(4.0, 0.28 * len(names) + 1.5)))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.3]})
    left.bar(centres[seen], np.asarray(reliability["accuracy"])[seen], width=1 / n_bins, edgecolor="k",
             color="tab:blue", alpha=0.8, label="accuracy")
    left.plot(centres[seen], np.asarray(reliability["confidence"])[seen], "o", color="tab:orange", ms=4,
              label="mean confidence")
    left.plot([0, 1], [0, 1], "k--", lw=1, label="perfectly calibrated")
    share = count / max(count.sum(), 1)
    left.bar(centres, share, width=1 / n_bins, color="tab:gray", alpha=0.35, label="share of pixels")
    left.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (max softmax)", ylabel="accuracy",
             title=f"reliability · ECE {100 * scores['ece']:.2f}%")
    left.legend(loc="upper left", fontsize=8)

    ys = np.arange(len(names))
    iou = [scores["IoU"].get(n) for n in names]
    miss = [errors[n]["miss_rate"] for n in names]
    right.barh(ys - 0.2, [100 * v if v is not None and np.isfinite(v) else 0 for v in iou], height=0.4,
               color="tab:green", label="IoU")
    right.barh(ys + 0.2, [100 * v if v is not None else 0 for v in miss], height=0.4, color="tab:red",
               label="pixels predicted as another class")
    for y, name in zip(ys, names):
        other = errors[name]["confused_with"]
        if other is not None:
            right.annotate(f"→ {other}", (100 * (errors[name]["miss_rate"] or 0), y + 0.2), fontsize=6,
                           xytext=(2, -2), textcoords="offset points")
    right.set_yticks(ys, names, fontsize=7)
    right.invert_yaxis()
    right.set(xlim=(0, 115), xlabel="%", title="per class")
    right.legend(loc="lower right", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
