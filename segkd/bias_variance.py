"""Command line: ``python -m segkd.bias_variance 'groups={scratch:[GLOB_OR_PATH,...],kd:[...]}' [dataset=NAME]``

Does distillation make a student better on average (lower bias), or only more alike from seed to
seed (lower variance)? Each group is one recipe trained with several seeds; every member of every
group predicts each image of the split, and the group's expected cross-entropy is split into bias
and variance (Heskes 1998; the maths is in segkd.analysis.bias_variance and docs/BIAS_VARIANCE.md),
over all labelled pixels and per ground-truth class. The run dir (outputs/bias_variance/runs/<id>/)
gets ``bias_variance.json``, ``bias_variance.md`` (tables) and ``bias_variance.png`` (the groups side
by side). ``bias_variance(cfg)`` is what tests call.

All networks stay loaded and the split is read once, image by image, so that no pixel has to be kept:
a group costs the memory of its networks plus two members' log-probabilities of one image.
"""

from __future__ import annotations

import glob
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Iterator, Optional

import hydra
import torch
from omegaconf import DictConfig
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from torch import Tensor
from torch.utils.data import DataLoader

from segkd.analysis.bias_variance import TERMS, BiasVariance
from segkd.config import build, to_plain
from segkd.inference import EvaluationSet, SegmentationPredictor
from segkd.metrics import SegmentationMetrics
from segkd.models.checkpoint import load_net, read_checkpoint
from segkd.inference.devices import resolve_device
from segkd.runtime.errors import errors_in_one_line

REPORT_JSON, REPORT_MD, REPORT_PNG = "bias_variance.json", "bias_variance.md", "bias_variance.png"
MEMBER_HINT = "each member of a group must be a segkd checkpoint, e.g. outputs/<task>/runs/<time>/checkpoints/last.ckpt"
GROUPS_HINT = ("set groups={name:[path_or_glob,...],...}, "
               "e.g. 'groups={scratch:[outputs/a/seed*/checkpoints/last.ckpt],kd:[...]}'")


@hydra.main(version_base="1.3", config_path="../conf", config_name="bias_variance")
def main(cfg: DictConfig) -> None:
    """Decompose and report; segkd's own errors (no groups, a group of one, a missing checkpoint or
    data, classes that differ) end with their one line."""
    with errors_in_one_line():
        bias_variance(cfg)


def expand_groups(groups: Any) -> dict[str, list[Path]]:
    """Name -> checkpoint paths, each glob pattern expanded in sorted order (a path without wildcards is
    kept as given, so that a missing file is reported by name when it is read). The same file may
    appear twice: a group of one network twice has variance 0, a check of the tool itself."""
    groups = to_plain(groups)
    if not isinstance(groups, dict) or not groups:
        raise ValueError(f"no groups given; {GROUPS_HINT}")
    expanded = {}
    for name, patterns in groups.items():
        patterns = [patterns] if isinstance(patterns, str) else patterns
        if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
            raise ValueError(f"groups.{name} must be a list of checkpoint paths or glob patterns; {GROUPS_HINT}")
        paths: list[Path] = []
        for pattern in patterns:
            pattern = os.path.expanduser(pattern)
            if not glob.has_magic(pattern):
                paths.append(Path(pattern))
                continue
            found = sorted(glob.glob(pattern, recursive=True))
            if not found:
                raise FileNotFoundError(f"groups.{name}: the pattern {pattern} matches no file")
            paths.extend(Path(p) for p in found)
        if len(paths) < 2:
            raise ValueError(f"groups.{name} has {len(paths)} checkpoint(s): variance needs at least two seeds "
                             "of a recipe; list more checkpoints or a glob that matches them")
        expanded[str(name)] = paths
    return expanded


class _Member:
    """One network of a group, its predictor and its own scores (for the group's mean mIoU)."""

    def __init__(self, group: str, path: Path, cfg: DictConfig, class_names: tuple[str, ...], ignore_index: int,
                 device: torch.device) -> None:
        self.path = path.expanduser().absolute()
        ckpt = read_checkpoint(self.path, MEMBER_HINT, key=f"groups.{group}")
        net, spec = load_net(self.path, cfg.net, ckpt=ckpt)
        if spec.get("classes") not in (None, len(class_names)):
            raise ValueError(f"checkpoint {self.path} predicts {spec['classes']} classes but dataset="
                             f"{cfg.dataset.get('name')} has {len(class_names)}; every member of every group "
                             "must be trained for the data it is decomposed on")
        # Logits at the labels' size; no TTA, which averages probabilities whose logarithm the maths needs.
        self.predictor = SegmentationPredictor(net, mode=cfg.mode, window=to_plain(cfg.window),
                                               stride=to_plain(cfg.stride)).to(device).eval()
        self.metrics = SegmentationMetrics(len(class_names), class_names, ignore_index).to(device)

    def logits(self, image: Tensor, mask: Tensor) -> Tensor:
        logits = self.predictor.logits(image)
        self.metrics.update(logits, mask)
        return logits


