"""Offline knowledge distillation: a student learns from labels and from a frozen teacher."""

from __future__ import annotations

import math
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Any, Iterator, Optional, Sequence

import torch
from hydra.utils import instantiate
from torch import Tensor, nn

from segkd.config import to_plain
from segkd.distill.distiller import Distiller
from segkd.distill.ensemble import TeacherEnsemble, without_prior
from segkd.distill.external_teacher import load_external_teacher, refuse_features_of_scripted
from segkd.distill.teacher import RescaledTeacher, Teacher, load_teacher, return_freed_memory, unwrapped
from segkd.distill.teacher_cache import TeacherLogitCache, open_or_build
from segkd.distill.teacher_set import (TeacherEntry, ensemble_mode, one_teacher, teacher_entries,
                                       terms_reading_teacher_features)
from segkd.metrics import NetScores
from segkd.models import measure_complexity, size_divisor
from segkd.models.checkpoint import MAIN_NET
from segkd.systems.base import SystemBase
from segkd.systems.optim import batches_seen


def _input_scale(value: Any, key: str = "teacher_scale={value} (system.teacher.input_scale)") -> float:
    """The teacher's input scale, refused as the user set it (``teacher_scale=``) unless a positive factor:
    0 must not quietly mean 1."""
    scale = 1.0 if value is None else value
    try:
        scale = float(scale)
    except (TypeError, ValueError):
        scale = math.nan
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"{key.format(value=value)} must be a positive factor: 1.0 shows the "
                         "teacher the student's own view, 0.5 half-size images")
    return scale


@dataclass
class _Member:
    """One frozen teacher (the one of ``system.teacher``, or one of ``system.teachers``), as the system keeps it."""

    entry: TeacherEntry
    #: What keys its cache: its checkpoint, or an external teacher's weights file.
    checkpoint: str
    #: Which network of the checkpoint teaches (an external teacher: its identity).
    net_name: str
    input_scale: float
    size_divisor: int
    cache_options: dict
    #: The teacher as training sees it (rescaled when it has an input scale); None once its cache let it go.
    net: Optional[nn.Module]
    #: The setting that names its checkpoint, for errors (``teacher_ckpt`` for the one teacher).
    ckpt_key: str
    #: The sample field its cache fills.
    field: str
    cache_info: Optional[dict] = None
    scores: Optional[dict] = None

    @property
    def name(self) -> str:
        return self.entry.name


