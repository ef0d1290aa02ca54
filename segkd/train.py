"""train(cfg): build everything the config names, fit, and write summary.json. Tests call this directly."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Optional

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig, OmegaConf

from segkd.callbacks import EpochTimer, GradientBalance
from segkd.config import build, to_plain
from segkd.models import measure_complexity
from segkd.models.checkpoint import check_resumable
from segkd.processes import RESOLVED_CONFIG, ddp_job_scope
from segkd.summary import print_summary, recipe_config, write_summary

log = logging.getLogger(__name__)


def _instantiate_all(group: Any) -> list:
    """Callbacks/loggers are dicts of named entries; a null entry switches one off from the CLI."""
    if not group:
        return []
    return [instantiate(node) for node in group.values() if node is not None and "_target_" in node]


def _existing(path: str) -> Optional[str]:
    """A checkpoint path for summary.json only if the file was written (fast_dev_run writes none)."""
    return path if path and Path(path).is_file() else None


def _hydra_overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _trainer_kwargs(cfg: DictConfig) -> dict:
    kwargs = to_plain(cfg.trainer)
    if kwargs.get("sync_batchnorm") and not torch.cuda.is_available():
        log.warning("SyncBatchNorm trains on GPUs only; on CPU each DDP process keeps its own BatchNorm statistics")
        kwargs["sync_batchnorm"] = False
    return kwargs


def train(cfg: DictConfig) -> dict:
    """Train the system the config describes and return its summary (also written to summary.json)."""
    output_dir = Path(cfg.paths.output_dir)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)

    datamodule = build(cfg.dataset)
    system = build(
        cfg.system, net=to_plain(cfg.model), class_names=list(datamodule.class_names), _recursive_=False
    )
    check_resumable(cfg.get("ckpt_path"), system.hparams)  # a wrong resume file fails here, in one line
    callbacks = _instantiate_all(cfg.get("callbacks"))
    loggers = _instantiate_all(cfg.get("logger"))
    trainer_kwargs = _trainer_kwargs(cfg)
    trainer: L.Trainer = instantiate(trainer_kwargs, callbacks=callbacks, logger=loggers or False)

    complexity = measure_complexity(system.net, datamodule.crop_size)
    for logger in trainer.loggers:
        logger.log_hyperparams({"config": to_plain(cfg), "complexity": complexity})

    # The exact, resolved config of this run: DDP ranks > 0 rebuild the job from it (segkd.processes).
    output_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, output_dir / RESOLVED_CONFIG, resolve=True)
    start = time.perf_counter()
    with ddp_job_scope(output_dir):
        trainer.fit(system, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    wall_time = time.perf_counter() - start

    checkpoints = [cb for cb in trainer.callbacks if isinstance(cb, ModelCheckpoint)]
    best_ckpt = next((cb for cb in checkpoints if cb.monitor is not None), None)
    last_ckpt = next((cb for cb in checkpoints if cb.monitor is None), None)
    timer = next((cb for cb in trainer.callbacks if isinstance(cb, EpochTimer)), None)
    balance = next((cb for cb in trainer.callbacks if isinstance(cb, GradientBalance)), None)
    best = best_ckpt.best_model_score if best_ckpt is not None else None
    summary = {
        "experiment": cfg.get("task_name"),
        "model": cfg.get("model_name"),
        "dataset": datamodule.name,
        "tags": to_plain(cfg.get("tags")) or [],
        "overrides": _hydra_overrides(),
        "recipe_config": recipe_config(cfg),
        "seed": cfg.get("seed"),
        **system.run_scores(),
        "best_val_mIoU": float(best) if best is not None else None,
        "complexity": complexity,
        "input_size": list(datamodule.crop_size),
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "wall_time_s": wall_time,
        "timing": timer.summary() if timer is not None else {},
        "grad_ratio": balance.summary() if balance is not None else {},
        "best_checkpoint": _existing(best_ckpt.best_model_path) if best_ckpt is not None else None,
        "last_checkpoint": _existing(last_ckpt.best_model_path) if last_ckpt is not None else None,
        "output_dir": str(output_dir),
    }
    if trainer.is_global_zero:
        path = write_summary(summary, output_dir)
        print_summary(summary)
        log.info("summary written to %s", path)
    for logger in trainer.loggers:
        # W&B keeps one global run per process: finish it, or the next job of a sweep logs into it.
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()
    return summary
