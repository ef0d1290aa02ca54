"""Reading back what an offline W&B run wrote (its run-<id>.wandb transaction log), for the tests.

wandb 0.31 keeps no Python reader for it (the Go core writes it); the format is LevelDB's log: a
7-byte header, then 32 KiB blocks of chunks (4-byte checksum, 2-byte length, 1-byte type: 1 full,
2 first, 3 middle, 4 last) that hold serialised ``wandb_internal_pb2.Record`` messages.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

BLOCK, HEADER, CHUNK = 32768, 7, 7


def records(path: Path) -> list:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    out, pos, pending = [], HEADER, b""
    while pos + CHUNK <= len(data):
        if BLOCK - pos % BLOCK < CHUNK:  # a block's tail too short for a chunk header is padding
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + CHUNK])
        pos += CHUNK
        if length == 0 and kind == 0:
            break
        pending += data[pos:pos + length]
        pos += length
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            out.append(record)
            pending = b""
    return out


def _items(items) -> dict:
    return {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in items}


def _complete_records(log: Path, timeout: float = 30.0) -> list:
    """The log's records once it holds its run record: wandb-core writes the file from its own process
    and may still be flushing its first (large) record when the Python side's finish() returns."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        found = records(log)
        if any(r.WhichOneof("record_type") == "run" for r in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def read_run(run_dir: Path) -> dict:
    """The run record's identity, its config, the last value of every history key, and the summary."""
    (log,) = Path(run_dir).glob("run-*.wandb")
    run, config, history, summary, artifacts, stats = None, {}, {}, {}, [], 0
    for record in _complete_records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            config.update(_items(record.run.config.update))
        elif kind == "config":
            config.update(_items(record.config.update))
        elif kind == "history":
            history.update(_items(record.history.item))
        elif kind == "summary":
            summary.update(_items(record.summary.update))
        elif kind == "artifact":
            artifacts.append(record.artifact.name)
        elif kind == "stats":
            stats += 1
    assert run is not None, f"{log} holds no run record"
    return {"project": run.project, "run_id": run.run_id, "group": run.run_group, "job_type": run.job_type, "name": run.display_name,
            "tags": list(run.tags), "config": config, "history": history, "summary": summary,
            "artifacts": artifacts, "stats_records": stats}
