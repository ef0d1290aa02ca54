"""Does KD help? Pair every recipe's seeds with a baseline's and report the difference honestly.

    python -m segkd.compare DIR [DIR ...] [--baseline RECIPE] [--out DIR] [--metric final|best]

Reads every summary.json under the given run or sweep dirs and groups runs into recipes (experiment,
model, dataset, paradigm, schedule and every other override except the seed; runs with the same
overrides whose resolved settings differ, because a default changed between them, are separate
recipes named by what differs). Each recipe is paired
seed by seed with its baseline, by default the scratch student of the same model, data, epochs and
crop. Seeds are paired because the seed fixes the initialisation, the training order and every
augmentation (segkd.data.sampling), so a paired difference removes most of the seed noise that an
unpaired mean hides. The 95% confidence interval of the mean paired difference uses Student's t with
n - 1 degrees of freedom; a recipe is "better" or "worse" only when that interval excludes 0.

Each recipe is also paired at matched cost (``--match compute``, the default, or ``--match wall``):
with the scratch runs of the same model, data and crop whose training compute (or fit wall time
without validation; summary.json's ``cost`` block) is the nearest at or above the recipe's own, so
that "train the student longer" is the baseline a distillation recipe must beat. When no scratch
budget costs enough, the matched verdict is null with the budget that is missing, never a silent
fallback. A teacher-logit cache's build is not charged to the runs that read it; its amortised share
(build GMACs / runs of the comparison that read the cache) is reported beside their cost.

Writes comparison.json / .csv / .md and three plots (mIoU vs GMACs with the Pareto front, paired
difference per recipe with its interval, mIoU vs training compute with scratch as a curve over its
budgets) into --out (default: the first DIR).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from segkd import recipe as recipes_
from segkd.analysis.pairing import BETTER, SAME, WORSE, t_interval, verdict  # noqa: F401 (compare.t_interval: its API)
from segkd import reporting
from segkd.reporting import percent
from segkd.recipe import is_scratch, name_of as recipe_name

log = logging.getLogger("segkd.compare")

#: What --match pairs on: summary.json's cost.train_gmacs (compute) or cost.train_s (fit wall time
#: without validation passes, which are the same per epoch for every recipe and are not training).
MATCH_KEYS = {"compute": "train_gmacs", "wall": "train_s"}
BASELINE, NO_BASELINE = "baseline", "no baseline"
TEACHER = "teacher"  # a teacher's own runs: listed for reference, compared with nothing


def _tag(tags: Sequence[str], prefix: str) -> Optional[str]:
    return next((t.split(":", 1)[1] for t in tags if t.startswith(prefix + ":")), None)


@dataclass
class Run:
    path: Path
    summary: dict

    @property
    def seed(self) -> Any:
        return self.summary.get("seed")

    @property
    def recorded(self) -> bool:
        """Does the summary spell its recipe (segkd.recipe)? Older runs are read from tags and overrides."""
        return isinstance(self.summary.get("recipe"), dict) and "config" in self.summary["recipe"]

    def recipe_config(self) -> Optional[dict]:
        """The run's recipe settings (segkd.recipe): from its summary; for older runs the subset their
        summary recorded as ``recipe_config``, else the resolved_config.yaml beside it, else unknown."""
        if self.recorded:
            return self.summary["recipe"]["config"]
        if self.summary.get("recipe_config") is not None:
            return self.summary["recipe_config"]
        resolved = self.path.parent / "resolved_config.yaml"
        if not resolved.is_file():
            return None
        import yaml

        return recipes_.recipe_config(yaml.safe_load(resolved.read_text()) or {})

    def miou(self, metric: str) -> Optional[float]:
        if metric == "best":
            return self.summary.get("best_val_mIoU")
        return (self.summary.get("val") or {}).get("mIoU")

    def class_iou(self) -> dict[str, Optional[float]]:
        return (self.summary.get("val") or {}).get("IoU") or {}

    def cost(self, by: str) -> Optional[float]:
        """Training compute (GMACs) or fit wall time without validation (s); None for runs made before
        summary.json recorded its cost."""
        cost = self.summary.get("cost") or {}
        return cost.get(MATCH_KEYS[by])

    def cache(self) -> Optional[tuple[str, float]]:
        """(cache path, build GMACs) of the teacher-logit cache the run read, if any (its first, with
        several teachers: :meth:`caches` has them all)."""
        caches = self.caches()
        return caches[0] if caches else None

    def caches(self) -> list[tuple[str, float]]:
        """(cache path, build GMACs) of every teacher-logit cache the run read, each once: the one
        teacher's, or each cached teacher's of several (two teachers of one checkpoint share one)."""
        cost = self.summary.get("cost") or {}
        found = [cost.get("teacher_cache") or {}, *(cost.get("teacher_caches") or {}).values()]
        out: dict[str, float] = {}
        for cache in found:
            if cache.get("build_gmacs") is not None:
                out.setdefault(str(cache.get("path")), float(cache["build_gmacs"]))
        return list(out.items())


def _tag(tags: Sequence[str], prefix: str) -> Optional[str]:
    return next((t.split(":", 1)[1] for t in tags if t.startswith(prefix + ":")), None)


def recipe_fields(summary: dict) -> dict[str, Any]:
    """What names a recipe and matches its baseline: the summary's own ``recipe.fields``; for runs made
    before summaries spelled their recipe, the same fields read from their tags and overrides."""
    if isinstance(summary.get("recipe"), dict) and "fields" in summary["recipe"]:
        return dict(summary["recipe"]["fields"])
    tags = summary.get("tags") or []
    paradigm, schedule = _tag(tags, "paradigm"), _tag(tags, "schedule")
    return {
        "experiment": summary.get("experiment"),
        "model": summary.get("model"),
        "dataset": summary.get("dataset"),
        "paradigm": paradigm if paradigm != "none" else None,
        "schedule": schedule,
        "teacher": "teacher" in tags,
        "epochs": summary.get("epochs"),
        "input_size": summary.get("input_size"),
        "overrides": recipes_.named_overrides(summary.get("overrides") or []),
    }


def _supervised_overrides(fields: dict, budget: bool = True) -> set[str]:
    return {o for o in fields["overrides"] if not recipes_.is_distill_key(o.split("=", 1)[0])
            and (budget or not recipes_.is_budget_key(o.split("=", 1)[0]))}


def can_be_baseline_of(base: "Recipe", recipe: "Recipe", budget: bool = True) -> bool:
    """Same model, data, crop and supervised settings: only distillation settings (and, with ``budget``
    false, the training budget) may differ. Compared on the recorded recipe settings when both spell
    them, else on the fields and overrides of older summaries."""
    keys = ("model", "dataset", "input_size") + (("epochs",) if budget else ())
    if not all(base.fields.get(k) == recipe.fields.get(k) for k in keys):
        return False
    if base.recorded and recipe.recorded:
        return (recipes_.supervised_part(base.config, budget) == recipes_.supervised_part(recipe.config, budget))
    return _supervised_overrides(base.fields, budget) == _supervised_overrides(recipe.fields, budget)


@dataclass
class Recipe:
    name: str
    fields: dict
    runs: dict = field(default_factory=dict)  # seed -> Run

    @property
    def recorded(self) -> bool:
        return bool(self.runs) and all(r.recorded for r in self.runs.values())

    @property
    def config(self) -> dict:
        return next((r.recipe_config() for r in self.runs.values() if r.recipe_config() is not None), {})

    def add(self, run: Run) -> None:
        if run.seed in self.runs:
            log.warning("recipe '%s' has seed %s twice (%s and %s); keeping the later one",
                        self.name, run.seed, self.runs[run.seed].path, run.path)
        self.runs[run.seed] = run


def load_runs(dirs: Sequence[str | Path]) -> list[Run]:
    runs = []
    for root in dirs:
        root = Path(root)
        if not root.exists():
            raise FileNotFoundError(f"{root} does not exist; give run or sweep dirs that hold summary.json files")
        paths = [root] if root.is_file() else sorted(root.rglob("summary.json"))
        for path in paths:
            try:
                summary = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                log.warning("skipping %s: not valid JSON (%s)", path, err)
                continue
            if not isinstance(summary, dict):
                log.warning("skipping %s: a run summary is a JSON object, this one is a %s", path,
                            type(summary).__name__)
                continue
            runs.append(Run(path, with_current_recipe(path, summary)))
    if not runs:
        raise FileNotFoundError(f"no summary.json under {', '.join(map(str, dirs))}")
    return runs


def with_current_recipe(path: Path, summary: dict) -> dict:
    """The summary with its recipe spelled by today's definition (segkd.recipe), from the resolved config
    its run dir keeps: runs made while the definition changed are named and grouped alike. A summary
    without its run dir (a published copy) keeps the recipe it recorded."""
    resolved = path.parent / "resolved_config.yaml"
    if not resolved.is_file():
        return summary
    import yaml

    try:
        config = yaml.safe_load(resolved.read_text())
    except Exception as err:  # a damaged resolved config: the summary's own record stands
        log.warning("%s: cannot read %s (%s); using the recipe its summary recorded", path, resolved, err)
        return summary
    if not isinstance(config, dict) or not {"task_name", "model_name", "system", "dataset"} <= config.keys():
        return summary  # not a whole run config (a fragment): nothing to derive a recipe from
    return {**summary, "recipe": recipes_.recipe(config, summary.get("overrides") or [])}


def _compatible(a: Run, b: Run) -> bool:
    """One recipe? Two runs that spell their recipe (segkd.recipe) must have the same settings, every key
    counted (a key one lacks is a setting it did not have). Older summaries recorded a subset of the
    settings, and grew it over time: there a key one of them lacks is a setting added later."""
    if a.recorded and b.recorded:
        return a.recipe_config() == b.recipe_config()
    ca, cb = a.recipe_config(), b.recipe_config()
    return ca is None or cb is None or all(ca[k] == cb[k] for k in ca.keys() & cb.keys())


def group(runs: Sequence[Run]) -> list[Recipe]:
    """Runs with the same recipe fields, split further where their resolved settings differ.

    The same overrides can mean different recipes when a default changed between the runs (e.g. a
    paradigm's weight); such groups are split and named by the settings that differ, so their seeds
    are never pooled. A run whose settings are unknown joins the first group of its name.
    """
    by_name: dict[str, list[list[tuple[Run, Optional[dict]]]]] = {}
    fields_of: dict[str, dict] = {}
    for run in sorted(runs, key=lambda r: r.path.stat().st_mtime if r.path.exists() else 0):
        fields = recipe_fields(run.summary)
        name = recipe_name(fields)
        fields_of.setdefault(name, fields)
        config = run.recipe_config()
        subgroups = by_name.setdefault(name, [])
        home = next((g for g in subgroups if all(_compatible(run, other) for other, _ in g)), None)
        if home is None:
            subgroups.append(home := [])
        home.append((run, config))
    recipes = []
    for name, subgroups in by_name.items():
        complete = all(run.recorded for g in subgroups for run, _ in g)
        differing = _differing_settings([[c for _, c in g] for g in subgroups], complete) if len(subgroups) > 1 else []
        for g in subgroups:
            known = next((c for _, c in g if c is not None), {})
            label = ", ".join(f"{k}={known.get(k, 'unset')}" for k in differing)
            recipe = Recipe(f"{name} [{label}]" if label else name, fields_of[name])
            for run, _ in g:
                recipe.add(run)
            recipes.append(recipe)
    return recipes


def _differing_settings(groups: Sequence[Sequence[Optional[dict]]], complete: bool = False) -> list[str]:
    """The settings whose values tell the groups apart: among all of them when every run spells its
    whole recipe (``complete``; a missing key is a setting that run did not have), else among those
    recorded by all."""
    configs = [next((c for c in g if c is not None), None) for g in groups]
    known = [c for c in configs if c is not None]
    if not known:
        return []
    keys = set.union(*(set(c) for c in known)) if complete else set.intersection(*(set(c) for c in known))
    return sorted(k for k in keys if len({json.dumps(c.get(k), sort_keys=True) for c in known}) > 1)


def find_baseline(recipe: Recipe, recipes: Sequence[Recipe], chosen: Optional[str]) -> Optional[Recipe]:
    if chosen is not None:
        matches = [r for r in recipes if r.name == chosen] or [r for r in recipes if chosen in r.name]
        if len(matches) != 1:
            names = [r.name for r in matches] or [r.name for r in recipes]
            raise ValueError(f"--baseline '{chosen}' matches {len(matches)} recipes; choose one of {names}")
        return matches[0]
    if recipe.fields.get("teacher"):
        return None
    candidates = [r for r in recipes if is_scratch(r.fields) and can_be_baseline_of(r, recipe)]
    if not candidates:
        return None
    if len(candidates) > 1:
        raise ValueError(f"recipe '{recipe.name}' has {len(candidates)} possible baselines "
                         f"{[r.name for r in candidates]}; choose one with --baseline")
    return candidates[0]


def mean_cost(recipe: Recipe, by: str) -> Optional[float]:
    """The recipe's mean cost over its seeds; None when any run lacks one."""
    costs = [r.cost(by) for r in recipe.runs.values()]
    return None if not costs or any(c is None for c in costs) else statistics.fmean(costs)


def find_matched_baseline(recipe: Recipe, recipes: Sequence[Recipe], by: str,
                          extra: float = 0.0) -> tuple[Optional[Recipe], Optional[str]]:
    """The scratch recipe whose mean cost is the nearest at or above the recipe's (and why none, if none);
    ``extra`` is added to the recipe's own cost (its share of a teacher cache's build, when charged)."""
    own = mean_cost(recipe, by)
    own = None if own is None else own + extra
    unit = "GMACs of training compute" if by == "compute" else "s of fit wall time without validation"
    if own is None:
        return None, f"its runs record no cost.{MATCH_KEYS[by]} (made before summary.json had a cost block)"
    candidates = [(mean_cost(r, by), r) for r in recipes
                  if is_scratch(r.fields) and can_be_baseline_of(r, recipe, budget=False)]
    priced = [(c, r) for c, r in candidates if c is not None]
    enough = sorted(((c, r) for c, r in priced if c >= own), key=lambda cr: cr[0])
    if enough:
        return enough[0][1], None
    if not priced:
        return None, (f"no scratch run of the same model, data and crop records its cost; run the scratch student "
                      f"at budgets of at least {own:.4g} {unit}")
    top_cost, top = max(priced, key=lambda cr: cr[0])
    return None, (f"no scratch budget costs at least the recipe's {own:.4g} {unit}: the largest, '{top.name}' "
                  f"({top.fields.get('epochs')} epochs), costs {top_cost:.4g}; run the scratch student for at least "
                  f"{own / top_cost:.2f}x its epochs (python -m segkd.protocol --budgets scratch=...)")


def paired_delta(recipe: Recipe, base: Recipe, metric: str) -> dict:
    """Seed-by-seed difference from ``base``: n, mean, std, 95% CI and verdict."""
    scores = {s: r.miou(metric) for s, r in recipe.runs.items() if r.miou(metric) is not None}
    base_scores = {s: r.miou(metric) for s, r in base.runs.items() if r.miou(metric) is not None}
    paired = sorted((s for s in scores if s in base_scores), key=str)
    diffs = [scores[s] - base_scores[s] for s in paired]
    out = {"n_paired": len(paired), "paired_seeds": paired,
           "unpaired_seeds": sorted((s for s in scores if s not in base_scores), key=str),
           "delta_mean": None, "delta_std": None, "delta_ci95": None, "verdict": NO_BASELINE}
    if diffs:
        low, high = t_interval(diffs)
        out.update(delta_mean=statistics.fmean(diffs), delta_std=statistics.stdev(diffs) if len(diffs) > 1 else None,
                   delta_ci95=None if math.isnan(low) else [low, high], verdict=verdict(low, high))
    return out


def _ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a is not None and b else None


def _cache_shares(recipes: Sequence[Recipe]) -> dict[str, float]:
    """Each cache's build GMACs divided by the runs of this comparison that read it."""
    readers: dict[str, list[float]] = defaultdict(list)
    for recipe in recipes:
        for run in recipe.runs.values():
            for path, build in run.caches():
                readers[path].append(build)
    return {path: builds[0] / len(builds) for path, builds in readers.items()}


def _mean(values: Sequence[float]) -> Optional[float]:
    return statistics.fmean(values) if values else None


def compare(recipes: Sequence[Recipe], baseline: Optional[str] = None, metric: str = "final",
            match: str = "compute") -> list[dict]:
    """One row per recipe: its scores, its cost, and its paired difference from its baseline at equal
    budget and from the scratch budget of matched cost (``match``: compute or wall)."""
    if match not in MATCH_KEYS:
        raise ValueError(f"unknown --match '{match}'; choose one of {list(MATCH_KEYS)}")
    shares = _cache_shares(recipes)
    rows = []
    for recipe in recipes:
        scores = {s: r.miou(metric) for s, r in recipe.runs.items() if r.miou(metric) is not None}
        base = find_baseline(recipe, recipes, baseline)
        first = next(iter(recipe.runs.values())).summary
        teacher = [r.summary["teacher"]["mIoU"] for r in recipe.runs.values() if (r.summary.get("teacher") or {}).get("mIoU") is not None]
        row = {
            "recipe": recipe.name,
            **{k: recipe.fields[k] for k in ("experiment", "model", "dataset", "paradigm", "schedule", "epochs", "input_size")},
            "n_seeds": len(scores),
            "seeds": sorted(scores, key=str),
            "miou_mean": _mean(list(scores.values())),
            "miou_std": statistics.stdev(scores.values()) if len(scores) > 1 else None,
            "params": (first.get("complexity") or {}).get("params"),
            "gmacs": (first.get("complexity") or {}).get("gmacs"),
            "teacher_miou": _mean(teacher),
            "baseline": base.name if base is not None else None,
            "n_paired": 0, "unpaired_seeds": [], "delta_mean": None, "delta_std": None,
            "delta_ci95": None, "verdict": NO_BASELINE, "per_class_delta": {},
            "per_seed": {str(sd): {"mIoU": r.miou(metric), "train_gmacs": r.cost("compute"), "train_s": r.cost("wall")}
                         for sd, r in recipe.runs.items()},
            "cost": {"train_gmacs": mean_cost(recipe, "compute"), "train_s": mean_cost(recipe, "wall"),
                     "cache_share_gmacs": _mean([sum(shares[path] for path, _ in r.caches())
                                                 for r in recipe.runs.values() if r.caches()]) if any(
                         r.caches() for r in recipe.runs.values()) else None},
            "cost_ratio": None, "matched": None, "matched_with_cache": None,
        }
        if recipe.fields.get("teacher"):
            row.update(verdict=TEACHER, baseline=None)
        elif base is recipe:
            row.update(verdict=BASELINE, n_paired=len(scores), delta_mean=0.0)
        elif base is not None:
            delta = paired_delta(recipe, base, metric)
            row.update({k: v for k, v in delta.items() if k != "paired_seeds"})
            if delta["n_paired"]:
                row["per_class_delta"] = _per_class_delta(recipe, base, delta["paired_seeds"])
            row["cost_ratio"] = {by: _ratio(mean_cost(recipe, by), mean_cost(base, by)) for by in MATCH_KEYS}
        if not recipe.fields.get("teacher") and not is_scratch(recipe.fields) and baseline is None:
            row["matched"] = _matched(recipe, recipes, metric, match)
            share = row["cost"]["cache_share_gmacs"]
            if share and match == "compute":
                # The same question with the recipe charged its share of the cache build it reads: what a
                # cached teacher costs when only these runs use its cache.
                row["matched_with_cache"] = {**_matched(recipe, recipes, metric, match, extra=share),
                                             "cache_share_gmacs": share}
        rows.append(row)
    _teacher_ratios(rows)
    order = {TEACHER: 0, BASELINE: 1}
    return sorted(rows, key=lambda r: (order.get(r["verdict"], 2), -(r["delta_mean"] if r["delta_mean"] is not None else -1e9),
                                       -(r["miou_mean"] or 0)))


def _teacher_ratios(rows: list[dict]) -> None:
    """Each student's mIoU as a share of its teacher's (``teacher_ratio``): the teacher its runs scored
    (offline KD), else the one teacher of the comparison (a protocol's reference teacher), else none.
    How close a longer schedule brings a student to its teacher is what a budget curve shows."""
    teachers = [r for r in rows if r["verdict"] == TEACHER and r["miou_mean"]]
    only = teachers[0]["miou_mean"] if len(teachers) == 1 else None
    for r in rows:
        reference = r["teacher_miou"] or only
        r["teacher_ratio"] = r["miou_mean"] / reference if r["verdict"] != TEACHER and reference and r["miou_mean"] else None


def _matched(recipe: Recipe, recipes: Sequence[Recipe], metric: str, by: str, extra: float = 0.0) -> dict:
    base, reason = find_matched_baseline(recipe, recipes, by, extra)
    out = {"by": by, "baseline": None, "baseline_cost_ratio": None, "n_paired": 0, "delta_mean": None,
           "delta_ci95": None, "verdict": None, "reason": reason}
    if base is None:
        return out
    delta = paired_delta(recipe, base, metric)
    out.update(baseline=base.name, baseline_cost_ratio=_ratio(mean_cost(base, by), (mean_cost(recipe, by) or 0) + extra),
               n_paired=delta["n_paired"], delta_mean=delta["delta_mean"], delta_ci95=delta["delta_ci95"])
    if delta["n_paired"]:
        out["verdict"] = delta["verdict"]
    else:
        out["reason"] = f"the matched baseline '{base.name}' has none of the recipe's seeds {sorted(recipe.runs, key=str)}"
    return out


def _per_class_delta(recipe: Recipe, base: Recipe, seeds: Sequence[Any]) -> dict[str, Optional[float]]:
    per_class: dict[str, list[float]] = defaultdict(list)
    names: list[str] = []
    for s in seeds:
        ours, theirs = recipe.runs[s].class_iou(), base.runs[s].class_iou()
        for name in ours:
            if name not in names:
                names.append(name)
            if ours.get(name) is not None and theirs.get(name) is not None:
                per_class[name].append(ours[name] - theirs[name])
    return {name: _mean(per_class[name]) for name in names}


# ----------------------------------------------------------------------------- reports

def _ci(ci: Optional[Sequence[float]]) -> str:
    return "—" if not ci else f"[{percent(ci[0], signed=True)}, {percent(ci[1], signed=True)}]"


def _times(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:.2f}x"


def markdown(rows: Sequence[dict], metric: str) -> str:
    match = next((r["matched"]["by"] for r in rows if r.get("matched")), "compute")
    head = (f"Val mIoU ({metric}) in %, mean ± std over seeds; Δ = paired difference from the baseline's same seeds, "
            "mean and 95% CI (Student's t). Equal budget: the scratch student of the same epochs. Matched cost: the "
            f"scratch budget whose training {match} is the nearest at or above the recipe's. Cost ×: the recipe's "
            "training compute / wall time over its equal-budget baseline's.\n\n"
            "| recipe | seeds | mIoU | Δ equal budget [95% CI] | verdict | cost × (compute / wall) "
            f"| Δ matched {match} [95% CI] | verdict | matched baseline | ÷ teacher | params (M) | GMACs | teacher mIoU |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        paired = f"{r['n_seeds']}" + (f" ({r['n_paired']} paired)" if r["n_paired"] != r["n_seeds"] and r["baseline"] else "")
        std = f" ± {percent(r['miou_std'])}" if r["miou_std"] is not None else ""
        ratio = r.get("cost_ratio") or {}
        matched = r.get("matched") or {}
        m_delta = f"{percent(matched.get('delta_mean'), signed=True)} {_ci(matched.get('delta_ci95'))}" if matched.get("baseline") else "—"
        m_base = (f"{matched['baseline']} ({_times(matched.get('baseline_cost_ratio'))} cost)"
                  if matched.get("baseline") else "—")
        lines.append(
            f"| {r['recipe']} | {paired} | {percent(r['miou_mean'])}{std} | {percent(r['delta_mean'], signed=True)} {_ci(r['delta_ci95'])} "
            f"| {r['verdict']} | {_times(ratio.get('compute'))} / {_times(ratio.get('wall'))} | {m_delta} "
            f"| {matched.get('verdict') or ('no matched baseline' if matched else '—')} | {m_base} "
            f"| {'—' if r.get('teacher_ratio') is None else format(r['teacher_ratio'], '.2f')} "
            f"| {(r['params'] or 0) / 1e6:.2f} | {r['gmacs'] if r['gmacs'] is not None else float('nan'):.3f} "
            f"| {percent(r['teacher_miou'])} |"
        )
    notes = []
    for r in rows:
        if r["unpaired_seeds"]:
            notes.append(f"- {r['recipe']}: seeds {r['unpaired_seeds']} have no baseline run with the same seed and are not in Δ.")
        if r["verdict"] == NO_BASELINE:
            notes.append(f"- {r['recipe']}: no scratch baseline with the same model, data, epochs and crop.")
        if (r.get("matched") or {}).get("reason"):
            notes.append(f"- {r['recipe']}: no matched-cost verdict: {r['matched']['reason']}.")
        charged = r.get("matched_with_cache")
        if charged:
            notes.append(f"- {r['recipe']}: charged its share of the cache build ({charged['cache_share_gmacs']:.4g} GMACs "
                         "per run), its matched-compute baseline is "
                         + (f"'{charged['baseline']}': Δ {percent(charged['delta_mean'], signed=True)} "
                            f"{_ci(charged['delta_ci95'])}, {charged['verdict']}." if charged.get("baseline")
                            else f"none: {charged['reason']}."))
        share = (r.get("cost") or {}).get("cache_share_gmacs")
        if share is not None:
            notes.append(f"- {r['recipe']}: reads a teacher-logit cache; its build, shared by the runs here that read it, "
                         f"adds {share:.4g} GMACs per run ({share / r['cost']['train_gmacs']:.1%} of the run's own "
                         "training compute), not in its cost." if r["cost"].get("train_gmacs") else "")
    baselines = sorted({r["baseline"] for r in rows if r["baseline"]})
    tail = "\n\nBaseline(s): " + "; ".join(baselines) if baselines else ""
    notes = [n for n in notes if n]
    return head + "\n".join(lines) + tail + ("\n\n" + "\n".join(notes) if notes else "") + "\n"


def per_class_markdown(rows: Sequence[dict]) -> str:
    rows = [r for r in rows if r["per_class_delta"]]
    if not rows:
        return ""
    names = list(rows[0]["per_class_delta"])
    out = "| recipe | " + " | ".join(names) + " |\n|---|" + "---|" * len(names) + "\n"
    for r in rows:
        out += f"| {r['recipe']} | " + " | ".join(percent(r["per_class_delta"].get(n), signed=True) for n in names) + " |\n"
    return "\nPer-class Δ IoU (points, mean over paired seeds):\n\n" + out


def write_csv(rows: Sequence[dict], path: Path) -> None:
    columns = ["recipe", "experiment", "model", "dataset", "paradigm", "schedule", "epochs", "n_seeds", "n_paired",
               "miou_mean", "miou_std", "delta_mean", "delta_std", "delta_ci95_low", "delta_ci95_high", "verdict",
               "train_gmacs", "train_s", "cost_ratio_compute", "cost_ratio_wall", "matched_by", "matched_baseline",
               "matched_delta_mean", "matched_ci95_low", "matched_ci95_high", "matched_verdict",
               "params", "gmacs", "teacher_miou", "baseline"]
    flat = []
    for r in rows:
        ci = r["delta_ci95"] or [None, None]
        matched, ratio, cost = r.get("matched") or {}, r.get("cost_ratio") or {}, r.get("cost") or {}
        mci = matched.get("delta_ci95") or [None, None]
        flat.append({**r, "delta_ci95_low": ci[0], "delta_ci95_high": ci[1],
                     "train_gmacs": cost.get("train_gmacs"), "train_s": cost.get("train_s"),
                     "cost_ratio_compute": ratio.get("compute"), "cost_ratio_wall": ratio.get("wall"),
                     "matched_by": matched.get("by"), "matched_baseline": matched.get("baseline"),
                     "matched_delta_mean": matched.get("delta_mean"), "matched_ci95_low": mci[0],
                     "matched_ci95_high": mci[1], "matched_verdict": matched.get("verdict")})
    reporting.write_csv(path, flat, columns)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of points no other point beats on both cost (lower) and score (higher), by cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def plot(rows: Sequence[dict], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    pts = [r for r in rows if r["gmacs"] is not None and r["miou_mean"] is not None]
    if pts:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        xs, ys = [r["gmacs"] for r in pts], [100 * r["miou_mean"] for r in pts]
        ax.errorbar(xs, ys, yerr=[100 * (r["miou_std"] or 0) for r in pts], fmt="o", alpha=0.8, capsize=3)
        for r, x, y in zip(pts, xs, ys):
            ax.annotate(r["recipe"].split(" ")[0], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        front = pareto_front(list(zip(xs, ys)))
        ax.plot([xs[i] for i in front], [ys[i] for i in front], "r--", lw=1, label="Pareto front")
        ax.set_xscale("log")
        ax.set_xlabel("GMACs per image (at the training crop)")
        ax.set_ylabel("val mIoU (%)")
        ax.legend()
        written.append(reporting.save_figure(fig, out / "miou_vs_gmacs.png", dpi=120))
    written += plot_cost_curve(rows, out)
    deltas = [r for r in rows if r["delta_mean"] is not None and r["verdict"] not in (BASELINE, TEACHER)]
    if deltas:
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(deltas) + 1.5))
        ys = range(len(deltas))
        means = [100 * r["delta_mean"] for r in deltas]
        lows = [100 * (r["delta_mean"] - r["delta_ci95"][0]) if r["delta_ci95"] else 0 for r in deltas]
        highs = [100 * (r["delta_ci95"][1] - r["delta_mean"]) if r["delta_ci95"] else 0 for r in deltas]
        colors = ["tab:green" if r["verdict"] == BETTER else "tab:red" if r["verdict"] == WORSE else "tab:gray" for r in deltas]
        for y, m, lo, hi, c in zip(ys, means, lows, highs, colors):
            ax.errorbar(m, y, xerr=[[lo], [hi]], fmt="o", color=c, capsize=3)
        ax.axvline(0, color="k", lw=0.8)
        ax.invert_yaxis()  # the best recipe on top, as in the table
        ax.set_yticks(list(ys), [r["recipe"] for r in deltas], fontsize=7)
        ax.set_xlabel("paired Δ val mIoU vs baseline (points, 95% CI)")
        written.append(reporting.save_figure(fig, out / "paired_delta.png", dpi=120))
    return written


def plot_cost_curve(rows: Sequence[dict], out: Path) -> list[Path]:
    """mIoU vs training compute: each recipe's seeds as points and its mean with a 95% CI bar; the
    scratch student's budgets joined into a curve, the answer to "just train the student longer"."""
    import matplotlib.pyplot as plt

    priced = [r for r in rows if r["verdict"] != TEACHER and (r.get("cost") or {}).get("train_gmacs")]
    if not priced:
        return []
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    scratch = sorted((r for r in priced if is_scratch(r)), key=lambda r: r["cost"]["train_gmacs"])
    others = [r for r in priced if not is_scratch(r)]
    for r in priced:
        seeds = [v for v in r["per_seed"].values() if v["train_gmacs"] and v["mIoU"] is not None]
        ax.scatter([v["train_gmacs"] for v in seeds], [100 * v["mIoU"] for v in seeds], s=8, alpha=0.35,
                   color="k" if r in scratch else None)
    if scratch:
        xs = [r["cost"]["train_gmacs"] for r in scratch]
        ax.plot(xs, [100 * r["miou_mean"] for r in scratch], "k-o", lw=1.5, label="scratch student (budgets)")
    for r in others:
        half = (t_interval([v["mIoU"] for v in r["per_seed"].values() if v["mIoU"] is not None]))
        err = 0 if math.isnan(half[0]) else 100 * (half[1] - half[0]) / 2
        ax.errorbar(r["cost"]["train_gmacs"], 100 * r["miou_mean"], yerr=err, fmt="s", capsize=3,
                    label=r["recipe"].replace("offline_kd/", "")[:60])
    ax.set_xscale("log")
    ax.set_xlabel("training compute per run (GMACs: 3x forward of what trains + a live teacher's forward)")
    ax.set_ylabel("val mIoU (%)")
    ax.legend(fontsize=6, loc="lower right")
    return [reporting.save_figure(fig, out / "miou_vs_training_compute.png", dpi=120)]


def report(dirs: Sequence[str | Path], out: Optional[str | Path] = None, baseline: Optional[str] = None,
           metric: str = "final", plots: bool = True, match: str = "compute") -> list[dict]:
    """Compare, write every report file, and return the rows (what comparison.json holds)."""
    if metric not in ("final", "best"):
        raise ValueError(f"unknown metric '{metric}'; choose final or best")
    rows = compare(group(load_runs(dirs)), baseline, metric, match)
    out = Path(out if out is not None else dirs[0])
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.json").write_text(json.dumps(rows, indent=2) + "\n")
    write_csv(rows, out / "comparison.csv")
    text = markdown(rows, metric) + per_class_markdown(rows)
    (out / "comparison.md").write_text(text)
    if plots:
        plot(rows, out)
    print(text)
    print(f"written to {out}/comparison.{{md,csv,json}}" + (" and *.png" if plots else ""))
    return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m segkd.compare", description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", help="run or sweep dirs (searched for summary.json)")
    parser.add_argument("--baseline", help="recipe name (or a unique part of it) every recipe is compared with")
    parser.add_argument("--out", help="where to write the reports (default: the first dir)")
    parser.add_argument("--metric", default="final", choices=("final", "best"),
                        help="final val mIoU (default) or the best epoch's")
    parser.add_argument("--match", default="compute", choices=tuple(MATCH_KEYS),
                        help="pair each recipe with the scratch budget of at least its training compute (default) "
                             "or fit wall time")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        report(args.dirs, args.out, args.baseline, args.metric, plots=not args.no_plots, match=args.match)
    except (ValueError, OSError) as err:  # one convention for every command: one line, exit status 1
        print(f"segkd: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
