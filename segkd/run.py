"""Command line: ``python -m segkd.run +experiment=NAME [overrides]`` (add ``-m`` for a sweep)."""

from __future__ import annotations

import sys
from typing import Optional

import hydra
from omegaconf import DictConfig

from segkd.config import command_line
from segkd.runtime.errors import errors_in_one_line
from segkd.runtime.processes import argv_for_ddp_child
from segkd.train import train


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> Optional[float]:
    """Train, and hand the val mIoU back to Hydra: a sweeper (Optuna) maximises what the job returns.

    segkd's own errors (data, config, checkpoints) end the run with their one line (segkd.runtime.errors).
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


if __name__ == "__main__":
    sys.argv = command_line("train", argv_for_ddp_child(sys.argv))
    main()
