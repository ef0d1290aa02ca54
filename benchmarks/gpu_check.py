"""A GPU check, ready for the day a GPU machine is lent: does segkd train on it, and what do KD steps cost there?

    .venv/bin/python benchmarks/gpu_check.py [--rounds 3] [--steps 30] [--out outputs/gpu_check/<time>.json]
        [--precision bf16-mixed] [--keep] [--cpu] [-- OVERRIDE ...]
    .venv/bin/python benchmarks/gpu_check.py --summarize earlier.json [--out summary.json]

With CUDA it runs, in one process, on data and a teacher it makes itself (nothing is downloaded):

- teacher: teacher_r34 trained for 20 steps on the GPU (fp32) and saved as a Lightning checkpoint.
  Its weights teach nothing; the 20 steps only give its BatchNorm statistics real values, so its
  logits are in a sane range (step time does not depend on its weights). The data is SynthStreets
  generated into a fresh work dir (128 train and 16 val images of the distillation setting,
  ``dataset=synthstreets_kd``); the teacher-logit cache is built there too.
- (a) kd_fit: a 10-step offline KD fit through ``segkd.train.train`` (``+experiment=offline_kd
  distill_paradigm=cwd teacher_cache=true``) with ``trainer.precision=bf16-mixed`` and channels_last,
  then one validation. Passes when every loss is finite, the student's logits are bfloat16 and
  channels_last in training, the teacher-logit cache was built and val mIoU is a number.
- (b) ddp_nccl: the same fit in fp32 under ``trainer=ddp trainer.devices=1`` (Lightning's DDP
  strategy, one process). Passes when the process group's backend is NCCL (conf/trainer/ddp.yaml:
  "gloo on CPU, NCCL on GPUs"), the fit took its 10 steps, and the process group is closed afterwards.
- (c) step_times: scratch student, cached-teacher KD and live-teacher KD (CWD both), each built with
  ``segkd.train.build_system`` as benchmarks/step_time.py does, in interleaved rounds (one fit of
  each per round, so drift hits all three alike) of --steps timed steps after 3 warm-up ones, at
  --precision with channels_last. A step is one training iteration end to end, its batch fetched
  included, timed after ``torch.cuda.synchronize()``. Printed: median step times, the ratios cached
  KD / student and live KD / student (of the medians over all rounds, and per round, to see the
  noise), and each system's peak GPU memory during training (``torch.cuda.max_memory_allocated``,
  its peak reset when training starts, after setup) with its ratio to the student's.

channels_last: segkd has no switch for it in training (only segkd.profile's ``channels_last``
inference backend), so this script applies it itself, with a callback (:func:`gpu_probe`) that
converts the system (student, connectors, and the frozen teacher, which ``DistillationSystem._apply``
carries along) to ``torch.channels_last`` in ``setup`` and each batch's images as they arrive. For
(a) and (b) the callback is handed to ``train()`` through the callbacks config group
(``+callbacks.gpu_check._target_=...``), the way tests add callbacks.

It writes a JSON of what it ran and measured (--out; default outputs/gpu_check/<time>.json) and,
when any check fails, ends with one line saying which and why, and exits 1 (the traceback is in
the JSON). The work dir is deleted when every check passed, unless --keep.

Without CUDA it prints one line saying so and what it would run, and exits 0, importing nothing
beyond torch (with --out given it also writes a JSON saying it was skipped, with the plan). --cpu
rehearses every check on the CPU instead (bf16-mixed autocast on the CPU, DDP over gloo, no GPU
memory figures): slow, to try the script where there is no GPU. --summarize recomputes the medians
and ratios from the raw step times of an earlier run's JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import torch

ROOT = Path(__file__).resolve().parents[1]
#: Steps of the teacher's training, of the KD fit (a) and of the DDP fit (b).
TEACHER_STEPS = 20
FIT_STEPS = 10
#: Untimed first steps of each timed fit (cuDNN's algorithm search, the allocator's first blocks).
WARMUP = 3
#: The check's own data: the distillation setting at a size generated in seconds.
DATA = ["dataset.prepare.num_train=128", "dataset.prepare.num_val=16"]


# ----------------------------------------------------------------------------- what runs (no heavy imports)

def probe_target() -> str:
    """The ``_target_`` Hydra builds this script's probe callback from (``__main__.gpu_probe`` when run as a script)."""
    return f"{gpu_probe.__module__}.{gpu_probe.__qualname__}"


