"""Weights & Biases the way segkd uses it: offline unless the user is logged in or asks for online,
never blocked or failed by a missing network, and with the run's identity (name, group, job type)
chosen so that a dashboard compares recipes (docs/OBSERVABILITY.md)."""

from __future__ import annotations

import csv
import logging
import netrc
import os
import urllib.error
import urllib.request
from typing import Any, Optional
from urllib.parse import urlparse

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger as LightningCSVLogger
from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.utilities import rank_zero_only

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.wandb.ai"
#: Modes that never touch the network.
LOCAL_MODES = ("offline", "disabled", "dryrun")


def base_url() -> str:
    return os.environ.get("WANDB_BASE_URL") or DEFAULT_BASE_URL


def logged_in(url: Optional[str] = None) -> bool:
    """An API key in the environment, or in ~/.netrc for the server (where `wandb login` puts it)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators(urlparse(url or base_url()).hostname or "") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def reachable(url: Optional[str] = None, timeout: float = 5.0) -> bool:
    """Whether the W&B server answers at all (any HTTP status counts) within ``timeout`` seconds."""
    try:
        urllib.request.urlopen(url or base_url(), timeout=timeout).close()
        return True
    except urllib.error.HTTPError:
        return True  # it answered
    except (urllib.error.URLError, OSError, ValueError):
        return False


def choose_mode(requested: Optional[str], timeout: float = 5.0) -> tuple[str, Optional[str]]:
    """The mode to run W&B in, and why it is not the one asked for (None: it is).

    Nothing requested (no WANDB_MODE): online when logged in and the server answers, else offline.
    ``online`` without a login or a reachable server falls back to offline with the reason, so a run
    on a machine without network still logs everything locally for ``wandb sync`` later.
    """
    mode = (requested or "").strip().lower() or None
    if mode in LOCAL_MODES:
        return mode, None
    if mode not in (None, "online", "run"):
        raise ValueError(f"WANDB_MODE={requested!r} is not a W&B mode; use online, offline or disabled")
    if not logged_in():
        if mode is None:
            return "offline", None
        return "offline", "W&B online mode needs a login (`wandb login` or WANDB_API_KEY); logging offline"
    if not reachable(timeout=timeout):
        return "offline", f"W&B server {base_url()} did not answer within {timeout:g} s; logging offline (`wandb sync` later)"
    return "online", None


class WandbLogger(LightningWandbLogger):
    """Lightning's WandbLogger with segkd's mode rule (:func:`choose_mode`) and a run summary.

    ``mode`` comes from WANDB_MODE (conf/logger/wandb.yaml); ``init_timeout`` bounds how long an
    online start may wait for the server.
    """

    def __init__(self, mode: Optional[str] = None, reachability_timeout: float = 5.0,
                 init_timeout: float = 60.0, **kwargs: Any) -> None:
        import wandb

        self.mode, reason = choose_mode(mode, reachability_timeout)
        if reason:
            log.warning(reason)
        kwargs.setdefault("settings", wandb.Settings(init_timeout=init_timeout))
        super().__init__(mode=self.mode, **kwargs)

    @rank_zero_only
    def log_summary(self, values: dict[str, Any]) -> None:
        """Values for the run's summary (what the runs table and charts across runs show)."""
        self.experiment.summary.update({k: v for k, v in values.items() if v is not None})

    @rank_zero_only
    def finish(self) -> None:
        """End the run: W&B keeps one global run per process, and the next job of a sweep must not log into it."""
        self.experiment.finish()


class CSVLogger(LightningCSVLogger):
    """Lightning's CSVLogger, except that a run resumed in its own dir keeps the metrics it logged.

    Lightning's writer deletes an existing metrics.csv when it opens the folder, so a requeued job or
    an auto-resumed run would lose the curve of everything before its checkpoint. After
    :meth:`resume_at` the rows up to the checkpoint's step are kept and the new ones appended; rows
    logged after the checkpoint (the part of the run that is done again) are dropped. A run that
    starts over in the dir replaces the file, as Lightning does.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._resuming = False
        self._resume_step: Optional[int] = None

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Flush with every checkpoint: after a crash the file holds every row up to the checkpoint."""
        self.save()

    def resume_at(self, step: Optional[int]) -> None:
        """The run resumes from a checkpoint at this global step (None: unknown, keep every row).
        Call before anything is logged."""
        self._resuming, self._resume_step = True, step

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ResumingWriter(self.log_dir, self._resuming, self._resume_step)
        return self._experiment


class _ResumingWriter(ExperimentWriter):
    def __init__(self, log_dir: str, resuming: bool, keep_up_to: Optional[int]) -> None:
        self._resuming, self._keep_up_to = resuming, keep_up_to
        super().__init__(log_dir=log_dir)

    def _check_log_dir_exists(self) -> None:
        path = os.path.join(self.log_dir, self.NAME_METRICS_FILE)
        if not self._resuming or not self._fs.isfile(path):
            return super()._check_log_dir_exists()
        with self._fs.open(path, "r", newline="") as file:
            reader = csv.DictReader(file)
            keys = sorted(reader.fieldnames or [])
            rows = [row for row in reader if self._keep(row)]
        with self._fs.open(path, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
        self.metrics_keys = keys  # new rows are appended under this header (widened when keys appear)

    def _keep(self, row: dict) -> bool:
        if self._keep_up_to is None:
            return True
        try:
            return float(row.get("step") or 0) <= self._keep_up_to
        except ValueError:
            return True
