"""Command line: ``python -m segkd.run +experiment=NAME [overrides]`` (add ``-m`` for a sweep)."""

from __future__ import annotations

import os
import sys
from typing import Optional

import hydra
from omegaconf import DictConfig

from segkd.errors import errors_in_one_line
from segkd.train import DDP_JOB_DIR_ENV, RESOLVED_CONFIG, train


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> Optional[float]:
    """Train, and hand the val mIoU back to Hydra: a sweeper (Optuna) maximises what the job returns.

    segkd's own errors (data, config, checkpoints) end the run with their one line (segkd.errors).
    """
    with errors_in_one_line():
        return val_miou(train(cfg))


def val_miou(summary: dict) -> Optional[float]:
    """The final validation's mIoU from a run summary; None when no validation ran.

    The final score rather than the best epoch's: it is what the run delivers (the averaged net's,
    with weight averaging on), while the best epoch is picked on the same split and flatters noisy runs.
    """
    val = summary.get("val") or {}
    return float(val["mIoU"]) if val.get("mIoU") is not None else None


def _argv_for_ddp_child(argv: list[str]) -> list[str]:
    """Command line for a DDP rank > 0 that Lightning started by re-running ours.

    Lightning repeats the parent's arguments, which under ``-m`` would start the whole sweep again in
    every child. The parent publishes its job's output dir instead, and the child composes exactly
    that job from the resolved config the parent saved there.
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


if __name__ == "__main__":
    sys.argv = _argv_for_ddp_child(sys.argv)
    main()
