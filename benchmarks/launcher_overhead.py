"""What segkd's local submitit launcher (hydra/launcher=local) adds to a job, next to Hydra's basic launcher, on the same job.

    .venv/bin/python benchmarks/launcher_overhead.py [--rounds 3] [-- OVERRIDE ...]

Each round runs one one-job sweep per launcher (`python -m segkd.run -m seed=1 ...`, a small
training run), interleaved so that drift on a noisy machine hits both alike. A one-job sweep, since
the local executor runs a sweep's jobs side by side and the basic launcher one after another. The
sweep's wall time is measured from outside (process start to exit). Printed: median seconds per
launcher and their difference, the launcher's overhead per job (submitting, a new interpreter for
the job, importing and composing again, pickling the result back).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JOB = ["trainer.max_epochs=1", "trainer.limit_train_batches=5", "trainer.limit_val_batches=2",
       "trainer.enable_progress_bar=false", "logger=csv", "seed=1"]
LAUNCHERS = {"basic": [], "local": ["hydra/launcher=local"]}


def sweep_seconds(extra: list[str], out: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "segkd.run", "-m", *JOB, *extra, f"hydra.sweep.dir={out}"],
                          cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    if not (out / "0" / "summary.json").is_file():
        raise SystemExit(f"no summary in {out}/0")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in LAUNCHERS}
    with tempfile.TemporaryDirectory() as tmp:
        sweep_seconds(args.overrides, Path(tmp) / "warm")  # data generated and caches filled once
        for r in range(args.rounds):
            for name, extra in LAUNCHERS.items():
                seconds = sweep_seconds([*extra, *args.overrides], Path(tmp) / f"{name}{r}")
                times[name].append(seconds)
                print(f"round {r}: {name:15s} {seconds:6.1f} s", flush=True)
    basic, local = (statistics.median(times[n]) for n in LAUNCHERS)
    print(f"\nmedian one-job sweep: basic {basic:.1f} s, local {local:.1f} s; "
          f"overhead per job {local - basic:+.1f} s ({local / basic:.2f}x)")


if __name__ == "__main__":
    main()
