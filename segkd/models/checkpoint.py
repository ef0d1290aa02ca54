"""Networks out of segkd checkpoints: one loader for teachers, evaluation and anything else.

Every segkd system saves its model specs as hyperparameters (``net``, and ``peers`` for mutual
learning) and its weights under ``net.*`` / ``peers.<name>.*`` (the contract in
segkd.systems.base), so a checkpoint alone rebuilds any of its networks. This lives beside
``build_net`` rather than in segkd.systems so that lower layers (the teacher loader in segkd.distill)
can use it without importing the systems.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional

import torch
from torch import nn

from segkd.models.unet import build_net

#: The first network of every system: the one whose score is val/mIoU (the student of interest).
MAIN_NET = "net"


class CheckpointError(ValueError):
    """A file that is not, or does not hold, the segkd network asked for."""


def read_checkpoint(path: str | Path, hint: str = "", key: str = "the path") -> dict:
    """A segkd checkpoint's contents (tensors and plain hyperparameters only), or one clear error.

    ``key`` is the config key the user set (named in the error), ``hint`` how to get a right file.
    """
    path = Path(path).expanduser()
    suffix = f"; {hint}" if hint else ""
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory; point {key} at a .ckpt file inside it "
                              f"(e.g. <run>/checkpoints/last.ckpt){suffix}")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist{suffix}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(err).__name__}: {err}){suffix}") from err
    specs = net_specs(ckpt)
    if not specs or not isinstance(ckpt.get("state_dict"), Mapping):
        raise CheckpointError(f"checkpoint {path} is not a segkd checkpoint (no network spec inside){suffix}")
    return ckpt


def net_specs(ckpt: Mapping) -> dict[str, dict]:
    """Name -> model spec of every network a checkpoint holds (``net`` first, then mutual-learning peers)."""
    hparams = ckpt.get("hyper_parameters") or {}
    specs = {}
    if isinstance(hparams.get("net"), Mapping):
        specs[MAIN_NET] = dict(hparams["net"])
    for name, spec in (hparams.get("peers") or {}).items():
        if isinstance(spec, Mapping):
            specs[name] = dict(spec)
    return specs


def state_prefix(name: str) -> str:
    return f"{MAIN_NET}." if name == MAIN_NET else f"peers.{name}."


def load_net(path: str | Path, name: str = MAIN_NET, hint: str = "",
             ckpt: Optional[Mapping] = None) -> tuple[nn.Module, dict]:
    """Network ``name`` of any segkd checkpoint (teacher, student, KD student, a mutual-learning
    network) and its model spec, in eval mode. The checkpoint alone says how to build it."""
    ckpt = ckpt if ckpt is not None else read_checkpoint(path, hint)
    specs = net_specs(ckpt)
    if name not in specs:
        raise CheckpointError(f"checkpoint {path} has no network '{name}'; it holds {list(specs)} "
                              "(mutual-learning runs name their peers)")
    net = build_net(specs[name])
    prefix = state_prefix(name)
    state = {k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    try:
        result = net.load_state_dict(state, strict=False)
    except RuntimeError as err:  # same keys, other shapes
        first = str(err).strip().splitlines()[1:2] or [str(err)[:200]]
        raise CheckpointError(f"checkpoint {path}: the weights of '{name}' do not fit the network it describes "
                              f"({first[0].strip()})") from None
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"checkpoint {path}: the weights of '{name}' do not fit the network it describes "
            f"({len(result.missing_keys)} missing, e.g. {result.missing_keys[:2]}; "
            f"{len(result.unexpected_keys)} unexpected, e.g. {result.unexpected_keys[:2]})"
        )
    return net.eval(), specs[name]
