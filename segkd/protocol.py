"""segkd's results protocol: does distillation help, at equal epochs and at matched cost? One command,
resumable, on SynthStreets or any Cityscapes-layout tree.

    python -m segkd.protocol [--seeds 1,2,3] [--jobs 2] [--out outputs/kd_protocol]
        [--only scratch,cwd,...] [--recipe NAME="OVERRIDE ..."] [--budgets NAME=1,2,4 ...]
        [--matched-cost] [--publish docs/results/kd_protocol] [--dry-run] [-- OVERRIDE ...]

1. trains the reference teacher of the data once, when a job needs it (or reuses it; an interrupted
   one resumes);
2. runs the scratch student, every offline-KD paradigm, DML and online alternating at the same
   budget, with each seed (logit-only paradigms read the teacher-logit cache, built by the first);
   trains the protocol's other teachers (soft ones: label smoothing, confidence penalty; a DeepLabV3+)
   and then their CWD / logit students (the DeepLabV3+ alone and averaged with the reference UNet);
3. with ``--budgets NAME=M,M,...`` also runs recipe NAME at M times its epochs (job ``NAME_xM``):
   the scratch student at the budgets the recipes' costs need, and KD recipes along a longer
   schedule. ``--matched-cost`` adds :data:`MATCHED_COST`, the budget curves of docs/RESULTS.md;
4. runs ``python -m segkd.compare`` over the results (pairing at equal epochs and at matched
   compute) and, with --publish, copies the comparison and every summary.json (small text files).

--recipe adds a recipe of your own (repeatable): ``--recipe cwd_w5="+experiment=offline_kd
distill_paradigm=cwd teacher_cache=true distill_paradigm.terms.cwd.weight=5"``; with --only, name it
there too. After a recipe's default changes, use a new --out: a job whose summary.json exists is not
rerun. A job that has a last.ckpt but no summary resumes from it. Overrides after ``--`` go to every
job, the teacher's included (``-- dataset=cityscapes dataset.root=/data/cityscapes``). Every job's
config is composed before anything runs, so a misspelt override fails at once. With --jobs 2 two
jobs run side by side with one thread each (faster than one job on two threads on a 2-core CPU),
the longest schedules first; a job that builds a teacher-logit cache runs alone first, on --jobs
threads, so that the others read what it built. Every job is a plain ``python -m segkd.run``
command, printed before it starts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

#: (name, overrides): every recipe of the protocol. Paradigms use their YAML defaults.
RECIPES: list[tuple[str, list[str]]] = [
    ("scratch", ["+experiment=student"]),
    ("logits", ["+experiment=offline_kd", "distill_paradigm=logits", "teacher_cache=true"]),
    ("cwd", ["+experiment=offline_kd", "distill_paradigm=cwd", "teacher_cache=true"]),
    ("encoder", ["+experiment=offline_kd", "distill_paradigm=encoder"]),
    ("encoder_cwd", ["+experiment=offline_kd", "distill_paradigm=encoder_cwd"]),
    ("bottleneck", ["+experiment=offline_kd", "distill_paradigm=bottleneck"]),
    ("decoder", ["+experiment=offline_kd", "distill_paradigm=decoder"]),
    ("pairwise", ["+experiment=offline_kd", "distill_paradigm=pairwise"]),
    ("logits_decoder", ["+experiment=offline_kd", "distill_paradigm=logits_decoder"]),
    ("dml", ["+experiment=online_dml"]),
    ("online_alternating", ["+experiment=online_alternating"]),
]

#: Teachers the protocol trains once each (seed 0) into ``OUT/NAME/seed0`` besides the reference
#: teacher, and the students they teach. A recipe's ``{NAME}`` stands for that teacher's last
#: checkpoint (``{reference}`` for the reference teacher's); those students start once it is trained.
#: Two are made soft on purpose (docs/METHODS.md section 3: the reference recipe with another loss);
#: one is of another architecture at the reference teacher's cost (DeepLabV3+ on ResNet-34, 0.99 vs
#: 1.00 GMACs at the train crop), teaching alone and beside the reference UNet as a mean ensemble.
TEACHERS: list[tuple[str, list[str]]] = [
    ("teacher_ls01", ["+experiment=reference_teacher", "system.loss.label_smoothing=0.1"]),
    ("teacher_cp01", ["+experiment=reference_teacher", "system.loss.confidence_penalty=0.1"]),
    ("teacher_dlv3p", ["+experiment=reference_teacher", "model=teacher_dlv3p_r34"]),
]
TEACHER_SEED = "0"
TAUGHT_RECIPES: list[tuple[str, list[str]]] = [
    ("cwd_ls01", ["+experiment=offline_kd", "distill_paradigm=cwd", "teacher_cache=true", "teacher_ckpt={teacher_ls01}"]),
    ("logits_ls01", ["+experiment=offline_kd", "distill_paradigm=logits", "teacher_cache=true",
                     "teacher_ckpt={teacher_ls01}"]),
    ("cwd_cp01", ["+experiment=offline_kd", "distill_paradigm=cwd", "teacher_cache=true", "teacher_ckpt={teacher_cp01}"]),
    ("cwd_dlv3p", ["+experiment=offline_kd", "distill_paradigm=cwd", "teacher_cache=true",
                   "model@system.teacher.net=teacher_dlv3p_r34", "teacher_ckpt={teacher_dlv3p}"]),
    # each checkpoint's own network (net: null), their logits averaged (segkd.distill.ensemble)
    ("cwd_r34_dlv3p", ["+experiment=multi_teacher", "distill_paradigm=cwd", "teacher_cache=true",
                       "system.teacher.net=null", "teacher_ckpts=[{reference},{teacher_dlv3p}]"]),
]

#: The budget curves of the matched-cost evidence (docs/RESULTS.md): the scratch student at the
#: budgets the recipes' costs reach (cached CWD costs about 1.2x a scratch step in wall time and
#: 1x in compute; live-teacher encoder KD about 2x in wall time and 3.7x in compute), and the best
#: recipes at 1x, 2x and 4x of the student's epochs (does KD's gain grow with a longer schedule?):
#: the two cached ones (CWD, logit KD: a patient teacher, Beyer et al. 2022, is a logit teacher) at
#: all three; encoder + CWD at 1x and 2x only, since its 4x would need a 16x scratch baseline. CWD
#: from the DeepLabV3+ teacher (43.5 val mIoU, above every student budget: a teacher the student
#: cannot pass) at all three, and the UNet + DeepLabV3+ ensemble at 2x, where CWD's gain peaks.
MATCHED_COST: dict[str, list[float]] = {
    "scratch": [1, 1.25, 2, 4, 8],
    "cwd": [1, 2, 4],
    "logits": [1, 2, 4],
    "encoder_cwd": [1, 2],
    "cwd_dlv3p": [1, 2, 4],
    "cwd_r34_dlv3p": [2],
}


class ProtocolError(ValueError):
    """A protocol asked for that cannot run as given (unknown recipe, duplicate seed, bad override)."""


@dataclass
class Job:
    name: str
    seed: str
    overrides: list[str]
    run_dir: Path
    teacher: Optional[str] = None        #: the protocol's teacher it needs trained first, if any
    needs_reference_teacher: bool = False
    cached: bool = False                 #: reads a teacher-logit cache (the first such job builds it)

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "segkd.run", *self.overrides, f"hydra.run.dir={self.run_dir}",
               "trainer.enable_progress_bar=false"]
        last = self.run_dir / "checkpoints" / "last.ckpt"
        if last.is_file() and not self.done:
            cmd.append(f"ckpt_path={last}")  # an interrupted job resumes where it stopped
        return cmd

    @property
    def done(self) -> bool:
        return (self.run_dir / "summary.json").exists()


@dataclass
class Plan:
    teacher_dir: Optional[Path]          #: the reference teacher's run dir, when a job needs it
    teacher_overrides: list[str]
    stages: list[tuple[list[Job], list[Job]]] = field(default_factory=list)  #: (alone, side by side)
    total: int = 0

    @property
    def todo(self) -> list[Job]:
        return [j for alone, side in self.stages for j in alone + side]


def parse_recipe(text: str) -> tuple[str, list[str]]:
    """``NAME=OVERRIDE OVERRIDE ...`` (from --recipe) as a RECIPES entry."""
    name, sep, overrides = text.partition("=")
    if not sep or not name.strip() or not overrides.split():
        raise ProtocolError(f'--recipe takes NAME="OVERRIDE ...", got {text!r}')
    if name.strip() in known_names():
        raise ProtocolError(f"--recipe {name.strip()}: that name is a built-in recipe; choose another")
    return name.strip(), overrides.split()


def known_names(extra: Sequence[tuple[str, list[str]]] = ()) -> list[str]:
    return [n for n, _ in [*RECIPES, *TEACHERS, *TAUGHT_RECIPES, *extra]]


def parse_seeds(text: str) -> list[str]:
    seeds = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in seeds if not s.lstrip("-").isdigit()]
    if bad or not seeds:
        raise ProtocolError(f"--seeds takes comma-separated integers, got {text!r}")
    duplicates = sorted({s for s in seeds if seeds.count(s) > 1}, key=int)
    if duplicates:
        raise ProtocolError(f"--seeds {text}: seed {', '.join(duplicates)} given twice; each seed is one run dir, "
                            "so a duplicate would run twice into the same dir")
    return seeds


def parse_budgets(texts: Sequence[str]) -> dict[str, list[float]]:
    """``NAME=1,2,4`` (repeatable) -> {NAME: [1.0, 2.0, 4.0]}."""
    budgets: dict[str, list[float]] = {}
    for text in texts:
        name, sep, values = text.partition("=")
        try:
            multiples = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            multiples = []
        if not sep or not name.strip() or not multiples or any(m <= 0 for m in multiples):
            raise ProtocolError(f"--budgets takes NAME=M,M,... with positive multiples of the recipe's epochs "
                                f"(e.g. scratch=1,1.25,2,4), got {text!r}")
        budgets[name.strip()] = sorted(set(budgets.get(name.strip(), []) + multiples))
    return budgets


def budget_name(name: str, multiple: float) -> str:
    return name if multiple == 1 else f"{name}_x{multiple:g}"


def compose(overrides: Sequence[str], run_dir: Path):
    """The job's config as ``python -m segkd.run`` would compose it (in-process, nothing runs)."""
    from segkd.config import compose_train_config

    try:
        return compose_train_config(list(overrides), run_dir)
    except Exception as err:  # Hydra's own errors: a misspelt group option, key or override
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ProtocolError(f"{first} (overrides: {' '.join(overrides)})") from None


