"""Command line: ``python -m segkd.evaluate ckpt_path=PATH [dataset=NAME] [split=val] [net=NAME] [mode=slide] ...``

Scores one network of any segkd checkpoint on a whole split at the labels' full resolution, with the
metric training validation uses, and writes its predictions in the benchmark's format: labelId PNGs
under ``cityscapes_results/`` for Cityscapes-layout data (the embedded SynthStreets included), train-id
PNGs under ``bdd100k_results/`` for BDD100K. ``evaluate(cfg)`` is what tests call; docs/EVALUATION.md
has the options and measurements.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import hydra
from omegaconf import DictConfig
from rich.console import Console

from segkd.config import build, command_line, to_plain
from segkd.inference.checkpoint import network_from
from segkd.inference.evaluation import evaluate_split
from segkd.reporting import console_table, percent
from segkd.runtime.errors import errors_in_one_line
from segkd.runtime.processes import argv_for_ddp_child

METRICS_FILE = "metrics.json"


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> Optional[float]:
    """Evaluate and hand the mIoU back to Hydra (None for a split without labels).

    segkd's own errors (missing checkpoint or data, wrong network name) end with their one line.
    """
    with errors_in_one_line():
        return evaluate(cfg).get("mIoU")


def evaluate(cfg: DictConfig) -> dict:
    """Predict every image of ``cfg.split``, write the predictions, and return (and write) the scores."""
    output_dir = Path(cfg.paths.output_dir)
    net, spec, ckpt_path = network_from(cfg.get("ckpt_path"), cfg.net)
    with_labels = bool(cfg.labels) if cfg.get("labels") is not None else cfg.split != "test"
    predictor = {"mode": cfg.mode, "window": to_plain(cfg.window), "stride": to_plain(cfg.stride),
                 "flip": cfg.tta.flip, "scales": to_plain(cfg.tta.scales)}
    result, reports = evaluate_split(
        net, spec, ckpt_path, cfg.net, build(cfg.dataset), cfg.split, with_labels, predictor, to_plain(cfg.trainer),
        cfg.batch_size, cfg.num_workers, output_dir, save_overlays=bool(cfg.save_overlays),
        overlay_alpha=cfg.overlay_alpha, dataset_name=cfg.dataset.get("name"), job_config=cfg)
    report = {"checkpoint": str(ckpt_path), "net": cfg.net, "model": spec, **result}
    if reports:
        if "mIoU" in report:
            (output_dir / METRICS_FILE).write_text(json.dumps(report, indent=2) + "\n")
        print_report(report)
    return report


def print_report(report: dict, console: Optional[Console] = None) -> None:
    """Per-class and per-category IoU tables and the headline numbers, on the console."""
    console = console or Console()
    where = f"{report['dataset']} {report['split']} ({report['images']} images)"
    if "IoU" in report:
        console.print(console_table(f"{where} · {report['net']}", ["class", "IoU %"],
                                    [[name, percent(iou)] for name, iou in report["IoU"].items()]))
    if "category_IoU" in report:
        console.print(console_table("Cityscapes categories", ["category", "IoU %"],
                                    [[name, percent(iou)] for name, iou in report["category_IoU"].items()]))
    tta = report["tta"]
    how = (f"{report['mode']}" + (f" {report['window'][0]}x{report['window'][1]}" if report["mode"] == "slide" else "")
           + (" + flip" if tta["flip"] else "") + (f" · scales {tta['scales']}" if tta["scales"] != [1.0] else ""))
    speed = f"{report['time_s']:.1f} s ({report['images_per_s'] or 0:.2f} images/s on {report['devices']} device(s))"
    if "mIoU" in report:
        console.print(f"mIoU {percent(report['mIoU'])} · pixel acc {percent(report['pixel_acc'])}"
                      + (f" · category mIoU {percent(report['category_mIoU'])}" if "category_mIoU" in report else "")
                      + f" · {how} · {speed}")
    else:
        console.print(f"{where}: no labels, predictions only · {how} · {speed}")
    console.print(f"predictions ({report['prediction_format']}): {report['predictions']}")


if __name__ == "__main__":
    sys.argv = command_line("evaluate", argv_for_ddp_child(sys.argv))
    main()
