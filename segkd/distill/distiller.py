"""Distillation terms: which loss reads which tensors, through which connector, with what weight.

A term is ``{loss: {_target_...}, weight: w, inputs: {arg: source}, connector: bool}``. A source is
``<role>:logits`` or ``<role>:<feature ref>`` (see :mod:`segkd.distill.features`), or ``target``
(the label map). Roles name the networks a Distiller is built over: ``student`` (the one that
learns) and ``teacher`` (the one that teaches in this term): offline KD fills it with the frozen
checkpoint, mutual learning with each other network of the run in turn, so one paradigm YAML
serves both systems. Only the student's tensors carry gradient; the teacher's are detached.
``peer:`` is read as ``teacher:`` (the spelling of mutual-learning terms before they were paradigms).

Teacher and student may be different architectures (segkd.models.roles): feature references by
role (``encoder#k``, ``decoder``, ``logits``) exist in every smp network, and where the two
tensors of a term differ, it is reconciled so: a **connector** maps the student's channels onto the
teacher's (1x1 conv + BN) and resizes its map to the teacher's grid (bilinear); **logits** are
compared at the label map's resolution: a network whose logits come out at another size has them
resized to it (bilinear; every smp architecture already answers at its input's size, so for them
nothing changes).

Everything is checked when the system is built: each loss's ``forward`` signature against its
inputs, each role and feature reference against the nets (a place the network's architecture lacks
is one line naming the term, the network and the role references it has instead), the probe size
against each network's input divisor, each tensor shape (by one probe forward pass) so connectors
get the right channel counts, and each term once on the probe's tensors, so a term that cannot
compare them (two maps of different shapes without a connector) fails then, not at the first step.
"""

from __future__ import annotations

import inspect
from contextlib import ExitStack
from typing import Any, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import Tensor, nn

from segkd.distill.features import FeatureRecorder
from segkd.models.architectures import check_input_size, describe
from segkd.models.complexity import blank_input, count_gmacs, evaluating
from segkd.models.roles import feature_problem

ROLES = ("student", "teacher")
#: Older spellings of a role, read as the role itself.
ROLE_ALIASES = {"peer": "teacher"}


class Connector(nn.Module):
    """A trainable 1x1 conv + BN that maps student channels to the teacher's, resizing if the grids differ."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x: Tensor, size: Sequence[int]) -> Tensor:
        x = self.proj(x)
        if tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
        return x


def parse_source(source: str, roles: Sequence[str] = ROLES) -> tuple[str, Optional[str]]:
    """('target', None) or (role, 'logits' | feature ref), refusing roles this Distiller does not have."""
    if source == "target":
        return "target", None
    role, sep, ref = source.partition(":")
    role = ROLE_ALIASES.get(role, role)
    if role not in roles or not sep or not ref:
        examples = ", ".join(f"'{r}:logits'" for r in roles)
        raise ValueError(
            f"unknown tensor source '{source}'; use 'target', {examples}, or '<role>:<module path>[#k]' "
            f"with a role of {list(roles)}"
        )
    return role, ref


def check_signature(name: str, loss: nn.Module, inputs: Mapping[str, str], roles: Sequence[str] = ROLES) -> None:
    """The term's inputs must be exactly what the loss's forward can take, with nothing required left out."""
    params = inspect.signature(loss.forward).parameters
    owner = f"{type(loss).__name__}.forward({', '.join(params)})"
    unknown = [arg for arg in inputs if arg not in params]
    if unknown:
        raise ValueError(f"distillation term '{name}' maps {unknown} but {owner} takes no such argument")
    missing = [arg for arg, p in params.items() if p.default is inspect.Parameter.empty and arg not in inputs]
    if missing:
        raise ValueError(f"distillation term '{name}' gives no source for {missing} of {owner}; add them to its inputs")
    for source in inputs.values():
        parse_source(source, roles)


#: How the user names a term's settings: paradigms are composed into ``distill_paradigm`` (offline KD
#: and mutual learning read it as ``system.distill``).
TERM_KEY = "distill_paradigm.terms.{name}"


def non_negative_weight(key: str, value: Any, meaning: str) -> float:
    """A weight set at ``key``: finite and >= 0, else one line saying so and what ``meaning`` it has."""
    import math

    try:
        weight = float(value)
    except (TypeError, ValueError):
        weight = math.nan
    if not math.isfinite(weight) or weight < 0:
        raise ValueError(f"{key}.weight={value}: {meaning}")
    return weight


def term_weight(name: str, weight: Any) -> float:
    """A term's weight (a negative one would push the student away from its teacher)."""
    return non_negative_weight(TERM_KEY.format(name=name), weight,
                               "a term's weight must be a finite number >= 0 (0 switches the term off; a negative "
                               "weight pushes the student away from its teacher)")


