"""One writer per run dir (segkd.runtime.run_lock): a second run into a live run's dir is refused in one
line naming the holder; a lock file left by a dead run is no obstacle; DDP ranks do not take it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from segkd.runtime.run_lock import LOCK_NAME, RunDirBusy, run_dir_lock
from segkd.train import train

ROOT = Path(__file__).resolve().parents[1]


def test_a_second_run_into_a_live_runs_dir_is_refused_naming_the_holder(make_cfg):
    cfg = make_cfg("trainer.limit_train_batches=1")
    run_dir = Path(cfg.paths.output_dir)
    with run_dir_lock(run_dir):
        with pytest.raises(RunDirBusy, match=rf"{run_dir} is in use by another run: pid {os.getpid()} on host "
                                             rf"{socket.gethostname()} \(since .*\)\. One run writes one dir"):
            train(cfg)
        assert not (run_dir / "summary.json").exists() and not (run_dir / "resolved_config.yaml").exists()
    assert train(cfg)["global_step"] == 1, "released when its holder is done"


def test_a_lock_left_by_a_dead_run_is_taken_over(make_cfg):
    cfg = make_cfg("trainer.limit_train_batches=1")
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / LOCK_NAME).write_text(json.dumps({"pid": 999999, "host": "gone", "started": 0}))  # kill -9 left it
    assert train(cfg)["global_step"] == 1
    assert json.loads((run_dir / LOCK_NAME).read_text())["pid"] == os.getpid()


@pytest.mark.parametrize("variable", ["LOCAL_RANK", "SLURM_PROCID", "SUBMITIT_LOCAL_GLOBALID", "NODE_RANK"])
def test_ddp_children_and_other_tasks_share_their_jobs_dir(tmp_path, monkeypatch, variable):
    with run_dir_lock(tmp_path):
        monkeypatch.setenv(variable, "1")
        with run_dir_lock(tmp_path):
            pass


@pytest.mark.slow
def test_the_command_line_refuses_in_one_line_and_exit_1(tmp_path):
    run_dir = tmp_path / "run"
    with run_dir_lock(run_dir):
        done = subprocess.run([sys.executable, "-m", "segkd.run", f"hydra.run.dir={run_dir}", f"paths.cache_dir={tmp_path}"],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and lines[-1].startswith(f"segkd: error: {run_dir} is in use by another run: pid {os.getpid()}")