def plan(seeds: Sequence[str], out: Path, only: Optional[Sequence[str]] = None,
         extra_recipes: Sequence[tuple[str, list[str]]] = (), budgets: Optional[dict[str, list[float]]] = None,
         overrides: Sequence[str] = ()) -> Plan:
    """Every job of the protocol, composed and checked, in the order they run."""
    budgets = dict(budgets or {})
    known = known_names(extra_recipes)
    unknown = [n for n in [*(only or []), *budgets] if n not in known]
    if unknown:
        raise ProtocolError(f"unknown recipe name(s) {unknown}; the protocol knows {known} "
                            "(add your own with --recipe NAME=\"OVERRIDE ...\")")
    wanted = (lambda name: name in only) if only else (lambda name: True)  # noqa: E731
    teacher_ckpts = {name: out / name / f"seed{TEACHER_SEED}" / "checkpoints" / "last.ckpt"
                     for name, _ in TEACHERS}
    taught = [r for r in TAUGHT_RECIPES if wanted(r[0])]
    needed = {name for name, _ in TEACHERS if wanted(name)
              or any("{" + name + "}" in o for _, recipe in taught for o in recipe)}
    teacher_overrides = ["+experiment=reference_teacher", *overrides]
    reference: list[Path] = []  # the reference teacher's run dir, composed once when first needed

    def reference_dir() -> Path:
        if not reference:
            reference.append(Path(str(compose(teacher_overrides, out / "teacher").reference_teacher_dir)))
        return reference[0]

    if any("{reference}" in o for _, recipe in taught for o in recipe):
        teacher_ckpts["reference"] = reference_dir() / "checkpoints" / "last.ckpt"

    def jobs_of(name: str, recipe: list[str], seeds_: Sequence[str]) -> list[Job]:
        recipe = [o.format(**{k: str(v) for k, v in teacher_ckpts.items()}) for o in recipe]
        teacher = next((k for k, _ in TEACHERS if str(teacher_ckpts[k]) in " ".join(recipe)), None)
        base = None
        jobs = []
        for multiple in budgets.get(name, [1.0]):
            label = budget_name(name, multiple)
            extra = []
            if multiple != 1:
                if base is None:
                    base = int(compose([*recipe, *overrides], out / name).trainer.max_epochs)
                extra = [f"trainer.max_epochs={max(1, round(base * multiple))}"]
            for seed in seeds_:
                job_overrides = [*recipe, *overrides, *extra, f"seed={seed}"]
                jobs.append(Job(label, seed, job_overrides, out / label / f"seed{seed}", teacher,
                                needs_reference_teacher=False, cached="teacher_cache=true" in job_overrides))
        return jobs

    recipes = [r for r in [*RECIPES, *extra_recipes] if wanted(r[0])]
    first = [j for name, recipe in recipes for j in jobs_of(name, recipe, seeds)]
    first += [j for name, recipe in TEACHERS if name in needed for j in jobs_of(name, recipe, [TEACHER_SEED])]
    later = [j for name, recipe in taught for j in jobs_of(name, recipe, seeds)]
    configs = {id(j): compose(j.overrides, j.run_dir) for j in first + later}  # every override checked now
    for j in first + later:
        j.needs_reference_teacher = _reads_reference_teacher(configs[id(j)])
    teacher_dir = None
    if any(j.needs_reference_teacher for j in first + later if not j.done):
        teacher_dir = reference_dir()
    todo = [j for j in first if not j.done]
    todo_later = [j for j in later if not j.done]
    # Each stage runs its cache builders alone, then the rest side by side: the first cached job builds
    # the reference teacher's logit cache, and the first student of each of the protocol's other
    # teachers builds that teacher's (those teachers themselves train in the first stage). A cache a
    # finished run under ``out`` read, still on disk, is built by no one.
    from segkd.recipe import recipe_config

    built = _built_caches(out)

    def builds(job: Job) -> bool:
        """Does the job build its teacher-logit cache (it reads one that no finished run read)?"""
        return job.cached and _cache_part(recipe_config(configs[id(job)])) not in built

    builder = [j for j in todo if builds(j)][:1]
    firsts = [j for i, j in enumerate(todo_later)
              if j.teacher not in {k.teacher for k in todo_later[:i]} and builds(j)]

    def longest_first(jobs: list[Job]) -> list[Job]:
        """Side by side, the longest schedules start first: a long job started last would run on alone
        at the end of its stage while the other cores idle (longest-processing-time-first)."""
        return sorted(jobs, key=lambda j: -int(configs[id(j)].trainer.max_epochs))

    stages = [(builder, longest_first([j for j in todo if j not in builder])),
              (firsts, longest_first([j for j in todo_later if j not in firsts]))]
    return Plan(teacher_dir, teacher_overrides, stages, len(first) + len(later))


