"""Offline knowledge distillation: a student learns from labels and from a frozen teacher."""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Iterator, Optional, Sequence

import torch
from hydra.utils import instantiate
from torch import Tensor, nn

from segkd.config import to_plain
from segkd.distill.distiller import Distiller, parse_source
from segkd.distill.external_teacher import load_external_teacher, refuse_features_of_scripted
from segkd.distill.teacher import RescaledTeacher, Teacher, load_teacher, return_freed_memory
from segkd.distill.teacher_cache import open_or_build
from segkd.metrics import NetScores
from segkd.models import measure_complexity, size_divisor
from segkd.models.checkpoint import MAIN_NET
from segkd.systems.base import SystemBase
from segkd.systems.optim import batches_seen


def _input_scale(value: Any) -> float:
    """The teacher's input scale, refused as the user set it (``teacher_scale=``) unless a positive factor:
    0 must not quietly mean 1."""
    import math

    scale = 1.0 if value is None else value
    try:
        scale = float(scale)
    except (TypeError, ValueError):
        scale = math.nan
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"teacher_scale={value} (system.teacher.input_scale) must be a positive factor: 1.0 shows the "
                         "teacher the student's own view, 0.5 half-size images")
    return scale


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
    """

    job_type = "offline_kd"

    def __init__(
        self,
        net: dict[str, Any],
        class_names: Sequence[str],
        loss: dict[str, Any],
        optimizer: dict[str, Any],
        teacher: dict[str, Any],
        distill: dict[str, Any],
        schedule: dict[str, Any],
        scheduler: Optional[dict[str, Any]] = None,
        ignore_index: int = 255,
        probe_size: Sequence[int] = (64, 64),
    ) -> None:
        teacher, distill, schedule = (to_plain(x) for x in (teacher, distill, schedule))
        probe_size = list(probe_size)
        super().__init__(net, class_names, loss, optimizer, scheduler, ignore_index)
        self.teacher_net_name = teacher.get("checkpoint_net") or MAIN_NET
        self.teacher_spec = teacher
        self.teacher_checkpoint = teacher.get("checkpoint")
        self.external_teacher = teacher.get("external") or None
        loaded = self._load_teacher()
        teacher_net = loaded.net
        if self.external_teacher:
            # The cache and the reports name it by its weights file and its identity (factory, label map).
            self.teacher_checkpoint, self.teacher_net_name = self.external_teacher["weights"], loaded.spec["identity"]
            refuse_features_of_scripted(teacher_net, [
                name for name, term in (distill.get("terms") or {}).items() if term is not None
                and any(parse_source(src)[0] == "teacher" and parse_source(src)[1] != "logits"
                        for src in (term.get("inputs") or {}).values())])
        log_prior = None
        if teacher.get("prior_correction") and loaded.class_weights is not None:
            log_prior = loaded.class_weights.clamp_min(1e-12).log().view(1, -1, 1, 1)
        #: log of the teacher's training class weights, subtracted from its logits (None: no correction).
        self.register_buffer("teacher_log_prior", log_prior, persistent=False)
        self.distiller = Distiller(distill.get("terms") or {}, {"student": self.net, "teacher": teacher_net}, probe_size,
                                   size_key="dataset.crop_size")
        #: What the teacher's inputs are padded to (it may be let go for its cache; its divisor stays).
        self.teacher_size_divisor = size_divisor(teacher_net)
        self.teacher_input_scale = _input_scale(teacher.get("input_scale"))
        if self.teacher_input_scale != 1.0:
            feature_terms = self.distiller.terms_reading_features("teacher")
            if feature_terms:
                raise ValueError(
                    f"system.teacher.input_scale={self.teacher_input_scale} rescales what the teacher sees, so its "
                    f"features are on another grid than the student's, but distillation terms {feature_terms} read "
                    "them; use input_scale 1 with feature terms"
                )
        self.__dict__["teacher"] = self._as_seen(teacher_net)  # not a submodule: see the class docstring
        self.cache_options = dict(teacher.get("cache") or {})
        if self.cache_options.get("enabled"):
            feature_terms = self.distiller.terms_reading_features("teacher")
            if feature_terms:
                raise ValueError(
                    f"the teacher cache holds logits only, but distillation terms {feature_terms} read teacher "
                    "features, which need the live teacher; set teacher_cache=false for this paradigm"
                )
        self.teacher_cache_info: Optional[dict] = None
        self.schedule = instantiate(schedule)
        self.teacher_scores_of = NetScores(class_names, ignore_index)
        self.teacher_scores: Optional[dict] = None

    @property
    def size_divisor(self) -> int:
        """Val images are read by the student and the teacher alike: a multiple of both divisors."""
        return math.lcm(super().size_divisor, self.teacher_size_divisor)

    def _load_teacher(self) -> Teacher:
        spec = self.teacher_spec
        if spec.get("external"):
            net, identity = load_external_teacher(spec["external"], self.hparams.class_names)
            return Teacher(net, {**spec["external"], "identity": identity}, None)
        return load_teacher(spec.get("checkpoint"), spec.get("net"), spec.get("train_command"), self.teacher_net_name)

    def _as_seen(self, teacher_net: nn.Module) -> nn.Module:
        """The teacher as training sees it (rescaled input when ``input_scale`` != 1)."""
        if self.teacher_input_scale != 1.0:
            return RescaledTeacher(teacher_net, self.teacher_input_scale)
        return teacher_net

    @contextmanager
    def inspection_teacher(self) -> Iterator[nn.Module]:
        """The teacher for looking inside (segkd.callbacks): the live one, or, when the cache let it go,
        the same checkpoint loaded again on this device for the duration, then let go again."""
        if self.teacher is not None:
            yield self.teacher
            return
        teacher = self._as_seen(self._load_teacher().net).to(self.device).eval()
        try:
            yield teacher
        finally:
            del teacher
            return_freed_memory(self.device)

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        if self.teacher is not None:
            self.teacher._apply(fn, *args, **kwargs)
        return self

    def __getstate__(self) -> dict:
        # Copies of the system (weight averaging's AveragedModel, pickling) hold the student side only:
        # the frozen teacher is not state of this system, and a copy of it would double its memory.
        state = super().__getstate__()
        state["teacher"] = None
        return state

    def train(self, mode: bool = True):
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage != "fit" or self.teacher is None:  # a second fit of a cached system: already set up
            return
        self.teacher.to(self.trainer.strategy.root_device)
        if self.teacher_scores is None:
            self.teacher_scores = self._score_teacher()
        if self.cache_options.get("enabled"):
            self._attach_teacher_cache()
            # Training reads the cache; nothing needs the teacher any more, so its memory is returned.
            self.distiller.release("teacher")
            self.__dict__["teacher"] = None
            return_freed_memory(self.trainer.strategy.root_device)

    @torch.no_grad()
    def _score_teacher(self) -> dict:
        """The teacher's scores on the whole val split, once, before training (reduced over DDP ranks)."""
        device = self.trainer.strategy.root_device
        scores = self.teacher_scores_of.to(device)
        loader = self.trainer.datamodule.val_dataloader()
        limit = self.trainer.limit_val_batches  # honoured as validation would (fast_dev_run, limit_val_batches)
        batches = len(loader) if limit is None else int(limit) if isinstance(limit, int) else int(len(loader) * limit)
        for _, batch in zip(range(max(1, batches)), loader):
            scores.update(self.teacher(batch["image"].to(device)), batch["mask"].to(device))
        return scores.compute_and_reset(details=True)  # + calibration bins and per-class errors

    def _attach_teacher_cache(self) -> None:
        """Open (or, on rank 0, build) the cache and hand it to the datamodule, which has each train
        sample carry its teacher logits."""
        datamodule, strategy = self.trainer.datamodule, self.trainer.strategy
        options = self.cache_options
        kwargs = dict(
            teacher_checkpoint=self.teacher_checkpoint, dataset=datamodule.plain_train_set(self.teacher_size_divisor),
            normalisation=datamodule.normalisation,
            num_classes=len(self.hparams.class_names), cache_dir=options["dir"], path=options.get("path"),
            stride=int(options.get("stride") or 1), top_k=options.get("top_k"), flip=bool(options.get("flip", True)),
            batch_size=int(options.get("batch_size") or 8), num_workers=datamodule.num_workers,
            device=strategy.root_device, teacher_net=self.teacher_net_name, input_scale=self.teacher_input_scale,
        )
        cache = open_or_build(self.teacher, build=True, **kwargs) if self.trainer.is_global_zero else None
        strategy.barrier("teacher_cache")  # the other ranks open what rank 0 built
        if cache is None:
            cache = open_or_build(self.teacher, build=False, **kwargs)
        datamodule.attach_train_extra(cache)
        self.teacher_cache_info = cache.summary()

    def forward_gmacs(self, input_size: Sequence[int]) -> dict[str, dict[str, float]]:
        """The student and the distillation terms are trained; a live teacher runs forward only. A
        cached teacher runs no pass at training time: its one pass over the train split is the
        cache's build cost, recorded once in the cache (``build_gmacs``), not charged to each run.
        Called before fit, while the teacher is still loaded."""
        forward = super().forward_gmacs(input_size)
        teacher = self.teacher
        if teacher is None:
            raise RuntimeError("forward_gmacs needs the teacher; call it before fit lets a cached teacher go")
        forward["trained"]["distill_terms"] = self.distiller.terms_gmacs(
            {"student": self.net, "teacher": teacher}, input_size)
        if not self.cache_options.get("enabled"):
            forward["frozen"]["teacher"] = measure_complexity(teacher, input_size)["gmacs"]
        return forward

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        images, target = batch["image"], batch["mask"]
        phase = self.schedule(batches_seen(self.trainer, batch_idx), self.current_epoch)
        with self.distiller.record():
            logits = self.net(images)
            if "teacher_logits" in batch:  # replayed from the teacher cache
                teacher_logits = batch["teacher_logits"].float()
            else:
                with torch.no_grad():
                    teacher_logits = self.teacher(images)
            if self.teacher_log_prior is not None:  # no full-size subtraction per step when off
                teacher_logits = teacher_logits - self.teacher_log_prior
            terms = self.distiller({"student": logits, "teacher": teacher_logits}, target)
        supervised = self.criterion(logits, target)
        weighted = self.distiller.weighted(terms)
        #: Read by segkd.callbacks.GradientBalance before the backward pass.
        self.loss_terms = {"supervised": supervised, **weighted}
        distill = sum(weighted.values(), torch.zeros((), device=self.device))
        loss = phase.supervised * supervised + phase.distill * distill
        n = len(images)
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

    def run_scores(self) -> dict:
        return {**super().run_scores(), "teacher": self.teacher_scores, "teacher_cache": self.teacher_cache_info}
