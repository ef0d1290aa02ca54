"""What segkd.bias_variance writes: bias_variance.json, bias_variance.md (tables), bias_variance.png
(the groups side by side) and the console table, from the report of
:func:`segkd.analysis.bias_variance.decompose_groups`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from segkd.analysis.bias_variance import TERMS
from segkd.reporting import console_table, markdown_table, new_figure, number, percent, save_figure

REPORT_JSON, REPORT_MD, REPORT_PNG = "bias_variance.json", "bias_variance.md", "bias_variance.png"

OVERALL_HEADER = ["group", "members", "mean mIoU %", "ensemble mIoU %", "expected CE", "bias", "variance",
                  "variance share %"]


def write_reports(report: dict, output_dir: Path) -> None:
    """The JSON, Markdown and PNG reports into ``output_dir``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n")
    (output_dir / REPORT_MD).write_text(markdown(report))
    draw(report, output_dir / REPORT_PNG)


def _nats(value: Optional[float]) -> str:
    return number(value, ".4f")


def overall_rows(report: dict) -> list[list[str]]:
    """One row per group: members, mean member mIoU, geometric-ensemble mIoU, the three terms and the variance share."""
    return [[name, str(g["n_members"]), percent(g["mean_mIoU"]), percent(g["ensemble_mIoU"]),
             *(_nats(g[term]) for term in TERMS), percent(g["variance_share"])]
            for name, g in report["groups"].items()]


def class_mean_rows(report: dict) -> list[list[str]]:
    """One row per group: the three terms averaged over classes, each class weighted equally (as mIoU does)."""
    return [[name, *(_nats(g["class_mean"][term]) for term in TERMS)] for name, g in report["groups"].items()]


def _table(header: list[str], rows: list[list[str]]) -> str:
    return markdown_table(header, rows, "l" + "r" * (len(header) - 1))


def markdown(report: dict) -> str:
    """The overall table and a per-class table (bias and variance of each group, by ground-truth class)."""
    groups = report["groups"]
    first = next(iter(groups.values()))
    lines = [f"# Bias-variance decomposition: {report['dataset']} {report['split']} ({report['images']} images, "
             f"{first['pixels']} labelled pixels)", "",
             "Cross-entropy in nats per labelled pixel; expected CE = bias + variance (Heskes 1998; "
             "docs/BIAS_VARIANCE.md). Bias includes the label noise.", "",
             _table(OVERALL_HEADER, overall_rows(report)), "",
             "Mean over classes (each class with pixels weighted equally, as mIoU weights them):", "",
             _table(["group", *TERMS], class_mean_rows(report)), "", "## Per class (by ground-truth class)", ""]
    header = ["class", "pixels"] + [f"{name} {term}" for name in groups for term in ("bias", "variance")]
    rows = [[cls, str(first["per_class"][cls]["pixels"])]
            + [_nats(g["per_class"][cls][term]) for g in groups.values() for term in ("bias", "variance")]
            for cls in first["per_class"]]
    lines += [_table(header, rows), "", "## Members", ""]
    for name, g in groups.items():
        lines.append(f"- **{name}**: " + ", ".join(f"`{path}` (mIoU {percent(miou)})"
                                                   for path, miou in zip(g["members"], g["member_mIoU"])))
    return "\n".join(lines) + "\n"


def print_report(report: dict, console=None) -> None:
    from rich.console import Console

    (console or Console()).print(console_table(
        f"bias-variance · {report['dataset']} {report['split']} ({report['images']} images) · nats",
        OVERALL_HEADER, overall_rows(report)))


def draw(report: dict, path: str | Path) -> Path:
    """Write ``path`` (PNG), the groups side by side in each panel: each group's expected CE as stacked
    bias + variance; the same per ground-truth class (classes without pixels left out); and the
    per-class variance alone, which the stacked bars make too thin to compare. Drawn on a matplotlib
    Figure, not pyplot."""
    import numpy as np
    from matplotlib.patches import Patch

    groups = report["groups"]
    names = list(groups)
    classes = [c for c, v in next(iter(groups.values()))["per_class"].items() if v["pixels"]]
    colours = [f"C{i % 10}" for i in range(len(names))]
    fig = new_figure(figsize=(16, max(4.5, 0.3 * len(classes) * max(1.0, len(names) / 2) + 1.5)))
    overall, stacked, spread = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 2.2, 1.4]})
    legend = [Patch(facecolor=c, edgecolor="k", label=n) for n, c in zip(names, colours)]
    legend += [Patch(facecolor="w", edgecolor="k", label="bias (+ noise)"),
               Patch(facecolor="w", edgecolor="k", hatch="//", label="variance")]

    xs = np.arange(len(names))
    bias = [groups[n]["bias"] for n in names]
    variance = [groups[n]["variance"] for n in names]
    overall.bar(xs, bias, color=colours, edgecolor="k")
    overall.bar(xs, variance, bottom=bias, color=colours, alpha=0.45, hatch="//", edgecolor="k")
    for x, b, v in zip(xs, bias, variance):
        overall.annotate(f"{b:.3f}\n+{v:.3f}", (x, b + v), ha="center", va="bottom", fontsize=7)
    overall.set_xticks(xs, [f"{n}\n({groups[n]['n_members']} seeds)" for n in names], fontsize=8)
    overall.set(ylabel="nats per labelled pixel", title="expected cross-entropy")
    overall.margins(y=0.15)
    overall.legend(handles=legend, loc="lower right", fontsize=7)

    height = 0.8 / len(names)
    ys = np.arange(len(classes))
    for i, (name, colour) in enumerate(zip(names, colours)):
        per_class = groups[name]["per_class"]
        offset = ys - 0.4 + (i + 0.5) * height
        b = np.array([per_class[c]["bias"] for c in classes])
        v = np.array([per_class[c]["variance"] for c in classes])
        stacked.barh(offset, b, height=height, color=colour, edgecolor="k", linewidth=0.3)
        stacked.barh(offset, v, left=b, height=height, color=colour, alpha=0.45, hatch="//", edgecolor="k",
                     linewidth=0.3)
        spread.barh(offset, v, height=height, color=colour, alpha=0.7, hatch="//", edgecolor="k", linewidth=0.3)
    total = next(iter(groups.values()))["pixels"]
    labels = [f"{c} ({100 * groups[names[0]]['per_class'][c]['pixels'] / total:.1f}%)" for c in classes]
    for axis in (stacked, spread):
        axis.set_yticks(ys, labels if axis is stacked else [], fontsize=7)
        axis.set_ylim(len(classes) - 0.5, -0.5)
    stacked.set(xlabel="nats per pixel of the class", title="bias + variance per ground-truth class (share of pixels)")
    spread.set(xlabel="nats per pixel of the class", title="variance per class")
    fig.suptitle(f"bias-variance decomposition of log loss · {report['dataset']} {report['split']}")
    return save_figure(fig, path, dpi=110)
