"""A teacher from outside segkd: any ``torch.nn.Module`` factory plus a local weights file, its classes
mapped onto the dataset's train ids.

``system.teacher.external`` (conf/experiment/external_teacher.yaml) says what to load::

    net: {_target_: my_teacher.TinyTeacher, width: 16}   # any factory; null for a TorchScript file
    weights: /path/teacher.pt      # a state dict (.pt/.pth), a TorchScript file, or .safetensors
    format: auto                   # auto | state_dict | torchscript | safetensors
    label_map: /path/map.yaml      # teacher class id -> train id (null: the teacher predicts the train ids)
    output_key: null               # the tensor of a dict/tuple output ({'out': ...}: out)

**The label map** (YAML or JSON, ``{teacher class id: train id}``; a train id may be given by its
class name, e.g. ``road``, and ``null`` drops a class explicitly) is applied to the teacher's logits
before anything reads them (every KD term, the teacher's scores, the teacher cache):

- teacher classes mapped to the same train id are **merged**: that train id's logit is the
  log-sum-exp of theirs, so its probability is the sum of theirs (``softmax(z')_t = Σ_{c→t}
  softmax(z)_c`` whenever no class is dropped);
- teacher classes the map does not list (or maps to ``null``) are **dropped**: excluded before the
  softmax, which renormalises over the mapped classes (their probability mass is shared out in
  proportion, as if the teacher had never been able to predict them);
- a train id no teacher class maps to gets the logit :data:`UNMAPPED_LOGIT` (-10^4): probability 0
  at every temperature, so logit terms teach nothing about that class there (the student still
  learns it from the labels). A channel-wise term (CWD) sees a flat map for it.

Without a label map the teacher must predict exactly the dataset's classes, in train-id order.

The network is frozen as segkd's own teachers are (eval mode, no gradients) and keeps its own
module paths: feature terms name them (``teacher:layer3``) as for segkd's networks, read through
the same forward hooks (segkd.distill.features). The mapping is applied by a forward hook on the
network itself, so its paths gain no prefix. A TorchScript module takes no hooks, so it serves
logit terms only (feature terms on it are refused when the system is built).

Each problem is one line: a label map that does not fit the teacher or the dataset, weights that do
not fit the network (a few missing and unexpected keys and shape mismatches named), an output that
is not a ``N x C x H x W`` tensor.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import torch
import yaml
from torch import Tensor, nn

from segkd.models.architectures import size_divisor

#: The logit of a train id no teacher class maps to (probability 0; finite, so no NaN in a KL).
UNMAPPED_LOGIT = -1.0e4
FORMATS = ("auto", "state_dict", "torchscript", "safetensors")
KEY = "system.teacher.external"


class ExternalTeacherError(ValueError):
    """An external teacher that cannot be used as configured (one line: what, and what to change)."""


# ----------------------------------------------------------------------------- the label map


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice (plain YAML keeps the last one silently)."""


def _construct_unique(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ExternalTeacherError(f"duplicate key {key!r}")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique)


def read_label_map(path: str | Path) -> dict[Any, Any]:
    """The raw ``{teacher id: train id}`` pairs of a YAML or JSON file (one line on any problem)."""
    path = Path(path).expanduser()
    where = f"{KEY}.label_map={path}"
    if not path.is_file():
        raise ExternalTeacherError(f"{where} does not exist; write a YAML or JSON file of teacher class id: train id")

    def pairs_hook(pairs):
        keys = [k for k, _ in pairs]
        duplicate = next((k for k in keys if keys.count(k) > 1), None)
        if duplicate is not None:
            raise ExternalTeacherError(f"duplicate key {duplicate!r}")
        return dict(pairs)

    try:
        text = path.read_text()
        data = (json.loads(text, object_pairs_hook=pairs_hook) if path.suffix.lower() == ".json"
                else yaml.load(text, Loader=_UniqueKeyLoader))
    except ExternalTeacherError as err:
        raise ExternalTeacherError(f"{where}: {err}; each teacher class id may be listed once") from None
    except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ExternalTeacherError(f"{where} is not valid YAML or JSON ({first})") from None
    if not isinstance(data, Mapping) or not data:
        raise ExternalTeacherError(f"{where} must be a mapping of teacher class id to train id, e.g. {{0: 0, 7: 13}}; "
                                   f"it holds {type(data).__name__}")
    return dict(data)


