"""Training step time and peak memory of distillation relative to training the student alone, side by side.

    .venv/bin/python benchmarks/step_time.py [--steps 20] [--rounds 3] [--paradigms logits,decoder,...]
        [--cached logits,cwd] [--memory | --memory-only] [-- OVERRIDE ...]

Every system trains on the same SynthStreets batches with the default config (batch 8, 64x128
crops, CPU threads as set by torch). Rounds interleave the systems so drift on a noisy machine hits
all of them alike; the first steps of each fit are warm-up and not counted. A step is one training
iteration end to end, fetching its batch included (with the cache, that is where the teacher's
logits are read and warped; SynthStreets loads in the training process). Printed ratios:
offline KD step (live teacher, or cached teacher logits) / student-only step, and DML step / two
student-only steps. The teacher-logit cache is built once first (its build time and size are
printed). With --memory each system also runs alone in a fresh process (so one system's peak cannot
hide another's), and the growth of its resident memory from after the imports to its peak (models,
data, cache pages and training; sampled when the forward pass is done and after each step; Linux
/proc) is compared with the student's:
on a CPU, what a process maps at import time (~2 GB for a CUDA build of torch) would drown the
training's own memory in a plain peak-RSS ratio. Memory is measured twice: with glibc's default
allocator settings, and with ``MALLOC_MMAP_THRESHOLD_`` fixed at 1 MiB. By default glibc raises its
mmap threshold each time a large block is freed, so after a released teacher (or any large
temporary) later large tensors come from the heap and are not handed back; a fixed threshold keeps
them mmapped. Which of the two a user runs with is theirs to choose (it is an environment variable),
so both ratios are printed. --memory-only skips the timing (memory does not care about a busy CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch import Callback

from segkd.config import build, compose_train_config
from segkd.models.complexity import step_gmacs_per_sample
from segkd.train import build_system

WARMUP = 3


class StepClock(Callback):
    """Wall time of each training iteration, end of one batch to the end of the next: fetching the
    batch (with the teacher-logit cache: reading and warping its logits), forward, loss, backward
    and optimizer step(s), as a user waits for them. With ``cuda``, after the device finished it, and
    the peak memory allocated on the GPU while training (reset when training starts, after setup;
    benchmarks/gpu_check.py)."""

    def __init__(self, batches: int, cuda: bool = False) -> None:
        self.times: list[float] = []
        self.batches = 0
        self.stop_after = batches
        self.cuda = cuda
        self.peak_mb: float | None = None
        self._last: float | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.cuda:
            torch.cuda.synchronize()
        now = time.perf_counter()
        self.batches += 1
        if self.batches > WARMUP and self._last is not None:
            self.times.append(now - self._last)
        self._last = now
        # Counted in batches, the unit of every system (mutual learning included).
        trainer.should_stop = self.batches >= self.stop_after

    def on_train_end(self, trainer, pl_module) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20


def make_teacher_checkpoint(path: Path, extra: list[str]) -> None:
    """Step time does not depend on the teacher's weights: an untrained teacher checkpoint will do."""
    cfg = compose_train_config(["+experiment=teacher", *extra], path.parent)
    datamodule = build(cfg.dataset)
    system = build_system(cfg, datamodule.class_names)
    trainer = L.Trainer(accelerator="cpu", max_steps=1, limit_val_batches=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(system, datamodule=datamodule)
    trainer.save_checkpoint(path)


def time_system(overrides: list[str], steps: int, out: Path, extra_callbacks=()) -> tuple[list[float], dict, float]:
    """Step times, the teacher-cache info, and the training GMACs of one step (summary.json's cost
    arithmetic: segkd.models.complexity, times the global batch)."""
    cfg = compose_train_config(overrides, out)
    datamodule = build(cfg.dataset)
    system = build_system(cfg, datamodule.class_names)
    gmacs_per_step = step_gmacs_per_sample(system.forward_gmacs(datamodule.crop_size)) * datamodule.batch_size
    clock = StepClock(steps + WARMUP)
    trainer = L.Trainer(accelerator="cpu", max_epochs=10_000, limit_val_batches=0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[clock, *extra_callbacks], num_sanity_val_steps=0)
    trainer.fit(system, datamodule=datamodule)
    return clock.times, getattr(system, "teacher_cache_info", None) or {}, gmacs_per_step


def systems(args, teacher: Path, cache_dir: Path) -> dict[str, list[str]]:
    common = [*args.overrides, f"paths.cache_dir={cache_dir}"]
    out = {"student": ["+experiment=student", *common]}
    kd = ["+experiment=offline_kd", f"teacher_ckpt={teacher}", *common]
    out.update({f"kd:{p} (live teacher)": [*kd, f"distill_paradigm={p}"] for p in args.paradigms.split(",") if p})
    out.update({f"kd:{p} (cached teacher)": [*kd, f"distill_paradigm={p}", "teacher_cache=true"]
                for p in args.cached.split(",") if p})
    out["dml (2 students)"] = ["+experiment=online_dml", *common]
    return out


#: glibc settings the memory table is measured under: its defaults, and a fixed 1 MiB mmap threshold.
ALLOCATORS = {"glibc default": {}, "MALLOC_MMAP_THRESHOLD_=1048576": {"MALLOC_MMAP_THRESHOLD_": "1048576"}}


def peak_memory(overrides: list[str], steps: int, out: Path, env: dict[str, str] | None = None) -> dict:
    """Run one system alone in a fresh process (``env`` added to its environment); its peak RSS and growth."""
    code = (
        "import json, sys; sys.argv=['x']; from benchmarks.step_time import _memory_child; "
        f"print('RESULT', json.dumps(_memory_child({overrides!r}, {steps}, {str(out)!r})))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1],
                          env={**os.environ, **(env or {})})
    line = next((l for l in done.stdout.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(line[len("RESULT "):])


def rss_mb() -> float:
    """Current resident memory of this process (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class RSSProbe(Callback):
    """Resident memory when activations peak (forward done, backward not yet) and after each step."""

    def __init__(self) -> None:
        self.peak = rss_mb()

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        self.peak = max(self.peak, rss_mb())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.peak = max(self.peak, rss_mb())


def _memory_child(overrides: list[str], steps: int, out: str) -> dict:
    start = rss_mb()  # the interpreter and libraries, before any model or data exists
    probe = RSSProbe()
    time_system(overrides, steps, Path(out), [probe])
    return {"peak_rss_mb": probe.peak, "fit_growth_mb": probe.peak - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--paradigms", default="logits,encoder,bottleneck,decoder,cwd,pairwise,logits_decoder")
    parser.add_argument("--cached", default="logits,cwd", help="paradigms also timed with the teacher-logit cache")
    parser.add_argument("--memory", action="store_true", help="also measure peak memory, one process per system")
    parser.add_argument("--memory-only", action="store_true", help="measure peak memory only (no step times)")
    parser.add_argument("overrides", nargs="*", help="after --: overrides for every system (e.g. a dataset)")
    args = parser.parse_args()
    L.seed_everything(0)
    work = Path(tempfile.mkdtemp(prefix="segkd-bench-"))
    teacher = work / "teacher.ckpt"
    make_teacher_checkpoint(teacher, args.overrides)
    cache_dir = work / "cache"
    table = systems(args, teacher, cache_dir)

    # Build the teacher-logit cache once, outside the timed steps (a cached system's first fit does it).
    cache_info = {}
    for name, overrides in table.items():
        if "cached" in name:
            start = time.perf_counter()
            _, cache_info, _ = time_system(overrides, 1, work / "cache-build")
            cache_info["first_fit_s"] = time.perf_counter() - start
            break

    if args.memory_only:
        print_memory(table, args.steps, work)
        return
    times: dict[str, list[float]] = {name: [] for name in table}
    gmacs: dict[str, float] = {}
    for r in range(args.rounds):
        for name, overrides in table.items():
            ts, _, gmacs[name] = time_system(overrides, args.steps, work / f"{name}-{r}".replace(":", "_").replace(" ", "_"))
            times[name] += ts

    student = statistics.median(times["student"])
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads, {args.rounds} rounds x {args.steps} steps, "
          f"overrides {args.overrides or 'none'}")
    if cache_info:
        print(f"teacher-logit cache: {cache_info['images']} images built in {cache_info['build_time_s']:.1f} s, "
              f"{cache_info['bytes'] / 1e6:.1f} MB on disk ({cache_info['mb_per_image']:.2f} MB per image, stored at "
              f"{cache_info['stored_size']}, top-k {cache_info['top_k']}); the same layout at 1024x2048 would be "
              f"{cache_info['mb_per_image_at_1024x2048']:.1f} MB per image")
    if cache_info.get("build_gmacs"):
        print(f"its build: {cache_info['build_gmacs']:.0f} GMACs = {cache_info['build_gmacs'] / gmacs['student']:.0f} "
              f"student steps of compute; {cache_info['build_time_s']:.1f} s = "
              f"{cache_info['build_time_s'] / student:.0f} student steps of wall time")
    print("| system | median step (ms) | wall ÷ student step | training GMACs per step | compute ÷ student step |")
    print("|---|---|---|---|---|")
    for name, ts in times.items():
        median = statistics.median(ts)
        if name == "student":
            ratio = "1.00 (reference)"
        elif name.startswith("dml"):
            ratio = f"{median / (2 * student):.2f} of two student steps"
        else:
            ratio = f"{median / student:.2f}"
        print(f"| {name} | {1000 * median:.0f} | {ratio} | {gmacs[name]:.2f} | {gmacs[name] / gmacs['student']:.2f} |")

    if args.memory:
        print_memory(table, args.steps, work)


def print_memory(table: dict[str, list[str]], steps: int, work: Path) -> None:
    """The memory table: each system alone in its own process, under each allocator setting."""
    print("\n| system (own process) | allocator | peak RSS (MB) | training's own memory (MB) | ÷ student's |")
    print("|---|---|---|---|---|")
    measured = [name for name in table if name == "student" or "cached" in name or name.startswith("kd:logits (live")]
    for label, env in ALLOCATORS.items():
        mem = {name: peak_memory(table[name], steps, work / f"mem-{i}", env) for i, name in enumerate(measured)}
        for name, m in mem.items():
            print(f"| {name} | {label} | {m['peak_rss_mb']:.0f} | {m['fit_growth_mb']:.0f} | "
                  f"{m['fit_growth_mb'] / mem['student']['fit_growth_mb']:.2f} |", flush=True)

if __name__ == "__main__":
    main()
