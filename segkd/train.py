"""train(cfg): build everything the config names, fit, and write summary.json. Tests call this directly."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar, Timer
from omegaconf import DictConfig, OmegaConf

from segkd.callbacks import EpochTimer, GradientBalance
from segkd.callbacks.preemption import last_checkpoint_path
from segkd.config import CONF_DIR, build, to_plain
from segkd.data.sampling import plan_batches
from segkd.models import check_input_size, describe, measure_complexity
from segkd.models.complexity import training_cost
from segkd.models.checkpoint import auto_resume_hint, check_resumable
from segkd.runtime.cluster import cluster_plugins
from segkd.runtime.loggers import CSVLogger
from segkd.runtime.processes import RESOLVED_CONFIG, ddp_job_scope, save_job_config
from segkd.runtime.provenance import provenance
from segkd.runtime.run_lock import run_dir_lock
from segkd.recipe import recipe, recipe_config
from segkd.summary import print_summary, write_summary

log = logging.getLogger(__name__)


class RunDirError(ValueError):
    """A run dir that holds another run than the one asked for."""


def _instantiate_all(group: Any, fill: Optional[dict] = None) -> list:
    """Callbacks/loggers are dicts of named entries; a null entry switches one off from the CLI.

    ``fill`` gives values for keys an entry lists as null (a logger's run name, group, job type).
    """
    if not group:
        return []
    built = []
    for node in group.values():
        if node is not None and "_target_" in node:
            kwargs = {k: v for k, v in (fill or {}).items() if k in node and node[k] is None}
            built.append(instantiate(node, **kwargs))
    return built


def run_identity(cfg: DictConfig, system: Any) -> dict[str, str]:
    """How loggers name a run so that a dashboard compares recipes: ``recipe`` as segkd.compare names
    it (segkd.recipe), ``name`` the recipe and the seed; ``group`` the sweep of a multirun, else the
    experiment; ``job_type`` the system (teacher, student, offline_kd, mutual); ``id`` one per run dir."""
    from hydra.types import RunMode

    tags = to_plain(cfg.get("tags")) or []
    name = recipe(cfg, _hydra_overrides())["name"]
    group = str(cfg.get("task_name"))
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        group = f"{group} sweep {Path(HydraConfig.get().sweep.dir).name}"
    job_type = system.job_type or ("teacher" if "teacher" in tags else "student")
    # One id per run dir: a job resumed in its dir (ckpt_path=..., or requeued) continues its W&B run.
    run_id = hashlib.sha1(str(Path(cfg.paths.output_dir).resolve()).encode()).hexdigest()[:16]
    return {"recipe": name, "name": f"{name} seed{cfg.get('seed')}", "group": group, "job_type": job_type,
            "id": run_id}


def headline(summary: dict) -> dict[str, Any]:
    """The numbers a runs table shows per run (a logger's run summary)."""
    val, teacher = summary.get("val") or {}, summary.get("teacher") or {}
    complexity = summary.get("complexity") or {}
    return {
        "final/val_mIoU": val.get("mIoU"), "final/pixel_acc": val.get("pixel_acc"), "final/val_ece": val.get("ece"),
        "final/best_val_mIoU": summary.get("best_val_mIoU"), "final/epochs": summary.get("epochs"),
        "complexity/params": complexity.get("params"), "complexity/gmacs": complexity.get("gmacs"),
        "teacher/mIoU": teacher.get("mIoU"), "teacher/ece": teacher.get("ece"),
        "teacher/entropy": teacher.get("entropy"),
        "time/train_images_per_s": (summary.get("timing") or {}).get("train_images_per_s"),
    }


def offline_kd_teacher_model() -> Optional[str]:
    """The teacher preset +experiment=offline_kd expects unless told otherwise, read from its defaults
    list (conf/experiment/offline_kd.yaml), so that the recipe stays the one place that says it."""
    defaults = OmegaConf.load(CONF_DIR / "experiment" / "offline_kd.yaml").get("defaults") or []
    return next((entry["/model@system.teacher.net"] for entry in defaults
                 if isinstance(entry, DictConfig) and "/model@system.teacher.net" in entry), None)


def teacher_net_override(summary: dict) -> str:
    """What offline KD must be told of a teacher run's network, as an override ('' for the default
    one): its preset, or the checkpoint's own network when the run changed the preset's arguments."""
    model = summary.get("model")
    if any(str(o).lstrip("+~").startswith("model.") for o in summary.get("overrides") or []):
        return "system.teacher.net=null"
    return f"model@system.teacher.net={model}" if model and model != offline_kd_teacher_model() else ""


def next_steps(summary: dict, output_dir: Path) -> list[str]:
    """What a user runs after this run, printed under its table: segkd is for asking whether a
    distillation recipe beats the student trained alone, so a student's run points there."""
    fields = (summary.get("recipe") or {}).get("fields") or {}
    if fields.get("teacher"):
        net = teacher_net_override(summary)
        return ["next: distil this teacher into a student: python -m segkd.run +experiment=offline_kd "
                f"{net + ' ' if net else ''}teacher_ckpt={summary.get('last_checkpoint')} distill_paradigm=cwd "
                "teacher_cache=true"]
    if fields.get("distills"):
        return [f"next: pair it with the scratch student of the same seeds: python -m segkd.compare {output_dir.parent} "
                "(or the whole question, seeds paired, at equal and matched cost: python -m segkd.protocol)"]
    return [
        "next: does a teacher make this student better?",
        "  1. the reference teacher, once per machine (about an hour on 2 CPU cores): "
        "python -m segkd.run +experiment=reference_teacher",
        "  2. a student distilled from it: python -m segkd.run +experiment=offline_kd distill_paradigm=cwd teacher_cache=true",
        "  3. paired with the student trained alone: python -m segkd.compare outputs/",
        "  or all of it, 3 seeds each, at equal and matched cost: python -m segkd.protocol --only scratch,cwd --matched-cost",
    ]


def _existing(path: str) -> Optional[str]:
    """A checkpoint path for summary.json only if the file was written (fast_dev_run writes none)."""
    return path if path and Path(path).is_file() else None


def _hydra_overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _trainer_kwargs(cfg: DictConfig) -> dict:
    kwargs = to_plain(cfg.trainer)
    for key in ("max_epochs", "max_steps", "limit_train_batches"):  # a run that would take no step at all
        if kwargs.get(key) is not None and kwargs[key] == 0 and not isinstance(kwargs[key], bool):
            raise ValueError(f"trainer.{key}={kwargs[key]}: nothing would train; set it to 1 or more "
                             f"(trainer.max_steps=-1 and trainer.max_epochs=null mean no limit)")
    if kwargs.get("accumulate_grad_batches", 1) != 1:
        raise ValueError(
            f"trainer.accumulate_grad_batches={kwargs['accumulate_grad_batches']} is not set by hand in segkd: "
            "dataset.batch_size is the global batch and accumulation follows from it; set dataset.device_batch_size "
            "to the most images one device holds (and leave trainer.accumulate_grad_batches=1)"
        )
    if kwargs.get("sync_batchnorm") and not torch.cuda.is_available():
        if _processes(kwargs) > 1:
            log.warning("SyncBatchNorm trains on GPUs only; on CPU each DDP process keeps its own BatchNorm statistics")
        kwargs["sync_batchnorm"] = False
    kwargs["plugins"] = [*(kwargs.get("plugins") or []), *cluster_plugins()]
    return kwargs


def _processes(trainer_kwargs: dict) -> int:
    """Processes a trainer config asks for, where it says (devices "auto" or -1 count as more than one)."""
    devices, nodes = trainer_kwargs.get("devices", 1), trainer_kwargs.get("num_nodes", 1) or 1
    count = len(devices) if isinstance(devices, (list, tuple)) else devices
    return count * nodes if isinstance(count, int) and count > 0 else 2


def _auto_resume_path(cfg: DictConfig, callbacks: list) -> Optional[str]:
    """The run dir's own last.ckpt when ``auto_resume`` is on and no ``ckpt_path`` was given.

    A requeued cluster job is started again with its original arguments (no ``ckpt_path``), in its
    own run dir: it must find its checkpoint by itself. So does a sweep started again into its
    sweep dir, or a run started again with ``hydra.run.dir`` of an unfinished run.
    """
    if cfg.get("ckpt_path") or not cfg.get("auto_resume", True):
        return cfg.get("ckpt_path")
    last = last_checkpoint_path(callbacks)
    if last is not None and last.is_file() and last.stat().st_size > 0:
        check_same_run(cfg, Path(cfg.paths.output_dir))
        log.info("resuming from %s (this run dir's last checkpoint; auto_resume=false starts over)", last)
        return str(last)
    return None


def _run_identity_key(config: Any) -> dict[str, Any]:
    return {**recipe_config(config), "seed": config.get("seed")}


def check_same_run(cfg: DictConfig, output_dir: Path) -> None:
    """Refuse to auto-resume (or return the summary of) a run dir that holds another recipe or seed.

    Without this, a recipe variant sent to a pinned dir (``+experiment=reference_teacher
    system.loss.label_smoothing=0.1`` lands in the reference teacher's folder) would silently get the
    other run's summary back, or resume its weights under the new loss.
    """
    saved = output_dir / RESOLVED_CONFIG
    if not saved.is_file():
        return
    from omegaconf import OmegaConf

    before = _run_identity_key(OmegaConf.to_container(OmegaConf.load(saved), resolve=True))
    now = _run_identity_key(cfg)
    differ = [f"{key}: {before.get(key)!r} there, {now.get(key)!r} now"
              for key in sorted(before.keys() | now.keys()) if before.get(key) != now.get(key)]
    if differ:
        shown = "; ".join(differ[:4]) + (f"; and {len(differ) - 4} more" if len(differ) > 4 else "")
        raise RunDirError(
            f"{output_dir} holds a run of another recipe or seed ({shown}), and auto_resume would continue "
            f"that run instead of starting this one. Give this run its own dir (hydra.run.dir=...), or, to "
            f"continue that run under the new settings on purpose (e.g. more epochs), pass "
            f"ckpt_path={output_dir / 'checkpoints' / 'last.ckpt'}"
        )


def build_system(cfg: DictConfig, class_names: Sequence[str]) -> Any:
    """The LightningModule the config names, over the data's classes: what train() fits, and what
    benchmarks and tests build to time or inspect the same system."""
    return build(cfg.system, net=to_plain(cfg.model), class_names=list(class_names), _recursive_=False)


def check_crop(system: Any, crop_size: Sequence[int]) -> None:
    """The train crop must be an input size every trained network takes (a multiple of its output
    stride, for the architectures that refuse others): one line now, not smp's error at the first step."""
    for name, net in system.scored_nets().items():
        what = describe(net) if name == "net" else f"{describe(net)} (peer '{name}')"
        check_input_size(net, list(crop_size), "dataset.crop_size", what=what)


def check_paradigm_is_read(cfg: DictConfig) -> None:
    """``distill_paradigm=`` on a run whose system does not distil would train a plain student and say
    nothing (and segkd.compare would file it under scratch): refuse it, naming the systems that do."""
    from omegaconf import OmegaConf

    paradigm = OmegaConf.select(cfg, "distill_paradigm.name", default=None)
    if paradigm in (None, "none") or "distill" in (cfg.get("system") or {}):
        return
    system = str(OmegaConf.select(cfg, "system._target_", default="?")).rsplit(".", 1)[-1]
    raise ValueError(
        f"distill_paradigm={paradigm} would do nothing: this run's system ({system}) trains from labels alone. "
        f"Distil from a frozen teacher with +experiment=offline_kd distill_paradigm={paradigm}, or between "
        f"networks learning together with +experiment=online_dml distill_paradigm={paradigm}"
    )


def train(cfg: DictConfig) -> dict:
    """Train the system the config describes and return its summary (also written to summary.json).

    The run dir has one writer: a second run into it while this one lives is refused (segkd.runtime.run_lock).
    """
    with run_dir_lock(Path(cfg.paths.output_dir)):
        return _train(cfg)


def _train(cfg: DictConfig) -> dict:
    output_dir = Path(cfg.paths.output_dir)
    finished = output_dir / "summary.json"
    if cfg.get("auto_resume", True) and not cfg.get("ckpt_path") and finished.is_file():
        check_same_run(cfg, output_dir)
        # A sweep started again into its dir: finished jobs are not trained again, the rest resume.
        log.info("%s holds a finished run: its summary is returned, nothing is trained (auto_resume=false retrains)",
                 output_dir)
        return json.loads(finished.read_text())
    check_paradigm_is_read(cfg)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)

    datamodule = build(cfg.dataset)
    system = build_system(cfg, datamodule.class_names)
    check_crop(system, datamodule.crop_size)
    callbacks = _instantiate_all(cfg.get("callbacks"))
    ckpt_path = _auto_resume_path(cfg, callbacks)
    picked = ckpt_path and not cfg.get("ckpt_path")  # auto-resume found it: other advice than for a given path
    resume_step = check_resumable(ckpt_path, system.hparams,  # a wrong resume file fails here, in one line
                                  auto_resume_hint(ckpt_path) if picked else "")
    identity = run_identity(cfg, system)
    loggers = _instantiate_all(cfg.get("logger"), fill=identity)
    if ckpt_path:
        for logger in loggers:
            if isinstance(logger, CSVLogger):
                logger.resume_at(resume_step)  # keep the curve logged before the checkpoint
    trainer_kwargs = _trainer_kwargs(cfg)
    if not trainer_kwargs.get("enable_progress_bar", True):  # Lightning refuses a bar it was told not to show
        callbacks = [cb for cb in callbacks if not isinstance(cb, ProgressBar)]
    trainer: L.Trainer = instantiate(trainer_kwargs, callbacks=callbacks, logger=loggers or False)
    # The global batch decides what one optimizer step sees; processes and accumulation only carry it out.
    plan = plan_batches(datamodule.batch_size, trainer.world_size, datamodule.device_batch_size)
    trainer.accumulate_grad_batches = plan.accumulate

    complexity = measure_complexity(system.net, datamodule.crop_size)
    # Lightning's model summary counts each module's FLOPs (and shapes) on this input; without it the
    # column reads 0 for every module.
    system.example_input_array = torch.zeros(1, 3, *datamodule.crop_size)
    forward_gmacs = system.forward_gmacs(datamodule.crop_size)  # before fit: a cached teacher is let go in it
    for logger in trainer.loggers:
        # Top-level keys: every setting is its own (dotted) column in W&B's runs table.
        logger.log_hyperparams({**to_plain(cfg), "complexity": complexity, "recipe": identity["recipe"],
                                "overrides": _hydra_overrides()})

    save_job_config(cfg, output_dir)
    start = time.perf_counter()
    with ddp_job_scope(output_dir):
        trainer.fit(system, datamodule=datamodule, ckpt_path=ckpt_path)
    wall_time = time.perf_counter() - start

    checkpoints = [cb for cb in trainer.callbacks if isinstance(cb, ModelCheckpoint)]
    best_ckpt = next((cb for cb in checkpoints if cb.monitor is not None), None)
    last_ckpt = next((cb for cb in checkpoints if cb.monitor is None), None)
    timer = next((cb for cb in trainer.callbacks if isinstance(cb, EpochTimer)), None)
    balance = next((cb for cb in trainer.callbacks if isinstance(cb, GradientBalance)), None)
    fit_timer = next((cb for cb in trainer.callbacks if isinstance(cb, Timer)), None)
    best = best_ckpt.best_model_score if best_ckpt is not None else None
    cost = training_cost(
        forward_gmacs, trainer.global_step, datamodule.batch_size,
        fit_s=fit_timer.time_elapsed("train") if fit_timer is not None else None,
        val_s=sum(timer.val_epoch_s) if timer is not None else None,
        step_s=timer.step_s() if timer is not None else (),
    )
    cache_keys = ("path", "build_gmacs", "build_time_s", "images")
    cache_info = getattr(system, "teacher_cache_info", None)
    if cache_info:  # built once, shared by every run of this teacher: recorded, not charged (compare amortises it)
        cost["teacher_cache"] = {k: cache_info.get(k) for k in cache_keys}
    caches = getattr(system, "teacher_caches_info", None)
    if caches:  # several teachers: each cached one's, by name
        cost["teacher_caches"] = {name: {k: info.get(k) for k in cache_keys} for name, info in caches.items()}
    summary = {
        "experiment": cfg.get("task_name"),
        "model": cfg.get("model_name"),
        "dataset": datamodule.name,
        "tags": to_plain(cfg.get("tags")) or [],
        "overrides": _hydra_overrides(),
        "recipe": recipe(cfg, _hydra_overrides()),
        "seed": cfg.get("seed"),
        **system.run_scores(),
        "best_val_mIoU": float(best) if best is not None else None,
        "complexity": complexity,
        "cost": cost,
        "input_size": list(datamodule.crop_size),
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "wall_time_s": wall_time,
        "timing": timer.summary() if timer is not None else {},
        "grad_ratio": balance.summary() if balance is not None else {},
        "best_checkpoint": _existing(best_ckpt.best_model_path) if best_ckpt is not None else None,
        "last_checkpoint": _existing(last_ckpt.best_model_path) if last_ckpt is not None else None,
        "output_dir": str(output_dir),
        "resumed_from": ckpt_path,
        "provenance": provenance(cfg.get("seed"), trainer.world_size, plan.per_device, plan.accumulate,
                                 trainer.precision),
    }
    if trainer.is_global_zero:
        path = write_summary(summary, output_dir)
        print_summary(summary)
        print("\n".join(next_steps(summary, output_dir)))
        log.info("summary written to %s", path)
    for logger in trainer.loggers:
        if hasattr(logger, "log_summary"):
            logger.log_summary(headline(summary))
        if hasattr(logger, "finish"):
            logger.finish()  # W&B: one global run per process, or the next job of a sweep logs into it
    return summary