def label_groups(raw: Mapping[Any, Any], teacher_classes: int, class_names: Sequence[str],
                 where: str = f"{KEY}.label_map") -> list[list[int]]:
    """For each train id (in order), the teacher class ids merged into it ([] for none), from the raw
    map; every problem is one line naming ``where``."""
    num_classes = len(class_names)
    by_name = {name: i for i, name in enumerate(class_names)}
    teacher_ids: dict[int, Any] = {}
    for key, value in raw.items():
        try:
            tid = int(key) if not isinstance(key, bool) and str(key).strip().lstrip("-").isdigit() else None
        except ValueError:
            tid = None
        if tid is None:
            raise ExternalTeacherError(f"{where}: key {key!r} is not a teacher class id (a whole number 0..{teacher_classes - 1})")
        if tid in teacher_ids:
            raise ExternalTeacherError(f"{where}: duplicate key {tid} (given as {key!r} and another spelling); "
                                       "each teacher class id may be listed once")
        teacher_ids[tid] = value
    out_of_range = sorted(t for t in teacher_ids if not 0 <= t < teacher_classes)
    if out_of_range:
        raise ExternalTeacherError(f"{where}: teacher class ids {out_of_range[:5]} are out of range: the teacher "
                                   f"predicts {teacher_classes} classes (ids 0..{teacher_classes - 1})")
    groups: list[list[int]] = [[] for _ in range(num_classes)]
    unknown = []
    for tid, value in sorted(teacher_ids.items()):
        if value is None:
            continue  # dropped explicitly
        if isinstance(value, str) and value in by_name:
            train_id = by_name[value]
        elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value < num_classes:
            train_id = value
        else:
            unknown.append(value)
            continue
        groups[train_id].append(tid)
    if unknown:
        raise ExternalTeacherError(f"{where}: unknown train ids {unknown[:5]}: the dataset's train ids are "
                                   f"0..{num_classes - 1} (or their class names, e.g. {class_names[0]!r}; null drops a class)")
    mapped = sum(1 for g in groups if g)
    if mapped < 2:
        raise ExternalTeacherError(f"{where} maps the teacher onto {mapped} train id(s); a teacher needs at least 2 "
                                   "to say anything a softmax can teach")
    return groups


def map_logits(logits: Tensor, groups: Sequence[Sequence[int]]) -> Tensor:
    """Teacher logits (N x C_teacher x H x W) -> train-id logits (N x len(groups) x H x W): each train
    id the log-sum-exp of its teacher classes (their probabilities summed), unlisted classes dropped
    (the softmax renormalises over the rest), a train id without a class at :data:`UNMAPPED_LOGIT`."""
    n, _, h, w = logits.shape
    out = logits.new_full((n, len(groups), h, w), UNMAPPED_LOGIT)
    for train_id, ids in enumerate(groups):
        if len(ids) == 1:
            out[:, train_id] = logits[:, ids[0]]
        elif ids:
            out[:, train_id] = torch.logsumexp(logits[:, list(ids)], dim=1)
    return out


# ----------------------------------------------------------------------------- weights and output


def weights_format(path: Path, format: str = "auto") -> str:
    """``state_dict``, ``torchscript`` or ``safetensors``: ``format`` unless ``auto``, else by the file
    (a .safetensors suffix; a zip archive with TorchScript code inside; anything else a state dict)."""
    if format not in FORMATS:
        raise ExternalTeacherError(f"{KEY}.format={format} is not a weights format; choose one of {list(FORMATS)}")
    if format != "auto":
        return format
    if path.suffix.lower() == ".safetensors":
        return "safetensors"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if any("/code/" in name for name in archive.namelist()):
                return "torchscript"
    return "state_dict"


