"""Command line: ``python -m segkd.analyze [dataset=NAME] [dataset.root=...] [split=train]``

Describes one split of a segmentation dataset before anything is trained on it: how the labelled
pixels and images divide among the classes, how large the objects of each class are, the colour
statistics of the images against the loaders' normalisation, and the class weights each weighting
scheme of the loss would use. Writes ``report.md``, ``stats.json``, ``class_weights.json`` and the
PNG figures into the run dir; the pixel counts land in the very cache training's class weighting
reads (``dataset.stats_cache_dir``). The work is segkd.analysis.dataset_report's; ``analyze(cfg)`` is
what tests call; docs/DATASET_ANALYSIS.md has the measured SynthStreets numbers.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import hydra
from omegaconf import DictConfig
from rich.console import Console

from segkd.analysis.dataset_report import FIGURES, REPORT_FILE, STATS_FILE, WEIGHTS_FILE, analyze_split, share_pct
from segkd.config import build, command_line
from segkd.reporting import console_table
from segkd.runtime.errors import errors_in_one_line

__all__ = ["FIGURES", "REPORT_FILE", "STATS_FILE", "WEIGHTS_FILE", "analyze", "main", "print_summary"]


@hydra.main(version_base="1.3", config_path="../conf", config_name="analyze")
def main(cfg: DictConfig) -> None:
    """Analyse the split; segkd's own errors (missing data, unknown split) end with their one line."""
    with errors_in_one_line():
        analyze(cfg)


def analyze(cfg: DictConfig) -> dict:
    """Measure every image of ``cfg.split``, write the report, figures and JSON files, return the numbers."""
    report = analyze_split(build(cfg.dataset), cfg.split, Path(cfg.paths.output_dir))
    print_summary(report)
    return report


def print_summary(report: dict, console: Optional[Console] = None) -> None:
    """The per-class shares and object sizes on the console, and where the files went."""
    console = console or Console()
    console.print(console_table(f"{report['dataset']} {report['split']} ({report['images']} images)",
                                ["class", "% pixels", "% images", "objects", "median area %"],
                                [[c["class"], share_pct(c["pixel_share"]), share_pct(c["presence"]), str(c["objects"]),
                                  share_pct(c["median_area"])] for c in report["classes"]]))
    console.print(f"RGB mean {', '.join(f'{v:.3f}' for v in report['rgb_mean'])} · "
                  f"std {', '.join(f'{v:.3f}' for v in report['rgb_std'])}")
    console.print(f"report: {Path(report['output_dir']) / REPORT_FILE}")


if __name__ == "__main__":
    sys.argv = command_line("analyze", sys.argv)
    main()