#: The settings that decide which teacher-logit cache a run reads (the dataset's come with its name).
CACHE_KEYS = ("dataset.name", "dataset.root", "system.teacher.checkpoint", "system.teacher.input_scale",
              "system.teacher.external.", "system.teacher.cache.", "system.teachers.")


def _cache_part(config: dict) -> str:
    """The settings of a recipe config that name its teacher-logit cache, as one comparable string."""
    import json

    return json.dumps({k: v for k, v in config.items() if k.startswith(CACHE_KEYS)}, sort_keys=True, default=str)


def _built_caches(out: Path) -> set[str]:
    """The caches (:func:`_cache_part`) that finished runs under ``out`` read and that are still on disk: no
    job of a plan builds one of these, so none needs to run alone."""
    import json

    built = set()
    for path in out.rglob("summary.json"):
        summary = json.loads(path.read_text())
        cache = (summary.get("teacher_cache") or {}).get("path")
        if cache and (Path(cache) / "meta.json").is_file():
            built.add(_cache_part(summary.get("recipe", {}).get("config", {})))
    return built


def _reads_reference_teacher(cfg) -> bool:
    """Does the job distil from the reference teacher (the default teacher_ckpt), alone or among several?"""
    from omegaconf import OmegaConf

    teachers = OmegaConf.select(cfg, "system.teachers", default=None) or {}
    entries = teachers.values() if OmegaConf.is_dict(teachers) else teachers
    ckpts = [OmegaConf.select(cfg, "system.teacher.checkpoint", default=None),
             *(e if isinstance(e, str) else OmegaConf.select(e, "checkpoint", default=None) for e in entries)]
    reference = Path(str(cfg.reference_teacher_dir))
    return any(c is not None and Path(str(c)).parent.parent == reference for c in ckpts)


