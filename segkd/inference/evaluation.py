"""segkd.evaluate's work: one network scored on a whole split at the labels' full resolution, on any
devices (Lightning's ``Trainer.predict``), its predictions written in the benchmark's format."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import lightning as L
from hydra.utils import instantiate
from torch import nn
from torch.utils.data import DataLoader

from segkd.inference.data import EvaluationSet
from segkd.inference.evaluator import Evaluator
from segkd.inference.predictor import SegmentationPredictor
from segkd.inference.writers import BenchmarkWriter, OverlayWriter, prediction_format
from segkd.models.architectures import num_classes
from segkd.runtime.processes import ddp_job_scope, save_job_config


def evaluate_split(net: nn.Module, spec: dict, ckpt_path: Path, net_name: str, datamodule, split: str,
                   with_labels: bool, predictor: dict, trainer: dict, batch_size: Any, num_workers: int,
                   output_dir: Path, save_overlays: bool = False, overlay_alpha: float = 0.5,
                   dataset_name: Optional[str] = None, job_config: Any = None) -> tuple[dict, bool]:
    """Predict every image of ``split`` of ``datamodule`` with ``net`` (``predictor``: the
    :class:`SegmentationPredictor` options), write the predictions (and overlays) under
    ``output_dir`` and score them where the split has labels. ``trainer`` is the Trainer's settings
    (a Hydra node), ``job_config`` the config DDP ranks > 0 rebuild the job from. Returns what was
    run and the scores (``mIoU``, ``pixel_acc``, ``IoU``...; none without labels), and whether this
    process is the one that reports (rank 0)."""
    datamodule.prepare_data()  # SynthStreets is written on first use, as for training
    folder = datamodule.dataset(split=split, transform=None, with_labels=with_labels)
    classes = num_classes(net)  # from the network itself: a spec need not name it `classes`
    if classes != folder.num_classes:
        raise ValueError(f"checkpoint {ckpt_path} ('{net_name}') predicts {classes} classes but "
                         f"dataset={dataset_name or folder.dataset_name} has {folder.num_classes}; evaluate it on "
                         "the data it was trained for")

    predictor = SegmentationPredictor(net, **predictor)
    evaluator = Evaluator(predictor, folder.class_names, folder.ignore_index)
    fmt = prediction_format(folder)
    callbacks: list = [BenchmarkWriter(output_dir / fmt.folder, fmt)]
    if save_overlays:
        callbacks.append(OverlayWriter(output_dir / "overlays", overlay_alpha))
    # Nothing trains: BatchNorm keeps its running statistics, SyncBatchNorm has nothing to do.
    trainer_kwargs = {**trainer, "sync_batchnorm": False}
    runner: L.Trainer = instantiate(trainer_kwargs, callbacks=callbacks, logger=False, enable_checkpointing=False)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be a whole number of images, at least 1")
    loader = DataLoader(EvaluationSet(folder, datamodule.mean, datamodule.std), batch_size=batch_size,
                        shuffle=False, num_workers=num_workers)

    # DDP ranks > 0 rebuild this job from its resolved config and write into this run dir (segkd.runtime.processes).
    if job_config is not None:
        save_job_config(job_config, output_dir)
    start = time.perf_counter()
    with ddp_job_scope(output_dir):
        runner.predict(evaluator, dataloaders=loader, return_predictions=False)
    seconds = time.perf_counter() - start

    return {
        "dataset": datamodule.name,
        "root": str(folder.root),
        "split": split,
        **predictor.describe(),
        "images": evaluator.images_seen,
        "devices": runner.world_size,
        **(evaluator.results or {}),
        "predictions": str(output_dir / fmt.folder),
        "prediction_format": "label ids" if fmt.label_ids else "train ids",
        "overlays": str(output_dir / "overlays") if save_overlays else None,
        "time_s": seconds,
        "images_per_s": evaluator.images_seen / seconds if seconds > 0 else None,
    }, runner.is_global_zero
