"""Hydra's submitit launchers with the sweep dir pinned (conf/hydra/launcher/submitit_{slurm,local}.yaml).

Hydra instantiates launchers from the ``hydra_plugins`` namespace only, hence this package. submitit
runs every job (and every task of a job, and every requeued run) in a new process, where Hydra
composes the job's config again: ``${run_id:}`` in the sweep dir would then name a new folder per
process. The dir is resolved once, in the launching process, and handed to the jobs as an override.
Ranks and resume are segkd.runtime.cluster's.
"""

from __future__ import annotations

from typing import Any, Sequence

from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher, SlurmLauncher
from omegaconf import read_write


class _PinnedSweepDir:
    """Resolve the sweep dir once, in the launching process, and hand it to every job as an override."""

    config: Any

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
        sweep_dir = str(self.config.hydra.sweep.dir)
        with read_write(self.config.hydra.overrides):
            pinned = [o for o in self.config.hydra.overrides.hydra if not str(o).startswith("hydra.sweep.dir=")]
            self.config.hydra.overrides.hydra = [*pinned, f"hydra.sweep.dir={_quoted(sweep_dir)}"]
        return super().launch(job_overrides, initial_job_idx)  # type: ignore[misc]


def _quoted(value: str) -> str:
    """A path as a Hydra override value (quoted when it holds characters the override grammar reads)."""
    if all(c.isalnum() or c in "/_-.+~" for c in value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class SegkdSlurmLauncher(_PinnedSweepDir, SlurmLauncher):
    """Hydra's submitit SLURM launcher, with the sweep dir pinned (conf/hydra/launcher/submitit_slurm.yaml)."""


class SegkdLocalLauncher(_PinnedSweepDir, LocalLauncher):
    """Hydra's submitit local launcher, with the sweep dir pinned (conf/hydra/launcher/submitit_local.yaml)."""
