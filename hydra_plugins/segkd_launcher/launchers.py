"""Hydra's submitit launchers as segkd runs them (conf/hydra/launcher/{slurm,slurm_cpu,local}.yaml).

Hydra instantiates launchers from the ``hydra_plugins`` namespace only, hence this package. Three
things differ from the plugin's launchers, all in the launching process:

- **The sweep dir is resolved once** and handed to the jobs as an override. submitit runs every job
  (and every task of a job, and every requeued run) in a new process, where Hydra composes the job's
  config again: ``${run_id:}`` in the sweep dir would then name a new folder per process.
- **The data is prepared once per sweep**, before anything is submitted: each distinct
  ``dataset.prepare`` of the sweep's jobs (generating SynthStreets) runs here, so the jobs find it
  made instead of all generating it side by side.
- **The user sees the jobs.** The plugin submits and then waits for every result in silence, for hours
  on a real cluster. This one prints each job's SLURM id, its overrides and its log files, says that
  the command waits (and that the jobs do not need it), and while it waits prints a line whenever
  the jobs' states change and at least every ``progress_minutes``: ``2/8 done, 4 running, 2 pending``.

The config files keep names of their own (``slurm``, not the plugin's ``submitit_slurm``): a file
named like the plugin's ConfigStore schema is validated against it, which Hydra 1.3 reports as
deprecated in every job's log. Ranks and resume are segkd.runtime.cluster's.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import time
from typing import Any, Iterator, Sequence

import submitit
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher, SlurmLauncher
from omegaconf import OmegaConf, read_write

log = logging.getLogger(__name__)

#: Launcher settings that are segkd's, not submitit's (taken out before submitit sees the rest).
OWN_PARAMS = {"progress_minutes": 5.0, "poll_s": 10.0}

#: submitit / SLURM states by what they mean for the count a user reads.
RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT"}
WAITING = {"PENDING", "PREEMPTED", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING", "SUSPENDED", "UNKNOWN", "READY"}


class _SegkdLauncher:
    """Pins the sweep dir, prepares the data once, and reports the jobs while it waits for them."""

    config: Any
    hydra_context: Any
    params: dict

    def __init__(self, **params: Any) -> None:
        own = {k: params.pop(k, default) for k, default in OWN_PARAMS.items()}
        super().__init__(**params)  # type: ignore[call-arg]
        self.progress_s = max(1.0, float(own["progress_minutes"]) * 60.0)
        self.poll_s = max(0.2, float(own["poll_s"]))

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
        sweep_dir = str(self.config.hydra.sweep.dir)
        with read_write(self.config.hydra.overrides):
            pinned = [o for o in self.config.hydra.overrides.hydra if not str(o).startswith("hydra.sweep.dir=")]
            self.config.hydra.overrides.hydra = [*pinned, f"hydra.sweep.dir={_quoted(sweep_dir)}"]
        self._prepare_data(job_overrides)
        with _reporting_executor(self, job_overrides, initial_job_idx):
            return super().launch(job_overrides, initial_job_idx)  # type: ignore[misc]

    def _prepare_data(self, job_overrides: Sequence[Sequence[str]]) -> None:
        """Run each distinct ``dataset.prepare`` of the sweep once, here, before any job starts."""
        from hydra.core.hydra_config import HydraConfig
        from hydra.utils import instantiate

        done: set[str] = set()
        launching = HydraConfig.instance().cfg
        try:
            for overrides in job_overrides:
                cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
                HydraConfig.instance().set_config(cfg)  # ${hydra:...} resolves as in the job
                prepare = OmegaConf.select(cfg, "dataset.prepare")
                if prepare is None:
                    continue
                key = json.dumps(OmegaConf.to_container(prepare, resolve=True), sort_keys=True, default=str)
                if key in done:
                    continue
                done.add(key)
                log.info("preparing the sweep's data once, before submitting: %s", key)
                instantiate(prepare)()
        finally:
            if launching is not None:
                HydraConfig.instance().cfg = launching

    def report_submitted(self, jobs: Sequence[Any], job_overrides: Sequence[Sequence[str]], first: int) -> None:
        ids = [str(job.job_id) for job in jobs]
        array = ids[0].split("_")[0] if ids and all("_" in i for i in ids) else None
        log.info("submitted %d job(s)%s: %s", len(jobs), f" as array {array}" if array else "", ", ".join(ids))
        for idx, (job, overrides) in enumerate(zip(jobs, job_overrides), start=first):
            log.info("  #%d %s: %s\n      log: %s", idx, job.job_id, " ".join(overrides), job.paths.stderr)
        log.info("waiting for them: this command returns when every job has ended (a line per change of state, "
                 "at least every %g min). The jobs do not need it: stopped, it leaves them running%s.",
                 self.progress_s / 60.0, f" (squeue -j {array}, sacct -j {array})" if array else "")

    def wait(self, jobs: Sequence[Any]) -> None:
        start = last_time = time.monotonic()
        last_line = None
        jobs = [_Settled(job) for job in jobs]
        while True:
            line, finished = progress_line(jobs)
            now = time.monotonic()
            if line != last_line or now - last_time >= self.progress_s or finished:
                log.info("%s (%s)", line, _minutes(now - start))
                last_line, last_time = line, now
            if finished:
                return
            time.sleep(self.poll_s)


class _Settled:
    """A job that counts as ended once it wrote its result, or once SLURM has called it ended for
    ``settle_s``: right after a requeue, sacct briefly reports the stopped attempt's FAILED or
    CANCELLED before the job is PENDING again, and a launcher that believed it would collect a
    result that never came (submitit's UncompletedJobError) while the job runs on."""

    settle_s = 20.0

    def __init__(self, job: Any) -> None:
        self.job, self._ended_since = job, None

    @property
    def state(self) -> str:
        return self.job.state

    def done(self) -> bool:
        if self.job.paths.result_pickle.exists():
            return True
        if not self.job.done(force_check=self._ended_since is not None):
            self._ended_since = None
            return False
        now = time.monotonic()
        self._ended_since = self._ended_since or now
        return now - self._ended_since >= self.settle_s


def progress_line(jobs: Sequence[Any]) -> tuple[str, bool]:
    """``"2/8 done, 4 running, 2 pending"`` for these jobs (other states by name), and whether all ended."""
    counts: collections.Counter = collections.Counter()
    for job in jobs:
        if job.done():  # asked once per job and poll: a settling job's answer comes from sacct
            counts["done"] += 1
            continue
        state = str(job.state).split()[0].upper() if job.state else "UNKNOWN"
        counts["running" if state in RUNNING else "pending" if state in WAITING else state.lower()] += 1
    done = counts.pop("done", 0)
    parts = [f"{done}/{len(jobs)} done"]
    parts += [f"{counts.pop(k)} {k}" for k in ("running", "pending") if counts.get(k)]
    parts += [f"{n} {state}" for state, n in sorted(counts.items())]
    return ", ".join(parts), done == len(jobs)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60.0:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


@contextlib.contextmanager
def _reporting_executor(launcher: _SegkdLauncher, job_overrides: Sequence[Sequence[str]],
                        first: int) -> Iterator[None]:
    """Hand the plugin's ``launch`` an executor whose ``map_array`` reports the jobs and waits for them.

    The plugin builds ``submitit.AutoExecutor`` and collects every result in one blocking call; the
    executor class is the one seam between the two, so it is swapped for the time of the launch.
    """
    plugin_executor = submitit.AutoExecutor

    class ReportingExecutor(plugin_executor):  # type: ignore[misc, valid-type]
        def map_array(self, fn: Any, *iterable: Any) -> list:
            jobs = super().map_array(fn, *iterable)
            launcher.report_submitted(jobs, job_overrides, first)
            launcher.wait(jobs)
            return jobs

    submitit.AutoExecutor = ReportingExecutor
    try:
        yield
    finally:
        submitit.AutoExecutor = plugin_executor


def _quoted(value: str) -> str:
    """A path as a Hydra override value (quoted when it holds characters the override grammar reads)."""
    if all(c.isalnum() or c in "/_-.+~" for c in value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class SegkdSlurmLauncher(_SegkdLauncher, SlurmLauncher):
    """Hydra's submitit SLURM launcher, segkd's way (conf/hydra/launcher/slurm.yaml, slurm_cpu.yaml)."""


class SegkdLocalLauncher(_SegkdLauncher, LocalLauncher):
    """Hydra's submitit local launcher, segkd's way (conf/hydra/launcher/local.yaml)."""
