"""The network a command was asked to run, from ``ckpt_path`` and ``net``, or one clear error."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from torch import nn

from segkd.models.checkpoint import MAIN_NET, load_net, read_checkpoint

CKPT_HINT = "ckpt_path must name a segkd checkpoint, e.g. outputs/<task>/runs/<time>/checkpoints/last.ckpt"


def network_from(ckpt_path: Optional[str | Path], name: str = MAIN_NET) -> tuple[nn.Module, dict[str, Any], Path]:
    """Network ``name`` of a segkd checkpoint (in eval mode), its model spec and the checkpoint's absolute path.

    Missing, empty, truncated or foreign files and unknown network names each raise an error that
    names the file and the key to change (segkd.runtime.errors prints it as one line).
    """
    if not ckpt_path:
        raise ValueError(f"no checkpoint given; {CKPT_HINT}")
    path = Path(str(ckpt_path)).expanduser().absolute()
    ckpt = read_checkpoint(path, CKPT_HINT, key="ckpt_path")
    net, spec = load_net(path, name, ckpt=ckpt)
    return net, spec, path


def run_dir_of(ckpt_path: Path) -> Path:
    """The run a checkpoint belongs to: ``<run>/checkpoints/x.ckpt`` -> ``<run>``, else its folder."""
    return ckpt_path.parent.parent if ckpt_path.parent.name == "checkpoints" else ckpt_path.parent
