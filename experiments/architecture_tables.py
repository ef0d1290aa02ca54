"""Per-stage tables and a figure of the UNets segkd builds: what docs/ARCHITECTURE.md quotes.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/architecture_tables.py [--out docs/results/architecture]
        [--models teacher_r34 student_mnv2 ...] [--resolution H W [--resolution H W ...]] [--no-dataset-crop]

For every model preset of conf/model/, built as training builds it (``cfg.model`` of the config
``python -m segkd.run model=NAME`` composes, through ``segkd.models.build_net``), one pass on the
meta device (shapes only, so 1024x2048 costs nothing) splits the network into the rows a
distillation paradigm can name:

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
module hooks as the pass runs. The rows are checked to add up to segkd's own totals
(``segkd.analysis.profiling.complexity_at``), and every hook reference the paradigms of
conf/distill_paradigm/ use (composed as ``python -m segkd.run +experiment=offline_kd
distill_paradigm=NAME`` composes them) is resolved by segkd's FeatureRecorder, whose tensor must
have the row's shape. A knob table varies one setting of a preset at a time (encoder, decoder
channels, encoder depth), each variant given by the overrides a user would type.

Writes ``<model>.json`` and ``<model>.md`` per model, ``presets.json``/``presets.md`` (totals, the
encoder/decoder/head split, MACs by stride, the knob table, the connectors of feature KD) and
``unet_stages.png`` into ``--out``. tests/test_architecture_tables.py checks the rows on a real pass.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from segkd.analysis.profiling import complexity_at, layers_at
from segkd.config import CONF_DIR, compose_train_config, to_plain
from segkd.distill.features import FeatureRecorder, parse_ref
from segkd.models import build_net

DEFAULT_OUT = "docs/results/architecture"
#: One setting of a preset changed at a time: (preset, command-line overrides, what changes), as in
#: ``python -m segkd.run model=<preset> <overrides>``.
KNOBS: list[tuple[str, list[str], str]] = [
    ("student_mnv2", ["model.encoder_name=tu-mobilenetv2_100"],
     "timm's MobileNetV2 through smp's tu- bridge: same widths, but no final 1x1 conv to 1280 channels"),
    ("student_mnv2", ["model.encoder_name=tu-mobilenetv2_050"], "timm's half-width MobileNetV2 (= student_rt20)"),
    ("student_mnv2", ["model.encoder_name=resnet18"], "ResNet-18 encoder (= student_r18)"),
    ("student_mnv2", ["model.decoder_channels=[256,128,64,32,16]"], "the teacher's decoder widths"),
    ("student_mnv2", ["model.decoder_channels=[32,16,8,8,4]"], "half the decoder widths"),
    ("student_mnv2", ["model.encoder_depth=4", "model.decoder_channels=[32,16,16,8]"],
     "one encoder stage fewer (deepest stage 1/16), same decoder width at each resolution"),
    ("teacher_r34", ["model.decoder_channels=[64,32,16,16,8]"], "the teacher with the students' decoder"),
]


# ----------------------------------------------------------------------------- configs


def preset_names() -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))


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


# ----------------------------------------------------------------------------- writing


def _m(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e5 else f"{n / 1e3:.1f} k"


def _stride(s: int) -> str:
    return "1/1" if s == 1 else f"1/{s}"


def _unit(total_gmacs: float) -> tuple[str, float]:
    """GMACs for full-size inputs, MMACs for crops whose whole pass is under one GMAC."""
    return ("GMACs", 1.0) if total_gmacs >= 1.0 else ("MMACs", 1e3)


def model_markdown(report: dict, command: str) -> str:
    keys = list(report["totals"])
    spec, rows = report["spec"], report["rows"]
    units = {k: _unit(report["totals"][k]["gmacs"]) for k in keys}
    spread = max(abs(r["share"][k] - r["share"][keys[0]]) for r in rows for k in keys)
    lines = [
        f"# {report['model']}: `{spec['encoder_name']}` encoder, decoder channels {spec['decoder_channels']}, "
        f"encoder depth {spec['encoder_depth']}, {spec['classes']} classes",
        "",
        f"Produced by `{command}` (meta device; MACs from torch.utils.flop_counter, GFLOPs = 2 x GMACs).",
        "",
        "| hook ref | role | modules | reads | out ch | stride | params | "
        + " | ".join(f"{units[k][0]} {k}" for k in keys) + " | share of MACs | hooked by (paradigm/term) |",
        "|---|---|---|---|---:|---:|---:|" + "---:|" * len(keys) + "---:|---|",
    ]
    for r in rows:
        mods = ", ".join(f"`{m}`" for m in r["modules"])
        macs = " | ".join(f"{r['gmacs'][k] * units[k][1]:.2f}" for k in keys)
        lines.append(f"| `{r['ref']}` | {r['role']} | {mods} | {' + '.join(r['reads'])} | {r['out_channels']} | "
                     f"{_stride(r['stride'])} | {r['params']:,} | {macs} | {r['share'][keys[0]]:.1%} | "
                     f"{', '.join(r['used_by']) or '—'} |")
    total = " | ".join(f"{report['totals'][k]['gmacs'] * units[k][1]:.2f}" for k in keys)
    lines.append(f"| **total** (segkd's `complexity_at`) | | | | | | {report['totals'][keys[0]]['params']:,} | "
                 f"{total} | 100% | |")
    rest = report["unattributed"]
    check = report["hook_check"]
    lines += ["", f"The rows add up to segkd's own totals exactly (params in no row: {rest['params']}; MACs in no "
              f"row: {rest['flops'] // 2}). Shares of MACs differ by at most {spread:g} between the resolutions "
              f"(every counted operator scales with the pixels). The encoder returns `encoder#0`..`encoder#"
              f"{report['depth']}` (`#0` is the input itself) with {report['encoder_channels']} channels. Each "
              f"hooked feature ref ({', '.join(f'`{r}`' for r in check['shapes'])}) was resolved by segkd's "
              f"FeatureRecorder at {check['size'][0]}x{check['size'][1]} and recorded a tensor of its row's shape."]
    return "\n".join(lines) + "\n"


def presets_markdown(reports: list[dict], knobs: list[dict], links: list[dict], command: str) -> str:
    keys = list(reports[0]["totals"])
    units = {k: _unit(min(r["totals"][k]["gmacs"] for r in reports)) for k in keys}
    lines = [
        "# UNet presets and the knobs that size them", "",
        f"Produced by `{command}` (meta device; MACs from torch.utils.flop_counter, GFLOPs = 2 x GMACs).", "",
        "## Presets (conf/model/)", "",
        "| model | encoder | decoder channels | params | encoder / decoder / head params | "
        + " | ".join(f"{units[k][0]} {k}" for k in keys) + " | encoder / decoder / head share of MACs |",
        "|---|---|---|---:|---|" + "---:|" * len(keys) + "---|",
    ]
    for r in reports:
        spec, parts = r["spec"], r["params_by_part"]
        g0, p0 = r["totals"][keys[0]]["gmacs"], r["parts"][keys[0]]
        lines.append(f"| {r['model']} | `{spec['encoder_name']}` | {spec['decoder_channels']} | "
                     f"{_m(r['totals'][keys[0]]['params'])} | {_m(parts['encoder'])} / {_m(parts['decoder'])} / "
                     f"{_m(parts['head'])} | "
                     + " | ".join(f"{r['totals'][k]['gmacs'] * units[k][1]:.2f}" for k in keys)
                     + f" | {p0['encoder'] / g0:.0%} / {p0['decoder'] / g0:.0%} / {p0['head'] / g0:.0%} |")
    strides = sorted({r["stride"] for rep in reports for r in rep["rows"]})
    lines += ["", "## Where the MACs are, by the stride a row outputs at", "",
              "Share of each model's MACs in the rows (encoder stages, decoder blocks, head) whose output is at that "
              "stride; the same at every resolution.", "",
              "| model | " + " | ".join(_stride(s) for s in strides) + " |", "|---|" + "---:|" * len(strides)]
    for r in reports:
        g0 = r["totals"][keys[0]]["gmacs"]
        lines.append(f"| {r['model']} | " + " | ".join(
            f"{sum(x['gmacs'][keys[0]] for x in r['rows'] if x['stride'] == s) / g0:.1%}" for s in strides) + " |")
    if knobs:
        k = keys[0]
        lines += ["", "## One knob at a time", "",
                  "Each variant is `python -m segkd.run model=<preset> <overrides>` (the overrides applied to the "
                  f"preset's composed spec); MACs at {k} (they scale with the pixels: the presets' shares above "
                  "are the same at every resolution).", "",
                  f"| preset | overrides | what changes | params | {units[k][0]} {k} | x preset's MACs |",
                  "|---|---|---|---:|---:|---:|"]
        for v in knobs:
            ratio = v["totals"][k]["gmacs"] / v["base_totals"][k]["gmacs"]
            lines.append(f"| {v['preset']} | `{' '.join(v['overrides'])}` | {v['why']} | "
                         f"{_m(v['totals'][k]['params'])} | {v['totals'][k]['gmacs'] * units[k][1]:.2f} | "
                         f"{ratio:.2f} |")
        for v in knobs:
            if "hooks" in v:
                moved = [f"`{ref}` {_stride(h['preset_stride'])} -> " + (_stride(h["stride"]) if "stride" in h
                         else f"error \"{h['error']}\"") for ref, h in v["hooks"].items()
                         if h.get("stride") != h["preset_stride"]]
                lines += ["", f"Hook refs are indices, so `{' '.join(v['overrides'])}` moves the paradigms' refs "
                          f"(segkd's FeatureRecorder on the variant): {'; '.join(moved)}."]
    if links:
        students = list(dict.fromkeys(c["student"] for c in links))
        lines += ["", f"## Connectors of feature KD (teacher {links[0]['teacher']}, `+experiment=offline_kd`)", "",
                  "Each term with `connector: true` trains a 1x1 conv + BatchNorm (segkd.distill.distiller.Connector) "
                  "from the student's channels to the teacher's; cells are `in -> out` channels (params).", "",
                  "| paradigm/term | refs | " + " | ".join(students) + " |", "|---|---|" + "---|" * len(students)]
        for key in dict.fromkeys((c["paradigm"], c["term"]) for c in links):
            cells = {c["student"]: c for c in links if (c["paradigm"], c["term"]) == key}
            first = next(iter(cells.values()))
            refs = first["student_ref"] if first["student_ref"] == first["teacher_ref"] else \
                f"{first['student_ref']} -> {first['teacher_ref']}"
            lines.append(f"| {key[0]}/{key[1]} | `{refs}` | " + " | ".join(
                f"{cells[s]['in_channels']} -> {cells[s]['out_channels']} ({_m(cells[s]['params'])})"
                for s in students) + " |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- the figure

PART_COLOURS = {"encoder": "#9ecae1", "bottleneck": "#bcbddc", "decoder": "#a1d99b", "head": "#fdae6b",
                "input": "#eeeeee"}


def _level(stride: int) -> int:
    return max(0, stride.bit_length() - 1)  # log2 of a power of two


def plot(reports: list[dict], path: Path, key: str) -> None:
    """One U per model: encoder stages down the left at their stride, decoder blocks up the right,
    skip connections across, the paradigms' hook points tagged; every label read from the reports."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    cols = 2 if len(reports) > 1 else 1
    rows_n = (len(reports) + cols - 1) // cols
    fig = Figure(figsize=(12.5 * cols, 7.4 * rows_n))
    axes = fig.subplots(rows_n, cols, squeeze=False).ravel()
    for ax in axes[len(reports):]:
        ax.set_axis_off()
    for ax, report in zip(axes, reports):
        rows = report["rows"]
        total = report["totals"][key]["gmacs"]
        pos: dict[str, Optional[tuple[float, float]]] = {"input": (0.0, 0.0)}
        decoder_x = max(_level(r["stride"]) for r in rows) + 1
        for r in rows:
            level = _level(r["stride"])
            if r["part"] == "encoder":
                pos[r["ref"]] = (float(level), -float(level))
            elif r["part"] == "decoder" and r["params"] == 0 and not any(r["gmacs"].values()):
                pos[r["ref"]] = None  # no compute (smp's decoder.center is an Identity): drawn as the arrow it is
            else:
                pos[r["ref"]] = (float(decoder_x), -float(level))
                decoder_x += 1
        w, h = 0.9, 0.8

        def box(ref: str, lines: list[str], colour: str, tags: list[str]) -> None:
            cx, cy = pos[ref]
            ax.add_patch(FancyBboxPatch((cx - w / 2, cy - h / 2), w, h, boxstyle="round,pad=0.02",
                                        facecolor=colour, edgecolor="#444444", linewidth=0.8))
            ax.text(cx, cy + h / 2 - 0.12, lines[0], ha="center", va="center", fontsize=7, fontweight="bold",
                    family="monospace")
            ax.text(cx, cy - 0.08, "\n".join(lines[1:]), ha="center", va="center", fontsize=6.6, linespacing=1.3)
            if tags:
                ax.text(cx, cy + h / 2 + 0.05, "\n".join(tags), ha="center", va="bottom", fontsize=6.4,
                        color="#b2182b", linespacing=1.1)

        def edge(centre: tuple[float, float], towards: tuple[float, float]) -> tuple[float, float]:
            """Where the line from a box's centre towards a point leaves the box."""
            dx, dy = towards[0] - centre[0], towards[1] - centre[1]
            t = min((w / 2) / abs(dx) if dx else float("inf"), (h / 2) / abs(dy) if dy else float("inf"))
            return centre[0] + t * dx, centre[1] + t * dy

        def arrow(a: str, b: str, skip: bool) -> None:
            ax.add_patch(FancyArrowPatch(edge(pos[a], pos[b]), edge(pos[b], pos[a]), arrowstyle="-|>", mutation_scale=9,
                                         color="#2171b5" if skip else "#444444", linestyle="--" if skip else "-",
                                         linewidth=0.9, shrinkA=1, shrinkB=1))

        box("input", ["input", "3 ch", key], PART_COLOURS["input"], [])
        by_ref = {r["ref"]: r for r in rows}
        for r in rows:
            if pos[r["ref"]] is None:
                continue
            part = "bottleneck" if "bottleneck" in r["role"] else r["part"]
            g = r["gmacs"][key]
            paradigms = sorted({u.split("/")[0] for u in r["used_by"]})
            box(r["ref"], [r["ref"], f"{r['out_channels']} ch · {_stride(r['stride'])}", f"{_m(r['params'])} params",
                           f"{g:.2f} GMACs ({g / total:.0%})"], PART_COLOURS[part],
                [f"◆ {', '.join(paradigms)}"] if paradigms else [])
            for i, src in enumerate(r["reads"]):
                while src in by_ref and pos.get(src) is None:  # through an Identity to what it passes on
                    src = by_ref[src]["reads"][0]
                if pos.get(src) is not None:
                    arrow(src, r["ref"], skip=i > 0)
        xs = [p[0] for p in pos.values() if p is not None]
        ys = [p[1] for p in pos.values() if p is not None]
        ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
        ax.set_ylim(min(ys) - 0.6, max(ys) + 0.95)
        ax.set_axis_off()
        spec = report["spec"]
        ax.set_title(f"{report['model']}: {spec['encoder_name']} encoder, decoder channels {spec['decoder_channels']}: "
                     f"{_m(report['totals'][key]['params'])} params, {total:.2f} GMACs at {key}", fontsize=10)
    fig.suptitle("segkd's UNet presets as built (conf/model/). Boxes: hook refs with output channels, stride, "
                 "params, MACs (share). Blue dashed: skip connections. Red ◆: paradigms of conf/distill_paradigm/ "
                 "that hook there. A row without compute (smp's decoder.center, an Identity here) is drawn as "
                 "the arrow it is.",
                 fontsize=10.5)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=90)


