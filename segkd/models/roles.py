"""Features by role: the places every smp architecture has, named the same in all of them.

A distillation term reads a network's tensors by feature reference (segkd.distill.features): a module
path, ``path#k`` for the k-th element of a module that returns a list, ``path@n`` for its n-th call.
Three references mean the same thing in every smp network (Unet, FPN, DeepLabV3+, Segformer, ...),
because smp builds each as ``encoder -> decoder -> segmentation_head``:

- ``encoder#k``: **encoder stage k**, the k-th tensor of the list the encoder returns (``#0`` is
  the input, stage k is at stride 2^k, or at the encoder's output stride once it dilates: stages 4
  and 5 of DeepLabV3+ are both at 1/16);
- ``decoder``: **the decoder's output**, the map the segmentation head reads (full resolution in a
  Unet, 1/4 in FPN, DeepLabV3+, UPerNet and Segformer);
- ``logits``: **the network's output** (a Distiller reads it from the forward pass, not a hook).

A paradigm written with these works across architectures; a term that names a module only one
architecture has (``decoder.blocks.2``, a block of smp's Unet decoder) works where that module is.
:func:`missing_feature` says, before anything runs, what a network lacks for a reference, and
:func:`role_refs` which role references it offers instead.
"""

from __future__ import annotations

import re
from typing import Optional

from torch import nn

from segkd.models.architectures import describe

#: The role references (``encoder#<k>`` stands for every stage).
ROLES = ("encoder#<k>", "decoder", "logits")
#: Module paths that belong to one architecture's decoder, and which (what a failure line names).
ARCHITECTURE_PATHS = ((re.compile(r"decoder\.(blocks\.\d+|center)(\.|$)"), "Unet"),)


def parse_ref(ref: str) -> tuple[str, Optional[int], Optional[int]]:
    """``path[@call][#k]`` -> (path, call or None, k or None)."""
    head, _, index = ref.partition("#")
    path, _, call = head.partition("@")
    try:
        return path, (int(call) if call else None), (int(index) if index else None)
    except ValueError:
        raise ValueError(f"bad feature reference '{ref}'; use '<module path>[@<call>][#<index>]'") from None


def encoder_channels(net: nn.Module) -> Optional[list[int]]:
    """Channels of each tensor the encoder returns (``#0`` the input), for an smp encoder."""
    channels = getattr(getattr(net, "encoder", None), "out_channels", None)
    return [int(c) for c in channels] if isinstance(channels, (list, tuple)) else None


def role_refs(net: nn.Module) -> list[str]:
    """The role references ``net`` offers: each non-empty encoder stage, its decoder, its logits."""
    modules = dict(net.named_modules())
    refs = [f"encoder#{k}" for k, c in enumerate(encoder_channels(net) or []) if k > 0 and c > 0]
    return refs + (["decoder"] if "decoder" in modules else []) + ["logits"]


def architecture_of_path(path: str) -> Optional[str]:
    """The architecture whose decoder a module path names (``decoder.blocks.2``: smp's Unet), if known."""
    return next((arch for pattern, arch in ARCHITECTURE_PATHS if pattern.match(path)), None)


def missing_feature(net: nn.Module, ref: str) -> Optional[str]:
    """What ``net`` lacks for feature reference ``ref`` (``no module 'decoder.blocks.2'``, ``no encoder
    stage 6 ...``), or None when it has it. Only what is known without a forward pass: a module
    path, and an encoder stage against the channels the smp encoder declares."""
    path, _, index = parse_ref(ref)
    if ref == "logits":
        return None
    modules = dict(net.named_modules())
    if not path or path not in modules:
        return f"no module '{path}'"
    channels = encoder_channels(net) if path == "encoder" else None
    if channels is not None and index is not None:
        if index >= len(channels):
            return (f"no encoder stage {index} (its encoder returns stages 0-{len(channels) - 1}, "
                    f"0 being the input)")
        if channels[index] == 0:
            return f"no encoder stage {index} (its encoder leaves stage {index} empty: 0 channels)"
    return None


def is_architecture(net: nn.Module, arch: str) -> bool:
    return type(net).__name__ == arch


def feature_problem(net: nn.Module, ref: str, owner: str, others: dict[str, nn.Module]) -> Optional[str]:
    """One clause saying why ``net`` (the ``owner``: student, teacher, a peer) cannot give ``ref``, with
    the role references it has instead, when the reference names a place of another architecture or
    an encoder stage it lacks; None when it can give it, or when the reference is just not a path of
    any network here (a typo: segkd.distill.features lists the valid paths near it)."""
    problem = missing_feature(net, ref)
    if problem is None:
        return None
    path = parse_ref(ref)[0]
    home = architecture_of_path(path)
    holder = next(((role, other) for role, other in others.items()
                   if other is not net and missing_feature(other, ref) is None), None)
    if problem.startswith("no module") and holder is None and (home is None or is_architecture(net, home)):
        return None  # not a place of another architecture: a mistyped path
    where = ""
    if holder is not None:
        where = f", which the {holder[0]}, {describe(holder[1])}, has"
    elif home is not None:
        where = f" (a module of smp's {home} decoder)"
    needs = f"this term needs a {home} {owner}; " if home is not None and problem.startswith("no module") else ""
    roles = ", ".join(role_refs(net))
    return (f"the {owner}, {describe(net)}, has {problem}{where}: {needs}address features by role instead "
            f"(the {owner} has {roles}), as distill_paradigm=encoder, bottleneck, cwd and logits do")
