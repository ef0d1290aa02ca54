"""Tests that need real processes: the CLI under 2-process CPU DDP, and a run killed and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra.utils import instantiate
from lightning.pytorch import Trainer

from segkd.systems import SegmentationSystem

from conftest import FAST, ROOT

pytestmark = pytest.mark.slow


def cli(args: list[str], run_dir: Path, cache_dir: Path) -> list[str]:
    return [sys.executable, "-m", "segkd.run", *args, f"hydra.run.dir={run_dir}"]


def env_for(cache_dir: Path) -> dict:
    return {**os.environ, "SEGKD_CACHE_DIR": str(cache_dir), "PYTHONUNBUFFERED": "1"}


def run_cli(args: list[str], run_dir: Path, cache_dir: Path) -> dict:
    done = subprocess.run(
        cli(args, run_dir, cache_dir), cwd=ROOT, env=env_for(cache_dir), capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((run_dir / "summary.json").read_text())


def test_ddp_two_cpu_processes_report_the_single_process_miou(tmp_path, cache_dir, make_cfg):
    # 5 val images over 2 ranks: a padding sampler would count one image twice.
    args = [*FAST, "trainer=ddp", "trainer.max_epochs=1", "+trainer.limit_train_batches=2", "dataset.val_batch_size=2"]
    summary = run_cli(args, tmp_path / "ddp", cache_dir)
    assert (tmp_path / "ddp" / "ddp_rank1.log").exists(), "a second rank ran"
    assert summary["global_step"] == 2

    system = SegmentationSystem.load_from_checkpoint(summary["last_checkpoint"], map_location="cpu")
    datamodule = instantiate(make_cfg().dataset)
    trainer = Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.validate(system, datamodule=datamodule, verbose=False)
    assert len(datamodule.val_set) == 5
    assert system.val_scores["mIoU"] == pytest.approx(summary["val"]["mIoU"], abs=1e-9)
    assert system.val_scores["pixel_acc"] == pytest.approx(summary["val"]["pixel_acc"], abs=1e-9)


def test_sigkill_after_first_checkpoint_resumes_to_the_same_step_count(tmp_path, cache_dir):
    # The teacher is slow enough per epoch that the kill lands mid-run, after the first checkpoint.
    args = [*FAST, "model=teacher_r34", "trainer.max_epochs=4"]
    full = run_cli(args, tmp_path / "full", cache_dir)

    killed_dir = tmp_path / "killed"
    last = killed_dir / "checkpoints" / "last.ckpt"
    proc = subprocess.Popen(cli(args, killed_dir, cache_dir), cwd=ROOT, env=env_for(cache_dir),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert last.exists(), "the run wrote a checkpoint before it was killed"
    assert not (killed_dir / "summary.json").exists(), "the kill landed before the run finished"
    assert (killed_dir / "csv" / "metrics.csv").exists(), "logs written before the crash survive"

    resumed = run_cli([*args, f"ckpt_path={last}"], tmp_path / "resumed", cache_dir)
    assert resumed["global_step"] == full["global_step"] == 4 * (16 // 4)
    assert resumed["epochs"] == full["epochs"] == 4