# ----------------------------------------------------------------------------- main


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    parser.add_argument("--models", nargs="+", default=None, help="presets of conf/model/ (default: all)")
    parser.add_argument("--resolution", nargs=2, type=int, action="append", metavar=("H", "W"),
                        help="input size, repeatable (default: 1024 2048)")
    parser.add_argument("--no-dataset-crop", action="store_true",
                        help="leave out the distillation setting's train crop (dataset.crop_size, SynthStreets)")
    parser.add_argument("--no-knobs", action="store_true", help="leave out the one-knob-at-a-time table")
    parser.add_argument("--no-figure", action="store_true")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    start = time.perf_counter()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    command = " ".join(["OMP_NUM_THREADS=1 .venv/bin/python experiments/architecture_tables.py",
                        *(shlex.quote(a) for a in argv)])
    names = args.models or preset_names()
    unknown = [n for n in names if n not in preset_names()]
    if unknown:
        raise SystemExit(f"unknown model presets {unknown}; conf/model/ has {preset_names()}")
    with tempfile.TemporaryDirectory(prefix="segkd-arch-") as tmp:
        paradigms, crop, teacher_spec = paradigm_terms(Path(tmp))
        specs = {n: model_spec([f"model={n}"], Path(tmp)) for n in names}
    knob_specs = [] if args.no_knobs else [
        (base, overrides, why, with_overrides(specs[base], overrides))
        for base, overrides, why in KNOBS if base in specs]
    sizes = [list(s) for s in (args.resolution or [[1024, 2048]])]
    if not args.no_dataset_crop and crop not in sizes:
        sizes.append(crop)
    refs = hook_refs(paradigms)
    reports = [model_report(n, specs[n], sizes, refs) for n in names]
    first = f"{sizes[0][0]}x{sizes[0][1]}"
    reports.sort(key=lambda r: -r["totals"][first]["params"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for r in reports:
        r["command"] = command
        (out / f"{r['model']}.json").write_text(json.dumps(r, indent=2) + "\n")
        (out / f"{r['model']}.md").write_text(model_markdown(r, command))

    by_name = {r["model"]: r for r in reports}
    knobs = []
    for base, overrides, why, spec in knob_specs:
        totals = {f"{s[0]}x{s[1]}": complexity_at(lambda: build_net(spec), s) for s in sizes[:1]}
        knob = {"preset": base, "overrides": overrides, "why": why, "spec": spec, "totals": totals,
                "base_totals": by_name[base]["totals"]}
        if spec["encoder_depth"] != by_name[base]["spec"]["encoder_depth"]:
            knob["hooks"] = hooks_at_depth(spec, sizes[-1], refs, by_name[base])
        knobs.append(knob)
    teacher = next((r for r in reports if r["spec"] == teacher_spec), None)  # offline KD's teacher, if profiled
    links = connectors(paradigms, teacher, [r for r in reports if r is not teacher]) if teacher else []
    summary = {"command": command, "resolutions": sizes, "paradigm_terms": paradigms, "hook_refs": refs,
               "connectors": links,
               "models": {r["model"]: {"spec": r["spec"], "totals": r["totals"], "parts": r["parts"],
                                       "params_by_part": r["params_by_part"], "share_by_stride": r["share_by_stride"]}
                          for r in reports},
               "knobs": knobs}
    (out / "presets.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "presets.md").write_text(presets_markdown(reports, knobs, links, command))
    if not args.no_figure:
        plot(reports, out / "unet_stages.png", first)
    summary["reports"] = reports
    summary["seconds"] = time.perf_counter() - start
    print(f"wrote {len(reports)} model tables, presets.md{'' if args.no_figure else ' and unet_stages.png'} "
          f"to {out} in {summary['seconds']:.1f} s (after imports)")
    return summary


if __name__ == "__main__":
    main()
