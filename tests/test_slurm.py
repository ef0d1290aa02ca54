"""segkd against a real Slurm (Debian's 22.05, one node, started by tests/slurm/cluster.sh): the sweep
docs/CLUSTER.md gives for a CPU partition, a job stopped by its own ``--time`` limit, one stopped by
``scancel --signal=USR2``, one preempted by a higher-priority partition (SIGTERM, then the grace
time), and a 2-task DDP job. A stopped job saves at a step boundary, is requeued, and ends with the
same step count, the same raw and averaged weights (bitwise, on CPU) and the same val mIoU as the
uninterrupted run of the same seed.

The commands come from docs/CLUSTER.md's blocks marked ``<!-- tested: NAME -->``, run as written
there plus what shrinks a run to seconds (tiny SynthStreets, 5 steps) and the test cluster's
partition. A stopped job is held inside its third step (scale_helpers.PauseAt) until its stop
signal arrives, so that the signal always lands in the middle of a step. Slurm holds a requeued job
about 120 s; the sweeps here release it at once (``scontrol update StartTime=now``, also a tested
command of the page).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import FAST, ROOT

pytest_plugins = ["slurm_cluster"]

TESTS = Path(__file__).resolve().parent
CLUSTER_MD = ROOT / "docs" / "CLUSTER.md"
#: 40 images at a global batch of 8: five optimizer steps, the moving average of the weights on.
TINY = [*FAST, "dataset.prepare.num_train=40", "dataset.batch_size=8", "auto_resume=true",
        "trainer.log_every_n_steps=1", "hydra.launcher.poll_s=1"]


def doc_commands(name: str) -> list[str]:
    """The command lines of docs/CLUSTER.md's block marked ``<!-- tested: name -->``."""
    found = re.search(rf"<!-- tested: {re.escape(name)} -->\s*```bash\n(.*?)```", CLUSTER_MD.read_text(), re.S)
    assert found, f"docs/CLUSTER.md has no block marked 'tested: {name}'"
    lines = found[1].replace("\\\n", " ").splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def doc_sweep_args(partition: str) -> list[str]:
    """The page's CPU sweep as ``segkd.run`` arguments, on the test cluster's partition."""
    (command,) = doc_commands("cpu-sweep")
    words = shlex.split(command)
    assert words[:4] == ["python", "-m", "segkd.run", "-m"], command
    return [re.sub(r"^hydra\.launcher\.partition=.*", f"hydra.launcher.partition={partition}", w) for w in words[4:]]


def pause(step: int) -> list[str]:
    return ["+callbacks.pause._target_=scale_helpers.PauseAt", f"+callbacks.pause.step={step}",
            "+callbacks.pause.marker=${paths.output_dir}/paused"]


def one_seed(args: list[str]) -> list[str]:
    """The page's sweep as one job of seed 1 (the reference's seed)."""
    return [("seed=1" if a.startswith("seed=") else a) for a in args]


