"""segkd.analyze's work: one split of a segmentation dataset described before anything is trained on
it (how the labelled pixels and images divide among the classes, how large the objects of each class
are, the colour statistics of the images against the loaders' normalisation, the class weights each
weighting scheme of the loss would use), written as report.md, stats.json, class_weights.json and
PNG figures. The maths is in segkd.analysis.dataset_stats, the figures in segkd.analysis.dataset_plots.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from segkd.analysis.dataset_plots import (draw_class_frequency, draw_class_presence, draw_object_size_histograms,
                                          draw_object_sizes)
from segkd.analysis.dataset_stats import (AREA_BIN_EDGES, AREA_PERCENTILES, CITYSCAPES_PUBLISHED_PERCENT,
                                          CITYSCAPES_REFERENCE_SOURCE,
                                          ChannelMoments, ObjectSizes, cityscapes_reference_shares, class_shares,
                                          rarest, weights_by_scheme)
from segkd.data import CityscapesDataset, DatasetError, SegmentationFolder
from segkd.data.class_stats import class_statistics
from segkd.reporting import markdown_table, percent

REPORT_FILE, STATS_FILE, WEIGHTS_FILE = "report.md", "stats.json", "class_weights.json"
FIGURES = {
    "class_frequency": "class_frequency.png",
    "class_presence": "class_presence.png",
    "object_sizes": "object_sizes.png",
    "object_size_histograms": "object_size_histograms.png",
}


def analyze_split(datamodule, split: str, output_dir: Path) -> dict:
    """segkd.analyze's work: measure every image of ``split`` of ``datamodule`` (one pass, with a
    progress bar), write report.md, stats.json, class_weights.json and the figures into
    ``output_dir``, and return the numbers (what stats.json holds)."""
    datamodule.prepare_data()  # SynthStreets is written on first use, as for training
    folder = open_split(datamodule, split)
    names = list(folder.class_names)

    stats, from_cache, sizes, colours, shapes = measure(folder, datamodule.stats_cache_dir)
    share, presence = class_shares(stats)
    weights = weights_by_scheme(stats)
    reference = cityscapes_reference_shares() if isinstance(folder, CityscapesDataset) else None
    mean, std = colours.mean_std()
    classes = []
    for c, name in enumerate(names):
        row = {"class": name, "pixels": stats["pixels"][c], "pixel_share": float(share[c]),
               "images_present": stats["images_present"][c], "presence": float(presence[c]), **sizes.summary(c),
               "weights": {scheme: float(w[c]) for scheme, w in weights.items()}}
        if reference is not None:
            row["cityscapes_share"] = float(reference[c])
        classes.append(row)
    report = {
        "dataset": datamodule.name,
        "layout": folder.dataset_name,
        "root": str(folder.root),
        "split": split,
        "train_split": datamodule.train_split,
        "images": len(folder),
        "image_sizes": shapes,
        "labelled_pixels": int(sum(stats["pixels"])),
        "classes": classes,
        "area_bin_edges": AREA_BIN_EDGES.tolist(),
        "rgb_mean": mean.tolist(),
        "rgb_std": std.tolist(),
        "normalisation_mean": list(datamodule.mean),
        "normalisation_std": list(datamodule.std),
        "cityscapes_reference": CITYSCAPES_REFERENCE_SOURCE if reference is not None else None,
        "stats_cache_dir": datamodule.stats_cache_dir,
        "stats_from_cache": from_cache,
        "class_statistics": stats,
        "output_dir": str(output_dir),
    }

    output_dir.mkdir(parents=True, exist_ok=True)
    title = f"{datamodule.name} {split} ({len(folder)} images)"
    draw_class_frequency(names, share, output_dir / FIGURES["class_frequency"], f"{title}: pixels per class",
                         reference=reference, reference_label="Cityscapes (published)")
    draw_class_presence(names, presence, output_dir / FIGURES["class_presence"], f"{title}: images per class")
    draw_object_sizes(names, [sizes.shares(c) for c in range(len(names))], output_dir / FIGURES["object_sizes"],
                      f"{title}: connected regions per class")
    draw_object_size_histograms(names, [row["area_histogram"] for row in classes],
                                output_dir / FIGURES["object_size_histograms"], f"{title}: object areas")
    (output_dir / STATS_FILE).write_text(json.dumps(report, indent=2) + "\n")
    (output_dir / WEIGHTS_FILE).write_text(json.dumps(weights_file(report, weights, names), indent=2) + "\n")
    (output_dir / REPORT_FILE).write_text(render_report(report))
    return report


def measure(folder: SegmentationFolder, cache_dir: Optional[str]) -> tuple:
    """One pass over the split with a progress bar: ``(pixel statistics, whether they came from the
    cache, object sizes, colour moments, image sizes)``. The pixel counts are training's own
    (:func:`class_statistics`, cached in ``cache_dir``); images are read through the dataset's loader."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
        counted = ProgressMasks(folder, bar, f"{folder.split}: class pixels")
        stats = class_statistics(counted, folder.num_classes, cache_dir)
        bar.update(counted.task, completed=len(folder))  # a split read from the cache counted nothing
        sizes, colours, shapes = ObjectSizes(folder.num_classes), ChannelMoments(), Counter()
        for i in bar.track(range(len(folder)), description=f"{folder.split}: objects and colours"):
            image, mask = folder.load(i)
            sizes.add(mask)
            colours.add(image)
            shapes[f"{mask.shape[0]}x{mask.shape[1]}"] += 1
    return stats, counted.read == 0, sizes, colours, dict(shapes)