class DistillationSystem(SystemBase):
    """Student = ``net``; teacher = a checkpoint, frozen; distillation terms from ``distill``.

    The teacher is deliberately kept out of the module tree: it is not in the student's checkpoint,
    DDP never wraps it, and Lightning's train/eval switching never reaches it, so it stays in eval
    mode (BatchNorm statistics untouched) for the whole run. ``_apply`` carries it along on device
    and dtype moves. It is scored once on the whole val split before training (``teacher/val/*``).

    With ``teacher.cache.enabled`` the teacher's logits over the train split are computed once
    (segkd.distill.teacher_cache) and each batch carries its own, warped to its augmentation, so
    training steps run no teacher, and the teacher itself is let go once it is scored. The system
    asks the datamodule for what the cache needs (``plain_train_set()``, ``normalisation``) and hands
    it the cache (``attach_train_extra``); it reads and changes no dataset itself. Only the
    logits are cached: terms that read teacher features need the live teacher, and asking for both
    is refused when the system is built.

    With ``teacher.prior_correction`` the class prior the teacher was trained with is taken out of
    its logits before any term reads them. A teacher trained with class weights w (e.g. median
    frequency, so that rare classes score at all) minimises a weighted cross-entropy whose optimum is
    p(c|x)·w_c, renormalised: its softmax over-predicts rare classes by w_c, and a student taught by
    it inherits that shift while its own loss is plain cross-entropy. Subtracting log w_c (the
    weights travel in the teacher's checkpoint) gives the teacher's estimate of p(c|x) itself. A
    per-class constant leaves channel-wise (spatial) terms such as CWD unchanged.

    With ``teacher.input_scale`` != 1 the teacher looks at its input resized by that factor and its
    logits are resized back (segkd.distill.teacher.RescaledTeacher): a teacher trained with scale
    augmentation may be at its best at another scale than the student's. The cache is computed on
    whole images at that scale (the teacher's own best view); a live teacher sees each crop at it.

    With ``teacher.external`` set the teacher is not a segkd checkpoint but any ``nn.Module`` factory
    and a local weights file, its classes mapped onto the train ids (segkd.distill.external_teacher);
    ``teacher.checkpoint`` and ``teacher.net`` are then not read. It is frozen, hooked, scored and
    cached as a segkd teacher is (its cache is keyed by the weights file's hash and by the factory,
    label map and output key); it brings no class weights, so ``prior_correction`` changes nothing.

    **Several teachers** (``teachers``, segkd.distill.teacher_set): each is loaded, frozen, kept out of
    the module tree, corrected, rescaled and cached (under its own key) by the same code as the one
    teacher, which is a set of one (``members["teacher"]``), and scored on val (``teacher/<name>/val/*``). With ``ensemble`` null each teaches through
    its own copy of the terms (``distillers[name]``, their connectors its own), weighted by its
    weight (``train/kd/<term>/<name>``); with ``mean`` or ``confident`` they teach as one
    (segkd.distill.ensemble.TeacherEnsemble, its logits built from theirs, live or replayed alike)
    through the system's terms. ``teacher`` is then the ensemble, or, when each teaches on its own,
    the best of them on val: what the teacher report and the pictures show, and what summary.json's
    ``teacher`` scores (``teachers`` holds each one's).
    """

    job_type = "offline_kd"

    def __init__(
        self,
        net: dict[str, Any],
        class_names: Sequence[str],
        loss: dict[str, Any],
        optimizer: dict[str, Any],
        teacher: Optional[dict[str, Any]],
        distill: dict[str, Any],
        schedule: dict[str, Any],
        scheduler: Optional[dict[str, Any]] = None,
        ignore_index: int = 255,
        probe_size: Sequence[int] = (64, 64),
        teachers: Optional[Any] = None,
        ensemble: Optional[str] = None,
    ) -> None:
        teacher, distill, schedule, teachers = (to_plain(x) for x in (teacher, distill, schedule, teachers))
        probe_size = list(probe_size)
        super().__init__(net, class_names, loss, optimizer, scheduler, ignore_index)
        self.ensemble_mode = ensemble_mode(ensemble)
        #: ``system.teachers`` is set: names in logs, sample fields and summary.json are per teacher.
        self.several = teachers is not None
        if not self.several and self.ensemble_mode is not None:
            raise ValueError(f"system.ensemble={ensemble} combines several teachers, but system.teachers is not "
                             "set; name them there (+experiment=multi_teacher teacher_ckpts=[a.ckpt,b.ckpt])")
        entries = (teacher_entries(teacher, teachers, self.ensemble_mode, distill) if self.several
                   else [one_teacher(teacher)])
        #: The frozen teachers by name (one teacher: ``teacher``), each loaded, checked and cached alike.
        self.members: dict[str, _Member] = {}
        for i, entry in enumerate(entries):
            member, log_prior = self._member(entry, distill)
            self.members[entry.name] = member
            #: Each teacher's prior correction (None: none), a buffer so that it moves with the system.
            self.register_buffer(f"teacher_log_prior_{i}", log_prior, persistent=False)
        self.__dict__["ensemble"] = None  # several teachers answering as one (not a submodule either)
        if self.ensemble_mode is not None:
            self.__dict__["ensemble"] = TeacherEnsemble(
                {n: m.net for n, m in self.members.items()}, {n: m.entry.weight for n, m in self.members.items()},
                self.ensemble_mode, {n: self._log_prior(n) for n in self.members})
        if self.separately:
            self.distillers = nn.ModuleDict({
                name: Distiller((m.entry.distill or distill).get("terms") or {},
                                {"student": self.net, "teacher": unwrapped(m.net)},
                                probe_size, size_key="dataset.crop_size")
                for name, m in self.members.items()})
        else:  # the one teacher, or the ensemble, teaches through the system's terms
            taught = self.ensemble if self.ensemble is not None else unwrapped(self._taught())  # hooks: its own paths
            self.distiller = Distiller(distill.get("terms") or {}, {"student": self.net, "teacher": taught},
                                       probe_size, size_key="dataset.crop_size")
        if self.ensemble is None:
            for name, member in self.members.items():
                self._refuse_features_of(self._distiller_of(name), member.entry.key, member.input_scale,
                                         bool(member.cache_options.get("enabled")))
        self.__dict__["teacher"] = self._taught()  # not a submodule: see the class docstring
        self.schedule = instantiate(schedule)
        self.teacher_scores: Optional[dict] = None

    def _member(self, entry: TeacherEntry, distill: dict) -> tuple[_Member, Optional[Tensor]]:
        """One teacher loaded, frozen and checked (class docstring), and its log prior (None: no correction)."""
        spec, ckpt_key = entry.spec, f"{entry.key}.checkpoint" if self.several else "teacher_ckpt"
        loaded = self._load_teacher(spec, ckpt_key)
        checkpoint, net_name = spec.get("checkpoint"), spec.get("checkpoint_net") or MAIN_NET
        if spec.get("external"):
            # The cache and the reports name it by its weights file and its identity (factory, label map).
            checkpoint, net_name = spec["external"]["weights"], loaded.spec["identity"]
            refuse_features_of_scripted(loaded.net, terms_reading_teacher_features(entry.distill or distill))
        scale = (_input_scale(spec.get("input_scale"), f"{entry.key}.input_scale={{value}}") if self.several
                 else _input_scale(spec.get("input_scale")))
        log_prior = None
        if spec.get("prior_correction") and loaded.class_weights is not None:
            log_prior = loaded.class_weights.clamp_min(1e-12).log().view(1, -1, 1, 1)
        member = _Member(entry, str(checkpoint), net_name, scale, size_divisor(loaded.net),
                         dict(spec.get("cache") or {}), self._as_seen(loaded.net, scale), ckpt_key,
                         f"teacher_logits/{entry.name}" if self.several else "teacher_logits")
        return member, log_prior

    def _log_prior(self, name: str) -> Optional[Tensor]:
        """Teacher ``name``'s prior correction (None: none)."""
        return getattr(self, f"teacher_log_prior_{list(self.members).index(name)}")

    @property
    def separately(self) -> bool:
        """Several teachers and no ensemble: each teaches through its own copy of the terms."""
        return self.several and self.ensemble is None

    def _distiller_of(self, name: str) -> Distiller:
        """The terms teacher ``name`` teaches through: its own, or the system's."""
        return self.distillers[name] if self.separately else self.distiller

    def _taught(self) -> Optional[nn.Module]:
        """``teacher``: the one teacher, the ensemble (None once a cache let one of its teachers go: it
        cannot answer live), or, when each teaches on its own, the best of them on val."""
        if self.ensemble is not None:
            return self.ensemble if all(m.net is not None for m in self.members.values()) else None
        return self._best_member().net

    @staticmethod
    def _refuse_features_of(distiller: Distiller, key: str, input_scale: float, cached: bool) -> None:
        """Feature terms need the live teacher at the student's scale: refused with a cache or a rescaled view."""
        feature_terms = distiller.terms_reading_features("teacher")
        if feature_terms and input_scale != 1.0:
            raise ValueError(
                f"{key}.input_scale={input_scale} rescales what the teacher sees, so its "
                f"features are on another grid than the student's, but distillation terms {feature_terms} read "
                "them; use input_scale 1 with feature terms"
            )
        if feature_terms and cached:
            raise ValueError(
                f"the teacher cache holds logits only, but distillation terms {feature_terms} read teacher "
                "features, which need the live teacher; set teacher_cache=false for this paradigm"
            )

    @property
    def size_divisor(self) -> int:
        """Val images are read by the student and the teachers alike: a multiple of every divisor."""
        return math.lcm(super().size_divisor, *(m.size_divisor for m in self.members.values()))

    def _load_teacher(self, spec: dict, ckpt_key: str) -> Teacher:
        if spec.get("external"):
            net, identity = load_external_teacher(spec["external"], self.hparams.class_names)
            return Teacher(net, {**spec["external"], "identity": identity}, None)
        return load_teacher(spec.get("checkpoint"), spec.get("net"), spec.get("train_command"),
                            spec.get("checkpoint_net") or MAIN_NET, key=ckpt_key)

    @staticmethod
    def _as_seen(teacher_net: nn.Module, scale: float) -> nn.Module:
        """The teacher as training sees it (rescaled input when ``input_scale`` != 1)."""
        return RescaledTeacher(teacher_net, scale) if scale != 1.0 else teacher_net

    def _reloaded(self, member: _Member) -> nn.Module:
        """Teacher ``member`` as training saw it, loaded again (its cache let it go)."""
        return self._as_seen(self._load_teacher(member.entry.spec, member.ckpt_key).net, member.input_scale)

    @property
    def teacher_cache_info(self) -> Optional[dict]:
        """The one teacher's cache (summary.json's ``teacher_cache``; None: live, or several teachers)."""
        return None if self.several else self.members["teacher"].cache_info

    @property
    def teachers_scores(self) -> Optional[dict[str, Optional[dict]]]:
        """Each teacher's val scores by name (None: one teacher)."""
        return {n: m.scores for n, m in self.members.items()} if self.several else None

    @property
    def teacher_caches_info(self) -> Optional[dict[str, dict]]:
        """Each cached teacher's cache (summary.json's ``teacher_caches``; None: none, or one teacher)."""
        caches = {n: m.cache_info for n, m in self.members.items() if m.cache_info is not None}
        return caches if self.several and caches else None

    @property
    def teacher_label(self) -> str:
        """What ``teacher`` is, in words (the teacher report's titles)."""
        if not self.several:
            return "teacher"
        if self.ensemble_mode is not None:
            return f"{self.ensemble_mode} of {len(self.members)} teachers"
        return f"teacher '{self._best_member().name}', the best of {len(self.members)}"

    def _best_member(self) -> _Member:
        """The teacher with the best val mIoU (the first of equals; the first before they are scored)."""
        members = list(self.members.values())
        return max(members, key=lambda m: (m.scores or {}).get("mIoU", -1.0) if m.scores else -1.0)

    @contextmanager
    def inspection_teacher(self) -> Iterator[nn.Module]:
        """The teacher for looking inside (segkd.callbacks): the live one, or, when the cache let it go,
        the same checkpoint loaded again on this device for the duration, then let go again."""
        if self.teacher is not None:
            yield self.teacher
            return
        if self.ensemble is not None:
            kept = self.ensemble
            nets = {n: m.net if m.net is not None else self._reloaded(m) for n, m in self.members.items()}
            teacher = TeacherEnsemble(nets, kept.weights, kept.mode, {n: kept.log_prior(n) for n in nets})
        else:
            teacher = self._reloaded(self._best_member())
        teacher = teacher.to(self.device).eval()
        try:
            yield teacher
        finally:
            del teacher
            return_freed_memory(self.device)

    def _frozen_modules(self) -> list[nn.Module]:
        """Every frozen network still held, each once (an ensemble holds its live members)."""
        if self.ensemble is not None:
            return [self.ensemble]
        return [m.net for m in self.members.values() if m.net is not None]

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        for module in self._frozen_modules():
            module._apply(fn, *args, **kwargs)
        return self

    def __getstate__(self) -> dict:
        # Copies of the system (weight averaging's AveragedModel, pickling) hold the student side only:
        # the frozen teachers are not state of this system, and a copy of them would double their memory.
        state = super().__getstate__()
        state["teacher"] = state["ensemble"] = None
        state["members"] = {n: replace(m, net=None) for n, m in self.members.items()}
        return state

    def train(self, mode: bool = True):
        super().train(mode)
        for module in self._frozen_modules():
            module.eval()
        return self

    def setup(self, stage: str) -> None:
        """Score every teacher once, then build or open each cached teacher's cache and let it go: training
        reads the cache, so nothing needs that teacher any more and its memory is returned."""
        super().setup(stage)
        if stage != "fit":
            return
        device = self.trainer.strategy.root_device
        for module in self._frozen_modules():
            module.to(device)
        if self.teacher_scores is None:
            self._score_teachers()
        let_go = False
        for name, member in self.members.items():
            if not member.cache_options.get("enabled") or member.net is None:
                continue  # live, or a second fit of a cached system: already set up
            cache = self._teacher_cache(member)
            self.trainer.datamodule.attach_train_extra(cache.for_teacher(name) if self.several else cache)
            member.cache_info = cache.summary()
            member.net, let_go = None, True
            if self.ensemble is not None:
                self.ensemble.release(name)
            else:
                self._distiller_of(name).release("teacher")
        self.__dict__["teacher"] = self._taught()
        if (self.ensemble is not None and all(m.net is None for m in self.members.values())
                and "teacher" in self.distiller.recorders):
            self.distiller.release("teacher")
        if let_go:
            return_freed_memory(device)

    def _val_batches(self) -> Iterator[dict]:
        """The val split as validation reads it (fast_dev_run and limit_val_batches honoured)."""
        loader = self.trainer.datamodule.val_dataloader()
        limit = self.trainer.limit_val_batches  # honoured as validation would (fast_dev_run, limit_val_batches)
        batches = len(loader) if limit is None else int(limit) if isinstance(limit, int) else int(len(loader) * limit)
        for _, batch in zip(range(max(1, batches)), loader):
            yield batch

    @torch.no_grad()
    def _score_teachers(self) -> None:
        """Each teacher's scores on the whole val split, once, before training (reduced over DDP ranks),
        and an ensemble's from the same passes (its logits combined from theirs). ``teacher_scores`` is
        the ensemble's, or the best teacher's (the one teacher's)."""
        device = self.trainer.strategy.root_device
        scores = {name: NetScores(self.hparams.class_names, self.hparams.ignore_index).to(device)
                  for name in self.members}
        team = NetScores(self.hparams.class_names, self.hparams.ignore_index).to(device)
        for batch in self._val_batches():
            images, mask = batch["image"].to(device), batch["mask"].to(device)
            logits = {name: member.net(images) for name, member in self.members.items()}
            for name in self.members:
                scores[name].update(logits[name], mask)
            if self.ensemble is not None:
                team.update(self.ensemble.combine(logits), mask)
        for name, member in self.members.items():  # + calibration bins and per-class errors
            member.scores = scores[name].compute_and_reset(details=True)
        if self.ensemble is not None:
            self.teacher_scores = team.compute_and_reset(details=True)
        else:
            self.teacher_scores = self._best_member().scores

    def _teacher_cache(self, member: _Member) -> TeacherLogitCache:
        """Open (or, on rank 0, build) one teacher's cache, which the datamodule then has each train
        sample carry (``attach_train_extra``)."""
        datamodule, strategy, options = self.trainer.datamodule, self.trainer.strategy, member.cache_options
        kwargs = dict(
            teacher_checkpoint=member.checkpoint, dataset=datamodule.plain_train_set(member.size_divisor),
            normalisation=datamodule.normalisation,
            num_classes=len(self.hparams.class_names), cache_dir=options["dir"], path=options.get("path"),
            stride=int(options.get("stride") or 1), top_k=options.get("top_k"), flip=bool(options.get("flip", True)),
            batch_size=int(options.get("batch_size") or 8), num_workers=datamodule.num_workers,
            device=strategy.root_device, teacher_net=member.net_name, input_scale=member.input_scale,
        )
        cache = open_or_build(member.net, build=True, **kwargs) if self.trainer.is_global_zero else None
        strategy.barrier("teacher_cache")  # the other ranks open what rank 0 built
        if cache is None:
            cache = open_or_build(member.net, build=False, **kwargs)
        return cache

    def forward_gmacs(self, input_size: Sequence[int]) -> dict[str, dict[str, float]]:
        """The student and the distillation terms are trained; a live teacher runs forward only. A
        cached teacher runs no pass at training time: its one pass over the train split is the
        cache's build cost, recorded once in the cache (``build_gmacs``), not charged to each run.
        Called before fit, while the teachers are still loaded. With several teachers each live one is
        charged its own forward (``teacher/<name>``) and each teacher's terms count."""
        forward = super().forward_gmacs(input_size)
        if any(m.net is None for m in self.members.values()):
            raise RuntimeError("forward_gmacs needs the teachers; call it before fit lets a cached teacher go")
        if self.separately:
            terms = sum(self.distillers[n].terms_gmacs({"student": self.net, "teacher": m.net}, input_size)
                        for n, m in self.members.items())
        else:
            terms = self.distiller.terms_gmacs({"student": self.net, "teacher": self._taught()}, input_size)
        forward["trained"]["distill_terms"] = terms
        for name, member in self.members.items():
            if not member.cache_options.get("enabled"):
                label = f"teacher/{name}" if self.several else "teacher"
                forward["frozen"][label] = measure_complexity(member.net, input_size)["gmacs"]
        return forward

    def step_losses(self, batch: dict) -> tuple[Tensor, Tensor, dict[str, Tensor], dict[str, Tensor]]:
        """One batch's student logits, supervised loss, raw distillation terms and weighted terms (what
        ``training_step`` combines by the schedule). Terms of several teachers taught separately are
        named ``<term>/<teacher>`` and weighted by the teacher's weight too."""
        images, target = batch["image"], batch["mask"]
        if self.separately:
            logits, terms, weighted = self._separate_terms(batch)
        else:
            with self.distiller.record():
                logits = self.net(images)
                answers = self.teacher_set_logits(batch)
                if self.ensemble is not None:
                    teacher_logits = self.ensemble.combine(answers)
                else:
                    teacher_logits = without_prior(answers["teacher"], self._log_prior("teacher"))
                terms = self.distiller({"student": logits, "teacher": teacher_logits}, target)
            weighted = self.distiller.weighted(terms)
        supervised = self.criterion(logits, target)
        return logits, supervised, terms, weighted

    def teacher_set_logits(self, batch: dict) -> dict[str, Tensor]:
        """Each teacher's logits for this batch, as it answers (before its prior correction): replayed
        from its cache (``teacher_logits``, or ``teacher_logits/<name>`` of several) or computed live."""
        images, out = batch["image"], {}
        for name, member in self.members.items():
            replayed = batch.get(member.field)
            if replayed is not None:
                out[name] = replayed.float()
            else:
                with torch.no_grad():
                    out[name] = member.net(images)
        return out

    def _separate_terms(self, batch: dict) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
        """Each teacher through its own copy of the terms, weighted by its weight."""
        target = batch["mask"]
        with ExitStack() as stack:
            for distiller in self.distillers.values():
                stack.enter_context(distiller.record())
            logits = self.net(batch["image"])
            teacher_logits = self.teacher_set_logits(batch)
            terms, weighted = {}, {}
            for name, distiller in self.distillers.items():
                own = distiller({"student": logits,
                                 "teacher": without_prior(teacher_logits[name], self._log_prior(name))}, target)
                weight = self.members[name].entry.weight
                for term, value in distiller.weighted(own).items():
                    terms[f"{term}/{name}"] = own[term]
                    weighted[f"{term}/{name}"] = weight * value
        return logits, terms, weighted

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        phase = self.schedule(batches_seen(self.trainer, batch_idx), self.current_epoch)
        logits, supervised, terms, weighted = self.step_losses(batch)
        #: Read by segkd.callbacks.GradientBalance before the backward pass.
        self.loss_terms = {"supervised": supervised, **weighted}
        distill = sum(weighted.values(), torch.zeros((), device=self.device))
        loss = phase.supervised * supervised + phase.distill * distill
        n = len(logits)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, sync_dist=True, batch_size=n)
        self.log_dict(
            {"train/supervised": supervised, "train/distill": distill, **{f"train/kd/{k}": v for k, v in terms.items()}},
            on_step=False, on_epoch=True, sync_dist=True, batch_size=n,
        )
        self.log_dict({"schedule/supervised": phase.supervised, "schedule/distill": phase.distill}, on_step=True)
        return loss

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if not self.trainer.sanity_checking and self.teacher_scores is not None:
            self.log_dict(NetScores.loggable(self.teacher_scores, "teacher/val"))
            for name, own in (self.teachers_scores or {}).items():
                if own is not None:
                    self.log_dict(NetScores.loggable(own, f"teacher/{name}/val"))

    def run_scores(self) -> dict:
        scores = {**super().run_scores(), "teacher": self.teacher_scores, "teacher_cache": self.teacher_cache_info}
        if self.several:
            scores["teachers"] = self.teachers_scores
            scores["teacher_caches"] = self.teacher_caches_info
        return scores
