"""Per-stage tables and a figure of the UNets segkd builds: what docs/ARCHITECTURE.md quotes.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/architecture_tables.py [--out docs/results/architecture]
        [--models teacher_r34 student_mnv2 ...] [--resolution H W [--resolution H W ...]] [--no-dataset-crop]

For every model preset of conf/model/, built as training builds it (``cfg.model`` of the config
``python -m segkd.run model=NAME`` composes, through ``segkd.models.build_net``), the rows a
distillation paradigm can name (``encoder#k``, ``decoder.center``, ``decoder.blocks.i``, ``logits``)
with channels, stride, params and MACs per resolution, checked against segkd's own totals and hook
resolver: segkd.analysis.architecture measures them (tests/test_architecture_tables.py checks that
on a real CPU pass); this script writes them out. A knob table varies one setting of a preset at a
time (encoder, decoder channels, encoder depth), each variant given by the overrides a user would type.

Writes ``<model>.json`` and ``<model>.md`` per model, ``presets.json``/``presets.md`` (totals, the
encoder/decoder/head split, MACs by stride, the knob table, the connectors of feature KD) and
``unet_stages.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from segkd.analysis.architecture import (connectors, hook_refs, knob_variant, model_report, model_spec,
                                         paradigm_terms, preset_names, with_overrides)

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
    parser.add_argument("--models", nargs="+", default=None, help="UNet presets of conf/model/ (default: all)")
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
        raise SystemExit(f"unknown UNet presets {unknown}; conf/model/ has {preset_names()}")
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
    knobs = [knob_variant(by_name[base], overrides, why, spec, sizes[0], sizes[-1], refs)
             for base, overrides, why, spec in knob_specs]
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
