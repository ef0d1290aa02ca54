"""The DDP processes of one job: how ranks > 0 find their job, and how a job leaves none of its DDP state behind.

Lightning starts DDP ranks > 0 on one machine by running the parent's command line again. Two
commands rely on that: ``python -m segkd.run`` (training) and ``python -m segkd.evaluate``. Both
save the job's resolved config in its run dir (:data:`RESOLVED_CONFIG`), run Lightning inside
:func:`ddp_job_scope`, and rewrite their command line with :func:`argv_for_ddp_child` before Hydra
reads it, so that every rank of a job rebuilds exactly that job and writes into its run dir.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch

#: Set for the duration of a job's fit or predict, so that DDP ranks > 0, which Lightning starts by
#: re-running the command line, rebuild exactly this job from its saved config (see argv_for_ddp_child).
DDP_JOB_DIR_ENV = "SEGKD_DDP_JOB_DIR"
#: The job's exact, resolved config in its run dir: what ranks > 0 compose their job from.
RESOLVED_CONFIG = "resolved_config.yaml"
#: What Lightning's DDP launcher leaves in the environment of the process that started the ranks.
_DDP_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def save_job_config(cfg: Any, output_dir: Path) -> None:
    """Write the job's exact, resolved config into its run dir: what DDP ranks > 0 rebuild it from."""
    from omegaconf import OmegaConf

    output_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, output_dir / RESOLVED_CONFIG, resolve=True)


@contextmanager
def ddp_job_scope(output_dir: Path) -> Iterator[None]:
    """Scope DDP to one job, so the next job of a sweep in this process starts its own ranks.

    Inside, ranks > 0 are told the job's run dir (:data:`DDP_JOB_DIR_ENV`). Lightning leaves its
    rendezvous variables (LOCAL_RANK, MASTER_PORT, ...) in the environment and the process group
    open; the next job would then believe an external launcher made its ranks and talk to the
    previous job's exited children. On the way out the process group is closed and the environment
    restored: ranks started by a real launcher (SLURM, torchrun) had these variables before we began
    and keep them.
    """
    saved = {key: os.environ.get(key) for key in (*_DDP_ENV, DDP_JOB_DIR_ENV)}
    os.environ[DDP_JOB_DIR_ENV] = str(output_dir)
    try:
        yield
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def argv_for_ddp_child(argv: list[str]) -> list[str]:
    """Command line for a DDP rank > 0 that Lightning started by re-running ours (``argv`` unchanged elsewhere).

    Lightning repeats the parent's arguments, which under ``-m`` would start the whole sweep again in
    every child, and would give each child a run dir of its own (a new time stamp). The parent
    publishes its job's output dir instead (:func:`ddp_job_scope`), and the child composes exactly
    that job from the resolved config the parent saved there, and writes into that dir.
    """
    job_dir = os.environ.get(DDP_JOB_DIR_ENV)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not job_dir or local_rank == 0:
        return argv
    return [
        argv[0],
        f"--config-path={job_dir}",
        f"--config-name={RESOLVED_CONFIG}",
        f"hydra.run.dir={job_dir}",
        "hydra.output_subdir=null",
        f"hydra.job.name=ddp_rank{local_rank}",
    ]
