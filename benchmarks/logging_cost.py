"""What observability costs: W&B logging and the layer-image callback, per epoch, next to a run without.

    .venv/bin/python benchmarks/logging_cost.py [--rounds 3] [--epochs 3] [-- OVERRIDE ...]

Four setups train the default student (`make run`'s data and epoch) through segkd.train.train, the
real path with its loggers and callbacks: CSV logger only (the baseline), + W&B (offline: what
reaches the disk is the same as online minus the upload, which runs in W&B's own process), +
layer images every epoch (3 layers, 4 images), and both. Rounds interleave the setups so drift on a
noisy machine hits all alike. An epoch is timed from one epoch's start to the next (training,
validation and every callback and logger call in it); epoch 0 pays start-up costs and is left out.
Printed: median epoch seconds per setup, its ratio to the baseline, and the run's one-off extra
seconds outside the epochs (W&B's start and finish). Differences of a few percent between setups
are within this machine's epoch-to-epoch noise, so the layer-image callback is also timed from
inside (its drawing, median over its calls after the first), as a share of a baseline epoch.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lightning.pytorch import Callback

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from segkd.config import compose_train_config  # noqa: E402
from segkd.train import train  # noqa: E402

SETUPS = {
    "csv only": ["logger=csv"],
    "+ wandb (offline)": ["logger=csv_wandb"],
    "+ layer images": ["logger=csv", "callbacks=layer_images"],
    "+ wandb + layer images": ["logger=csv_wandb", "callbacks=layer_images"],
}
#: Epoch start times of the run in progress, and the layer-image callback's own drawing times (the
#: clock is built by Hydra from the config, so it reports here rather than through the trainer).
EPOCH_STARTS: list[float] = []
DRAW_SECONDS: list[float] = []


class EpochClock(Callback):
    def on_train_epoch_start(self, trainer, pl_module) -> None:
        EPOCH_STARTS.append(time.perf_counter())

    def on_fit_end(self, trainer, pl_module) -> None:
        EPOCH_STARTS.append(time.perf_counter())
        from segkd.callbacks import LayerImages

        for callback in trainer.callbacks:
            if isinstance(callback, LayerImages):
                DRAW_SECONDS.extend(callback.draw_seconds[1:])  # the first one also reads the val images


def run(setup: list[str], extra: list[str], epochs: int, out: Path) -> tuple[list[float], float]:
    EPOCH_STARTS.clear()
    overrides = [*setup, *extra, f"trainer.max_epochs={epochs}", "trainer.enable_progress_bar=false",
                 "+callbacks.epoch_clock._target_=benchmarks.logging_cost.EpochClock"]
    start = time.perf_counter()
    train(compose_train_config(overrides, out))
    total = time.perf_counter() - start
    epochs_s = [b - a for a, b in zip(EPOCH_STARTS, EPOCH_STARTS[1:])]
    return epochs_s[1:], total - sum(epochs_s)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("overrides", nargs="*", help="config overrides for every setup (after --)")
    args = parser.parse_args(argv)
    os.environ.setdefault("WANDB_MODE", "offline")
    sys.modules.setdefault("benchmarks.logging_cost", sys.modules[__name__])
    epochs = {name: [] for name in SETUPS}
    outside = {name: [] for name in SETUPS}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name, setup in SETUPS.items():
                e, o = run(setup, args.overrides, args.epochs, Path(tmp) / f"{r}-{len(epochs[name])}-{name[:6]}")
                epochs[name] += e
                outside[name].append(o)
                print(f"round {r + 1}: {name:24s} epochs {', '.join(f'{x:.2f}' for x in e)} s; outside epochs {o:.1f} s",
                      flush=True)
    base = statistics.median(epochs["csv only"])
    base_outside = statistics.median(outside["csv only"])
    print(f"\n{'setup':24s} {'epoch s (median)':>17s} {'ratio':>7s} {'one-off extra s':>16s}")
    for name in SETUPS:
        med = statistics.median(epochs[name])
        print(f"{name:24s} {med:17.2f} {med / base:7.3f} {statistics.median(outside[name]) - base_outside:16.1f}")
    print(f"({len(epochs['csv only'])} epochs per setup over {args.rounds} rounds; torch threads {__import__('torch').get_num_threads()})")
    if DRAW_SECONDS:
        draw = statistics.median(DRAW_SECONDS)
        print(f"layer images, timed inside the callback: {draw:.2f} s per drawing (median of {len(DRAW_SECONDS)}), "
              f"{draw / base:.3f} of a baseline epoch: the callback's cost when it draws every epoch")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
