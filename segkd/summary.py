"""summary.json: the one record of a run that reports and comparisons read back."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

from rich.console import Console
from rich.table import Table


def _finite_or_none(value: Any) -> Any:
    """JSON has no NaN; an IoU of a class absent from the split is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    return value


def write_summary(summary: dict, output_dir: str | Path) -> Path:
    path = Path(output_dir) / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_finite_or_none(summary), indent=2, sort_keys=False) + "\n")
    tmp.replace(path)
    return path


def print_summary(summary: dict, console: Optional[Console] = None) -> None:
    """A per-class IoU table and the headline numbers, for the end of a run."""
    console = console or Console()
    val = summary.get("val") or {}
    table = Table(title=f"{summary.get('experiment')} · {summary.get('model')} · val per-class IoU")
    table.add_column("class")
    table.add_column("IoU", justify="right")
    for name, iou in (val.get("IoU") or {}).items():
        table.add_row(name, "—" if iou is None or not math.isfinite(iou) else f"{100 * iou:.1f}")
    console.print(table)
    cx = summary.get("complexity", {})
    console.print(
        f"val mIoU {100 * (val.get('mIoU') or float('nan')):.2f} (best {100 * (summary.get('best_val_mIoU') or float('nan')):.2f})"
        f" · pixel acc {100 * (val.get('pixel_acc') or float('nan')):.2f}"
        f" · {cx.get('params', 0) / 1e6:.2f} M params · {cx.get('gmacs', float('nan')):.3f} GMACs"
        f" ({cx.get('gflops', float('nan')):.3f} GFLOPs) at {cx.get('input_size')}"
        f" · {summary.get('epochs')} epochs, {summary.get('global_step')} steps in {summary.get('wall_time_s', 0):.0f} s"
    )


#: The resolved settings that make a recipe what it is, beyond the overrides a run was given: two
#: runs with the same overrides but made under different defaults (a paradigm's weight, the
#: student's augmentation) are different recipes, and segkd.compare must not pool them.
RECIPE_CONFIG_KEYS = (
    "model", "system.loss", "system.optimizer", "system.scheduler", "system.distill", "system.schedule",
    "system.peers", "system.teacher.input_scale", "system.teacher.prior_correction",
    "system.teacher.cache.enabled", "system.teacher.cache.stride", "system.teacher.cache.top_k",
    "dataset.crop_size", "dataset.scale_range", "dataset.jitter", "dataset.batch_size", "dataset.prepare",
    "trainer.max_epochs", "trainer.max_steps", "trainer.accumulate_grad_batches",
)


def recipe_config(config: Any) -> dict[str, Any]:
    """The :data:`RECIPE_CONFIG_KEYS` of a run's config (a DictConfig, or a resolved config as a
    plain dict, e.g. a run dir's resolved_config.yaml), resolved and flattened to dotted keys."""
    from omegaconf import DictConfig, OmegaConf

    flat: dict[str, Any] = {}
    for key in RECIPE_CONFIG_KEYS:
        if isinstance(config, DictConfig):
            node = OmegaConf.select(config, key, default=None)
            node = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
        else:
            node = config
            for part in key.split("."):
                node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            _flatten(key, node, flat)
    return flat


def _flatten(prefix: str, node: Any, out: dict[str, Any]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            _flatten(f"{prefix}.{k}", v, out)
    else:
        out[prefix] = node
