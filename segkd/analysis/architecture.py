"""The UNets segkd builds, split into the rows a distillation paradigm can name: what
docs/ARCHITECTURE.md's tables quote (experiments/architecture_tables.py writes them from here).

One pass of ``segkd.models.build_net(spec)`` on the meta device (shapes only, so 1024x2048 costs
nothing) splits the network into rows:

- ``encoder#k``: stage k of smp's encoder output (segkd's hook syntax, segkd.distill.features). Which
  modules make up a stage is read from the pass itself: the stage ends with the last module whose
  output *is* the k-th tensor the encoder returns, so it works for any encoder family (ResNet,
  MobileNetV2, timm's through smp's ``tu-`` bridge) without a table of module names;
- ``decoder.center``, ``decoder.blocks.i``: the decoder's modules that run, each with the tensors it
  reads (the block below, and the skip connection, identified by object identity with the encoder's
  outputs);
- ``logits``: the segmentation head.

Per row: output channels, spatial stride, params, and MACs at each resolution, counted by the
counter segkd's complexity uses (torch.utils.flop_counter, 2 FLOPs per multiply-add), read at the
module hooks as the pass runs. :func:`model_report` checks the rows add up to segkd's own totals
(``segkd.analysis.profiling.complexity_at``) and that every hook reference the paradigms of
conf/distill_paradigm/ use (:func:`paradigm_terms`, composed as ``python -m segkd.run
+experiment=offline_kd distill_paradigm=NAME`` composes them) is resolved by segkd's FeatureRecorder
to a tensor of the row's shape. tests/test_architecture_tables.py checks the rows on a real CPU pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from segkd.analysis.profiling import complexity_at, layers_at
from segkd.config import CONF_DIR, compose_train_config, to_plain
from segkd.distill.features import FeatureRecorder, parse_ref
from segkd.models import build_net

# ----------------------------------------------------------------------------- configs


def preset_names() -> list[str]:
    """The UNet presets of conf/model/ (the rows below split a UNet; other architectures have no such rows)."""
    from omegaconf import OmegaConf

    return sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml")
                  if OmegaConf.load(p).get("_target_") == "segkd.models.build_unet")


def model_spec(overrides: Sequence[str], workdir: Path) -> dict:
    """``cfg.model`` as ``python -m segkd.run <overrides>`` composes it: the spec training builds the net from."""
    return to_plain(compose_train_config(list(overrides), workdir).model)


def with_overrides(spec: dict, overrides: Sequence[str]) -> dict:
    """A composed model spec with ``model.<key>=<value>`` command-line overrides applied (Hydra's
    override grammar for these plain values is OmegaConf's dotlist: strings, ints, lists)."""
    from omegaconf import OmegaConf

    changes = OmegaConf.from_dotlist([o.removeprefix("model.") for o in overrides])
    unknown = [k for k in changes if k not in spec]
    if unknown:
        raise ValueError(f"overrides {unknown} name no key of the model spec {sorted(spec)}")
    return to_plain(OmegaConf.merge(OmegaConf.create(spec), changes))


def paradigm_terms(workdir: Path) -> tuple[dict[str, dict[str, dict]], list[int], dict]:
    """paradigm -> term -> {"inputs": {argument: source}, "connector": bool}, each paradigm of
    conf/distill_paradigm/ composed the way ``python -m segkd.run +experiment=offline_kd
    distill_paradigm=NAME`` composes it; that experiment's train crop (dataset.crop_size of the
    distillation setting) and its teacher's spec (system.teacher.net)."""
    out, crop, teacher = {}, None, None
    for path in sorted((CONF_DIR / "distill_paradigm").glob("*.yaml")):
        cfg = compose_train_config(["+experiment=offline_kd", f"distill_paradigm={path.stem}"], workdir)
        terms = {name: {"inputs": dict(to_plain(term["inputs"])), "connector": bool(term.get("connector", False))}
                 for name, term in (cfg.distill_paradigm.terms or {}).items() if term is not None}
        if terms:
            out[path.stem] = terms
        crop, teacher = [int(s) for s in cfg.dataset.crop_size], to_plain(cfg.system.teacher.net)
    return out, crop, teacher


def hook_refs(paradigms: dict) -> dict[str, list[str]]:
    """feature ref (or ``logits``) -> ["paradigm/term", ...] over the student and teacher roles."""
    refs: dict[str, list[str]] = {}
    for paradigm, terms in paradigms.items():
        for term, body in terms.items():
            for source in body["inputs"].values():
                if source == "target":
                    continue
                ref = source.partition(":")[2]
                used = refs.setdefault(ref, [])
                if f"{paradigm}/{term}" not in used:
                    used.append(f"{paradigm}/{term}")
    return refs


def hooks_at_depth(spec: dict, size: Sequence[int], refs: dict, preset: dict) -> dict:
    """What the paradigms' feature refs point at in a variant of another encoder depth (the refs are
    indices, ``encoder#k`` and ``decoder.blocks.i``): the stride segkd's FeatureRecorder finds there
    against the preset's, or the error it raises."""
    with torch.device("meta"):
        net = build_net(spec).eval()
        x = torch.zeros(1, 3, *size)
    features = [r for r in refs if r != "logits"]
    recorder = FeatureRecorder(net, features, owner="net")
    try:
        with torch.no_grad(), recorder.record():
            net(x)
        out = {}
        for ref in features:
            before = next(r["stride"] for r in preset["rows"] if r["ref"] == ref)
            try:
                out[ref] = {"preset_stride": before, "stride": int(size[0]) // int(recorder.get(ref).shape[2])}
            except ValueError as err:
                out[ref] = {"preset_stride": before, "error": str(err)}
        return out
    finally:
        recorder.remove()


def connectors(paradigms: dict, teacher: dict, students: Sequence[dict]) -> list[dict]:
    """The 1x1 connectors offline KD trains for each term with ``connector: true``: student channels ->
    the teacher's at the same ref, and the parameters of segkd's own Connector of that size."""
    from segkd.distill.distiller import Connector

    rows = []
    by_ref = {r["ref"]: r for r in teacher["rows"]}
    for paradigm, terms in paradigms.items():
        for term, body in terms.items():
            if not body["connector"]:
                continue
            s_ref = body["inputs"]["student"].partition(":")[2]
            t_ref = body["inputs"]["teacher"].partition(":")[2]
            for student in students:
                c_in = next(r for r in student["rows"] if r["ref"] == s_ref)["out_channels"]
                c_out = by_ref[t_ref]["out_channels"]
                rows.append({"paradigm": paradigm, "term": term, "student": student["model"], "student_ref": s_ref,
                             "teacher": teacher["model"], "teacher_ref": t_ref, "in_channels": c_in,
                             "out_channels": c_out,
                             "params": sum(p.numel() for p in Connector(c_in, c_out).parameters())})
    return rows


# ----------------------------------------------------------------------------- one pass, split by stage


def _outermost(paths: Sequence[str]) -> list[str]:
    """The paths no other path of the list contains (execution order kept)."""
    chosen = set(paths)
    return [p for p in paths if not any(p.startswith(q + ".") for q in chosen if q != p)]


def breakdown(spec: dict, size: Sequence[int], hook_refs: Sequence[str] = ()) -> dict:
    """One forward pass of ``build_net(spec)`` on the meta device at 1x3xHxW, split into rows; with
    ``hook_refs``, segkd's FeatureRecorder records those feature refs in the same pass."""
    with torch.device("meta"):
        net = build_net(spec).eval()
        x = torch.zeros(1, 3, *size)
    modules = dict(net.named_modules())
    holder: dict[str, Optional[FlopCounterMode]] = {"counter": None}

    def flops() -> int:
        return int(holder["counter"].get_total_flops())

    done: list[tuple[str, int, Any]] = []  # every module call in completion order: (path, flops so far, output)
    starts, ends, outputs, inputs = {}, {}, {}, {}
    handles = []
    for path, module in modules.items():
        def pre(m, args, kwargs, _p=path):
            starts[_p] = flops()
            inputs[_p] = [t for t in [*args, *kwargs.values()] if isinstance(t, Tensor)]

        def post(m, args, output, _p=path):
            ends[_p], outputs[_p] = flops(), output
            done.append((_p, ends[_p], output))

        handles += [module.register_forward_pre_hook(pre, with_kwargs=True), module.register_forward_hook(post)]
    features = [r for r in hook_refs if r != "logits"]
    recorder = FeatureRecorder(net, features, owner=str(spec.get("encoder_name"))) if features else None
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            holder["counter"] = counter
            if recorder is not None:
                with recorder.record():
                    logits = net(x)
                recorded = {ref: list(recorder.get(ref).shape[1:]) for ref in features}
            else:
                logits, recorded = net(x), {}
        total_flops = int(counter.get_total_flops())
    finally:
        for handle in handles:
            handle.remove()
        if recorder is not None:
            recorder.remove()
    ran = set(ends)  # segkd's per-layer profile looks at the same modules (layers_at over those that ran)
    tail = [p for p in layers_at(net, ran, 2) if p.startswith("decoder.")]
    tail += [name for name, _ in net.named_children() if name not in ("encoder", "decoder") and name in ran]
    done = [(p, f, o) for p, f, o in done if p == "encoder" or p.startswith("encoder.")]
    feats = next(o for p, _, o in reversed(done) if p == "encoder")
    depth = len(feats) - 1
    named: list[tuple[str, Tensor]] = [(f"encoder#{k}", f) for k, f in enumerate(feats)]

    def name_of(t: Tensor) -> str:
        for name, known in reversed(named):
            if known is t:
                return name
        return "input" if t is x else "?"

    seen: set[int] = set()

    def new_params(paths: Sequence[str]) -> int:
        count = 0
        for p in paths:
            for param in modules[p].parameters():
                if id(param) not in seen:
                    seen.add(id(param))
                    count += param.numel()
        return count

    rows, previous, start = [], -1, starts["encoder"]
    for k in range(1, depth + 1):
        end = max(i for i, (_, _, o) in enumerate(done) if o is feats[k])
        paths = [p for p, _, _ in done[previous + 1:end + 1]]
        rows.append({"ref": f"encoder#{k}", "part": "encoder", "modules": _outermost(paths),
                     "reads": [f"encoder#{k - 1}" if k > 1 else "input"], "out": feats[k],
                     "params": new_params(paths), "flops": done[end][1] - start})
        previous, start = end, done[end][1]
    encoder_rest = {"params": new_params([p for p, _, _ in done[previous + 1:]]), "flops": done[-1][1] - start}
    for path in tail:
        out = outputs[path]
        reads = [name_of(t) for t in inputs[path]]
        ref = "logits" if out is logits else path
        rows.append({"ref": ref, "part": "head" if ref == "logits" else "decoder", "modules": [path],
                     "reads": reads, "in_channels": sum(int(t.shape[1]) for t in inputs[path]), "out": out,
                     "params": new_params([path]), "flops": ends[path] - starts[path]})
        named.append((ref, out))
    for row in rows:
        out = row.pop("out")
        row["out_channels"] = int(out.shape[1])
        row["stride"] = int(size[0]) // int(out.shape[2])
        row["out_size"] = [int(out.shape[2]), int(out.shape[3])]
        if int(size[1]) // int(out.shape[3]) != row["stride"]:
            raise AssertionError(f"{row['ref']}: unequal strides {size} -> {row['out_size']}")
        row["type"] = [type(modules[p]).__name__ for p in row["modules"]]
    bottleneck = next(r for r in rows if r["part"] == "decoder")  # the first decoder module reads the deepest stage
    if bottleneck["reads"][0] != f"encoder#{depth}":
        raise AssertionError(f"the decoder starts from {bottleneck['reads']}, not encoder#{depth}")
    for row in rows:
        row["role"] = (
            f"stage {row['ref'][8:]} = bottleneck" if row["ref"] == f"encoder#{depth}"
            else f"stage {row['ref'][8:]}" if row["part"] == "encoder"
            else "segmentation head" if row["part"] == "head"
            else f"{row['type'][0]} (no compute)" if row["flops"] == 0 and row["params"] == 0
            else f"block {row['ref'].rpartition('.')[2]}"
        )
    total_params = sum(p.numel() for p in net.parameters())
    return {
        "rows": rows, "depth": depth, "total_flops": total_flops, "total_params": total_params,
        "unattributed": {"flops": total_flops - sum(r["flops"] for r in rows),
                         "params": total_params - sum(r["params"] for r in rows),
                         "encoder_after_last_stage": encoder_rest},
        "encoder_channels": [int(c) for c in net.encoder.out_channels],
        "recorded": recorded,
    }


def check_hooks(recorded: dict[str, list[int]], rows: list[dict], owner: str) -> dict:
    """The tensor segkd's FeatureRecorder recorded for each feature ref must have the shape of the row
    of the same ref (``encoder#k``, ``decoder.blocks.i``; a ``@call`` or a sub-module would not be a row)."""
    by_ref = {r["ref"]: r for r in rows}
    for ref, shape in recorded.items():
        row = by_ref.get(ref) or by_ref.get(parse_ref(ref)[0])
        expected = [row["out_channels"], *row["out_size"]] if row else None
        if shape != expected:
            raise AssertionError(f"{owner}: hook '{ref}' records {shape}, its row says {expected}")
    return dict(recorded)


def model_report(name: str, spec: dict, sizes: Sequence[Sequence[int]], refs: dict[str, list[str]]) -> dict:
    """The rows of one model at every resolution, checked against segkd's own totals and hook resolver."""
    report: dict[str, Any] = {"model": name, "spec": spec, "resolutions": [list(s) for s in sizes], "totals": {}}
    rows = None
    smallest = min(sizes, key=lambda s: s[0] * s[1])
    for size in sizes:
        key = f"{size[0]}x{size[1]}"
        split = breakdown(spec, size, list(refs) if size == smallest else ())
        if size == smallest:  # segkd's own resolver, on the same pass
            report["hook_check"] = {"size": list(size), "shapes": check_hooks(split["recorded"], split["rows"], name)}
        segkd_total = complexity_at(lambda: build_net(spec), size)  # segkd's own count (segkd.profile's table)
        row_params = sum(r["params"] for r in split["rows"])
        if split["total_params"] != segkd_total["params"] or row_params != split["total_params"]:
            raise AssertionError(f"{name}: stage params do not add up to segkd's {segkd_total['params']}")
        if round(segkd_total["gflops"] * 1e9) != split["total_flops"] or split["unattributed"]["flops"] != 0:
            raise AssertionError(f"{name} at {key}: stage MACs do not add up to segkd's {segkd_total['gmacs']} GMACs")
        report["totals"][key] = {"params": segkd_total["params"], "gmacs": segkd_total["gmacs"],
                                 "gflops": segkd_total["gflops"]}
        if rows is None:
            rows = [{k: v for k, v in r.items() if k not in ("flops", "out_size")} for r in split["rows"]]
            report["depth"], report["encoder_channels"] = split["depth"], split["encoder_channels"]
            report["unattributed"] = split["unattributed"]
        for row, measured in zip(rows, split["rows"]):
            if (row["ref"], row["out_channels"], row["stride"], row["params"]) != (
                    measured["ref"], measured["out_channels"], measured["stride"], measured["params"]):
                raise AssertionError(f"{name}: the structure of {row['ref']} differs between resolutions")
            row.setdefault("flops", {})[key] = measured["flops"]  # torch's count: 2 per multiply-add
            row.setdefault("gmacs", {})[key] = measured["flops"] / 2e9
            row.setdefault("out_size", {})[key] = measured["out_size"]
    for row in rows:
        row["used_by"] = refs.get(row["ref"], [])
        row["share"] = {k: row["gmacs"][k] / report["totals"][k]["gmacs"] for k in report["totals"]}
    report["rows"] = rows
    report["parts"] = {
        key: {part: sum(r["gmacs"][key] for r in rows if r["part"] == part) for part in ("encoder", "decoder", "head")}
        for key in report["totals"]
    }
    report["share_by_stride"] = {
        key: {str(st): sum(r["share"][key] for r in rows if r["stride"] == st)
              for st in sorted({r["stride"] for r in rows})}
        for key in report["totals"]}
    report["params_by_part"] = {part: sum(r["params"] for r in rows if r["part"] == part)
                                for part in ("encoder", "decoder", "head")}
    return report



def knob_variant(preset: dict, overrides: Sequence[str], why: str, spec: dict, size: Sequence[int],
                 hook_size: Sequence[int], refs: dict[str, list[str]]) -> dict:
    """One setting of a preset changed (``spec`` = :func:`with_overrides` of the preset's spec): its
    totals at ``size`` against the preset's (``preset`` is its :func:`model_report`), and, when the
    encoder depth changes, where the paradigms' hook refs land at ``hook_size`` (:func:`hooks_at_depth`)."""
    knob = {"preset": preset["model"], "overrides": list(overrides), "why": why, "spec": spec,
            "totals": {f"{size[0]}x{size[1]}": complexity_at(lambda: build_net(spec), size)},
            "base_totals": preset["totals"]}
    if spec["encoder_depth"] != preset["spec"]["encoder_depth"]:
        knob["hooks"] = hooks_at_depth(spec, hook_size, refs, preset)
    return knob
