"""What a recipe is: the settings that decide what a run learns, one definition for every reader.

A recipe is every resolved setting of a run except the few that only say where it writes, how it is
launched, logged, split over devices or resumed, and which seed it draws (:data:`NOT_RECIPE`). The
rest counts without being registered anywhere: a key added to a paradigm YAML tomorrow makes runs
with and without it different recipes, and segkd.compare never pools them. Machine paths are named
by what they point at (a dataset by its folder name, a checkpoint by its run), so one recipe run on
two machines is one recipe.

summary.json spells it as ``recipe``: ``name`` (readable: experiment, model, paradigm, schedule and
the recipe settings the user overrode), ``id`` (a hash of ``config``) and ``config`` (the flattened
settings) plus ``fields`` (what baselines are matched on). segkd.compare groups by it, W&B names runs
and groups by it (segkd.train.run_identity), and an auto-resume refuses a run dir of another one.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

#: Keys (exact, or prefixes ending in ".", "_" or "@") that are not part of a recipe.
NOT_RECIPE: tuple[str, ...] = (
    # bookkeeping: which draw, where to resume, how the run is labelled
    "seed", "dataset.seed", "ckpt_path", "auto_resume", "tags", "task_name", "model_name", "schedule_name",
    # where things are written or cached on this machine
    "paths.", "reference_teacher_dir", "dataset.stats_cache_dir", "system.teacher.cache.dir",
    "system.teacher.cache.path", "system.teacher.cache.batch_size", "system.teacher.train_command",
    # how the run is launched, logged, watched and split over devices (the global batch is the recipe's)
    "hydra.", "logger.", "callbacks.", "debug.", "trainer.devices", "trainer.num_nodes", "trainer.strategy",
    "trainer.accelerator", "trainer.enable_", "trainer.log_every_n_steps", "trainer.plugins",
    "trainer.num_sanity_val_steps", "trainer.default_root_dir", "dataset.num_workers", "dataset.device_batch_size",
    "dataset.val_batch_size", "dataset.verify",
)
#: Settings only a distillation run has: a recipe and its scratch baseline differ in these alone.
DISTILL_KEYS: tuple[str, ...] = (
    "system._target_", "system.teacher", "system.teachers", "system.ensemble", "system.distill", "system.schedule",
    "system.peers", "system.probe_size", "teacher_", "distill_paradigm", "loss_schedule", "model@system.",
    "distill_loss@",
)
#: Settings that set the training budget: a matched-cost baseline may differ in these too.
BUDGET_KEYS: tuple[str, ...] = ("trainer.max_epochs", "trainer.max_steps")
#: Config groups the system reads through an interpolation (``system.distill: ${distill_paradigm}``):
#: their settings are recorded once, where the system reads them. Overrides of them still name a recipe.
MIRRORS: tuple[str, ...] = ("distill_paradigm.", "loss_schedule.")
#: Keys whose values are machine paths: named by what they point at (``teacher_ckpts``: a list of them).
_PATH_SUFFIXES = ("root", "checkpoint", "teacher_ckpt", "teacher_ckpts", "teacher_weights", "label_map")
#: Keys whose values are machine paths although their last part says nothing (an external teacher's weights).
_PATH_KEYS = ("system.teacher.external.weights",)
#: One teacher of several (``system.teachers.<name>.``): its settings are read as the one teacher's
#: (``system.teacher.``), so what is bookkeeping or a path for one teacher is so for each of a set.
_SET_MEMBER = re.compile(r"^system\.teachers\.[^.]+\.")


def _as_one_teacher(key: str) -> str:
    return _SET_MEMBER.sub("system.teacher.", key)


def _is_path_key(key: str) -> bool:
    key = _as_one_teacher(key.lstrip("+~"))
    return key.rsplit(".", 1)[-1].endswith(_PATH_SUFFIXES) or key in _PATH_KEYS


def _matches(key: str, patterns: Iterable[str]) -> bool:
    return any(key == p or (p.endswith((".", "_", "@")) and key.startswith(p)) or key.startswith(p + ".")
               for p in patterns)


def is_recipe_key(key: str) -> bool:
    """Is the dotted config key part of a recipe?"""
    return not _matches(_as_one_teacher(key.lstrip("+~")), NOT_RECIPE)


def is_distill_key(key: str) -> bool:
    return _matches(key.lstrip("+~"), DISTILL_KEYS)


def is_budget_key(key: str) -> bool:
    return _matches(key.lstrip("+~"), BUDGET_KEYS)


def canonical_path(value: str) -> str:
    """A checkpoint by its run (``teacher_ls01/seed0/last.ckpt``), a folder by its name."""
    path = Path(value)
    if path.suffix == ".ckpt":
        run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
        return "/".join(part for part in (run_dir.parent.name, run_dir.name, path.name) if part)
    return path.name


def _canonical_value(key: str, value: Any) -> Any:
    if isinstance(value, str) and "/" in value and _is_path_key(key):
        return canonical_path(value)
    if isinstance(value, (list, tuple)) and _is_path_key(key):  # teacher_ckpts: each path by its run
        return [_canonical_value(key, v) for v in value]
    if isinstance(value, tuple):
        return list(value)
    return value


def _teachers_by_name(resolved: dict) -> dict:
    """``system.teachers`` given as a list is the mapping segkd reads it as (``teacher0``, ``teacher1``,
    ...; a string is a checkpoint), so its settings flatten to keys as a mapping's do."""
    teachers = (resolved.get("system") or {}).get("teachers")
    if not isinstance(teachers, (list, tuple)):
        return resolved
    named = {f"teacher{i}": {"checkpoint": t} if isinstance(t, str) else t for i, t in enumerate(teachers)}
    return {**resolved, "system": {**resolved["system"], "teachers": named}}


