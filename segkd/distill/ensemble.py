"""Several frozen teachers answering as one: the logits a set of teachers teaches through.

Distillation terms read a teacher's *logits* and apply their own temperature, so an ensemble has to
be one logit tensor that means the same at every temperature. Two rules give one:

``mean``: the weighted mean of the teachers' logits, ``z = sum_i w_i z_i / sum_i w_i``. Its tempered
softmax is, at every temperature T, the normalised weighted geometric mean of the teachers' tempered
distributions (``softmax(z/T) ∝ prod_i softmax(z_i/T) ** (w_i / sum w)``): the geometric-mean soft
target Hinton, Vinyals and Dean (2015, "Distilling the Knowledge in a Neural Network", section 2)
name beside the arithmetic mean for distilling an ensemble. You, Xu, Xu and Tao (KDD 2017,
"Learning from Multiple Teacher Networks") average the teachers' softened outputs, the arithmetic
mean at one temperature; that is a probability map, not logits that hold at every temperature, so
segkd does not offer it.

``confident``: at each pixel, the logits of the teacher whose softmax (T = 1) is the most confident
there, i.e. has the highest maximum probability; a tie goes to the teacher listed first. This rule is
segkd's choice and cites no paper: the closest published ones weight the teachers rather than pick
one (Zhang, Chen and Wang 2022, "Confidence-Aware Multi-Teacher Knowledge Distillation", per sample,
by each teacher's agreement with the label; Wang et al. 2023, "MTED", Neural Computing and
Applications, per pixel, by a learned module).

Both rules read each teacher's logits after that teacher's prior correction and input scale, live
or replayed from its cache alike (:meth:`TeacherEnsemble.combine`), so a cached ensemble is exactly
the live one.
"""

from __future__ import annotations

import math
from typing import Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from segkd.models.architectures import needs_divisible_input, size_divisor

ENSEMBLE_MODES = ("mean", "confident")


def _same_size(logits: Sequence[Tensor]) -> list[Tensor]:
    """Teachers answering at different sizes (an external one) meet at the largest (bilinear)."""
    size = max((tuple(z.shape[-2:]) for z in logits), key=lambda s: s[0] * s[1])
    return [z if tuple(z.shape[-2:]) == size else F.interpolate(z, size=size, mode="bilinear", align_corners=False)
            for z in logits]


def ensemble_logits(logits: Sequence[Tensor], weights: Sequence[float], mode: str) -> Tensor:
    """The teachers' (N, C, H, W) logits combined by ``mode`` (module docstring), in float32."""
    logits = _same_size([z.float() for z in logits])
    if mode == "mean":
        total = float(sum(weights))
        return sum((w / total) * z for w, z in zip(weights, logits) if w)
    if mode == "confident":
        stacked = torch.stack(logits)  # (T, N, C, H, W)
        confidence = stacked.softmax(dim=2).amax(dim=2)  # (T, N, H, W)
        pick = confidence.argmax(dim=0, keepdim=True)  # the first of equal maxima
        return stacked.gather(0, pick.unsqueeze(2).expand(1, *stacked.shape[1:]))[0]
    raise ValueError(f"unknown ensemble mode {mode!r}; use one of {list(ENSEMBLE_MODES)}")


def without_prior(logits: Tensor, log_prior: Optional[Tensor]) -> Tensor:
    """A teacher's logits with the log of its training class weights taken out (None: unchanged);
    segkd.systems.DistillationSystem says why."""
    return logits if log_prior is None else logits - log_prior


class TeacherEnsemble(nn.Module):
    """Frozen teachers (each as training sees it: rescaled when it has an input scale) that answer as
    one teacher, so scoring, the teacher report and the pictures treat the set as "the teacher".

    It holds each teacher's prior correction (``log_priors``) because the combination reads corrected
    logits; :meth:`combine` works without the networks, on logits replayed from their caches, and a
    teacher whose cache let it go is dropped from :attr:`members` (:meth:`release`).
    """

    def __init__(self, members: Mapping[str, nn.Module], weights: Mapping[str, float], mode: str,
                 log_priors: Optional[Mapping[str, Optional[Tensor]]] = None) -> None:
        super().__init__()
        if mode not in ENSEMBLE_MODES:
            raise ValueError(f"unknown ensemble mode {mode!r}; use one of {list(ENSEMBLE_MODES)}")
        self.names = list(members)
        self.members = nn.ModuleDict(members)
        self.weights = {name: float(weights[name]) for name in self.names}
        self.mode = mode
        for i, name in enumerate(self.names):
            self.register_buffer(f"log_prior_{i}", (log_priors or {}).get(name), persistent=False)
        #: What its input is padded to, and whether it must be (segkd.models.architectures reads these).
        self.size_divisor = math.lcm(*(size_divisor(m) for m in members.values()))
        self.requires_divisible_input_shape = any(needs_divisible_input(m) for m in members.values())
        self.train(False)

    def log_prior(self, name: str) -> Optional[Tensor]:
        return getattr(self, f"log_prior_{self.names.index(name)}")

    def combine(self, logits: Mapping[str, Tensor]) -> Tensor:
        """The ensemble's logits from each teacher's own (uncorrected: as it answers, or as its cache replays it)."""
        return ensemble_logits([without_prior(logits[n].float(), self.log_prior(n)) for n in self.names],
                               [self.weights[n] for n in self.names], self.mode)

    def forward(self, images: Tensor) -> Tensor:
        missing = [n for n in self.names if n not in self.members]
        if missing:
            raise RuntimeError(f"teachers {missing} were let go for their caches; combine their replayed logits")
        return self.combine({name: member(images) for name, member in self.members.items()})

    def release(self, name: str) -> None:
        """Let teacher ``name`` go (its logits come from its cache from now on)."""
        del self.members[name]

    def extra_repr(self) -> str:
        return f"mode={self.mode}, weights={self.weights}"
