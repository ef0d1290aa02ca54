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
import torch
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
    args = [*FAST, "trainer=ddp", "trainer.max_epochs=1", "trainer.limit_train_batches=2", "dataset.val_batch_size=2"]
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
    args = [*FAST, "trainer.max_epochs=4"]  # 4 steps an epoch; last.ckpt is written at the end of each
    full = run_cli(args, tmp_path / "full", cache_dir)

    # Held at the start of step 6 (scale_helpers.PauseAt), after the first epoch's checkpoint: the kill
    # lands mid-run, mid-epoch, however fast or loaded the machine is.
    killed_dir = tmp_path / "killed"
    last, paused = killed_dir / "checkpoints" / "last.ckpt", killed_dir / "paused"
    held = ["+callbacks.pause._target_=scale_helpers.PauseAt", "+callbacks.pause.step=5",
            f"+callbacks.pause.marker={paused}"]
    proc = subprocess.Popen(cli([*args, *held], killed_dir, cache_dir), cwd=ROOT,
                            env={**env_for(cache_dir), "PYTHONPATH": str(ROOT / "tests")},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not paused.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert paused.exists() and last.exists(), "the run wrote a checkpoint before it was killed"
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 4
    assert not (killed_dir / "summary.json").exists(), "the kill landed before the run finished"
    assert (killed_dir / "csv" / "metrics.csv").exists(), "logs written before the crash survive"

    resumed = run_cli([*args, f"ckpt_path={last}"], tmp_path / "resumed", cache_dir)
    assert resumed["global_step"] == full["global_step"] == 4 * (16 // 4)
    assert resumed["epochs"] == full["epochs"] == 4
    assert len(resumed["val_curve"]) == len(full["val_curve"]) == 4, "the curve survives the resume"


def test_ctrl_c_stops_the_run_with_its_checkpoint_and_logs_intact(tmp_path, cache_dir):
    args = [*FAST, "model=teacher_r34", "trainer.max_epochs=20"]
    run_dir = tmp_path / "interrupted"
    last = run_dir / "checkpoints" / "last.ckpt"
    proc = subprocess.Popen(cli(args, run_dir, cache_dir), cwd=ROOT, env=env_for(cache_dir),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)  # into the next epoch
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode != 0, "an interrupted run does not report success"
    assert "KeyboardInterrupt" in err or "graceful shutdown" in err, err[-2000:]
    assert not (run_dir / "summary.json").exists(), "no summary claims a finished run"
    ckpt = torch.load(last, map_location="cpu", weights_only=True)
    assert ckpt["global_step"] > 0 and (run_dir / "csv" / "metrics.csv").exists(), "what was written survives"


def run_sweep(args: list[str], sweep_dir: Path, cache_dir: Path) -> list[dict]:
    cmd = [sys.executable, "-m", "segkd.run", "-m", *args, f"hydra.sweep.dir={sweep_dir}"]
    done = subprocess.run(cmd, cwd=ROOT, env=env_for(cache_dir), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit())
    return [json.loads((job / "summary.json").read_text()) for job in jobs]


def test_sweep_over_three_paradigms_writes_one_summary_each(tmp_path, cache_dir, teacher_ckpt):
    args = [*FAST, "+experiment=offline_kd", f"teacher_ckpt={teacher_ckpt}", "distill_paradigm=encoder,bottleneck,decoder"]
    summaries = run_sweep(args, tmp_path / "sweep", cache_dir)
    assert [s["overrides"][-1] for s in summaries] == [f"distill_paradigm={p}" for p in ("encoder", "bottleneck", "decoder")]
    assert [t for s in summaries for t in s["tags"] if t.startswith("paradigm:")] == [
        "paradigm:encoder", "paradigm:bottleneck", "paradigm:decoder"
    ]
    assert all(s["teacher"]["mIoU"] == summaries[0]["teacher"]["mIoU"] for s in summaries), "one teacher for all"


def test_offline_kd_sweep_under_ddp_runs_each_job_once(tmp_path, cache_dir, teacher_ckpt):
    # Lightning relaunches the command line for rank 1; with -m that would restart the sweep in every child.
    args = [*FAST, "+experiment=offline_kd", f"teacher_ckpt={teacher_ckpt}", "trainer=ddp",
            "trainer.limit_train_batches=2", "distill_paradigm=logits,pairwise"]
    sweep = tmp_path / "sweep"
    summaries = run_sweep(args, sweep, cache_dir)
    assert len(summaries) == 2 and sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    for job, summary in zip(("0", "1"), summaries):
        assert (sweep / job / "ddp_rank1.log").exists()
        assert summary["global_step"] == 2 and summary["teacher"] is not None


def test_mutual_learning_under_ddp(tmp_path, cache_dir):
    args = [*FAST, "+experiment=online_alternating", "trainer=ddp", "trainer.limit_train_batches=2",
            "trainer.max_epochs=2"]
    summary = run_cli(args, tmp_path / "dml", cache_dir)
    assert (tmp_path / "dml" / "ddp_rank1.log").exists()
    assert summary["global_step"] == 2 * 2  # epochs x batches: one optimizer step per batch
    assert 0.0 <= summary["val"]["mIoU"] <= 1.0 and 0.0 <= summary["peers"]["peer"]["mIoU"] <= 1.0


def test_two_runs_started_together_get_their_own_dirs(tmp_path, cache_dir):
    # Started in the same second, both used to resolve to runs/<time> and write into one dir.
    cmds = [[sys.executable, "-m", "segkd.run", *FAST, "trainer.limit_train_batches=1", f"seed={seed}",
             f"paths.log_dir={tmp_path}"] for seed in (1, 2)]
    procs = [subprocess.Popen(c, cwd=ROOT, env=env_for(cache_dir), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for c in cmds]
    for proc in procs:
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
    runs = sorted((tmp_path / "student" / "runs").iterdir())
    assert len(runs) == 2, f"one dir per run, got {[r.name for r in runs]}"
    for run in runs:
        summary = json.loads((run / "summary.json").read_text())
        assert f"seed: {summary['seed']}" in (run / "resolved_config.yaml").read_text(), "a dir holds one run"
    assert sorted(json.loads((r / "summary.json").read_text())["seed"] for r in runs) == [1, 2]