def plan(work: Path, accelerator: str = "gpu", precision: str = "bf16-mixed", extra: tuple[str, ...] = ()) -> dict:
    """Every fit the check makes, as the overrides of ``segkd.run``'s primary config (composed with
    ``segkd.config.compose_train_config``): ``teacher``, ``kd_fit`` (a), ``ddp_nccl`` (b) and the
    three systems of ``step_times`` (c). ``extra`` (the command line's overrides after ``--``) goes
    last into every one."""
    teacher = work / "teacher.ckpt"
    common = [*DATA, f"paths.cache_dir={work / 'cache'}", f"paths.log_dir={work / 'outputs'}"]
    device = [f"trainer.accelerator={accelerator}", "trainer.devices=1"]
    kd = ["+experiment=offline_kd", "distill_paradigm=cwd", f"teacher_ckpt={teacher}", *common]
    short_fit = ["trainer.max_epochs=1", f"trainer.limit_train_batches={FIT_STEPS}", "trainer.limit_val_batches=2",
                 "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false", "auto_resume=false",
                 f"+callbacks.gpu_check._target_={probe_target()}"]
    timed = [*device, f"trainer.precision={precision}"]
    return {
        "teacher": {"path": str(teacher), "steps": TEACHER_STEPS,
                    "overrides": ["+experiment=teacher", *common, *device, *extra]},
        "kd_fit": {"steps": FIT_STEPS, "channels_last": True,
                   "overrides": [*kd, "teacher_cache=true", *device, "trainer.precision=bf16-mixed", *short_fit,
                                 "+callbacks.gpu_check.channels_last=true", *extra]},
        "ddp_nccl": {"steps": FIT_STEPS, "channels_last": False, "backend": "nccl" if accelerator == "gpu" else "gloo",
                     "overrides": [*kd, "teacher_cache=true", "trainer=ddp", *device, *short_fit, *extra]},
        "step_times": {"channels_last": True, "systems": {
            "student": ["+experiment=student", *common, *timed, *extra],
            "kd_cached": [*kd, "teacher_cache=true", *timed, *extra],
            "kd_live": [*kd, "teacher_cache=false", *timed, *extra],
        }},
    }


def would_run(rounds: int, steps: int, precision: str) -> str:
    return (f"(a) a {FIT_STEPS}-step offline KD fit, CWD from the teacher-logit cache (+experiment=offline_kd "
            f"distill_paradigm=cwd teacher_cache=true), trainer.precision=bf16-mixed, channels_last; (b) the same fit "
            f"under trainer=ddp trainer.devices=1 (NCCL); (c) step times of the scratch student, cached KD and "
            f"live-teacher KD, {rounds} interleaved rounds x {steps} steps at {precision}, their ratios and peak GPU "
            f"memory; on its own data and a {TEACHER_STEPS}-step teacher_r34")


# ----------------------------------------------------------------------------- step times -> medians and ratios

def summarize(raw: dict[str, dict]) -> dict:
    """Medians and ratios of measured step times.

    ``raw[system]`` holds ``step_s``, one list of step times (seconds) per round, and ``peak_mb``, the
    peak memory (MB) of each round's fit (None where not measured). Per system: the median over the
    steps of all rounds (ms), each round's median, and the largest peak. Per other system against
    ``student``: the ratio of the medians over all rounds, the ratio within each round (the
    spread says how noisy the machine was), and the ratio of the peaks.
    """
    if "student" not in raw:
        raise ValueError(f"no 'student' step times to take ratios against (systems: {sorted(raw)})")
    systems = {}
    for name, record in raw.items():
        rounds = [[float(t) for t in r] for r in record["step_s"]]
        pooled = [t for r in rounds for t in r]
        if not pooled or any(not r for r in rounds):
            raise ValueError(f"{name}: a round without step times")
        peaks = [float(p) for p in record.get("peak_mb") or [] if p is not None]
        systems[name] = {"median_ms": 1000 * statistics.median(pooled), "steps": len(pooled), "rounds": len(rounds),
                         "round_median_ms": [1000 * statistics.median(r) for r in rounds],
                         "peak_mb": max(peaks) if peaks else None}
    ref = systems["student"]
    ratios = {}
    for name, s in systems.items():
        if name == "student":
            continue
        ratios[f"{name}/student"] = {
            "step": s["median_ms"] / ref["median_ms"],
            "per_round": [a / b for a, b in zip(s["round_median_ms"], ref["round_median_ms"])],
            "peak_memory": s["peak_mb"] / ref["peak_mb"] if s["peak_mb"] and ref["peak_mb"] else None,
        }
    return {"systems": systems, "ratios": ratios}