def read_state_dict(path: Path, format: str) -> dict[str, Tensor]:
    """The tensors of a state-dict or safetensors file (a ``state_dict`` entry of a training checkpoint
    is taken out)."""
    if format == "safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:  # pragma: no cover (a dependency of smp and timm, so normally there)
            raise ExternalTeacherError(f"{KEY}.weights={path} is a safetensors file, but the safetensors package "
                                       "is not installed here (pip install safetensors), or save a state dict with "
                                       "torch.save") from None
        try:
            return dict(load_file(str(path), device="cpu"))
        except Exception as err:  # noqa: BLE001 (a truncated or foreign file)
            raise ExternalTeacherError(f"{KEY}.weights={path} cannot be read as safetensors ({type(err).__name__}: "
                                       f"{str(err).splitlines()[0][:160] if str(err) else ''})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else ""
        raise ExternalTeacherError(f"{KEY}.weights={path} cannot be read as a state dict ({type(err).__name__}: "
                                   f"{first}); save one with torch.save(net.state_dict(), path)") from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ExternalTeacherError(f"{KEY}.weights={path} is not a state dict (a mapping of parameter names to "
                                   "tensors); save one with torch.save(net.state_dict(), path)")
    return dict(state)


def state_dict_problem(net: nn.Module, state: Mapping[str, Tensor]) -> Optional[str]:
    """What keeps ``state`` from loading into ``net`` strictly (a few missing and unexpected keys and
    shape mismatches, with their counts), or None when it fits."""
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing, e.g. {missing[:3]}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected, e.g. {unexpected[:3]}")
    if shapes:
        parts.append(f"{len(shapes)} of another shape (file vs network), e.g. {shapes[:3]}")
    return "; ".join(parts) or None


def select_output(out: Any, output_key: Any, what: str) -> Tensor:
    """The teacher's logits out of what its forward returned: the tensor itself, or ``output_key`` of
    a dict / index of a tuple; anything but an ``N x C x H x W`` tensor is one line naming it."""
    if output_key is not None and isinstance(out, Mapping):
        if output_key not in out:
            raise ExternalTeacherError(f"{what} returns a dict with keys {list(out)[:8]}, none of them "
                                       f"{KEY}.output_key={output_key!r}")
        out = out[output_key]
    elif output_key is not None and isinstance(out, (tuple, list)):
        if not isinstance(output_key, int) or not -len(out) <= output_key < len(out):
            raise ExternalTeacherError(f"{what} returns a {type(out).__name__} of {len(out)}; "
                                       f"{KEY}.output_key={output_key!r} must be an index 0..{len(out) - 1}")
        out = out[output_key]
    if isinstance(out, Tensor) and out.dim() == 4:
        return out
    if isinstance(out, Tensor):
        got = f"a tensor of shape {tuple(out.shape)}"
    elif isinstance(out, Mapping):
        got = f"a dict with keys {list(out)[:8]}"
    elif isinstance(out, (tuple, list)):
        got = f"a {type(out).__name__} of {len(out)}"
    else:
        got = type(out).__name__
    hint = f"; pick the logits with {KEY}.output_key=<key or index>" if isinstance(out, (Mapping, tuple, list)) else ""
    raise ExternalTeacherError(f"{what} returns {got}, not class scores of shape N x C x H x W{hint}")


class ScriptedTeacher(nn.Module):
    """A TorchScript teacher (which takes no hooks) with its output picked and mapped in ``forward``."""

    def __init__(self, net: nn.Module, adapt) -> None:
        super().__init__()
        self.net = net
        self.adapt = adapt
        stated = getattr(net, "size_divisor", None)
        if isinstance(stated, int) and stated > 0:
            self.size_divisor = stated

    def forward(self, images: Tensor) -> Tensor:
        return self.adapt(self.net(images))


class _Adapter:
    """Picks the logits out of a raw output and maps them onto the train ids (a plain callable: the
    network's own module tree gains nothing)."""

    def __init__(self, output_key: Any, groups: Optional[list[list[int]]], what: str) -> None:
        self.output_key, self.groups, self.what = output_key, groups, what

    def __call__(self, out: Any) -> Tensor:
        logits = select_output(out, self.output_key, self.what)
        return logits if self.groups is None else map_logits(logits, self.groups)


def identity_of(spec: Mapping[str, Any], groups: Optional[list[list[int]]]) -> str:
    """A short name of what the external teacher is beyond its weights file (factory and arguments,
    label map as applied, output key): with the weights' hash it keys the teacher cache."""
    blob = json.dumps({"net": spec.get("net"), "groups": groups, "output_key": spec.get("output_key")},
                      sort_keys=True, default=str)
    return "external:" + hashlib.sha1(blob.encode()).hexdigest()[:16]


def load_external_teacher(spec: Mapping[str, Any], class_names: Sequence[str]) -> tuple[nn.Module, str]:
    """The frozen external teacher (eval mode, no gradients) whose forward returns train-id logits,
    and its identity (:func:`identity_of`). ``spec`` is ``system.teacher.external``."""
    from hydra.utils import instantiate

    spec = dict(spec)
    weights = spec.get("weights")
    if not weights:
        raise ExternalTeacherError(f"{KEY}.weights is not set; point it (teacher_weights=) at the teacher's local "
                                   "weights file (state dict, TorchScript or safetensors)")
    path = Path(str(weights)).expanduser()
    if not path.is_file():
        raise ExternalTeacherError(f"{KEY}.weights={path} does not exist (weights are read from a local file, "
                                   "never downloaded)")
    fmt = weights_format(path, str(spec.get("format") or "auto"))
    factory = spec.get("net")
    if fmt == "torchscript":
        try:
            net = torch.jit.load(str(path), map_location="cpu")
        except Exception as err:  # noqa: BLE001
            raise ExternalTeacherError(f"{KEY}.weights={path} cannot be read as TorchScript ({type(err).__name__}: "
                                       f"{str(err).strip().splitlines()[0][:160] if str(err).strip() else ''})") from None
        what = f"the external teacher {path.name} (TorchScript)"
    else:
        if not isinstance(factory, Mapping) or not factory.get("_target_"):
            raise ExternalTeacherError(f"{KEY}.net must name the network's factory, e.g. "
                                       "teacher_net='{_target_:my_module.MyNet,classes:21}' (a " + fmt + " file holds "
                                       "weights only)")
        target = factory["_target_"]
        try:
            net = instantiate(dict(factory), _convert_="all")
        except Exception as err:  # noqa: BLE001 (Hydra wraps the factory's own error)
            cause = err
            while cause.__cause__ is not None:
                cause = cause.__cause__
            first = str(cause).strip().splitlines()[0][:200] if str(cause).strip() else type(cause).__name__
            raise ExternalTeacherError(f"{KEY}.net: cannot build {target} ({type(cause).__name__}: {first})") from None
        if not isinstance(net, nn.Module):
            raise ExternalTeacherError(f"{KEY}.net: {target} returned {type(net).__name__}, not a torch.nn.Module")
        state = read_state_dict(path, fmt)
        problem = state_dict_problem(net, state)
        if problem:
            raise ExternalTeacherError(f"{KEY}.weights={path} does not fit {target} ({problem}); check "
                                       f"{KEY}.net's arguments, or the file")
        net.load_state_dict(state)
        what = f"the external teacher {target}"
    net.eval()
    for param in net.parameters():  # (a ScriptModule has no requires_grad_)
        param.requires_grad_(False)

    output_key = spec.get("output_key")
    side = 2 * size_divisor(net)
    with torch.no_grad():
        raw = net(torch.zeros(1, 3, side, side))
    teacher_classes = int(select_output(raw, output_key, what).shape[1])
    if spec.get("label_map"):
        groups = label_groups(read_label_map(spec["label_map"]), teacher_classes, class_names)
    else:
        groups = None
        if teacher_classes != len(class_names):
            raise ExternalTeacherError(f"{what} predicts {teacher_classes} classes, this dataset has "
                                       f"{len(class_names)}; map them with {KEY}.label_map=<file of teacher class id: "
                                       "train id>")
    adapt = _Adapter(output_key, groups, what)
    if isinstance(net, torch.jit.ScriptModule):
        net = ScriptedTeacher(net, adapt).eval()
    else:
        net.register_forward_hook(lambda module, args, out: adapt(out))
    return net, identity_of(spec, groups)


def is_scripted(net: nn.Module) -> bool:
    return isinstance(net, ScriptedTeacher)


def refuse_features_of_scripted(net: nn.Module, feature_terms: Sequence[str]) -> None:
    """A TorchScript teacher takes no forward hooks: terms that read its features cannot run."""
    if is_scripted(net) and feature_terms:
        raise ExternalTeacherError(f"distillation terms {list(feature_terms)} read teacher features, but a TorchScript "
                                   "teacher takes no forward hooks; give it as a factory and a state dict "
                                   f"({KEY}.net and .weights), or use logit terms only (distill_paradigm=logits)")
