"""Smoke tests of the local Slurm cluster (tests/slurm/cluster.sh, fixture ``slurm`` in slurm_cluster.py).

A job runs and sacct records it; a job on the high partition preempts the low one's: the preemptee
hears SIGTERM (or, with ``preempt_send_user_signal`` and ``--signal=USR2@T``, USR2) at once, keeps
running for the partition's GraceTime, is then killed and requeued (PREEMPTED in sacct, Restarts=1,
held ~120 s) and ``release`` makes it run again. What was seen is written in slurm_cluster's docstring.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from slurm_cluster import SlurmCluster

# the ``slurm`` fixture, and the ``slurm`` marker on the tests that use it (imported as a plugin, not
# with ``from slurm_cluster import ...``: pytest could not rewrite its asserts then, and warns)
pytest_plugins = ["slurm_cluster"]

#: A job step that logs every SIGTERM / USR2 it gets with the time, and otherwise sleeps. It leaves on
#: a second signal (Slurm's kill at the end of the grace time) or on any signal after a requeue.
STEP = r"""#!/bin/bash
log=$1
now() { date +%s.%N; }
echo "start $(now) restart=${SLURM_RESTART_COUNT:-0}" >> "$log"
n=0
on_signal() {
  echo "$1 $(now)" >> "$log"
  n=$((n + 1))
  if ((n > 1 || ${SLURM_RESTART_COUNT:-0} > 0)); then exit 0; fi
}
trap 'on_signal TERM' TERM
trap 'on_signal USR2' USR2
while :; do sleep 0.2 & wait $!; done
"""


def signals(log: Path) -> list[tuple[str, float]]:
    """(event, time) of the step's log: start, TERM, USR2."""
    if not log.exists():
        return []
    out = []
    text = log.read_text()
    # only whole lines: the job may be writing one while it is read (an event seen without its time)
    for line in text.splitlines()[: text.count("\n")]:
        parts = line.split()
        if len(parts) >= 2:  # "start <time> restart=<n>" has a third
            out.append((parts[0], float(parts[1])))
    return out


def wait_for(predicate, timeout: float, what: str, poll: float = 0.25):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll)


def submit_low(slurm: SlurmCluster, tmp_path: Path, name: str, *extra: str, cpus: int = 1) -> tuple[str, Path]:
    """A low-partition job whose one srun step runs STEP; (job id, its signal log)."""
    step = tmp_path / "step.sh"
    step.write_text(STEP)
    step.chmod(0o755)
    log = tmp_path / f"{name}.log"
    job = slurm.sbatch("-p", slurm.low, "-c", str(cpus), "-J", name, "-o", tmp_path / f"{name}.out", *extra,
                       "--wrap", f"srun {step} {log}")
    slurm.wait_state(job, {"RUNNING"}, timeout=30)
    wait_for(lambda: signals(log), 30, f"{name}'s step to start")
    return job, log


def submit_high(slurm: SlurmCluster, tmp_path: Path, seconds: int = 2) -> str:
    """A job on the high partition that needs every CPU of the node."""
    return slurm.sbatch("-p", slurm.high, "-c", str(slurm.cpus), "-J", "high", "-o", tmp_path / "high.out",
                        "--wrap", f"sleep {seconds}")


@pytest.fixture
def clean(slurm):
    """No job before nor after the test; the default preempt_send_user_signal=1 after it."""
    slurm.cancel_all()
    yield slurm
    slurm.cancel_all()
    if not slurm.preempt_user_signal:
        slurm.set_preempt_user_signal(True)


def test_cluster_up_and_start_idempotent(slurm):
    assert slurm.running()
    assert set(slurm.partitions) <= set(slurm.run("sinfo", "-h", "-o", "%R").split())
    assert slurm.cpus >= 1
    t0 = time.monotonic()
    again = slurm.cluster_sh("start", timeout=120)
    assert "already running" in again.stderr
    assert again.stdout.strip().splitlines()[-1] == f"export SLURM_CONF={slurm.conf_dir / 'slurm.conf'}"
    assert time.monotonic() - t0 < 10
    conf = (slurm.conf_dir / "slurm.conf").read_text()
    for line in ("PreemptType=preempt/partition_prio", "PreemptMode=REQUEUE", "JobRequeue=1",
                 "TaskPlugin=task/none", "ProctrackType=proctrack/linuxproc", "SelectTypeParameters=CR_CPU_Memory"):
        assert line in conf.splitlines()
    assert (slurm.conf_dir / "slurmdbd.conf").stat().st_mode & 0o777 == 0o600