def flatten(node: Any, prefix: str = "", out: Optional[dict] = None) -> dict[str, Any]:
    out = {} if out is None else out
    if isinstance(node, Mapping):
        for k, v in node.items():
            flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
        if not node and prefix:
            out[prefix] = {}
    else:
        out[prefix] = node
    return out


def _resolved(config: Any) -> dict:
    from omegaconf import OmegaConf

    if OmegaConf.is_config(config):
        return OmegaConf.to_container(config, resolve=True)
    return dict(config)


def recipe_config(config: Any) -> dict[str, Any]:
    """The recipe settings of a run's config (a DictConfig, or a resolved config as a plain dict, e.g. a
    run dir's resolved_config.yaml), flattened to dotted keys, machine paths canonical."""
    flat = flatten(_teachers_by_name(_resolved(config)))
    return {k: _canonical_value(k, v) for k, v in sorted(flat.items())
            if is_recipe_key(k) and not _matches(k, MIRRORS)}


def recipe_id(config: Mapping[str, Any]) -> str:
    return hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _canonical_override(override: str) -> str:
    """One spelling per value: a multirun records ``teacher_cache=True`` where a single run has ``=true``;
    a path is named as in :func:`canonical_path`."""
    key, sep, value = override.partition("=")
    if value.lower() in ("true", "false", "null"):
        value = value.lower()
    elif "/" in value and _is_path_key(key) and value.startswith("[") and value.endswith("]"):
        value = "[" + ",".join(canonical_path(v.strip()) for v in value[1:-1].split(",")) + "]"
    elif "/" in value and _is_path_key(key):
        value = canonical_path(value)
    return key + sep + value


#: Config groups: a choice of one shows in the name's head (experiment, model, paradigm, schedule,
#: dataset) or is not a recipe (trainer, logger, ...); what it sets is in the recipe's config either way.
_GROUPS = ("experiment", "model", "distill_paradigm", "loss_schedule", "dataset", "trainer", "logger", "callbacks",
           "paths", "hydra", "debug")


def named_overrides(overrides: Sequence[str]) -> list[str]:
    """The overrides a recipe's name shows: values of recipe settings, canonical and sorted."""
    shown: dict[str, str] = {}
    for override in overrides:  # a key given twice: the last value is the one that counts
        key, sep, _ = override.partition("=")
        key = key.lstrip("+~")
        if sep and key not in _GROUPS and not key.startswith("hydra/") and is_recipe_key(key):
            shown[key] = _canonical_override(override)
    return sorted(shown.values())


def recipe(config: Any, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """summary.json's ``recipe`` block of a run: name, id, fields and config."""
    resolved = _resolved(config)
    flat = recipe_config(resolved)
    distills = any(k.startswith(("system.teacher", "system.distill", "system.peers")) for k in flat)
    paradigm = ((resolved.get("system") or {}).get("distill") or {}).get("name") if distills else None
    schedule = resolved.get("schedule_name") if any(k.startswith("system.schedule") for k in flat) else None
    fields = {
        "experiment": resolved.get("task_name"),
        "model": resolved.get("model_name"),
        "dataset": (resolved.get("dataset") or {}).get("name"),
        "paradigm": paradigm if paradigm != "none" else None,
        "schedule": schedule if schedule != "constant" else None,  # the default schedule goes unsaid
        "distills": distills,
        "teacher": "teacher" in (resolved.get("tags") or []),
        "epochs": (resolved.get("trainer") or {}).get("max_epochs"),
        "input_size": (resolved.get("dataset") or {}).get("crop_size"),
        "overrides": named_overrides(overrides),
    }
    return {"name": name_of(fields), "id": recipe_id(flat), "fields": fields, "config": flat}


def name_of(fields: Mapping[str, Any]) -> str:
    parts = [fields["experiment"], fields["model"]]
    parts += [p for p in (fields.get("paradigm"), fields.get("schedule")) if p and p != "none"]
    return " ".join(["/".join(str(p) for p in parts), *fields.get("overrides", [])])


def is_scratch(fields: Mapping[str, Any]) -> bool:
    """A student trained from labels alone (the baseline every distillation recipe is paired with)."""
    return fields.get("experiment") == "student" and not fields.get("paradigm") and not fields.get("distills")


def supervised_part(config: Mapping[str, Any], budget: bool = True) -> dict[str, Any]:
    """A recipe's settings without its distillation ones (and without its budget, when ``budget`` is
    false): equal for a recipe and the scratch baseline it is paired with."""
    return {k: v for k, v in config.items()
            if not is_distill_key(k) and (budget or not is_budget_key(k))}