def format_table(summary: dict) -> str:
    lines = ["| system | median step (ms) | ÷ student step | per round | peak GPU memory (MB) | ÷ student's |",
             "|---|---|---|---|---|---|"]
    for name, s in summary["systems"].items():
        r = summary["ratios"].get(f"{name}/student")
        step = f"{r['step']:.2f}" if r else "1.00 (reference)"
        rounds = ", ".join(f"{x:.2f}" for x in r["per_round"]) if r else "-"
        peak = f"{s['peak_mb']:.0f}" if s["peak_mb"] is not None else "-"
        mem = f"{r['peak_memory']:.2f}" if r and r["peak_memory"] is not None else ("1.00" if not r and s["peak_mb"] else "-")
        lines.append(f"| {name} | {s['median_ms']:.1f} | {step} | {rounds} | {peak} | {mem} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- callbacks (built when a check runs)

_CLASSES: dict[str, type] = {}


def _callback_classes() -> dict[str, type]:
    """The Lightning callbacks of the checks, defined on first use so that importing this file needs torch only."""
    if _CLASSES:
        return _CLASSES
    from lightning.pytorch import Callback

    def to_channels_last(batch: Any) -> None:
        if isinstance(batch, dict) and isinstance(batch.get("image"), torch.Tensor) and batch["image"].dim() == 4:
            batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)

    class GPUProbe(Callback):
        """Applies channels_last (optional) and records what the checks verify from inside a fit: the
        student's logits in training (dtype, memory format), whether every loss was finite, the
        distributed backend."""

        last: Optional["GPUProbe"] = None

        def __init__(self, channels_last: bool = False) -> None:
            self.channels_last = channels_last
            self.logits_dtype: Optional[str] = None
            self.logits_channels_last: Optional[bool] = None
            self.backend: Optional[str] = None
            self.world_size: Optional[int] = None
            self.steps = 0
            self._nonfinite: Optional[torch.Tensor] = None  # stays on the device: no sync per step
            self._hook = None
            GPUProbe.last = self

        def setup(self, trainer, pl_module, stage: str) -> None:
            if stage != "fit":
                return
            if self.channels_last:
                # Before the system's own setup (which moves a live teacher to the device and builds the
                # cache) and before the strategy moves and wraps it; .to(device) keeps the memory format.
                pl_module.to(memory_format=torch.channels_last)
            self._hook = pl_module.net.register_forward_hook(self._record)

        def _record(self, module, args, output) -> None:
            if module.training and self.logits_dtype is None and isinstance(output, torch.Tensor):
                self.logits_dtype = str(output.dtype).replace("torch.", "")
                self.logits_channels_last = bool(output.is_contiguous(memory_format=torch.channels_last)
                                                 and not output.is_contiguous())

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if self.channels_last:
                to_channels_last(batch)

        def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
            if self.channels_last:
                to_channels_last(batch)

        def on_train_start(self, trainer, pl_module) -> None:
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                self.backend = str(torch.distributed.get_backend())
                self.world_size = torch.distributed.get_world_size()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
            self.steps += 1
            if isinstance(loss, torch.Tensor):
                bad = ~torch.isfinite(loss.detach()).all()
                self._nonfinite = bad if self._nonfinite is None else self._nonfinite | bad

        def teardown(self, trainer, pl_module, stage: str) -> None:
            if self._hook is not None:
                self._hook.remove()
                self._hook = None

        @property
        def losses_finite(self) -> bool:
            return self._nonfinite is not None and not bool(self._nonfinite.item())

    from step_time import StepClock  # this script's own folder is sys.path[0]

    _CLASSES.update(GPUProbe=GPUProbe, StepClock=StepClock)
    return _CLASSES


