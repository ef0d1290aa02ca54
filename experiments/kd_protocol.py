"""segkd's results protocol: does distillation help? One command, resumable, any Cityscapes-layout data.

    .venv/bin/python experiments/kd_protocol.py [--seeds 1,2,3] [--jobs 2] [--out outputs/kd_protocol]
        [--only scratch,logits,...] [--recipe NAME="OVERRIDE ..."] [--publish docs/results/kd_protocol]
        [-- OVERRIDE ...]

1. trains the reference teacher of the data once (or reuses it; an interrupted one resumes);
2. runs the scratch student, every offline-KD paradigm, DML and online alternating at the same
   budget, with each seed (logit-only paradigms read the teacher-logit cache, built by the first);
   trains the soft teachers (label smoothing, confidence penalty) and then their CWD / logit students;
3. runs `python -m segkd.compare` over the results and, with --publish, copies comparison.json/.md
   (small text files) to the given folder.

--recipe adds a recipe of your own (repeatable), e.g. a sweep point to set beside the defaults:
`--recipe cwd_w5="+experiment=offline_kd distill_paradigm=cwd teacher_cache=true
distill_paradigm.terms.cwd.weight=5"`; with --only, name it there too. After a recipe's default
changes, use a new --out: a job whose summary.json exists is not rerun (segkd.compare keeps the
old and new runs apart, named by the setting that differs).
Jobs whose summary.json exists are skipped; a job that has a last.ckpt but no summary resumes from
it. Overrides after `--` go to every job, the teacher's included: e.g. `-- dataset=cityscapes
dataset.root=/data/cityscapes` runs the same protocol on another Cityscapes-layout tree.
With --jobs 2 two jobs run side by side with one thread each (faster than one job on two threads
on a 2-core CPU). Every job is a plain `python -m segkd.run` command, printed before it starts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: (name, overrides): every recipe of the protocol. Paradigms use their YAML defaults.
RECIPES: list[tuple[str, list[str]]] = [
    ("scratch", ["+experiment=student"]),
    ("logits", ["+experiment=offline_kd", "distill_paradigm=logits", "teacher_cache=true"]),
    ("cwd", ["+experiment=offline_kd", "distill_paradigm=cwd", "teacher_cache=true"]),
    ("encoder", ["+experiment=offline_kd", "distill_paradigm=encoder"]),
    ("bottleneck", ["+experiment=offline_kd", "distill_paradigm=bottleneck"]),
    ("decoder", ["+experiment=offline_kd", "distill_paradigm=decoder"]),
    ("pairwise", ["+experiment=offline_kd", "distill_paradigm=pairwise"]),
    ("logits_decoder", ["+experiment=offline_kd", "distill_paradigm=logits_decoder"]),
    ("dml", ["+experiment=online_dml"]),
    ("online_alternating", ["+experiment=online_alternating"]),
]


#: Teachers made soft on purpose (docs/METHODS.md section 3): the reference recipe with another loss,
#: trained once each (seed 0) into ``OUT/NAME/seed0``, and the students they teach. A recipe's
#: ``{NAME}`` stands for that teacher's last checkpoint; those students start once it is trained.
SOFT_TEACHERS: list[tuple[str, list[str]]] = [
    ("teacher_ls01", ["+experiment=reference_teacher", "system.loss.label_smoothing=0.1"]),
    ("teacher_cp01", ["+experiment=reference_teacher", "system.loss.confidence_penalty=0.1"]),
]
SOFT_TEACHER_SEED = "0"
SOFT_RECIPES: list[tuple[str, list[str]]] = [
    ("cwd_ls01", ["+experiment=offline_kd", "distill_paradigm=cwd", "teacher_cache=true", "teacher_ckpt={teacher_ls01}"]),
    ("logits_ls01", ["+experiment=offline_kd", "distill_paradigm=logits", "teacher_cache=true",
                     "teacher_ckpt={teacher_ls01}"]),
    ("cwd_cp01", ["+experiment=offline_kd", "distill_paradigm=cwd", "teacher_cache=true", "teacher_ckpt={teacher_cp01}"]),
]


def parse_recipe(text: str) -> tuple[str, list[str]]:
    """``NAME=OVERRIDE OVERRIDE ...`` (from --recipe) as a RECIPES entry."""
    name, sep, overrides = text.partition("=")
    if not sep or not name.strip() or not overrides.split():
        sys.exit(f'--recipe takes NAME="OVERRIDE ...", got {text!r}')
    if name.strip() in {n for n, _ in RECIPES + SOFT_TEACHERS + SOFT_RECIPES}:
        sys.exit(f"--recipe {name.strip()}: that name is a built-in recipe; choose another")
    return name.strip(), overrides.split()


def run(cmd: list[str], log_file: Path, threads: int | None) -> int:
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("a") as log:
        return subprocess.run(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT).returncode


def teacher_of(job) -> str | None:
    """The job's teacher_ckpt override: jobs that share it share one teacher-logit cache."""
    return next((o for o in job[2] if o.startswith("teacher_ckpt=")), None)


def job_command(overrides: list[str], run_dir: Path) -> list[str]:
    cmd = [sys.executable, "-m", "segkd.run", *overrides, f"hydra.run.dir={run_dir}", "trainer.enable_progress_bar=false"]
    last = run_dir / "checkpoints" / "last.ckpt"
    if last.is_file() and not (run_dir / "summary.json").exists():
        cmd.append(f"ckpt_path={last}")  # an interrupted job resumes where it stopped
    return cmd


