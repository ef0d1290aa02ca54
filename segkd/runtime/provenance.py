"""Where a result came from: enough to tell two summary.json files apart months later (which code,
which libraries, how many processes, what global batch), written into every run's summary."""

from __future__ import annotations

import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Optional

#: The packages whose versions change numbers.
PACKAGES = ("torch", "lightning", "segmentation-models-pytorch", "timm", "torchmetrics", "albumentations", "segkd")
REPO = Path(__file__).resolve().parents[2]  # the checkout (this file is segkd/runtime/provenance.py)


def _git(*args: str) -> Optional[str]:
    try:
        done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state() -> dict[str, Any]:
    """The commit segkd's code was at and whether tracked files differed from it (None: not a git checkout)."""
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(_git("status", "--porcelain", "--untracked-files=no"))}


def versions() -> dict[str, Optional[str]]:
    """Package versions; torch's as torch reports it (with its build tag, e.g. +cu130) and its CUDA."""
    import torch

    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    found.update(torch=torch.__version__, cuda=torch.version.cuda)
    return found


def provenance(seed: Any, world_size: int, batch_size: int, accumulate: int, precision: Any) -> dict[str, Any]:
    """The record summary.json keeps: seed, code, libraries, processes, global batch and precision.

    The global batch is what one optimizer step sees: per-process batch x processes x accumulation.
    """
    return {
        "seed": seed, "git": git_state(), "versions": versions(), "world_size": world_size,
        "batch_size_per_process": batch_size, "accumulate_grad_batches": accumulate,
        "global_batch": batch_size * world_size * accumulate, "precision": str(precision),
        "host": platform.node(),
    }