class Sweep:
    """``python -m segkd.run -m ...`` started in the background, as a user starts a sweep and waits."""

    def __init__(self, slurm, sweep_dir: Path, cache_dir: Path, *args: str) -> None:
        self.slurm, self.dir = slurm, sweep_dir
        env = {**slurm.env, "SEGKD_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(TESTS), "PYTHONUNBUFFERED": "1",
               "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
        cmd = [sys.executable, "-m", "segkd.run", "-m", *args, *TINY, f"hydra.sweep.dir={sweep_dir}"]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.released: set[str] = set()

    def job_ids(self) -> list[str]:
        """The Slurm ids of the sweep's jobs so far (``<array>_<n>``, or a plain id for a one-job sweep)."""
        folder = self.dir / ".submitit"
        return sorted(p.name for p in folder.glob("*") if p.is_dir() and re.fullmatch(r"\d+(_\d+)?", p.name))

    def job_id(self, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while not self.job_ids():
            self._alive()
            assert time.monotonic() < deadline, f"no Slurm job after {timeout}s"
            time.sleep(0.5)
        return self.job_ids()[0]

    def wait_file(self, path: Path, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            self._alive()
            assert time.monotonic() < deadline, f"{path} not written after {timeout}s: {self.slurm.run('squeue')}"
            time.sleep(0.3)

    def finish(self, timeout: float = 600) -> str:
        """Wait for the sweep to end, releasing each requeued job as soon as Slurm holds it (the page's
        ``release`` command); what the sweep printed."""
        (release,) = doc_commands("release")
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            assert time.monotonic() < deadline, f"the sweep did not end in {timeout}s: {self.slurm.run('squeue')}"
            for jobid in self.job_ids():
                info = self.slurm.job(jobid)
                if info.get("JobState") == "PENDING" and info.get("Reason") == "BeginTime":
                    self.slurm.run(*shlex.split(release.replace("<job id>", jobid)))
                    self.released.add(jobid)
            time.sleep(1.0)
        out = self.proc.stdout.read()
        assert self.proc.returncode == 0, out[-5000:]
        return out

    def _alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"the sweep ended early ({self.proc.returncode}):\n{self.proc.stdout.read()[-5000:]}")


def job_log(sweep_dir: Path, jobid: str) -> str:
    """What a job printed (stdout and stderr of its tasks, every attempt), from submitit's folder."""
    return "".join(p.read_text() for p in sorted((sweep_dir / ".submitit" / jobid).glob("*_log.*")))


def checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)


def assert_same_run(resumed: Path, reference: Path) -> None:
    """The resumed run is the uninterrupted one: steps, raw and averaged weights (bitwise), val mIoU."""
    got, ref = (json.loads((d / "summary.json").read_text()) for d in (resumed, reference))
    assert got["resumed_from"] == str(resumed / "checkpoints" / "last.ckpt")
    assert ref["resumed_from"] is None and got["global_step"] == ref["global_step"] == 5
    a, b = checkpoint(resumed), checkpoint(reference)
    assert int(a["averaging_state"]["n_averaged"]) == int(b["averaging_state"]["n_averaged"]) > 0
    for key in ("state_dict", "current_model_state", "averaging_state"):
        unequal = [k for k in b[key] if not torch.equal(a[key][k], b[key][k])]
        assert not unequal, f"{key}: {len(unequal)} tensors differ from the uninterrupted run, e.g. {unequal[:3]}"
    assert got["val"]["mIoU"] == ref["val"]["mIoU"]


@pytest.fixture(scope="module")
def reference(slurm, cache_dir, tmp_path_factory):
    """docs/CLUSTER.md's CPU sweep (two seeds, one array job), uninterrupted: job 0 (seed 1) is the
    reference of every stopped job here."""
    sweep_dir = tmp_path_factory.mktemp("slurm") / "sweep"
    sweep = Sweep(slurm, sweep_dir, cache_dir, *doc_sweep_args(slurm.low))
    out = sweep.finish()
    print(out)  # what a user sees (pytest -s)
    return sweep_dir, out


def test_the_pages_cpu_sweep_is_one_array_job_that_shows_its_jobs_and_their_states(slurm, reference):
    sweep_dir, out = reference
    found = re.search(r"submitted 2 job\(s\) as array (\d+): \1_0, \1_1", out)
    assert found, out[-3000:]
    array = found[1]
    assert re.search(r"0/2 done, (1 running, 1 pending|2 running|2 pending)", out) and "2/2 done" in out
    assert out.count("preparing the sweep's data once") == 1
    for job in ("0", "1"):
        assert json.loads((sweep_dir / job / "summary.json").read_text())["global_step"] == 5
    squeue, sacct = (shlex.split(c.replace("<array id>", array)) for c in doc_commands("watch"))
    assert slurm.run(*squeue).split("\n")[0].split()[:2] == ["JOBID", "PARTITION"], "squeue answers (none left)"
    slurm.wait_sacct(f"{array}_1", "COMPLETED")
    states = {line.split()[0]: line.split()[1:3] for line in slurm.run(*sacct).splitlines()[2:] if line.strip()}
    assert states[f"{array}_0"] == states[f"{array}_1"] == ["COMPLETED", "0:0"], states
    logs = "".join(p.read_text() for p in (sweep_dir / ".submitit").rglob("*_log.*"))
    assert "ConfigStore schema" not in logs and "generated SynthStreets" not in logs


def test_a_job_stopped_by_its_time_limit_resumes_to_the_uninterrupted_run(slurm, reference, cache_dir, tmp_path):
    # A 3-minute limit, USR2 asked 90 s before it: Slurm sends it up to 60 s earlier than asked (the
    # resolution of its event handling), so 30-90 s into the job, while the job is held in its third step.
    # Earlier, the signal could reach the job before Python has installed any handler, and end it.
    sweep = Sweep(slurm, tmp_path / "limit", cache_dir, *one_seed(doc_sweep_args(slurm.low)), *pause(2),
                  "hydra.launcher.timeout_min=3", "hydra.launcher.signal_delay_s=90")
    jobid = sweep.job_id()
    sweep.finish()
    log = job_log(tmp_path / "limit", jobid)
    assert "stop signal SIGUSR2: saved" in log and "this job is timed-out" in log, log[-3000:]
    assert jobid in sweep.released
    assert_same_run(tmp_path / "limit" / "0", reference[0] / "0")


def test_a_job_stopped_with_scancel_usr2_resumes_to_the_uninterrupted_run(slurm, reference, cache_dir, tmp_path):
    (scancel,) = doc_commands("usr2")
    sweep = Sweep(slurm, tmp_path / "usr2", cache_dir, *one_seed(doc_sweep_args(slurm.low)), *pause(2))
    jobid = sweep.job_id()
    sweep.wait_file(tmp_path / "usr2" / "0" / "paused")
    slurm.run(*shlex.split(scancel.replace("<job id>", jobid)))
    sweep.finish()
    assert "stop signal SIGUSR2: saved" in job_log(tmp_path / "usr2", jobid) and jobid in sweep.released
    assert_same_run(tmp_path / "usr2" / "0", reference[0] / "0")


def test_a_job_preempted_by_a_higher_partition_saves_in_its_grace_time_and_resumes(slurm, reference, cache_dir,
                                                                                   tmp_path):
    """Slurm's default preemption: SIGTERM, GraceTime, then the kill and the requeue (no user signal)."""
    slurm.set_preempt_user_signal(False)
    try:
        sweep = Sweep(slurm, tmp_path / "preempt", cache_dir, *one_seed(doc_sweep_args(slurm.low)), *pause(2))
        jobid = sweep.job_id()
        sweep.wait_file(tmp_path / "preempt" / "0" / "paused")
        high = slurm.sbatch("-p", slurm.high, "-c", str(slurm.cpus), "-o", tmp_path / "high.out", "--wrap", "sleep 1")
        sweep.finish()
        slurm.wait_state(high, {"COMPLETED"}, timeout=120)
    finally:
        slurm.set_preempt_user_signal(True)
    log = job_log(tmp_path / "preempt", jobid)
    saved = re.search(r"stop signal SIGTERM: saved .* in ([\d.]+) s", log)
    assert saved and "waiting" in log, log[-3000:]
    assert float(saved[1]) < slurm.grace, "saved within the grace time"
    print(f"SIGTERM save took {saved[1]} s (grace {slurm.grace} s)")
    assert any(r["State"] == "PREEMPTED" for r in slurm.sacct(jobid)) and jobid in sweep.released
    assert_same_run(tmp_path / "preempt" / "0", reference[0] / "0")


def test_a_two_task_ddp_job(slurm, cache_dir, tmp_path):
    sweep = Sweep(slurm, tmp_path / "ddp", cache_dir, *one_seed(doc_sweep_args(slurm.low)), "trainer=ddp",
                  "trainer.devices=2")
    sweep.finish()
    summary = json.loads((tmp_path / "ddp" / "0" / "summary.json").read_text())
    assert summary["provenance"]["world_size"] == 2 and summary["global_step"] == 5