def _run(cmd: list[str], log_file: Path, threads: Optional[int]) -> int:
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("a") as log:
        return subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT).returncode


def execute(the_plan: Plan, out: Path, jobs: int = 1) -> list[str]:
    """Run the plan: the reference teacher if needed, then each stage. Returns the failed jobs.

    With ``jobs`` > 1 each job side by side trains on one thread and a job run alone (a cache
    builder) on ``jobs`` threads, whatever OMP_NUM_THREADS the protocol itself was started with: a
    builder on one thread would leave the other cores idle for its whole run."""
    threads, threads_alone = (1, jobs) if jobs > 1 else (None, None)
    if the_plan.teacher_dir is not None:
        teacher = Job("teacher", "42", the_plan.teacher_overrides, the_plan.teacher_dir)
        if not teacher.done:
            print(f"[teacher] {' '.join(teacher.command()[1:])}\n          (once per machine; log: "
                  f"{teacher.run_dir}/protocol.log)", flush=True)
            if _run(teacher.command(), teacher.run_dir / "protocol.log", None) != 0:
                raise ProtocolError(f"the reference teacher failed; see {teacher.run_dir}/protocol.log")
        print(f"[teacher] {the_plan.teacher_dir}", flush=True)
        (out / "teacher").mkdir(parents=True, exist_ok=True)  # the teacher's summary joins the comparison
        shutil.copy(the_plan.teacher_dir / "summary.json", out / "teacher" / "summary.json")
    todo = the_plan.todo
    start, done, failed = time.time(), 0, []

    def one(job: Job, alone: bool = False) -> None:
        nonlocal done
        cmd = job.command()
        print(f"[start] {job.name} seed {job.seed}: {' '.join(cmd[3:])}", flush=True)
        code = _run(cmd, job.run_dir / "protocol.log", threads_alone if alone else threads)
        done += 1
        elapsed = time.time() - start
        eta = elapsed / done * (len(todo) - done)
        status = "done" if code == 0 else f"FAILED ({code}; see {job.run_dir}/protocol.log)"
        if code != 0:
            failed.append(f"{job.name} seed {job.seed}")
        print(f"[{done}/{len(todo)}] {job.name} seed {job.seed} {status} · {elapsed / 60:.0f} min so far, "
              f"~{eta / 60:.0f} min left", flush=True)

    for alone, side_by_side in the_plan.stages:
        for job in alone:
            one(job, alone=True)
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            list(pool.map(one, side_by_side))
    return failed


