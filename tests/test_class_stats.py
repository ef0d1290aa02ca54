"""Class statistics cache: safe when several processes compute it at once, harmless when it cannot be written."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import numpy as np

from segkd.data.class_stats import class_statistics

from conftest import write_png


class MaskSet:
    """The two things class_statistics reads from a dataset: its label files and their masks."""

    def __init__(self, root: Path, n: int = 4) -> None:
        rng = np.random.default_rng(0)
        self.masks = [rng.integers(0, 19, (8, 16), dtype=np.uint8) for _ in range(n)]
        self.samples = [(None, write_png(root / f"m{i}.png", m)) for i, m in enumerate(self.masks)]

    def __len__(self) -> int:
        return len(self.masks)

    def load_mask(self, i: int) -> np.ndarray:
        return self.masks[i]


def _hammer(root: str, cache: str, rounds: int, errors) -> None:
    data = MaskSet(Path(root))
    for _ in range(rounds):
        for f in Path(cache).glob("class_stats-*.json"):
            f.unlink(missing_ok=True)  # force every call to compute and write
        try:
            class_statistics(data, 19, cache)
        except Exception as err:  # noqa: BLE001 - reported to the parent
            errors.put(f"{type(err).__name__}: {err}")


def test_three_processes_computing_at_once(tmp_path):
    data = MaskSet(tmp_path / "masks")
    expected = class_statistics(data, 19)
    errors = mp.get_context("fork").Queue()
    procs = [mp.get_context("fork").Process(target=_hammer, args=(str(tmp_path / "masks"), str(tmp_path / "cache"), 400, errors))
             for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert not failures, failures[:3]
    assert all(p.exitcode == 0 for p in procs)
    assert class_statistics(data, 19, tmp_path / "cache") == expected
    assert not list((tmp_path / "cache").glob("*.tmp")), "no temporary files left behind"


def test_a_cache_dir_that_cannot_be_written_costs_the_cache_not_the_run(tmp_path, caplog):
    data = MaskSet(tmp_path / "masks")
    blocked = tmp_path / "a_file"
    blocked.write_text("not a directory")
    stats = class_statistics(data, 19, blocked / "cache")  # mkdir under a file fails, as on read-only media
    assert stats == class_statistics(data, 19)
    assert "class statistics not cached" in caplog.text
    assert json.dumps(stats)
