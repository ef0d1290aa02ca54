"""Jobs that a cluster launcher starts: Hydra's submitit launcher on SLURM, or submitit's local executor.

Under a launcher every rank is a task the launcher started (``tasks_per_node`` per node), so
Lightning must not start processes of its own: :class:`SubmititEnvironment` hands it the ranks,
world size and rendezvous address from submitit's job environment, the same on SLURM and under the
local executor (which Lightning cannot detect by itself). It also stands in for Lightning's
SLURMEnvironment, whose auto-requeue would otherwise fight submitit's: requeueing a preempted or
timed-out job is submitit's (``max_num_timeout``), saving ``last.ckpt`` before it goes is segkd's
(segkd.callbacks.Preemption), and resuming is automatic (segkd.train, ``auto_resume``).

segkd's launchers (hydra_plugins/segkd_launcher: Hydra takes launchers from that namespace only)
pin the sweep dir: submitit runs each job in a new process, which would otherwise compose the sweep
dir anew (``${run_id:}`` is one value per process) and put every job, every rank and every requeued
run of a job in a different folder.
"""

from __future__ import annotations

import os
import random
from typing import Any

from lightning.fabric.plugins.environments.cluster_environment import ClusterEnvironment

#: submitit sets this in every task it starts (``slurm`` or ``local``).
EXECUTOR_ENV = "SUBMITIT_EXECUTOR"


def under_submitit() -> bool:
    """Whether this process is a task of a submitit job."""
    return bool(os.environ.get(EXECUTOR_ENV))


class SubmititEnvironment(ClusterEnvironment):
    """Lightning's view of a submitit job: one task per rank, started by SLURM (srun) or the local executor."""

    def __init__(self) -> None:
        super().__init__()
        import submitit

        self._job = submitit.JobEnvironment()

    @property
    def creates_processes_externally(self) -> bool:
        return True

    @property
    def main_address(self) -> str:
        if os.environ.get("MASTER_ADDR"):
            return os.environ["MASTER_ADDR"]
        return self._job.hostnames[0] if os.environ.get(EXECUTOR_ENV) == "slurm" else "127.0.0.1"

    @property
    def main_port(self) -> int:
        if os.environ.get("MASTER_PORT"):
            return int(os.environ["MASTER_PORT"])
        # One port per job, the same in all its tasks (as submitit's TorchDistributedEnvironment picks it).
        return random.Random(self._job.job_id).randint(20000, 60000)

    @staticmethod
    def detect() -> bool:
        return under_submitit()

    def world_size(self) -> int:
        return self._job.num_tasks

    def set_world_size(self, size: int) -> None:
        pass  # the launcher decided it; validate_settings checks the trainer agrees

    def global_rank(self) -> int:
        return self._job.global_rank

    def set_global_rank(self, rank: int) -> None:
        pass

    def local_rank(self) -> int:
        return self._job.local_rank

    def node_rank(self) -> int:
        return self._job.node

    def validate_settings(self, num_devices: int, num_nodes: int) -> None:
        check_tasks(num_devices, num_nodes, self._job.num_tasks, self._job.num_nodes)


def check_tasks(devices: int, nodes: int, tasks: int, job_nodes: int) -> None:
    """The trainer's processes must be the launcher's tasks (a job's own devices override cannot apply)."""
    if devices * nodes == tasks and nodes == job_nodes:
        return
    raise ValueError(
        f"this job runs as {tasks} submitit task(s) on {job_nodes} node(s) but asks for trainer.devices={devices} "
        f"x trainer.num_nodes={nodes}: the submitit launcher sets tasks and nodes once for the whole sweep from "
        f"the base config, so trainer.devices and trainer.num_nodes cannot be swept or changed per job; set them "
        f"outside the sweep's varied parameters (one sweep per device count)"
    )


def cluster_plugins() -> list[Any]:
    """What a trainer needs under a launcher (nothing otherwise)."""
    return [SubmititEnvironment()] if under_submitit() else []
