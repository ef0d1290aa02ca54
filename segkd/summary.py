"""summary.json: the one record of a run that reports and comparisons read back."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

from rich.console import Console

from segkd.reporting import console_table, percent


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
    rows = [[name, percent(iou, ".1f")] for name, iou in (val.get("IoU") or {}).items()]
    console.print(console_table(f"{summary.get('experiment')} · {summary.get('model')} · val per-class IoU",
                                ["class", "IoU"], rows))
    cx = summary.get("complexity", {})
    console.print(
        f"val mIoU {100 * (val.get('mIoU') or float('nan')):.2f} (best {100 * (summary.get('best_val_mIoU') or float('nan')):.2f})"
        f" · pixel acc {100 * (val.get('pixel_acc') or float('nan')):.2f}"
        f" · {cx.get('params', 0) / 1e6:.2f} M params · {cx.get('gmacs', float('nan')):.3f} GMACs"
        f" ({cx.get('gflops', float('nan')):.3f} GFLOPs) at {cx.get('input_size')}"
        f" · {summary.get('epochs')} epochs, {summary.get('global_step')} steps in {summary.get('wall_time_s', 0):.0f} s"
    )