def gpu_probe(channels_last: bool = False):
    """The probe callback (what ``+callbacks.gpu_check._target_`` names): Hydra calls this."""
    return _callback_classes()["GPUProbe"](channels_last=channels_last)


# ----------------------------------------------------------------------------- the checks

def _compose(overrides: list[str], output_dir: Path):
    from segkd.config import compose_train_config

    return compose_train_config(overrides, output_dir)


def _free_memory() -> None:
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def make_teacher(step: dict, work: Path) -> dict:
    """teacher_r34 trained for a few steps on the check's data (fp32) and saved as a checkpoint."""
    import lightning as L

    from segkd.config import build
    from segkd.train import build_system

    cfg = _compose(step["overrides"], work / "teacher")
    L.seed_everything(cfg.seed)
    datamodule = build(cfg.dataset)
    system = build_system(cfg, datamodule.class_names)
    trainer = L.Trainer(accelerator=cfg.trainer.accelerator, devices=cfg.trainer.devices, max_steps=step["steps"],
                        max_epochs=-1, limit_val_batches=0, num_sanity_val_steps=0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    start = time.perf_counter()
    trainer.fit(system, datamodule=datamodule)
    trainer.save_checkpoint(step["path"])
    return {"passed": trainer.global_step == step["steps"], "global_step": trainer.global_step,
            "fit_s": time.perf_counter() - start, "path": step["path"],
            "problems": [] if trainer.global_step == step["steps"] else [f"trained {trainer.global_step} steps"]}


def run_fit(step: dict, out: Path, name: str) -> dict:
    """One short fit through segkd.train.train with the probe callback; what it saw, and what is wrong."""
    from segkd.train import train

    cfg = _compose(step["overrides"], out)
    probes = _callback_classes()["GPUProbe"]
    probes.last = None  # the probe this fit builds (through the config) registers itself here
    start = time.perf_counter()
    summary = train(cfg)
    wall = time.perf_counter() - start
    probe = probes.last
    val = (summary.get("val") or {}).get("mIoU")
    seen = {
        "global_step": summary.get("global_step"), "val_mIoU": val, "wall_s": wall,
        "precision": (summary.get("provenance") or {}).get("precision"),
        "world_size": (summary.get("provenance") or {}).get("world_size"),
        "teacher_cache_images": (summary.get("teacher_cache") or {}).get("images"),
        "logits_dtype": probe.logits_dtype if probe else None,
        "logits_channels_last": probe.logits_channels_last if probe else None,
        "losses_finite": probe.losses_finite if probe else None,
        "backend": probe.backend if probe else None,
        "process_group_closed": not (torch.distributed.is_available() and torch.distributed.is_initialized()),
        "output_dir": str(out),
    }
    problems = []
    if probe is None:
        problems.append("the probe callback was not built (callbacks.gpu_check)")
    if seen["global_step"] != step["steps"]:
        problems.append(f"took {seen['global_step']} steps, not {step['steps']}")
    if not seen["losses_finite"]:
        problems.append("a training loss was not finite")
    if not isinstance(val, (int, float)) or not math.isfinite(val):
        problems.append(f"val mIoU is {val!r}")
    if not seen["teacher_cache_images"]:
        problems.append("no teacher-logit cache was built or read")
    if name == "kd_fit":
        if seen["precision"] != "bf16-mixed":
            problems.append(f"trainer precision was {seen['precision']}")
        if seen["logits_dtype"] != "bfloat16":
            problems.append(f"the student's logits were {seen['logits_dtype']} in training, not bfloat16")
        if not seen["logits_channels_last"]:
            problems.append("the student's logits were not channels_last in training")
    if name == "ddp_nccl":
        if seen["backend"] != step["backend"]:
            problems.append(f"the process group's backend was {seen['backend']}, not {step['backend']}")
        if seen["world_size"] != 1:
            problems.append(f"world size {seen['world_size']}, not 1")
        if not seen["process_group_closed"]:
            problems.append("the process group was left open after the fit")
    return {"passed": not problems, "problems": problems, **seen}


def time_system(overrides: list[str], steps: int, out: Path, cuda: bool) -> tuple[list[float], Optional[float], dict]:
    """Step times and peak GPU memory of one fit of a system built by segkd.train.build_system; its cache info."""
    import lightning as L

    from segkd.config import build
    from segkd.train import build_system

    classes = _callback_classes()
    cfg = _compose(overrides, out)
    L.seed_everything(cfg.seed)
    datamodule = build(cfg.dataset)
    system = build_system(cfg, datamodule.class_names)
    clock = classes["StepClock"](steps + WARMUP, cuda)
    probe = classes["GPUProbe"](channels_last=True)
    trainer = L.Trainer(accelerator=cfg.trainer.accelerator, devices=cfg.trainer.devices,
                        precision=cfg.trainer.precision, benchmark=cfg.trainer.benchmark, max_epochs=10_000,
                        limit_val_batches=0, num_sanity_val_steps=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[clock, probe])
    trainer.fit(system, datamodule=datamodule)
    if not probe.losses_finite:
        raise RuntimeError(f"{out.name}: a training loss was not finite")
    return clock.times, clock.peak_mb, dict(getattr(system, "teacher_cache_info", None) or {})


def step_times(step: dict, rounds: int, steps: int, work: Path, cuda: bool) -> dict:
    systems = step["systems"]
    # The cache is built (or found) by a first, untimed fit, so no timed round pays for it.
    time_system(systems["kd_cached"], 1, work / "timing" / "cache-build", cuda)
    _free_memory()
    raw = {name: {"step_s": [], "peak_mb": []} for name in systems}
    for r in range(rounds):
        for name, overrides in systems.items():
            times, peak, _ = time_system(overrides, steps, work / "timing" / f"{name}-{r}", cuda)
            raw[name]["step_s"].append(times)
            raw[name]["peak_mb"].append(peak)
            _free_memory()
    summary = summarize(raw)
    problems = [f"{name}: median step {s['median_ms']} ms" for name, s in summary["systems"].items()
                if not (s["median_ms"] > 0 and math.isfinite(s["median_ms"]))]
    if cuda:
        problems += [f"{name}: no peak memory" for name, s in summary["systems"].items() if not s["peak_mb"]]
    return {"passed": not problems, "problems": problems, "rounds": rounds, "steps": steps, "warmup": WARMUP,
            "raw": raw, "summary": summary}


def device_info(cuda: bool) -> dict:
    info: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.version.cuda, "threads": torch.get_num_threads()}
    if cuda:
        info.update(device=torch.cuda.get_device_name(0), capability=list(torch.cuda.get_device_capability(0)),
                    bf16_supported=torch.cuda.is_bf16_supported(), cudnn=torch.backends.cudnn.version(),
                    nccl=str(torch.cuda.nccl.version()) if torch.distributed.is_nccl_available() else None)
    return info


