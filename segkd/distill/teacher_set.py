"""Several teachers (``system.teachers``): what each one is, and how they teach together.

One teacher is ``system.teacher`` (offline KD). Several are ``system.teachers``, a mapping from a
name to what ``system.teacher`` holds for one (a list is read as ``teacher0``, ``teacher1``, ...; an
entry that is a string is a checkpoint path). Whatever an entry leaves out it takes from
``system.teacher``, which then holds what all the teachers share (the expected ``net``,
``input_scale``, ``prior_correction``, the ``cache`` settings), so a user writes a checkpoint and
what differs. ``system.teacher`` then names no teacher of its own: a checkpoint or an external
teacher there as well as ``system.teachers`` is refused, since nothing could say which one counts.

Each entry may add ``weight`` (default 1) and, when the teachers teach separately, ``distill``: a
paradigm's terms for this teacher alone (default: the system's). ``system.ensemble`` says how they
teach (segkd.distill.ensemble): ``null``, each through its own copy of the terms, weighted by its
weight; ``mean`` or ``confident``, as one teacher whose logits are combined from theirs.

Everything here is checked when the system is built, each refusal one line that names the key.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from segkd.distill.distiller import non_negative_weight, parse_source
from segkd.distill.ensemble import ENSEMBLE_MODES

#: Settings of ``system.teacher`` that name one teacher: never shared with the teachers of a set.
OWN_KEYS = ("checkpoint", "external", "train_command")
#: A teacher's name is part of log keys, sample keys and module names.
NAME = re.compile(r"^[A-Za-z0-9_-]+$")
#: How ``system.ensemble`` reads, for errors.
MODES_SAID = ("null (each teacher teaches through its own terms, weighted by its weight), mean (the weighted "
              "mean of the teachers' logits teaches as one teacher) or confident (at each pixel, the logits of "
              "the teacher whose softmax is the most confident there)")


@dataclass(frozen=True)
class TeacherEntry:
    """One teacher of a set: its name, its settings (``system.teacher``'s keys, the shared ones
    filled in), its weight and, when it teaches through terms of its own, their paradigm."""

    name: str
    spec: dict
    weight: float = 1.0
    distill: Optional[dict] = None
    #: Where the user sets it, when not under ``system.teachers`` (the one teacher: ``system.teacher``).
    where: Optional[str] = None

    @property
    def key(self) -> str:
        """Where the user sets it."""
        return self.where or f"system.teachers.{self.name}"


def ensemble_mode(value: Any) -> Optional[str]:
    """``system.ensemble``: None (per-teacher terms), ``mean`` or ``confident``."""
    if value is None:
        return None
    if value not in ENSEMBLE_MODES:
        raise ValueError(f"system.ensemble={value!r} is not a way to combine teachers; use {MODES_SAID}")
    return value


def names_a_teacher(teacher: Optional[Mapping[str, Any]]) -> bool:
    """Does ``system.teacher`` name a teacher (a checkpoint or an external network), or only hold settings?"""
    return bool(teacher) and any(teacher.get(k) for k in ("checkpoint", "external"))


def _weight(key: str, value: Any) -> float:
    return non_negative_weight(key, 1.0 if value is None else value,
                               "a teacher's weight must be a finite number >= 0 (1 by default; 0 keeps the teacher out "
                               "of the loss)")


def _merged(shared: Mapping[str, Any], own: Mapping[str, Any]) -> dict:
    """``own`` over ``shared``, one level deep for nested settings (``cache``)."""
    spec = copy.deepcopy(dict(shared))
    for key, value in own.items():
        if isinstance(value, Mapping) and isinstance(spec.get(key), Mapping):
            spec[key] = {**spec[key], **value}
        else:
            spec[key] = copy.deepcopy(value)
    return spec


def _entries(teachers: Any) -> list[tuple[str, Any]]:
    if isinstance(teachers, Mapping):
        return [(str(name), entry) for name, entry in teachers.items()]
    if isinstance(teachers, Sequence) and not isinstance(teachers, str):
        return [(f"teacher{i}", entry) for i, entry in enumerate(teachers)]
    raise ValueError(f"system.teachers={teachers!r} must be a mapping of names to teachers, or a list of them "
                     "(e.g. teacher_ckpts=[a/checkpoints/last.ckpt,b/checkpoints/last.ckpt])")


def teacher_entries(teacher: Optional[Mapping[str, Any]], teachers: Any, ensemble: Optional[str],
                    distill: Optional[Mapping[str, Any]]) -> list[TeacherEntry]:
    """The teachers of a set, checked: names, weights, their settings filled from ``system.teacher``.

    ``ensemble`` is :func:`ensemble_mode`'s answer; ``distill`` the system's paradigm, which an ensemble
    reads the logits of only.
    """
    if names_a_teacher(teacher):
        which = "checkpoint" if teacher.get("checkpoint") else "external"
        raise ValueError(
            f"system.teacher.{which} and system.teachers both name teachers; give every teacher under "
            "system.teachers (+experiment=multi_teacher teacher_ckpts=[a.ckpt,b.ckpt] sets teacher_ckpt=null), "
            "or the one teacher as teacher_ckpt without system.teachers"
        )
    shared = {k: v for k, v in (teacher or {}).items() if k not in OWN_KEYS}
    if (shared.get("cache") or {}).get("path"):
        raise ValueError("system.teacher.cache.path names one teacher's prebuilt cache, but there are several "
                         "teachers; give each its own as system.teachers.<name>.cache.path")
    entries = []
    for name, entry in _entries(teachers):
        key = f"system.teachers.{name}"
        if entry is None:  # switched off, as a paradigm's term is
            continue
        if not NAME.match(name):
            raise ValueError(f"{key}: a teacher's name may hold letters, digits, '_' and '-' only (it names its "
                             "logs, e.g. teacher/<name>/val/mIoU); rename it")
        if isinstance(entry, str):
            entry = {"checkpoint": entry}
        if not isinstance(entry, Mapping):
            raise ValueError(f"{key}={entry!r} must be a checkpoint path or a mapping of teacher settings "
                             "(checkpoint, net, weight, ...)")
        own = dict(entry)
        weight = _weight(key, own.pop("weight", None))
        own_distill = own.pop("distill", None)
        if not (own.get("checkpoint") or own.get("external")):
            raise ValueError(f"{key} names no teacher: give it a checkpoint ({key}.checkpoint=<run>/checkpoints/"
                             "last.ckpt) or an external network (.external)")
        if own_distill is not None:
            if ensemble is not None:
                raise ValueError(f"{key}.distill: with system.ensemble={ensemble} the teachers teach as one through "
                                 "the system's terms; drop the teacher's own terms, or set system.ensemble=null")
            if not isinstance(own_distill, Mapping) or not isinstance(own_distill.get("terms"), Mapping):
                raise ValueError(f"{key}.distill must be a paradigm (a mapping with terms), e.g. "
                                 f"+distill_paradigm@{key}.distill=cwd")
        entries.append(TeacherEntry(name, _merged(shared, own), weight,
                                    copy.deepcopy(dict(own_distill)) if own_distill is not None else None))
    if not entries:
        raise ValueError("system.teachers is empty: name at least one teacher, e.g. "
                         "teacher_ckpts=[a/checkpoints/last.ckpt,b/checkpoints/last.ckpt]")
    if ensemble == "mean" and not sum(e.weight for e in entries) > 0:
        raise ValueError("system.teachers: every weight is 0, so the mean of their logits is undefined; give "
                         "at least one teacher a weight > 0")
    if ensemble == "confident":
        odd = next((e for e in entries if e.weight != 1.0), None)
        if odd is not None:
            raise ValueError(f"{odd.key}.weight={odd.weight:g} means nothing with system.ensemble=confident (each "
                             "pixel takes the most confident teacher's logits whole); drop the weights, or use "
                             "system.ensemble=mean")
    if ensemble is not None:
        refuse_features_of_ensemble(distill, ensemble)
    return entries


def one_teacher(teacher: Optional[Mapping[str, Any]]) -> TeacherEntry:
    """``system.teacher`` as the one entry of a set: what the system builds, scores and caches alike for
    one teacher or several."""
    return TeacherEntry("teacher", copy.deepcopy(dict(teacher or {})), where="system.teacher")


def terms_reading_teacher_features(distill: Optional[Mapping[str, Any]]) -> list[str]:
    """A paradigm's terms that read the teacher's features, not only its logits."""
    terms = (distill or {}).get("terms") or {}
    return [name for name, term in terms.items() if term is not None
            and any(parse_source(src)[0] == "teacher" and parse_source(src)[1] != "logits"
                    for src in (term.get("inputs") or {}).values())]


def refuse_features_of_ensemble(distill: Optional[Mapping[str, Any]], ensemble: str) -> None:
    features = terms_reading_teacher_features(distill)
    if features:
        raise ValueError(
            f"distillation terms {features} read teacher features, but system.ensemble={ensemble} combines the "
            "teachers' logits only (their features live on different networks); use logit terms "
            "(distill_paradigm=logits or cwd), or system.ensemble=null for terms per teacher"
        )
