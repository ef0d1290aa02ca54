"""Checkpoints written atomically: a checkpoint's real name holds a whole checkpoint or nothing new.

Lightning 2.6 (``TorchCheckpointIO`` -> ``lightning.fabric.utilities.cloud_io._atomic_save``) serialises
the checkpoint into memory and writes it through an fsspec transaction, which for a local path
stages the bytes in the system temp dir (``tempfile.mkstemp()``, usually /tmp) and ``shutil.move``s
them onto the real name on commit, without fsync. When /tmp is another filesystem (tmpfs, a node's
local disk) that move is a copy straight into ``last.ckpt``: a full disk or a kill (preemption, OOM,
timeout) during it leaves a truncated ``last.ckpt`` and the previous one is gone, so the run cannot
resume; and even on one filesystem a crash soon after the rename can leave an empty file, because
nothing was flushed to disk. Here the temporary file lives in the checkpoint's own dir, is fsynced,
and ``os.replace`` puts it under the real name; the previous file stays until then.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Optional

import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.plugins.io import TorchCheckpointIO


def temporary_name(path: Path) -> Path:
    """A hidden name of this process's own beside ``path``, which no checkpoint lookup matches.

    Lightning finds ``last*.ckpt`` and ``hpc_ckpt_*.ckpt`` by name; a dot first and a suffix that is
    not ``.ckpt`` keep a file left by a killed save out of both (and out of ``*.ckpt`` globs).
    """
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def save_atomically(checkpoint: dict[str, Any], path: str | Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, fsync, then rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        with open(tmp, "xb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # a full disk, Ctrl-C: the previous checkpoint stays and no temp is left
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX: a directory's entries are flushed through its own fd)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint IO with atomic local writes (see the module docstring for why).

    Every segkd run uses it (conf/trainer/default.yaml, ``plugins``), so ``last.ckpt``, the best
    checkpoint and SLURM's ``hpc_ckpt_*.ckpt`` are all written this way. Remote paths (``s3://``
    and other fsspec URLs) keep Lightning's own save: object stores replace a whole object at once.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Optional[Any] = None
    ) -> None:
        if storage_options is not None or not isinstance(get_filesystem(path), LocalFileSystem):
            return super().save_checkpoint(checkpoint, path, storage_options)  # refuses storage_options itself
        save_atomically(checkpoint, path)