def test_batch_job_completes_in_sacct(clean, tmp_path):
    slurm = clean
    out = tmp_path / "hostname.out"
    job = slurm.sbatch("-o", out, "--wrap", "hostname")
    slurm.wait_state(job, {"COMPLETED"}, timeout=60)
    records = slurm.wait_sacct(job, "COMPLETED")
    alloc = next(r for r in records if r["JobID"] == job)
    assert (alloc["State"], alloc["ExitCode"]) == ("COMPLETED", "0:0")
    assert slurm.job(job)["Partition"] == slurm.low  # sacct's Partition is filled in a little later
    assert out.read_text().strip() == subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip()


def test_preemption_sigterm_grace_requeue_release(clean, tmp_path):
    """Two low jobs, one with --signal=USR2@120; a high job needing the whole node preempts both."""
    slurm = clean
    if slurm.cpus < 2:
        pytest.skip("needs 2 CPUs: two low jobs side by side")
    assert slurm.preempt_user_signal
    plain, plain_log = submit_low(slurm, tmp_path, "plain")
    warned, warned_log = submit_low(slurm, tmp_path, "warned", "--signal=USR2@120")
    high = submit_high(slurm, tmp_path)

    # at once: SIGTERM for the plain job, USR2 (not SIGTERM) for the one that asked for a warning signal
    first = {name: wait_for(lambda log=log: signals(log)[1:], 30, f"{name}'s first signal")[0]
             for name, log in (("plain", plain_log), ("warned", warned_log))}
    assert first["plain"][0] == "TERM"
    assert first["warned"][0] == "USR2"

    # they keep running through the grace time, then Slurm kills (SIGTERM, later SIGKILL) and requeues them
    # (the job shows PENDING as soon as slurmctld decides, before its processes are gone: wait for both)
    for name, log in (("plain", plain_log), ("warned", warned_log)):
        events = wait_for(lambda log=log: signals(log)[2:] and signals(log), slurm.grace + slurm.kill_wait + 30,
                          f"{name} killed at the end of its grace time")
        assert [e for e, _ in events[:3]] == ["start", first[name][0], "TERM"], events
        assert events[2][1] - events[1][1] >= slurm.grace - 1, f"{name}: killed before the grace time: {events}"
    slurm.wait_state(high, {"COMPLETED"}, timeout=60)

    for job in (plain, warned):
        slurm.wait_state(job, {"PENDING"}, timeout=30)
        info = wait_for(lambda job=job: (i := slurm.job(job)).get("Reason") == "BeginTime" and i, 30,
                        f"job {job} held after its requeue")
        assert info["Restarts"] == "1", info
        assert any(r["JobID"] == job and r["State"] == "PREEMPTED" for r in slurm.wait_sacct(job, "PREEMPTED"))
    # held: eligible only ~120 s after the requeue ...
    hold = time.mktime(time.strptime(slurm.job(plain)["StartTime"], "%Y-%m-%dT%H:%M:%S")) - time.time()
    assert slurm.requeue_hold_s - 30 < hold <= slurm.requeue_hold_s + 5, hold
    # ... unless released
    slurm.release(plain)
    slurm.wait_state(plain, {"RUNNING"}, timeout=30)
    wait_for(lambda: "restart=1" in plain_log.read_text(), 30, "the released job's step to start again")
    assert slurm.job(warned)["JobState"] == "PENDING"


def test_preemption_without_user_signal_sends_sigterm(clean, tmp_path):
    """With preempt_send_user_signal off, --signal=USR2@120 does not matter at a preemption: SIGTERM."""
    slurm = clean
    slurm.set_preempt_user_signal(False)
    job, log = submit_low(slurm, tmp_path, "warned", "--signal=USR2@120", cpus=slurm.cpus)
    high = submit_high(slurm, tmp_path)
    event = wait_for(lambda: signals(log)[1:], 30, "the first signal")[0]
    assert event[0] == "TERM"
    assert slurm.job(job)["JobState"] == "RUNNING"  # in its grace time
    assert slurm.state(high) == "PENDING"