def build_loss(name: str, term: Mapping[str, Any]) -> nn.Module:
    """The term's loss, its numeric arguments checked first and its own refusals named by their full key."""
    import math

    key = f"{TERM_KEY.format(name=name)}.loss"
    for arg, value in (term.get("loss") or {}).items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{key}.{arg}={value}: must be a finite number")
    try:
        return instantiate(term["loss"], _convert_="all")
    except Exception as err:
        from segkd.runtime.errors import users_error

        found = users_error(err)
        if isinstance(found, ValueError):  # the loss's own check ("tau must be > 0, got 0"): say whose
            raise ValueError(f"{key}: {found}") from None
        raise


class Distiller(nn.Module):
    """Losses and connectors (both nn.ModuleDicts, so they move and train with the student).

    ``nets`` maps each role to its network (``student`` and ``teacher``). Hooks record
    the features the terms read during the forward passes inside :meth:`record`; :meth:`forward`
    turns them into one raw value per term (weights are applied by the system, which also owns the
    schedule).
    """

    def __init__(
        self,
        terms: Mapping[str, Optional[Mapping[str, Any]]],
        nets: Mapping[str, nn.Module],
        probe_size: Sequence[int] = (64, 64),
        in_channels: int = 3,
        size_key: str = "probe_size",
    ) -> None:
        """``probe_size`` is the input size of the probe pass (a system's train crop; ``size_key`` names
        the setting it came from in errors)."""
        super().__init__()
        if "student" not in nets:
            raise ValueError(f"a Distiller needs a 'student' network, got roles {list(nets)}")
        self.roles = tuple(nets)
        self.losses = nn.ModuleDict()
        self.connectors = nn.ModuleDict()
        self.weights: dict[str, float] = {}
        self.inputs: dict[str, dict[str, str]] = {}
        refs: dict[str, list[str]] = {role: [] for role in self.roles}
        terms = {name: term for name, term in terms.items() if term is not None}  # None: switched off
        for name, term in terms.items():
            loss = build_loss(name, term)
            inputs = dict(term["inputs"])
            check_signature(name, loss, inputs, self.roles)
            self.losses[name] = loss
            self.weights[name] = term_weight(name, term.get("weight", 1.0))
            self.inputs[name] = inputs
            for source in inputs.values():
                role, ref = parse_source(source, self.roles)
                if role != "target" and ref != "logits":
                    problem = feature_problem(nets[role], ref, role, dict(nets))
                    if problem:
                        raise ValueError(f"distillation term '{name}': {problem}")
                    refs[role].append(ref)
        for role, net in nets.items():
            check_input_size(net, list(probe_size), size_key, what=f"the {role} {describe(net)}")
        self.recorders = {role: FeatureRecorder(net, refs[role], role) for role, net in nets.items()}
        tensors = self._probe(nets, probe_size, in_channels)
        shapes = {source: tuple(t.shape) for source, t in tensors.items()}
        for name, term in terms.items():
            if term.get("connector", False):
                # A connector maps the loss's `student` argument onto the shape of its `teacher` argument
                # (whichever network teaches: the frozen teacher, or a peer of a mutual-learning run).
                student, teacher = self.inputs[name].get("student"), self.inputs[name].get("teacher")
                if student is None or teacher is None:
                    raise ValueError(f"distillation term '{name}' has a connector but no student and teacher inputs")
                student, teacher = (":".join(parse_source(s, self.roles)) for s in (student, teacher))
                self.connectors[name] = Connector(shapes[student][1], shapes[teacher][1])
        self._check_terms(tensors, probe_size)

    def _probe(self, nets: Mapping[str, nn.Module], size: Sequence[int], in_channels: int) -> dict[str, Tensor]:
        """One forward pass of each net on a blank image, to learn every tensor's shape now, not at step 1:
        ``<role>:logits`` and ``<role>:<ref>`` -> the tensor."""
        x = torch.zeros(2, in_channels, *size)
        tensors = {}
        for role, net in nets.items():
            was_training = net.training
            net.eval()
            try:
                with torch.no_grad(), self.recorders[role].record() as rec:
                    tensors[f"{role}:logits"] = net(x.to(next(net.parameters()).device))
                    tensors.update({f"{role}:{ref}": t for ref, t in rec.features().items()})
            finally:
                net.train(was_training)
        return tensors

    def _check_terms(self, tensors: Mapping[str, Tensor], size: Sequence[int]) -> None:
        """Every term once on the probe's tensors (connectors in eval mode: no statistics move), so that
        a term that cannot compare what it reads fails when the system is built, naming itself."""
        student = tensors["student:logits"]
        target = torch.zeros(student.shape[0], *size, dtype=torch.long, device=student.device)
        logits = {role: tensors[f"{role}:logits"] for role in self.roles}
        with torch.no_grad(), evaluating(*self.connectors.values()):
            for name in self.losses:
                try:
                    self._term(name, lambda source: target if source == "target" else
                               self._aligned(tensors[":".join(parse_source(source, self.roles))], source, logits,
                                             target))
                except (ValueError, RuntimeError) as err:
                    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                    raise ValueError(f"distillation term '{name}' cannot compare the tensors it reads "
                                     f"({', '.join(self.inputs[name].values())}): {first}") from None

    def terms_reading_features(self, role: str) -> list[str]:
        """Terms that need ``role``'s intermediate features (not just its logits)."""
        return [name for name, inputs in self.inputs.items()
                if any(parse_source(src, self.roles)[0] == role and parse_source(src, self.roles)[1] != "logits"
                       for src in inputs.values())]

    def release(self, role: str) -> None:
        """Stop recording ``role`` (its network is let go, e.g. a teacher replaced by its logit cache)."""
        self.recorders.pop(role).remove()

    def record(self) -> ExitStack:
        """Context manager around the forward passes of a step: clears, then fills, the feature buffers."""
        stack = ExitStack()
        for recorder in self.recorders.values():
            stack.enter_context(recorder.record())
        return stack

    def _tensor(self, source: str, logits: Mapping[str, Tensor], target: Optional[Tensor]) -> Tensor:
        role, ref = parse_source(source, self.roles)
        if role == "target":
            return target
        tensor = logits[role] if ref == "logits" else self.recorders[role].get(ref)
        return self._aligned(tensor, source, logits, target)

    def _aligned(self, tensor: Tensor, source: str, logits: Mapping[str, Tensor], target: Optional[Tensor]) -> Tensor:
        """A role's tensor as a term reads it: detached unless it is the student's; logits at the label
        map's resolution (the student's logits' without labels), resized bilinearly when a network
        answers at another size."""
        role, ref = parse_source(source, self.roles)
        if ref == "logits":
            size = tuple(target.shape[-2:]) if target is not None else tuple(logits["student"].shape[-2:])
            if tuple(tensor.shape[-2:]) != size:
                tensor = F.interpolate(tensor, size=size, mode="bilinear", align_corners=False)
        return tensor if role == "student" else tensor.detach()

    def _term(self, name: str, tensor_of) -> Tensor:
        """Term ``name``'s raw value, ``tensor_of(source)`` giving each of its inputs."""
        args = {arg: tensor_of(src) for arg, src in self.inputs[name].items()}
        if name in self.connectors:
            args["student"] = self.connectors[name](args["student"], args["teacher"].shape[-2:])
        # In full precision even under bf16/fp16 autocast: a tempered softmax over 19 classes, or a
        # KL between nearly equal distributions, keeps few of its digits in 8 mantissa bits.
        args = {k: v.float() if torch.is_floating_point(v) else v for k, v in args.items()}
        with torch.autocast(device_type=next(iter(args.values())).device.type, enabled=False):
            return self.losses[name](**args)

    def forward(self, logits: Mapping[str, Tensor], target: Optional[Tensor] = None) -> dict[str, Tensor]:
        """Raw value of every term, from each role's logits (``{"student": ..., "teacher": ...}``) and the labels."""
        return {name: self._term(name, lambda source: self._tensor(source, logits, target)) for name in self.losses}

    def terms_gmacs(self, nets: Mapping[str, nn.Module], input_size: Sequence[int]) -> float:
        """Forward GMACs per sample of the terms themselves (connectors, and losses that multiply
        matrices, such as pair-wise affinity), on a blank image at ``input_size``: part of what a
        training step costs beside the networks' own passes."""
        if not self.losses:
            return 0.0
        student = nets["student"]
        x = blank_input(student, input_size)
        target = torch.zeros(1, *input_size, dtype=torch.long, device=x.device)
        with torch.no_grad(), evaluating(*nets.values(), self), self.record():
            logits = {role: net(x) for role, net in nets.items()}
            return count_gmacs(lambda: self(logits, target))

    def weighted(self, values: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return {name: self.weights[name] * value for name, value in values.items()}
