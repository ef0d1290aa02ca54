"""Loading a frozen teacher from a segkd checkpoint, refusing one that is not the configured teacher."""

from __future__ import annotations

import ctypes
import gc
import sys
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Optional

import math

import torch
from torch import Tensor, nn

from segkd.distill.ensemble import TeacherEnsemble
from segkd.functional.resize import at_scale, padded_logits
from segkd.models.architectures import size_divisor
from segkd.models.checkpoint import MAIN_NET, load_net, net_specs, read_checkpoint, spec_mismatch

HOW_TO_TRAIN = (
    "train one with `python -m segkd.run +experiment=teacher` and pass teacher_ckpt=<run>/checkpoints/last.ckpt "
    "(or set SEGKD_TEACHER_CKPT)"
)


def how_to_train(train_command: Optional[str], key: str = "teacher_ckpt") -> str:
    if key != "teacher_ckpt":  # one teacher of several (system.teachers.<name>.checkpoint)
        how = f"`{train_command}`" if train_command else "`python -m segkd.run +experiment=teacher`"
        return f"train it once with {how} and set {key}=<run>/checkpoints/last.ckpt"
    if not train_command:
        return HOW_TO_TRAIN
    return f"train it once with `{train_command}`, or pass teacher_ckpt=<run>/checkpoints/last.ckpt"


class Teacher(NamedTuple):
    net: nn.Module
    spec: dict
    #: The class weights of the cross-entropy it was trained with (None: unweighted), see segkd.losses.
    class_weights: Optional[torch.Tensor]


def load_teacher(
    checkpoint: Optional[str | Path], net: Optional[Mapping[str, Any]] = None, train_command: Optional[str] = None,
    name: str = MAIN_NET, key: str = "teacher_ckpt",
) -> Teacher:
    """The teacher net (eval mode, no gradients), its spec and its training class weights: network
    ``name`` of ``checkpoint``.

    Any segkd checkpoint will do (a teacher run, a KD student, or one network of a mutual-learning
    run with ``name`` = its peer name). ``net`` is the teacher the config expects; every argument it
    names must equal the checkpoint's, otherwise the error lists each mismatch. With ``net=None``
    the checkpoint's own spec is used. ``train_command`` is the one command that makes the expected
    checkpoint (the reference teacher's), named when it is missing. ``key`` is the setting that names
    the checkpoint (``teacher_ckpt``; ``system.teachers.<name>.checkpoint`` for one of several), named
    in the errors.
    """
    hint = how_to_train(train_command, key)
    if not checkpoint:
        raise ValueError(f"offline KD needs a teacher checkpoint: {hint}")
    ckpt = read_checkpoint(checkpoint, hint, key=key)
    saved = net_specs(ckpt).get(name)
    if net is not None and saved is not None:
        mismatch = spec_mismatch(saved, net)
        if mismatch:
            raise ValueError(
                f"teacher checkpoint {checkpoint} ('{name}') does not match the teacher config ({'; '.join(mismatch)}); "
                f"point {key} at the right run, or set model@{_net_key(key)} to the model it holds"
            )
    teacher, spec = load_net(checkpoint, name, hint, ckpt=ckpt)
    teacher.requires_grad_(False)
    weights = ckpt["state_dict"].get("criterion.weight")
    return Teacher(teacher, spec, weights.float() if weights is not None else None)


def _net_key(key: str) -> str:
    """Where the teacher the config expects is set, beside the key that names its checkpoint."""
    return "system.teacher.net" if key == "teacher_ckpt" else key.rsplit(".", 1)[0] + ".net"


def return_freed_memory(device: torch.device) -> None:
    """Hand memory freed by a released teacher back to the system, not just to the allocator.

    Without it a cached-teacher run keeps the resident size the teacher's weights and scoring
    activations reached, for the whole run (glibc's malloc keeps freed arenas; CUDA's caching
    allocator keeps its blocks).
    """
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to trim
            pass


class RescaledTeacher(nn.Module):
    """A teacher that looks at its input resized by ``scale`` and answers at the input's own size.

    A teacher trained with scale augmentation can be at its best at another scale than the one its
    student trains at: segkd's reference teacher (crops of 0.5-1.25x images) scores 33.5 val mIoU on
    the 128x256 images and 44.7 on the same images at 0.5x (docs/EVALUATION.md), where a 64x128
    view holds the whole scene, as its training crops did. ``system.teacher.input_scale`` lets it
    teach from there: its logits are computed at that scale and resized back (bilinear), through
    the same inference code segkd.evaluate uses. Its features live on another grid, so feature terms
    need ``input_scale: 1`` (the system says so).
    """

    def __init__(self, net: nn.Module, scale: float) -> None:
        super().__init__()
        if not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"system.teacher.input_scale={scale} must be a positive factor, e.g. 1.0 or 0.5")
        self.scale = float(scale)
        self.net = net  # module paths (hooks) are relative to it
        #: The rescaled view is padded to the network's own divisor (its output stride).
        self.size_divisor = size_divisor(net)
        self.train(net.training)  # a frozen teacher comes in eval mode and stays so

    def forward(self, images: Tensor) -> Tensor:
        return at_scale(lambda view: padded_logits(self.net, view, self.size_divisor), images, self.scale)


def unwrapped(net: nn.Module) -> nn.Module:
    """The network whose module paths the configs name (a rescaled teacher wraps it). Of an ensemble
    of teachers, its first teacher's: hooks on it fire when the ensemble answers, so the pictures show
    that teacher's layers beside the ensemble's predictions."""
    if isinstance(net, TeacherEnsemble):
        return unwrapped(next(iter(net.members.values())))
    return net.net if isinstance(net, RescaledTeacher) else net
