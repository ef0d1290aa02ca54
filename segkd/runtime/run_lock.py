"""One writer per run dir: a second run into the same dir is refused while the first is alive.

Two runs writing one dir (a command typed twice, two jobs of a script given the same
``hydra.run.dir``) would mix their files (one's summary.json beside the other's resolved config,
both appending to metrics.csv) and a later auto-resume would check against the wrong config. The
lock is an advisory ``flock`` on ``<run dir>/.segkd.lock``: the kernel releases it when its holder
exits in any way (kill -9 and a node's crash included), so a lock left by a dead run is never in the
way, and a requeued cluster job takes its dir over on whatever node it restarts. The file records the
holder (pid, host, start time) for the message a refused run prints. Only the first process of a run
takes it: DDP ranks and the other tasks of a multi-task job share their job's dir by design.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

LOCK_NAME = ".segkd.lock"
#: Set by launchers in processes that are not a run's first (DDP children, other Slurm tasks or nodes,
#: other tasks of a submitit job: SLURM_PROCID on a cluster, SUBMITIT_LOCAL_GLOBALID under its local executor).
_RANK_ENV = ("LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "RANK", "SUBMITIT_LOCAL_GLOBALID")


class RunDirBusy(RuntimeError):
    """Another live run holds the run dir."""


def first_process() -> bool:
    return all(os.environ.get(name, "0") in ("", "0") for name in _RANK_ENV)


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["started"]))
        return f"pid {info['pid']} on host {info['host']} (since {since})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextmanager
def run_dir_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold the run dir for the duration; raise :class:`RunDirBusy` naming the holder if a live run has it."""
    if not first_process():
        yield
        return
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirBusy(
                f"{run_dir} is in use by another run: {_holder(path)}. One run writes one dir: wait for it to "
                f"end, stop it, or give this run its own dir (hydra.run.dir=...)"
            ) from None
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()})
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock
