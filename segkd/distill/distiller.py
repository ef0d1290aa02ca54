"""Distillation terms: which loss reads which tensors, through which connector, with what weight.

A term is ``{loss: {_target_...}, weight: w, inputs: {arg: source}, connector: bool}``. Sources are
``student:logits``, ``teacher:logits``, ``student:<feature ref>``, ``teacher:<feature ref>`` (see
:mod:`segkd.distill.features`) and ``target`` (the label map). Everything is checked when the system
is built: each loss's ``forward`` signature against its inputs, each module path against the nets,
and each tensor shape (by one probe forward pass) so connectors get the right channel counts.
"""

from __future__ import annotations

import inspect
from contextlib import ExitStack
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import Tensor, nn

from segkd.distill.features import FeatureRecorder

ROLES = ("student", "teacher")


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


def parse_source(source: str) -> tuple[str, str | None]:
    """('student'|'teacher'|'target', ref or None)."""
    if source == "target":
        return "target", None
    role, sep, ref = source.partition(":")
    if role not in ROLES or not sep or not ref:
        raise ValueError(
            f"unknown tensor source '{source}'; use 'target', 'student:logits', 'teacher:logits', "
            "or 'student:<module path>[#k]' / 'teacher:<module path>[#k]'"
        )
    return role, ref


def check_signature(name: str, loss: nn.Module, inputs: Mapping[str, str]) -> None:
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
        parse_source(source)


class Distiller(nn.Module):
    """Losses and connectors (both nn.ModuleDicts, so they move and train with the student).

    Hooks record the student's and the teacher's features during their forward passes;
    :meth:`forward` turns them into one raw value per term (weights are applied by the system, which
    also owns the schedule).
    """

    def __init__(
        self,
        terms: Mapping[str, Mapping[str, Any]],
        student: nn.Module,
        teacher: nn.Module,
        probe_size: Sequence[int] = (64, 64),
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        self.losses = nn.ModuleDict()
        self.connectors = nn.ModuleDict()
        self.weights: dict[str, float] = {}
        self.inputs: dict[str, dict[str, str]] = {}
        refs: dict[str, list[str]] = {"student": [], "teacher": []}
        for name, term in terms.items():
            if term is None:  # switched off from the command line
                continue
            loss = instantiate(term["loss"], _convert_="all")
            inputs = dict(term["inputs"])
            check_signature(name, loss, inputs)
            self.losses[name] = loss
            self.weights[name] = float(term.get("weight", 1.0))
            self.inputs[name] = inputs
            for source in inputs.values():
                role, ref = parse_source(source)
                if role in ROLES and ref != "logits":
                    refs[role].append(ref)
        self.recorders = {
            "student": FeatureRecorder(student, refs["student"], "student"),
            "teacher": FeatureRecorder(teacher, refs["teacher"], "teacher"),
        }
        shapes = self._probe(student, teacher, probe_size, in_channels)
        for name, term in terms.items():
            if term is None:
                continue
            if term.get("connector", False):
                s, t = self.inputs[name].get("student"), self.inputs[name].get("teacher")
                if s is None or t is None:
                    raise ValueError(f"distillation term '{name}' has a connector but no student and teacher inputs")
                self.connectors[name] = Connector(shapes[s][1], shapes[t][1])

    def _probe(self, student: nn.Module, teacher: nn.Module, size: Sequence[int], in_channels: int) -> dict:
        """One forward pass of each net on a blank image, to learn every tensor's shape now, not at step 1."""
        x = torch.zeros(2, in_channels, *size)
        shapes = {}
        for role, net in (("student", student), ("teacher", teacher)):
            was_training = net.training
            net.eval()
            try:
                with torch.no_grad(), self.recorders[role].record() as rec:
                    logits = net(x.to(next(net.parameters()).device))
                    shapes[f"{role}:logits"] = tuple(logits.shape)
                    shapes.update({f"{role}:{ref}": tuple(t.shape) for ref, t in rec.features().items()})
            finally:
                net.train(was_training)
        return shapes

    def terms_reading_teacher_features(self) -> list[str]:
        """Terms that need the teacher's intermediate features (not just its logits)."""
        return [name for name, inputs in self.inputs.items()
                if any(parse_source(src)[0] == "teacher" and parse_source(src)[1] != "logits" for src in inputs.values())]

    def record(self) -> ExitStack:
        """Context manager around both forward passes of a step: clears, then fills, the feature buffers."""
        stack = ExitStack()
        for recorder in self.recorders.values():
            stack.enter_context(recorder.record())
        return stack

    def _tensor(self, source: str, logits: Mapping[str, Tensor], target: Tensor | None) -> Tensor:
        role, ref = parse_source(source)
        if role == "target":
            return target
        return logits[role] if ref == "logits" else self.recorders[role].get(ref)

    def forward(self, student_logits: Tensor, teacher_logits: Tensor, target: Tensor | None = None) -> dict[str, Tensor]:
        logits = {"student": student_logits, "teacher": teacher_logits}
        values = {}
        for name, loss in self.losses.items():
            args = {arg: self._tensor(src, logits, target) for arg, src in self.inputs[name].items()}
            if name in self.connectors:
                args["student"] = self.connectors[name](args["student"], args["teacher"].shape[-2:])
            values[name] = loss(**args)
        return values
