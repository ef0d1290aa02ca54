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
import time
from pathlib import Path
from typing import Optional

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig
from rich.console import Console
from torch.utils.data import DataLoader

from segkd.config import build, to_plain
from segkd.inference import BenchmarkWriter, EvaluationSet, Evaluator, OverlayWriter, SegmentationPredictor
from segkd.inference.checkpoint import network_from
from segkd.inference.writers import prediction_format
from segkd.reporting import console_table, percent
from segkd.runtime.errors import errors_in_one_line
from segkd.runtime.processes import argv_for_ddp_child, ddp_job_scope, save_job_config

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
    datamodule = build(cfg.dataset)
    datamodule.prepare_data()  # SynthStreets is written on first use, as for training
    with_labels = bool(cfg.labels) if cfg.get("labels") is not None else cfg.split != "test"
    folder = datamodule.dataset(split=cfg.split, transform=None, with_labels=with_labels)
    if spec.get("classes") not in (None, folder.num_classes):
        raise ValueError(f"checkpoint {ckpt_path} ('{cfg.net}') predicts {spec['classes']} classes but "
                         f"dataset={cfg.dataset.get('name', folder.dataset_name)} has {folder.num_classes}; evaluate it on "
                         "the data it was trained for")

    predictor = SegmentationPredictor(net, mode=cfg.mode, window=to_plain(cfg.window), stride=to_plain(cfg.stride),
                                      flip=cfg.tta.flip, scales=to_plain(cfg.tta.scales))
    evaluator = Evaluator(predictor, folder.class_names, folder.ignore_index)
    fmt = prediction_format(folder)
    callbacks: list = [BenchmarkWriter(output_dir / fmt.folder, fmt)]
    if cfg.save_overlays:
        callbacks.append(OverlayWriter(output_dir / "overlays", cfg.overlay_alpha))
    # Nothing trains: BatchNorm keeps its running statistics, SyncBatchNorm has nothing to do.
    trainer_kwargs = {**to_plain(cfg.trainer), "sync_batchnorm": False}
    trainer: L.Trainer = instantiate(trainer_kwargs, callbacks=callbacks, logger=False, enable_checkpointing=False)
    if not isinstance(cfg.batch_size, int) or isinstance(cfg.batch_size, bool) or cfg.batch_size < 1:
        raise ValueError(f"batch_size={cfg.batch_size} must be a whole number of images, at least 1")
    loader = DataLoader(EvaluationSet(folder, datamodule.mean, datamodule.std), batch_size=cfg.batch_size,
                        shuffle=False, num_workers=cfg.num_workers)

    # DDP ranks > 0 rebuild this job from its resolved config and write into this run dir (segkd.runtime.processes).
    save_job_config(cfg, output_dir)
    start = time.perf_counter()
    with ddp_job_scope(output_dir):
        trainer.predict(evaluator, dataloaders=loader, return_predictions=False)
    seconds = time.perf_counter() - start

    report = {
        "checkpoint": str(ckpt_path),
        "net": cfg.net,
        "model": spec,
        "dataset": datamodule.name,
        "root": str(folder.root),
        "split": cfg.split,
        **predictor.describe(),
        "images": evaluator.images_seen,
        "devices": trainer.world_size,
        **(evaluator.results or {}),
        "predictions": str(output_dir / fmt.folder),
        "prediction_format": "label ids" if fmt.label_ids else "train ids",
        "overlays": str(output_dir / "overlays") if cfg.save_overlays else None,
        "time_s": seconds,
        "images_per_s": evaluator.images_seen / seconds if seconds > 0 else None,
    }
    if trainer.is_global_zero:
        if evaluator.results is not None:
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
    sys.argv = argv_for_ddp_child(sys.argv)
    main()