def reference_teacher_dir(extra: list[str]) -> Path:
    """Where the reference teacher of this data lives (conf/train.yaml: reference_teacher_dir)."""
    cmd = [sys.executable, "-m", "segkd.run", "+experiment=reference_teacher", *extra, "--cfg", "job", "--resolve"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("reference_teacher_dir:"))
    return Path(line.split(":", 1)[1].strip())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--jobs", type=int, default=1, help="jobs side by side (one thread each when > 1)")
    parser.add_argument("--out", default="outputs/kd_protocol")
    parser.add_argument("--only", help="comma-separated recipe names (default: all)")
    parser.add_argument("--recipe", action="append", default=[], metavar='NAME="OVERRIDE ..."',
                        help="an extra recipe: its name and its overrides (repeatable)")
    parser.add_argument("--publish", help="copy comparison.json/.md here when done (e.g. docs/results/kd_protocol)")
    parser.add_argument("--dry-run", action="store_true", help="print the jobs still to run, run nothing")
    parser.add_argument("overrides", nargs="*", help="after --: overrides for every job")
    args = parser.parse_args(argv)
    out = (ROOT / args.out).resolve()
    seeds = [s for s in args.seeds.split(",") if s]
    wanted = lambda name: not args.only or name in args.only.split(",")  # noqa: E731
    recipes = [r for r in RECIPES + [parse_recipe(text) for text in args.recipe] if wanted(r[0])]
    soft = [r for r in SOFT_RECIPES if wanted(r[0])]
    teacher_ckpts = {name: out / name / f"seed{SOFT_TEACHER_SEED}" / "checkpoints" / "last.ckpt"
                     for name, _ in SOFT_TEACHERS}
    needed = {name for name, _ in SOFT_TEACHERS if wanted(name)
              or any("{" + name + "}" in o for _, overrides in soft for o in overrides)}
    threads = 1 if args.jobs > 1 else None

    teacher_dir = reference_teacher_dir(args.overrides)
    if not (teacher_dir / "summary.json").exists() and not args.dry_run:
        cmd = job_command(["+experiment=reference_teacher", *args.overrides], teacher_dir)
        print(f"[teacher] {' '.join(cmd[1:])}\n          (once per machine; log: {teacher_dir}/protocol.log)", flush=True)
        if run(cmd, teacher_dir / "protocol.log", None) != 0:
            sys.exit(f"the reference teacher failed; see {teacher_dir}/protocol.log")
    print(f"[teacher] {teacher_dir}", flush=True)
    if not args.dry_run:  # the teacher's own summary joins the comparison (as a recipe without a baseline)
        (out / "teacher").mkdir(parents=True, exist_ok=True)
        shutil.copy(teacher_dir / "summary.json", out / "teacher" / "summary.json")

    def job(name: str, seed: str, overrides: list[str]) -> tuple:
        overrides = [o.format(**{k: str(v) for k, v in teacher_ckpts.items()}) for o in overrides]
        return name, seed, [*overrides, *args.overrides, f"seed={seed}"], out / name / f"seed{seed}"

    jobs = [job(name, seed, overrides) for name, overrides in recipes for seed in seeds]
    jobs += [job(name, SOFT_TEACHER_SEED, overrides) for name, overrides in SOFT_TEACHERS if name in needed]
    later = [job(name, seed, overrides) for name, overrides in soft for seed in seeds]  # after their teachers
    todo = [j for j in jobs if not (j[3] / "summary.json").exists()]
    todo_later = [j for j in later if not (j[3] / "summary.json").exists()]
    total = len(jobs) + len(later)
    print(f"{total} jobs, {total - len(todo) - len(todo_later)} already done", flush=True)
    # Each stage runs its cache builders alone, then the rest side by side: the first cached job builds
    # the reference teacher's logit cache, and the first student of each soft teacher builds that
    # teacher's (the soft teachers themselves train in the first stage).
    builder = [j for j in todo if "teacher_cache=true" in j[2]][:1]
    firsts = [j for i, j in enumerate(todo_later) if teacher_of(j) not in {teacher_of(k) for k in todo_later[:i]}]
    stages = [(builder, [j for j in todo if j not in builder]), (firsts, [j for j in todo_later if j not in firsts])]
    if args.dry_run:
        for alone, side_by_side in stages:
            for job_ in alone + side_by_side:
                name, seed, overrides, run_dir = job_
                mark = " (alone: builds the teacher cache)" if job_ in alone else ""
                print(f"[todo] {name} seed {seed}{mark}: {' '.join(job_command(overrides, run_dir)[3:])}")
        return
    start, done, failed = time.time(), 0, []

    def one(job, alone: bool = False) -> None:
        nonlocal done
        name, seed, overrides, run_dir = job
        cmd = job_command(overrides, run_dir)
        print(f"[start] {name} seed {seed}: {' '.join(cmd[3:])}", flush=True)
        code = run(cmd, run_dir / "protocol.log", None if alone else threads)
        done += 1
        elapsed = time.time() - start
        eta = elapsed / done * (len(todo) + len(todo_later) - done)
        status = "done" if code == 0 else f"FAILED ({code}; see {run_dir}/protocol.log)"
        if code != 0:
            failed.append(f"{name} seed {seed}")
        print(f"[{done}/{len(todo) + len(todo_later)}] {name} seed {seed} {status} · {elapsed / 60:.0f} min so far, ~{eta / 60:.0f} min left",
              flush=True)

    for alone, side_by_side in stages:
        for job_ in alone:
            one(job_, alone=True)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            list(pool.map(one, side_by_side))
    subprocess.run([sys.executable, "-m", "segkd.compare", str(out)], cwd=ROOT, check=True)
    if args.publish:
        publish = ROOT / args.publish
        publish.mkdir(parents=True, exist_ok=True)
        for name in ("comparison.json", "comparison.md"):
            shutil.copy(out / name, publish / name)
        print(f"published to {publish}")
    if failed:
        sys.exit(f"{len(failed)} job(s) failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