class ProgressMasks:
    """The split as :func:`class_statistics` reads it (its label files, their masks), advancing a
    progress bar per mask, so that the uncached pass over a large split is visible."""

    def __init__(self, folder: SegmentationFolder, progress: Progress, description: str) -> None:
        self.folder, self.progress = folder, progress
        self.samples = folder.samples
        self.task = progress.add_task(description, total=len(folder))
        self.read = 0

    def __len__(self) -> int:
        return len(self.folder)

    def load_mask(self, index: int) -> np.ndarray:
        self.read += 1
        self.progress.advance(self.task)
        return self.folder.load_mask(index)


def open_split(datamodule, split: str) -> SegmentationFolder:
    """The split's dataset, untransformed; a split that does not exist is named with the ones that do."""
    try:
        return datamodule.dataset(split=split, transform=None)
    except DatasetError as err:
        root = Path(str(datamodule.root)).expanduser() if datamodule.root is not None else None
        splits = split_folders(root, (datamodule.train_split, datamodule.val_split)) if root is not None else []
        if not splits or split in splits:
            raise  # no split folder found at all (missing root, wrong layout) or a broken split: its own message
        raise DatasetError(f"split={split} does not exist under {root}; its splits are {', '.join(splits)}: "
                           f"set split= to one of them") from err


def split_folders(root: Path, known: Sequence[str], depth: int = 3) -> list[str]:
    """Names of the folders beside any folder named like a split the data module knows (train, val),
    up to ``depth`` levels below ``root``: the split folders of any layout (leftImg8bit/<split>,
    images/10k/<split>) without knowing the layout."""
    found: set[str] = set()
    for level in range(1, depth + 1):
        for path in root.glob("/".join(["*"] * level)):
            if path.name in known and path.is_dir():
                found.update(p.name for p in path.parent.iterdir() if p.is_dir())
    return sorted(found)


def weights_file(report: dict, weights: dict[str, np.ndarray], names: Sequence[str]) -> dict:
    """class_weights.json: each scheme's weight per class, and the override that trains with it."""
    return {
        "dataset": report["dataset"],
        "root": report["root"],
        "split": report["split"],
        "use": "system.loss.class_weighting=<scheme>",
        "schemes": {scheme: dict(zip(names, map(float, w))) for scheme, w in weights.items()},
    }


# ----------------------------------------------------------------------------- report

def share_pct(value: Optional[float]) -> str:
    """A share as a percentage with 3 significant digits: shares span 5 decades, fixed decimals do not."""
    return percent(value, ".3g")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return markdown_table(header, rows).split("\n")


def render_report(report: dict) -> str:
    """report.md: the per-class table, what it says, the colour statistics and the class weights' use."""
    classes, low, high = report["classes"], *AREA_PERCENTILES
    schemes = list(classes[0]["weights"])
    has_reference = report["cityscapes_reference"] is not None
    header = ["class", "% pixels", *(["% pixels, Cityscapes"] if has_reference else []), "% images", "objects",
              "median area %", f"p{low} area %", f"p{high} area %", *(f"w {s}" for s in schemes)]
    rows = [[c["class"], share_pct(c["pixel_share"]), *([share_pct(c["cityscapes_share"])] if has_reference else []),
             share_pct(c["presence"]), str(c["objects"]), share_pct(c["median_area"]), share_pct(c[f"p{low}_area"]),
             share_pct(c[f"p{high}_area"]), *(f"{c['weights'][s]:.3g}" for s in schemes)] for c in classes]
    sizes = ", ".join(f"{n} of {size}" for size, n in report["image_sizes"].items())
    lines = [
        f"# Dataset analysis: {report['dataset']} {report['split']}",
        "",
        f"{report['images']} images ({sizes}) under `{report['root']}` ({report['layout']} layout), "
        f"{report['labelled_pixels']:,} labelled pixels (ignored pixels excluded from every share).",
        "",
        "## Classes",
        "",
        "% pixels: share of the labelled pixels. % images: share of the images where the class appears. "
        "objects: 8-connected regions of the class (two touching cars are one region); areas are shares of "
        "their image. w: the loss's weight per class under each scheme.",
        "",
        *_table(header, rows),
        "",
        *_findings(report),
        "",
        f"![pixels per class]({FIGURES['class_frequency']})",
        f"![images per class]({FIGURES['class_presence']})",
        f"![object sizes]({FIGURES['object_sizes']})",
        f"![object size histograms]({FIGURES['object_size_histograms']})",
        "",
        *_colour_section(report),
        "",
        *_weights_section(report),
    ]
    if has_reference:
        lines += ["", "## Reference", "",
                  f"Cityscapes shares: the published per-class pixel percentages of Cityscapes' fine annotations "
                  f"({report['cityscapes_reference']}, a third-party table, the Cityscapes paper only plots them), "
                  f"renormalised over the {len(CITYSCAPES_PUBLISHED_PERCENT)} evaluated classes, which cover "
                  f"{sum(CITYSCAPES_PUBLISHED_PERCENT):.0f}% of its pixels."]
    return "\n".join(lines) + "\n"


