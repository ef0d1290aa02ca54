"""segkd.runtime (launching, processes, cluster, distributed, checkpoint I/O, provenance, loggers,
errors) moved out of segkd/'s top level: what runs and checkpoints wrote before the move still works."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any, Iterator

import torch
from hydra.utils import get_class, get_object, instantiate
from omegaconf import OmegaConf

from segkd.models.checkpoint import load_net
from segkd.runtime.checkpoint_io import AtomicCheckpointIO
from segkd.runtime.loggers import CSVLogger

MOVED = ("errors", "processes", "cluster", "distributed", "checkpoint_io", "provenance", "loggers")
OLD_MODULES = tuple(f"segkd.{name}" for name in MOVED)


def _targets(node: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """(where, target) for every ``_target_`` in a nest of dicts and lists."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "_target_":
                yield where or "<top>", value
            else:
                yield from _targets(value, f"{where}.{key}" if where else str(key))
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _targets(value, f"{where}[{i}]")


def test_a_checkpoint_written_before_the_move_still_loads(student_run):
    """A segkd checkpoint stores its model and loss specs (``_target_`` of segkd.models, segkd.losses,
    torch.optim), none of a moved module: an old checkpoint is the same file as a new one. Every
    target it stores still names something that imports, and its network loads and runs."""
    ckpt = torch.load(student_run["last_checkpoint"], map_location="cpu", weights_only=True)
    stored = list(_targets({key: value for key, value in ckpt.items() if key != "state_dict"}))
    assert any(target.startswith("segkd.") for _, target in stored), stored  # the walk found the specs
    moved = [(where, target) for where, target in stored if target.startswith(OLD_MODULES)]
    assert not moved, f"a checkpoint stores targets of moved modules: {moved}"
    unresolved = []
    for where, target in stored:
        try:
            get_object(target)
        except Exception as err:  # noqa: BLE001 - any failure to resolve is the finding
            unresolved.append(f"{where}: {target} ({type(err).__name__})")
    assert not unresolved, "stored targets that no longer import:\n" + "\n".join(unresolved)

    net, spec = load_net(student_run["last_checkpoint"])
    assert spec["_target_"] == ckpt["hyper_parameters"]["net"]["_target_"]
    with torch.no_grad():
        logits = net(torch.zeros(1, 3, 64, 64))
    assert logits.shape[-2:] == (64, 64)


def test_a_run_config_written_before_the_move_still_builds_its_runtime_parts(student_run, tmp_path):
    """resolved_config.yaml of a run dir names the checkpoint I/O plugin and the CSV logger; DDP ranks
    rebuild their job from it, and a requeued submitit job starts from the config it was submitted
    with. The old paths resolve to the moved classes."""
    config = (Path(student_run["output_dir"]) / "resolved_config.yaml").read_text()
    assert "segkd.runtime.checkpoint_io.AtomicCheckpointIO" in config
    old = OmegaConf.create(config.replace("segkd.runtime.", "segkd."))
    assert old.trainer.plugins[0]._target_ == "segkd.checkpoint_io.AtomicCheckpointIO"
    assert isinstance(instantiate(old.trainer.plugins[0]), AtomicCheckpointIO)
    assert old.logger.csv._target_ == "segkd.loggers.CSVLogger"
    assert isinstance(instantiate(old.logger.csv, save_dir=str(tmp_path)), CSVLogger)
    assert get_class("segkd.loggers.WandbLogger") is get_class("segkd.runtime.loggers.WandbLogger")


def test_the_runtime_modules_live_in_segkd_runtime_only():
    for name in MOVED:
        assert importlib.util.find_spec(f"segkd.{name}") is None, f"segkd/{name}.py is back"
        importlib.import_module(f"segkd.runtime.{name}")