def _error_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".strip()


def run_checks(args, out: Path) -> int:
    cuda = not args.cpu
    work = Path(tempfile.mkdtemp(prefix="segkd-gpu-check-"))
    steps_plan = plan(work, "cpu" if args.cpu else "gpu", args.precision, tuple(args.overrides))
    report: dict[str, Any] = {"started": datetime.now().isoformat(timespec="seconds"), "rehearsal_on_cpu": args.cpu,
                              "device": device_info(cuda), "argv": sys.argv[1:], "work_dir": str(work),
                              "plan": steps_plan, "checks": {}}

    def attempt(name: str, fn) -> Optional[dict]:
        print(f"gpu_check: {name} ...", flush=True)
        try:
            result = fn()
        except Exception as err:  # one check failing must not hide the others' results
            result = {"passed": False, "problems": [_error_line(err)], "traceback": traceback.format_exc()}
        report["checks"][name] = result
        _free_memory()
        return result

    teacher = attempt("teacher", lambda: make_teacher(steps_plan["teacher"], work))
    if teacher["passed"]:
        attempt("kd_fit", lambda: run_fit(steps_plan["kd_fit"], work / "kd_fit", "kd_fit"))
        attempt("ddp_nccl", lambda: run_fit(steps_plan["ddp_nccl"], work / "ddp_nccl", "ddp_nccl"))
        attempt("step_times", lambda: step_times(steps_plan["step_times"], args.rounds, args.steps, work, cuda))
    failed = {name: r["problems"] for name, r in report["checks"].items() if not r["passed"]}
    if not teacher["passed"]:
        failed.update({name: ["not run: no teacher"] for name in ("kd_fit", "ddp_nccl", "step_times")})
    report["passed"] = not failed
    report["finished"] = datetime.now().isoformat(timespec="seconds")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=str))

    timing = report["checks"].get("step_times") or {}
    if timing.get("summary"):
        print(f"\n{report['device']}; {args.rounds} rounds x {args.steps} steps at {args.precision}, channels_last")
        print(format_table(timing["summary"]))
    if failed:
        print(f"gpu_check: FAILED {'; '.join(f'{n}: ' + ', '.join(p) for n, p in failed.items())} "
              f"(JSON {out}, work dir {work})", file=sys.stderr)
        return 1
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(f"gpu_check: all checks passed (teacher, kd_fit, ddp_nccl, step_times); JSON {out}")
    return 0


