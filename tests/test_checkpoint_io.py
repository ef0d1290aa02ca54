"""Atomic checkpoint writes: a failed or killed save keeps the previous checkpoint whole; every run saves this way."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from segkd.runtime.checkpoint_io import AtomicCheckpointIO
from segkd.train import train

from conftest import ROOT


def _checkpoint(value: float) -> dict:
    return {"state_dict": {"net.weight": torch.full((256, 256), value)}, "global_step": int(value)}


def test_a_normal_save_round_trips_and_leaves_only_the_checkpoint(tmp_path):
    io = AtomicCheckpointIO()
    path = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint(_checkpoint(1.0), path)
    io.save_checkpoint(_checkpoint(2.0), path)  # over an existing file
    loaded = io.load_checkpoint(path)
    assert loaded["global_step"] == 2 and torch.equal(loaded["state_dict"]["net.weight"], torch.full((256, 256), 2.0))
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]


def _fail_half_way_through_torch_save(monkeypatch):
    def save(obj, f):
        f.write(b"PK\x03\x04" + b"\0" * 4096)  # the start of a zip archive, as torch.save writes one
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", save)


def _fail_at_fsync(monkeypatch):
    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # NFS and others report a full disk here

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize("fail", [_fail_half_way_through_torch_save, _fail_at_fsync])
def test_a_save_that_fails_half_way_keeps_the_previous_checkpoint_and_no_temp(tmp_path, monkeypatch, fail):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint(_checkpoint(1.0), path)
    before = path.read_bytes()
    fail(monkeypatch)
    with pytest.raises(OSError, match="No space left on device"):
        io.save_checkpoint(_checkpoint(2.0), path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert io.load_checkpoint(path)["global_step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"], "the failed save removed its temporary file"


KILLED_SAVE = """
import os, signal, sys, torch
from segkd.runtime.checkpoint_io import save_atomically

def save(obj, f):  # killed (preemption, OOM killer) with half a checkpoint written
    f.write(b"PK" + b"\\0" * 100000)
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)

torch.save = save
save_atomically({"global_step": 2}, sys.argv[1])
"""


def test_a_killed_save_keeps_the_previous_checkpoint_and_its_leftover_is_no_checkpoint(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint(_checkpoint(1.0), path)
    before = path.read_bytes()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(path)], cwd=ROOT, env=env, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert path.read_bytes() == before
    leftover = [p for p in tmp_path.iterdir() if p != path]
    assert len(leftover) == 1 and leftover[0].name.startswith(".last.ckpt.tmp-"), leftover
    # Nothing that looks for checkpoints takes it: *.ckpt globs, nor Lightning's ckpt_path=last lookup.
    assert list(tmp_path.glob("*.ckpt")) == [path]
    assert ModelCheckpoint(dirpath=tmp_path)._find_last_checkpoints(None) == {str(path)}


def test_every_run_saves_through_the_plugin_last_before_best(make_cfg, monkeypatch):
    saved = []
    save = AtomicCheckpointIO.save_checkpoint

    def record(self, checkpoint, path, storage_options=None):
        saved.append(os.path.basename(path))
        save(self, checkpoint, path, storage_options)

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", record)
    summary = train(make_cfg("trainer.max_epochs=2"))
    # Each validation writes last.ckpt first: a kill between the two saves never leaves a best without a last.
    assert saved[0] == "last.ckpt" and saved[1].startswith("best-"), saved
    assert saved.count("last.ckpt") == 2
    for key in ("last_checkpoint", "best_checkpoint"):
        assert torch.load(summary[key], map_location="cpu", weights_only=True)["global_step"] > 0
    names = [p.name for p in Path(summary["last_checkpoint"]).parent.iterdir()]
    assert not [name for name in names if name.startswith(".")], f"temporary files left: {names}"