def _findings(report: dict) -> list[str]:
    """What the table says, computed from it: imbalance, the rarest and smallest classes, absences."""
    classes = report["classes"]
    names = [c["class"] for c in classes]
    shares = [c["pixel_share"] for c in classes]
    lines = ["What it says:", ""]
    rare = rarest(names, shares)
    if rare:
        top = max(classes, key=lambda c: c["pixel_share"])
        ratio = top["pixel_share"] / rare[0][1]
        lines.append(f"- Rarest classes by pixels: {', '.join(f'{n} ({share_pct(v)}%)' for n, v in rare)}; the most "
                     f"frequent, {top['class']} ({share_pct(top['pixel_share'])}%), has {ratio:,.0f}x the pixels of "
                     f"{rare[0][0]}.")
    scarce = rarest(names, [c["presence"] for c in classes])
    if scarce:
        lines.append(f"- Seen in the fewest images: {', '.join(f'{n} ({share_pct(v)}%)' for n, v in scarce)}.")
    small = rarest(names, [c["median_area"] for c in classes])
    if small:
        sizes = list(report["image_sizes"])
        h, w = (int(v) for v in sizes[0].split("x")) if len(sizes) == 1 else (None, None)
        by_name = {c["class"]: c for c in classes}
        lines.append("- Smallest regions (median area): " + ", ".join(
            f"{n} ({share_pct(v)}% of the image" + (f", about {v * h * w:.0f} px at {h}x{w}" if h else "") + ")"
            for n, v in small) + "; a tenth of their objects are smaller than "
            + ", ".join(f"{share_pct(by_name[n][f'p{AREA_PERCENTILES[0]}_area'])}%" for n, _ in small) + " respectively.")
    absent = [c["class"] for c in classes if c["pixels"] == 0]
    if absent:
        lines.append(f"- Absent from this split (weight 0 in every scheme): {', '.join(absent)}.")
    if report["cityscapes_reference"] is not None:
        ratio = {c["class"]: c["pixel_share"] / c["cityscapes_share"] for c in classes if c["cityscapes_share"] > 0}
        more = [f"{n} ({r:.1f}x)" for n, r in ratio.items() if r >= 2]
        less = [f"{n} ({r:.2f}x)" for n, r in ratio.items() if 0 < r <= 0.5]
        lines.append(f"- Against Cityscapes' shares: at least twice as frequent here: {', '.join(more) or 'none'}; "
                     f"at most half as frequent: {', '.join(less) or 'none'}.")
    return lines


def _colour_section(report: dict) -> list[str]:
    mean, std = report["rgb_mean"], report["rgb_std"]
    norm_mean, norm_std = report["normalisation_mean"], report["normalisation_std"]
    rows = [[ch, f"{mean[i]:.3f}", f"{norm_mean[i]:.3f}", f"{std[i]:.3f}", f"{norm_std[i]:.3f}"]
            for i, ch in enumerate("RGB")]
    shift = [(m - n) / s for m, n, s in zip(mean, norm_mean, norm_std)]
    scale = [s / n for s, n in zip(std, norm_std)]
    return ["## Image colour statistics", "",
            "Per channel over every pixel of the split, on the 0-1 scale, beside the normalisation the loaders "
            "apply (`SegmentationDataModule.mean/std`, ImageNet's by default).", "",
            *_table(["channel", "mean", "loader mean", "std", "loader std"], rows), "",
            "After normalisation this split's channels have mean "
            + ", ".join(f"{v:+.2f}" for v in shift) + " and std " + ", ".join(f"{v:.2f}" for v in scale)
            + " (0 and 1 would be a perfect match)."]


def _weights_section(report: dict) -> list[str]:
    where = report["stats_cache_dir"]
    how = "read from" if report["stats_from_cache"] else "counted and cached in"
    lines = ["## Class weights", "",
             f"`{WEIGHTS_FILE}` holds each scheme's weights. The pixel counts behind them were {how} `{where}`, "
             "the cache training reads: `python -m segkd.run system.loss.class_weighting=median` (or `inverse`, "
             "`enet`) weights each pixel's cross-entropy by its class's weight, computed from these counts "
             "(segkd.losses.class_weights) when training starts; `none` (the default) leaves the loss unweighted."]
    if report["split"] != report["train_split"]:
        lines.append(f"These weights are of the `{report['split']}` split; training weights by its "
                     f"`{report['train_split']}` split.")
    return lines