class _Group:
    """The members of one recipe, the decomposition of their predictions, and the geometric ensemble's scores."""

    def __init__(self, name: str, paths: list[Path], cfg: DictConfig, class_names: tuple[str, ...],
                 ignore_index: int, device: torch.device) -> None:
        self.members = [_Member(name, path, cfg, class_names, ignore_index, device) for path in paths]
        self.decomposition = BiasVariance(class_names, ignore_index)
        self.ensemble = SegmentationMetrics(len(class_names), class_names, ignore_index).to(device)

    def update(self, image: Tensor, mask: Tensor) -> None:
        members: Iterator[Tensor] = (member.logits(image, mask) for member in self.members)
        self.ensemble.update(self.decomposition.update(members, mask), mask)

    def results(self) -> dict:
        member_miou = [_miou(member.metrics) for member in self.members]
        finite = [v for v in member_miou if v is not None]
        return {
            "n_members": len(self.members),
            "members": [str(member.path) for member in self.members],
            "member_miou": member_miou,
            "mean_miou": sum(finite) / len(finite) if finite else None,
            "ensemble_miou": _miou(self.ensemble),
            **self.decomposition.compute(),
        }


def _miou(metrics: SegmentationMetrics) -> Optional[float]:
    value = metrics.as_dict(metrics.compute())["mIoU"]
    return value if math.isfinite(value) else None


def bias_variance(cfg: DictConfig) -> dict:
    """Decompose every group on ``cfg.split``, write the JSON, Markdown and PNG reports, return the JSON's content."""
    paths = expand_groups(cfg.get("groups"))
    device = resolve_device(str(cfg.device))
    datamodule = build(cfg.dataset)
    datamodule.prepare_data()  # SynthStreets is written on first use, as for training
    folder = datamodule.dataset(split=cfg.split, transform=None)
    class_names, ignore_index = tuple(folder.class_names), folder.ignore_index
    groups = {name: _Group(name, members, cfg, class_names, ignore_index, device) for name, members in paths.items()}
    # Images of a split may differ in size: one at a time.
    loader = DataLoader(EvaluationSet(folder, datamodule.mean, datamodule.std), batch_size=1, shuffle=False,
                        num_workers=cfg.num_workers)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    start = time.perf_counter()
    with torch.no_grad(), Progress(*columns, disable=not cfg.progress_bar) as progress:
        task = progress.add_task(f"{sum(len(m) for m in paths.values())} networks on {cfg.split}", total=len(loader))
        for batch in loader:
            image, mask = batch["image"].to(device), batch["mask"].to(device)
            for group in groups.values():
                group.update(image, mask)
            progress.advance(task)
    seconds = time.perf_counter() - start

    report = {
        "dataset": datamodule.name,
        "root": str(folder.root),
        "split": cfg.split,
        "images": len(folder),
        "net": cfg.net,
        **next(iter(groups.values())).members[0].predictor.describe(),
        "device": str(device),
        "time_s": seconds,
        "groups": {name: group.results() for name, group in groups.items()},
    }
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n")
    (output_dir / REPORT_MD).write_text(markdown(report))
    draw(report, output_dir / REPORT_PNG)
    print_report(report)
    Console().print(f"reports in {output_dir}", highlight=False)
    return report


# ----------------------------------------------------------------------------- reports

def _nats(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:.4f}"


def _pct(value: Optional[float]) -> str:
    return "—" if value is None else f"{100 * value:.2f}"


def overall_rows(report: dict) -> list[list[str]]:
    """One row per group: members, mean member mIoU, geometric-ensemble mIoU, the three terms and the variance share."""
    return [[name, str(g["n_members"]), _pct(g["mean_miou"]), _pct(g["ensemble_miou"]),
             *(_nats(g[term]) for term in TERMS), _pct(g["variance_share"])]
            for name, g in report["groups"].items()]


OVERALL_HEADER = ["group", "members", "mean mIoU %", "ensemble mIoU %", "expected CE", "bias", "variance",
                  "variance share %"]


def class_mean_rows(report: dict) -> list[list[str]]:
    """One row per group: the three terms averaged over classes, each class weighted equally (as mIoU does)."""
    return [[name, *(_nats(g["class_mean"][term]) for term in TERMS)] for name, g in report["groups"].items()]


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
        lines.append(f"- **{name}**: " + ", ".join(f"`{path}` (mIoU {_pct(miou)})"
                                                   for path, miou in zip(g["members"], g["member_miou"])))
    return "\n".join(lines) + "\n"


def _table(header: list[str], rows: list[list[str]]) -> str:
    right = ["---"] + ["---:"] * (len(header) - 1)
    return "\n".join("| " + " | ".join(row) + " |" for row in [header, right, *rows])


def print_report(report: dict, console: Optional[Console] = None) -> None:
    console = console or Console()
    table = Table(title=f"bias-variance · {report['dataset']} {report['split']} ({report['images']} images) · nats")
    for i, column in enumerate(OVERALL_HEADER):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in overall_rows(report):
        table.add_row(*row)
    console.print(table)


def draw(report: dict, path: str | Path) -> Path:
    """Write ``path`` (PNG), the groups side by side in each panel: each group's expected CE as stacked
    bias + variance; the same per ground-truth class (classes without pixels left out); and the
    per-class variance alone, which the stacked bars make too thin to compare. Drawn on a matplotlib
    Figure, not pyplot, as segkd.visual does."""
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    groups = report["groups"]
    names = list(groups)
    classes = [c for c, v in next(iter(groups.values()))["per_class"].items() if v["pixels"]]
    colours = [f"C{i % 10}" for i in range(len(names))]
    fig = Figure(figsize=(16, max(4.5, 0.3 * len(classes) * max(1.0, len(names) / 2) + 1.5)))
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
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


if __name__ == "__main__":
    main()