def time_to_answer(out: Path) -> dict:
    """Where the protocol's time went, from its runs' summaries: every job's fit time (cost.fit_s),
    and the share of it spent on scratch students (the baselines an answer needs)."""
    import json

    from segkd.recipe import is_scratch

    total = scratch = 0.0
    runs = 0
    for path in out.rglob("summary.json"):
        if path.parent.name == "teacher":
            continue  # a copy of the reference teacher's summary: trained once per machine, not per protocol
        try:
            summary = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        fit = (summary.get("cost") or {}).get("fit_s") if isinstance(summary, dict) else None
        if fit is None:
            continue
        runs += 1
        total += fit
        fields = (summary.get("recipe") or {}).get("fields") or {"experiment": summary.get("experiment")}
        scratch += fit if is_scratch(fields) else 0.0
    return {"runs": runs, "fit_h": total / 3600, "scratch_h": scratch / 3600,
            "scratch_share": scratch / total if total else None}


def publish(out: Path, to: Path) -> None:
    """Copy the comparison and every run's summary.json and resolved_config.yaml (small text files, never
    checkpoints)."""
    to.mkdir(parents=True, exist_ok=True)
    for name in ("comparison.json", "comparison.md", "comparison.csv"):
        if (out / name).is_file():
            shutil.copy(out / name, to / name)
    for summary in out.rglob("summary.json"):
        target = to / "runs" / summary.relative_to(out)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(summary, target)
        resolved = summary.with_name("resolved_config.yaml")  # what segkd.compare derives the recipe from
        if resolved.is_file():
            shutil.copy(resolved, target.with_name(resolved.name))
    print(f"published to {to}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m segkd.protocol", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--jobs", type=int, default=1, help="jobs side by side (one thread each when > 1)")
    parser.add_argument("--out", default="outputs/kd_protocol")
    parser.add_argument("--only", help="comma-separated recipe names (default: all)")
    parser.add_argument("--recipe", action="append", default=[], metavar='NAME="OVERRIDE ..."',
                        help="an extra recipe: its name and its overrides (repeatable)")
    parser.add_argument("--budgets", action="append", default=[], metavar="NAME=M,M,...",
                        help="also run recipe NAME at M times its epochs (repeatable; job NAME_xM)")
    parser.add_argument("--matched-cost", action="store_true",
                        help="add the budget curves of docs/RESULTS.md: " + "; ".join(
                            f"{k}={','.join(f'{m:g}' for m in v)}" for k, v in MATCHED_COST.items()))
    parser.add_argument("--publish", help="copy the comparison and the summaries here when done")
    parser.add_argument("--dry-run", action="store_true", help="print the jobs still to run, run nothing")
    parser.add_argument("overrides", nargs="*", help="after --: overrides for every job")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    try:
        seeds = parse_seeds(args.seeds)
        extra = [parse_recipe(text) for text in args.recipe]
        budgets = parse_budgets(args.budgets)
        if args.matched_cost:
            budgets = {**{k: list(v) for k, v in MATCHED_COST.items()}, **budgets}
        only = [n for n in (args.only or "").split(",") if n] or None
        if only:  # budgets of recipes left out are not run
            budgets = {k: v for k, v in budgets.items() if k in only or k not in known_names(extra)}
        the_plan = plan(seeds, out, only, extra, budgets, args.overrides)
        print(f"{the_plan.total} jobs, {the_plan.total - len(the_plan.todo)} already done", flush=True)
        print(f"[teacher] {the_plan.teacher_dir or 'not needed'}", flush=True)
        if args.dry_run:
            for alone, side_by_side in the_plan.stages:
                for job in alone + side_by_side:
                    mark = " (alone: builds the teacher cache)" if job in alone else ""
                    print(f"[todo] {job.name} seed {job.seed}{mark}: {' '.join(job.command()[3:])}")
            return 0
        failed = execute(the_plan, out, args.jobs)
    except ProtocolError as err:
        print(f"segkd: error: {err}", file=sys.stderr)
        return 1
    subprocess.run([sys.executable, "-m", "segkd.compare", str(out)], check=True)
    spent = time_to_answer(out)
    if spent["runs"]:
        print(f"time to an answer: {spent['runs']} runs, {spent['fit_h']:.1f} h of training (each job's fit), "
              f"{spent['scratch_h']:.1f} h of it on scratch students ({spent['scratch_share']:.0%})", flush=True)
    if args.publish:
        publish(out, Path(args.publish))
    if failed:
        print(f"segkd: error: {len(failed)} job(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