# ----------------------------------------------------------------------------- command line

def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/gpu_check.py", description=__doc__.splitlines()[0],
        epilog="Without CUDA: prints one line saying what it would run and exits 0. Exit status 1: a check failed.")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the step-time check (default 3)")
    parser.add_argument("--steps", type=int, default=30,
                        help=f"timed steps per system and round, after {WARMUP} warm-up steps (default 30)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where the JSON goes (default outputs/gpu_check/<time>.json; without CUDA it is written "
                             "only when given)")
    parser.add_argument("--precision", default="bf16-mixed",
                        help="trainer.precision of the step-time check (default bf16-mixed; the KD fit is always "
                             "bf16-mixed)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (data, teacher, cache, runs)")
    parser.add_argument("--cpu", action="store_true",
                        help="rehearse every check on the CPU (DDP over gloo, no memory figures): slow")
    parser.add_argument("--summarize", type=Path, default=None, metavar="JSON",
                        help="only recompute medians and ratios from the raw step times in JSON (an earlier run's "
                             "file, or {system: {step_s: [[...], ...], peak_mb: [...]}}); needs no GPU")
    parser.add_argument("overrides", nargs="*", help="after --: overrides for every fit (e.g. dataset.batch_size=32)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.steps < 1:
        parser.error("--rounds and --steps must be at least 1")
    return args


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    if args.summarize is not None:
        data = json.loads(args.summarize.read_text())
        raw = (data.get("checks") or {}).get("step_times", {}).get("raw") or data.get("raw") or data
        summary = summarize(raw)
        print(format_table(summary))
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({"summarized_from": str(args.summarize), "raw": raw, "summary": summary},
                                           indent=1))
        return 0
    if not args.cpu and not torch.cuda.is_available():
        print(f"gpu_check: CUDA is not available (torch {torch.__version__}), nothing was run; with a GPU this check "
              f"runs {would_run(args.rounds, args.steps, args.precision)}")
        if args.out is not None:
            work = Path(tempfile.gettempdir()) / "segkd-gpu-check-XXXXXXXX"  # where a run would make its work dir
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({"passed": None, "skipped": "CUDA is not available",
                                            "device": device_info(False),
                                            "plan": plan(work, "gpu", args.precision, tuple(args.overrides))},
                                           indent=1))
        return 0
    out = args.out or ROOT / "outputs" / "gpu_check" / f"{datetime.now():%Y-%m-%d_%H-%M-%S}.json"
    return run_checks(args, out)


if __name__ == "__main__":
    sys.exit(main())
