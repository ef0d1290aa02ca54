"""Training step time of distillation relative to training the student alone, side by side.

    .venv/bin/python benchmarks/step_time.py [--steps 20] [--rounds 3] [--paradigms logits,decoder,...]

Every system trains on the same SynthStreets batches with the default config (batch 8, 64x128
crops, CPU threads as set by torch). Rounds interleave the systems so drift on a noisy machine hits
all of them alike; the first steps of each fit are warm-up and not counted. Printed ratios:
offline KD step (live teacher) / student-only step, and DML step / two student-only steps.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch import Callback

from segkd.config import build, compose_train_config, to_plain

WARMUP = 3


class StepClock(Callback):
    """Wall time from batch start to the end of its optimizer step(s)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._t = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx >= WARMUP:
            self.times.append(time.perf_counter() - self._t)


def make_teacher_checkpoint(path: Path) -> None:
    """Step time does not depend on the teacher's weights: an untrained teacher checkpoint will do."""
    cfg = compose_train_config(["+experiment=teacher"], path.parent)
    datamodule = build(cfg.dataset)
    system = build(cfg.system, net=to_plain(cfg.model), class_names=list(datamodule.class_names), _recursive_=False)
    trainer = L.Trainer(accelerator="cpu", max_steps=1, limit_val_batches=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(system, datamodule=datamodule)
    trainer.save_checkpoint(path)


def time_system(overrides: list[str], steps: int, out: Path) -> list[float]:
    cfg = compose_train_config(overrides, out)
    datamodule = build(cfg.dataset)
    system = build(cfg.system, net=to_plain(cfg.model), class_names=list(datamodule.class_names), _recursive_=False)
    clock = StepClock()
    trainer = L.Trainer(accelerator="cpu", max_steps=steps + WARMUP, limit_val_batches=0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[clock], num_sanity_val_steps=0)
    trainer.fit(system, datamodule=datamodule)
    return clock.times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--paradigms", default="logits,encoder,bottleneck,decoder,cwd,pairwise,logits_decoder")
    args = parser.parse_args()
    L.seed_everything(0)
    work = Path(tempfile.mkdtemp(prefix="segkd-bench-"))
    teacher = work / "teacher.ckpt"
    make_teacher_checkpoint(teacher)

    systems = {"student": []}
    systems.update({f"kd:{p}": [f"+experiment=offline_kd", f"teacher_ckpt={teacher}", f"distill_paradigm={p}"]
                    for p in args.paradigms.split(",")})
    systems["dml (2 students)"] = ["+experiment=online_dml"]
    times: dict[str, list[float]] = {name: [] for name in systems}
    for r in range(args.rounds):
        for name, overrides in systems.items():
            times[name] += time_system(overrides, args.steps, work / f"{name}-{r}".replace(":", "_"))

    student = statistics.median(times["student"])
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads, {args.rounds} rounds x {args.steps} steps, batch 8 at 64x128")
    print("| system | median step (ms) | ratio |")
    print("|---|---|---|")
    for name, ts in times.items():
        median = statistics.median(ts)
        if name == "student":
            ratio = "1.00 (reference)"
        elif name.startswith("dml"):
            ratio = f"{median / (2 * student):.2f} of two student steps"
        else:
            ratio = f"{median / student:.2f} of a student step"
        print(f"| {name} | {1000 * median:.0f} | {ratio} |")


if __name__ == "__main__":
    main()
