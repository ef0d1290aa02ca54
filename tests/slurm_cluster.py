"""A real, local, single-node Slurm (Debian's 22.05) for the tests: the session fixture ``slurm``.

The daemons (munged, mariadb, slurmdbd, slurmctld, slurmd) are started and stopped by
``tests/slurm/cluster.sh`` in a temp dir of their own; nothing under /etc/slurm is used. One node
with ``nproc`` CPUs, two partitions on it: ``low`` (default, ``PriorityTier=1``, ``GraceTime``) and
``high`` (``PriorityTier=10``), ``PreemptType=preempt/partition_prio``, ``PreemptMode=REQUEUE``.

Use it from a test module with::

    pytest_plugins = ["slurm_cluster"]        # the fixture, and the ``slurm`` marker registered

    def test_x(slurm):                         # marked ``slurm`` by this plugin, automatically
        job = slurm.sbatch("-p", slurm.low, "--wrap", "hostname")
        slurm.wait_state(job, {"COMPLETED"})

(``from slurm_cluster import slurm`` gives the fixture too, but not the marker.) The fixture skips
when the machine cannot run it (not root, or the packages missing and no apt-get to install them),
except under ``CI=true``, where it fails with the same reason instead.

What this 22.05 cluster does at a preemption (seen here, kept true by tests/test_slurm_cluster.py):

* The preemptee gets its signal ~1-3 s after the preemptor is submitted: SIGCONT then SIGTERM, or,
  when ``SlurmctldParameters=preempt_send_user_signal`` is set (``preempt_user_signal=True``, the
  default here) and the job was submitted with ``--signal=SIG@T``, that SIG instead of SIGTERM
  (e.g. USR2, what submitit asks for). ``scontrol reconfigure`` switches this live.
* That first signal goes to the job's *steps* (``srun``), not to the batch shell: a batch script
  that runs its work without ``srun`` hears nothing at the start of the grace time, unless it was
  submitted with ``--signal=B:SIG@T`` (batch shell only) and the user signal is on.
* After ``GraceTime`` (+ up to a scheduler pass, ``sched_interval=5``) slurmctld kills and requeues
  the job: SIGCONT + SIGTERM to the steps *and* the batch shell, SIGKILL ``KillWait`` s later.
  sacct (``--duplicates``) then shows the attempt as PREEMPTED; ``scontrol show job`` has
  ``Restarts=1`` and the job PENDING with ``Reason=BeginTime``: a requeued job is held ~120 s
  (``StartTime`` = requeue + 121 s). ``release(jobid)`` (``scontrol update StartTime=now``) lets it
  start at the next scheduler pass; it then runs with ``SLURM_RESTART_COUNT=1``.
* A preempted job that *exits by itself* during the grace time is not requeued: exit 0 is
  COMPLETED, a non-zero exit FAILED. To come back it must either keep running until the grace
  time ends (Slurm requeues it) or requeue itself (``scontrol requeue $SLURM_JOB_ID``, what
  submitit does on USR2: REQUEUED, then the same ~120 s hold).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import pytest

CLUSTER_SH = Path(__file__).resolve().parent / "slurm" / "cluster.sh"
MARKER = "slurm: starts a local single-node Slurm cluster (tests/slurm/cluster.sh; root, apt-get)"
#: GraceTime / KillWait of the test cluster: short, so that preemption tests take seconds; a session
#: can set SEGKD_SLURM_GRACE / SEGKD_SLURM_KILL_WAIT itself (e.g. to give a real checkpoint time).
GRACE_S = int(os.environ.get("SEGKD_SLURM_GRACE", "15"))
KILL_WAIT_S = int(os.environ.get("SEGKD_SLURM_KILL_WAIT", "5"))
#: commands the cluster needs; the packages that bring them are installed by cluster.sh when missing
BINARIES = ("slurmctld", "slurmd", "sbatch", "sacct", "slurmdbd", "munged", "mungekey", "mariadbd",
            "mariadb-install-db")


class SlurmError(RuntimeError):
    """A Slurm client command failed (its stderr in the message), or a wait timed out."""


def unavailable_reason() -> Optional[str]:
    """Why this machine cannot run the local cluster, or None when it can."""
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return "the local Slurm cluster runs its daemons as root (SlurmUser=root); not root here"
    if all(shutil.which(b) or Path("/usr/sbin", b).exists() for b in BINARIES):
        return None
    if not shutil.which("apt-get"):
        return "the Slurm packages are not installed and there is no apt-get to install them"
    return None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def free_port_base(first: int = 16817, tries: int = 20) -> int:
    """The first base of 4 free consecutive ports (slurmctld, slurmd, slurmdbd, mariadb), 10 apart."""
    for base in range(first, first + 10 * tries, 10):
        if all(_port_free(base + i) for i in range(4)):
            return base
    raise SlurmError(f"no 4 free ports from {first} on")


def _clean_env(conf: Path) -> dict[str, str]:
    """os.environ with SLURM_CONF, without the SLURM_* of a job the suite itself may run in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_") and k != "SEGKD_SLURM_DIR"}
    env["SLURM_CONF"] = str(conf)
    return env


