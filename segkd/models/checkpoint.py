"""Networks out of segkd checkpoints: one loader for teachers, evaluation and anything else.

Every segkd system saves its model specs as hyperparameters (``net``, and ``peers`` for mutual
learning) and its weights under ``net.*`` / ``peers.<name>.*`` (the contract in
segkd.systems.base), so a checkpoint alone rebuilds any of its networks, and a run can tell
before resuming whether a checkpoint is one of its own (``check_resumable``). This lives beside
``build_net`` rather than in segkd.systems so that lower layers (the teacher loader in segkd.distill)
can use it without importing the systems.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

import torch
from torch import nn

from segkd.models.unet import build_net

#: The first network of every system: the one whose score is val/mIoU (the student of interest).
MAIN_NET = "net"
#: ``ckpt_path`` values Lightning resolves itself instead of reading them as a file name.
LIGHTNING_CKPT_KEYWORDS = ("last", "best", "hpc", "registry")
RESUME_HINT = "ckpt_path must name a checkpoint of this experiment and model; ckpt_path=null starts afresh"


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
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes){suffix}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or foreign file
        raise CheckpointError(f"checkpoint {path} cannot be read: truncated or not a torch checkpoint "
                              f"({size} bytes; {type(err).__name__}: {_first_sentence(err)}){suffix}") from err
    if not isinstance(ckpt, Mapping) or not net_specs(ckpt) or not isinstance(ckpt.get("state_dict"), Mapping):
        raise CheckpointError(f"checkpoint {path} is not a segkd checkpoint (no network spec inside){suffix}")
    return ckpt


def _first_sentence(err: Exception) -> str:
    """torch.load's errors run to several lines of advice about other cases; their first sentence says what failed."""
    lines = str(err).strip().splitlines()
    return lines[0].split(". ")[0][:160] if lines else ""


def net_specs(ckpt: Mapping) -> dict[str, dict]:
    """Name -> model spec of every network a checkpoint holds (``net`` first, then mutual-learning peers)."""
    return hparams_specs(ckpt.get("hyper_parameters") or {})


def hparams_specs(hparams: Mapping) -> dict[str, dict]:
    """Name -> model spec of every network a system's hyperparameters describe (what its checkpoints hold)."""
    specs = {}
    if isinstance(hparams.get("net"), Mapping):
        specs[MAIN_NET] = dict(hparams["net"])
    for name, spec in (hparams.get("peers") or {}).items():
        if isinstance(spec, Mapping):
            specs[name] = dict(spec)
    return specs


def spec_mismatch(saved: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """``key: checkpoint has X, config says Y`` for each argument of ``expected`` the saved spec differs in.

    ``encoder_weights`` is left out: it only says how an encoder started, and checkpoint weights replace it.
    """
    return [
        f"{key}: checkpoint has {saved.get(key)!r}, config says {value!r}"
        for key, value in expected.items()
        if key != "encoder_weights" and _normalise(saved.get(key)) != _normalise(value)
    ]


def _normalise(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _lightning_resolves(ckpt_path: str) -> bool:
    """Lightning's own keywords (``last``, ``best``, ``hpc``, ``registry[:name]``) and remote URLs."""
    name = ckpt_path.lower()
    return name in LIGHTNING_CKPT_KEYWORDS or name.startswith("registry:") or "://" in name


def auto_resume_hint(last: str | Path) -> str:
    """What to do when the run dir's own last.ckpt (picked by auto-resume, not given) cannot be read:
    ``ckpt_path=null`` would pick it again; ``auto_resume=false`` starts over, and an intact best
    checkpoint beside it is another place to continue from."""
    last = Path(last)
    best = sorted(last.parent.glob("best-*.ckpt"), key=lambda p: p.stat().st_mtime)
    hint = f"this run dir's own last checkpoint was picked by auto_resume; auto_resume=false starts the run over"
    if best and best[-1].stat().st_size > 0:
        hint += f", or continue from the best checkpoint beside it with ckpt_path={best[-1]}"
    return hint


def check_resumable(ckpt_path: Optional[str | Path], hparams: Mapping, hint: str = "") -> Optional[int]:
    """Refuse, in one line naming the file, a ``ckpt_path`` this run cannot resume from; return the
    global step it resumes at (None without a file segkd reads: a fresh start, or a Lightning keyword).

    Checked before Lightning loads it, whose own errors for these cases are a long traceback about
    state dict keys or unpickling: not a readable segkd checkpoint; another set of networks (a
    mutual-learning checkpoint resumed by a single-network run, or the reverse); another model of a
    network (each differing spec argument listed). ``hparams`` are the run's system hyperparameters,
    which hold the specs its own checkpoints would.
    """
    if not ckpt_path or _lightning_resolves(str(ckpt_path)):
        return None
    hint = hint or RESUME_HINT
    ckpt = read_checkpoint(ckpt_path, hint, key="ckpt_path")
    saved, expected = net_specs(ckpt), hparams_specs(hparams)
    if set(saved) != set(expected):
        raise CheckpointError(f"checkpoint {ckpt_path} holds the networks {list(saved)}, this run trains "
                              f"{list(expected)} (another kind of system); {hint}")
    for name, spec in expected.items():
        mismatch = spec_mismatch(saved[name], spec)
        if mismatch:
            raise CheckpointError(f"checkpoint {ckpt_path} ('{name}') is another model "
                                  f"({'; '.join(mismatch)}); {hint}")
    return int(ckpt.get("global_step", 0))


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
    # The checkpoint holds every weight: pretrained encoder weights (a download, or a file on the
    # training machine) are not fetched again to be overwritten.
    net = build_net({**specs[name], "encoder_weights": None} if "encoder_weights" in specs[name] else specs[name])
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


def with_classes(path: str | Path, classes: int, out: str | Path, name: str = MAIN_NET) -> Path:
    """A copy of a checkpoint whose network ``name`` predicts ``classes`` classes, written to ``out``:
    the spec's ``classes`` changed and the segmentation head's rows cut, or padded with copies of its
    first row, to fit. The same network otherwise (what a checkpoint of another dataset looks like)."""
    ckpt = read_checkpoint(path)
    specs = net_specs(ckpt)
    if name not in specs:
        raise CheckpointError(f"checkpoint {path} has no network '{name}'; it holds {list(specs)}")
    hparams = ckpt["hyper_parameters"]
    spec = hparams["net"] if name == MAIN_NET else hparams["peers"][name]
    spec["classes"] = classes
    prefix = state_prefix(name)
    for key in (f"{prefix}segmentation_head.0.weight", f"{prefix}segmentation_head.0.bias"):
        head = ckpt["state_dict"][key]
        extra = head[:1].repeat_interleave(max(classes - len(head), 0), dim=0)
        ckpt["state_dict"][key] = torch.cat([head, extra])[:classes]
    out = Path(out)
    torch.save(ckpt, out)
    return out