@dataclass
class SlurmCluster:
    """A running local cluster, its client environment and a few helpers around the client commands."""

    conf_dir: Path
    port_base: int = 16817
    preempt_user_signal: bool = True
    grace: int = GRACE_S
    kill_wait: int = KILL_WAIT_S
    partitions: tuple[str, str] = ("low", "high")
    #: a requeued job waits this long before it is eligible again (Slurm's own, not configurable)
    requeue_hold_s: int = field(init=False, default=120)
    env: dict[str, str] = field(init=False)
    cpus: int = field(init=False, default=0)
    start_seconds: float = field(init=False, default=0.0)
    start_log: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.conf_dir = Path(self.conf_dir)
        self.env = _clean_env(self.conf_dir / "slurm.conf")

    # ------------------------------------------------------------------ the daemons (cluster.sh)
    @property
    def low(self) -> str:
        return self.partitions[0]

    @property
    def high(self) -> str:
        return self.partitions[1]

    def _script_env(self) -> dict[str, str]:
        env = dict(self.env)
        env.update(
            SEGKD_SLURM_PORT_BASE=str(self.port_base),
            SEGKD_SLURM_PREEMPT_USER_SIGNAL="1" if self.preempt_user_signal else "0",
            SEGKD_SLURM_GRACE=str(self.grace),
            SEGKD_SLURM_KILL_WAIT=str(self.kill_wait),
        )
        return env

    def cluster_sh(self, action: str, timeout: float = 900) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            ["bash", str(CLUSTER_SH), action, str(self.conf_dir)], env=self._script_env(),
            capture_output=True, text=True, timeout=timeout,
        )
        if proc.returncode != 0 and action != "status":
            raise SlurmError(f"cluster.sh {action} {self.conf_dir} failed ({proc.returncode}):\n"
                             f"{proc.stdout}{proc.stderr}")
        return proc

    def start(self) -> "SlurmCluster":
        """Install what is missing, start (or, already running, reconfigure) and wait for the node idle."""
        t0 = time.monotonic()
        proc = self.cluster_sh("start")
        self.start_seconds = time.monotonic() - t0
        self.start_log = proc.stderr
        self.cpus = int(self.run("sinfo", "-h", "-N", "-o", "%c").split()[0])
        return self

    def stop(self) -> None:
        self.cluster_sh("stop", timeout=180)

    def running(self) -> bool:
        return self.cluster_sh("status").returncode == 0

    def set_preempt_user_signal(self, on: bool) -> None:
        """Turn ``SlurmctldParameters=preempt_send_user_signal`` on or off (a live ``scontrol reconfigure``)."""
        self.preempt_user_signal = on
        self.cluster_sh("start")
        params = self.run("scontrol", "show", "config")
        have = any("preempt_send_user_signal" in line for line in params.splitlines()
                   if line.startswith("SlurmctldParameters"))
        if have != on:
            raise SlurmError(f"SlurmctldParameters did not follow preempt_user_signal={on}")

    # ------------------------------------------------------------------ client commands
    def run(self, *cmd: str, timeout: float = 60, check: bool = True) -> str:
        """Run a Slurm client command in the cluster's environment; its stdout, or SlurmError with its stderr."""
        proc = subprocess.run([str(c) for c in cmd], env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise SlurmError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout

    def sbatch(self, *args: str, cwd: Optional[Path] = None) -> str:
        """Submit (``sbatch --parsable ARGS``); the job id."""
        proc = subprocess.run(["sbatch", "--parsable", *map(str, args)], env=self.env, capture_output=True,
                              text=True, timeout=60, cwd=cwd)
        if proc.returncode != 0:
            raise SlurmError(f"sbatch {' '.join(map(str, args))} failed: {proc.stderr.strip()}")
        return proc.stdout.strip().split(";")[0]

    def job(self, jobid: str) -> dict[str, str]:
        """``scontrol show job -o`` as a dict ({} once the job is gone, MinJobAge after its end)."""
        proc = subprocess.run(["scontrol", "show", "job", "-o", str(jobid)], env=self.env,
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            if "Invalid job id" in proc.stderr:
                return {}
            raise SlurmError(f"scontrol show job {jobid} failed: {proc.stderr.strip()}")
        out: dict[str, str] = {}
        for tok in proc.stdout.split():
            key, sep, value = tok.partition("=")
            if sep and key not in out:
                out[key] = value
        return out

    def state(self, jobid: str) -> str:
        """JobState from scontrol, or from sacct once the job left slurmctld's memory."""
        info = self.job(jobid)
        if info:
            return info["JobState"]
        records = [r for r in self.sacct(jobid, duplicates=False) if r["JobID"] == str(jobid)]
        return records[-1]["State"] if records else "UNKNOWN"

    def wait_state(self, jobid: str, states: Iterable[str] | str, timeout: float = 60, poll: float = 0.5) -> str:
        """Wait until the job is in one of ``states`` (scontrol's JobState); the state, or SlurmError."""
        wanted = {states} if isinstance(states, str) else set(states)
        deadline = time.monotonic() + timeout
        while True:
            state = self.state(jobid)
            if state in wanted:
                return state
            if time.monotonic() > deadline:
                raise SlurmError(f"job {jobid} still {state} after {timeout}s (waited for {sorted(wanted)}): "
                                 f"{self.job(jobid)}")
            time.sleep(poll)

    def release(self, jobid: str) -> None:
        """Let a requeued job start again now: Slurm holds it ~120 s (Reason=BeginTime) otherwise."""
        self.run("scontrol", "update", f"jobid={jobid}", "StartTime=now")

    def sacct(self, jobid: str, duplicates: bool = True) -> list[dict[str, str]]:
        """sacct's records of the job (allocation and steps; with ``duplicates`` every requeued attempt too).

        Each: JobID, JobName, Partition, State (first word: "CANCELLED by 0" -> CANCELLED), ExitCode
        ("0:0" = exit code:signal), Start, End.
        """
        fields = ["JobID", "JobName", "Partition", "State", "ExitCode", "Start", "End"]
        args = ["sacct", "-n", "-P", "-j", str(jobid), "-o", ",".join(fields)]
        if duplicates:
            args.append("--duplicates")
        records = []
        for line in self.run(*args).splitlines():
            if not line.strip():
                continue
            rec = dict(zip(fields, line.split("|")))
            rec["State"] = rec["State"].split()[0] if rec["State"] else ""
            records.append(rec)
        return records

    def wait_sacct(self, jobid: str, state: str, timeout: float = 30) -> list[dict[str, str]]:
        """sacct's records once the allocation's record has ``state`` (slurmdbd writes a little later)."""
        deadline = time.monotonic() + timeout
        while True:
            records = self.sacct(jobid)
            if any(r["JobID"] == str(jobid) and r["State"] == state for r in records):
                return records
            if time.monotonic() > deadline:
                raise SlurmError(f"sacct never showed job {jobid} {state}: {records}")
            time.sleep(0.5)

    def cancel_all(self, timeout: float = 60) -> None:
        """scancel every job and wait until none runs or completes any more."""
        jobs = self.run("squeue", "-h", "-o", "%i").split()
        if jobs:
            self.run("scancel", *jobs)
        deadline = time.monotonic() + timeout
        while self.run("squeue", "-h", "-o", "%i").split():
            if time.monotonic() > deadline:
                raise SlurmError(f"jobs still queued after scancel: {self.run('squeue')}")
            time.sleep(0.5)


# ---------------------------------------------------------------------------------- the fixture
def _skip_or_fail(reason: str) -> None:
    print(f"slurm fixture: {reason}", file=sys.stderr)
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true, so not skipped: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def slurm(request):
    """The local Slurm cluster, started once per session in a temp dir and stopped at its end.

    The dir is a fresh ``/tmp/segkd-slurm-*`` rather than pytest's tmp_path_factory, whose base is
    mode 700: mariadbd runs as the mysql user, which must reach its datadir. It is removed at the
    end, unless a test failed (then its path is printed: logs under log/).
    """
    reason = unavailable_reason()
    if reason:
        _skip_or_fail(reason)
    conf_dir = Path(tempfile.mkdtemp(prefix="segkd-slurm-"))
    conf_dir.chmod(0o755)
    cluster = SlurmCluster(conf_dir, port_base=free_port_base())
    try:
        cluster.start()
        print(f"\nslurm fixture: cluster up in {conf_dir} in {cluster.start_seconds:.1f}s "
              f"({cluster.cpus} CPUs, ports {cluster.port_base}..{cluster.port_base + 3})", file=sys.stderr)
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            if request.session.testsfailed:
                print(f"\nslurm fixture: kept {conf_dir} (a test failed; logs in {conf_dir / 'log'})",
                      file=sys.stderr)
            else:
                shutil.rmtree(conf_dir, ignore_errors=True)


# ------------------------------------------------------------------- as a plugin (pytest_plugins)
def pytest_configure(config) -> None:
    config.addinivalue_line("markers", MARKER)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items) -> None:
    """Mark every test that uses the ``slurm`` fixture ``slurm`` (before ``-m`` selects)."""
    for item in items:
        if "slurm" in getattr(item, "fixturenames", ()):
            item.add_marker("slurm")
