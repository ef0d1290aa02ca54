"""Command line: ``python -m segkd.profile [models=[teacher_r34,student_mnv2]] [ckpt_path=PATH] ...``

Teacher and students side by side: params, GMACs and GFLOPs, latency (median, p90) and throughput
over resolutions and batch sizes under eager PyTorch, channels_last, torch.compile and ONNX Runtime,
and a per-layer table; profile.md, profile.csv, profile.json and latency.png in the run dir. With
``ckpt_path`` the checkpoint's network is profiled too and the results are added to its run
(``<run>/profile/`` and ``profile`` in its summary.json). conf/profile.yaml lists every option;
docs/PROFILE.md has the measurements.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Callable, Optional

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table
from torch import nn

from segkd.analysis.profiling import BACKENDS, complexity_at, latency_row, layer_table, make_runner, time_runners, workdir
from segkd.config import CONF_DIR, to_plain
from segkd.export import check_input_size, run_dir_of
from segkd.inference.devices import resolve_device
from segkd.models import build_net
from segkd.runtime.errors import errors_in_one_line
from segkd.summary import write_summary

log = logging.getLogger(__name__)


def preset_spec(name: str, num_classes: int) -> dict:
    """A model preset of conf/model/ as a plain spec, with the class count filled in."""
    path = CONF_DIR / "model" / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
        raise ValueError(f"unknown model preset '{name}'; conf/model/ has {known}")
    spec = OmegaConf.load(path)
    spec.classes = num_classes
    return to_plain(spec)


def networks(cfg: DictConfig) -> dict[str, tuple[Callable[[], nn.Module], dict]]:
    """name -> (a factory of the network, its spec): the presets asked for, then the checkpoint's."""
    from segkd.inference.checkpoint import network_from

    nets = {}
    for name in cfg.models or []:
        spec = preset_spec(name, int(cfg.num_classes))
        nets[name] = ((lambda s=spec: build_net(s)), spec)
    if cfg.get("ckpt_path"):
        loaded, spec, path = network_from(cfg.ckpt_path, cfg.net)
        nets[f"{run_dir_of(path).name}:{cfg.net}"] = ((lambda n=loaded: n), spec)
    if not nets:
        raise ValueError("nothing to profile: give models=[...] (conf/model/ presets) and/or ckpt_path=...")
    return nets


def ratios(rows: list[dict], reference: Optional[str]) -> list[dict]:
    """Per resolution and batch: each model's latency / the reference model's under the same backend,
    and / its own eager latency (what the backend buys)."""
    out = []
    by_key = {(r["model"], r["backend"], r["height"], r["width"], r["batch"]): r for r in rows}
    for r in rows:
        eager = by_key.get((r["model"], "eager", r["height"], r["width"], r["batch"]))
        ref = by_key.get((reference, r["backend"], r["height"], r["width"], r["batch"])) if reference else None
        out.append({**{k: r[k] for k in ("model", "backend", "height", "width", "batch")},
                    "vs_own_eager": r["median_ms"] / eager["median_ms"] if eager else None,
                    "vs_reference": r["median_ms"] / ref["median_ms"] if ref else None})
    return out


def profile(cfg: DictConfig) -> dict:
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    device = resolve_device(str(cfg.device))
    resolutions = [check_input_size(s) for s in cfg.resolutions]
    unknown = [b for b in cfg.backends if b not in BACKENDS]
    if unknown:
        raise ValueError(f"unknown backends {unknown}; choose from {list(BACKENDS)}")
    nets = networks(cfg)
    reference = cfg.get("reference_model") if cfg.get("reference_model") in nets else None
    console = Console()

    presets = []
    for name, (factory, spec) in nets.items():
        row = {"model": name, "encoder": spec.get("encoder_name"), "decoder_channels": spec.get("decoder_channels")}
        for size in [check_input_size(cfg.reference_resolution), *resolutions]:
            cx = complexity_at(lambda: build_net(spec), size)  # from the spec: counted on the meta device
            row.update(params=cx["params"], **{f"gmacs@{size[0]}x{size[1]}": cx["gmacs"], f"gflops@{size[0]}x{size[1]}": cx["gflops"]})
        presets.append(row)

    rows, unavailable = [], []
    with workdir() as tmp:
        for size in resolutions:
            for batch in cfg.batch_sizes:
                example = torch.randn(int(batch), 3, *size, generator=torch.Generator().manual_seed(0)).to(device)
                runners = []
                for name, (factory, _) in nets.items():
                    net = factory().to(device).eval()
                    for backend in cfg.backends:
                        try:
                            runners.append(make_runner(name, net, backend, example, float(cfg.tolerance), Path(tmp)))
                        except Exception as err:  # a backend this machine cannot run: say why, time the rest
                            if "differ from the network" in str(err):
                                raise
                            unavailable.append({"model": name, "backend": backend, "size": list(size), "batch": batch,
                                                "reason": f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"})
                            log.warning("%s under %s unavailable: %s", name, backend, unavailable[-1]["reason"])
                console.print(f"timing {len(runners)} network/backend pairs at {batch}x3x{size[0]}x{size[1]} on {device} ...")
                time_runners(runners, example, int(cfg.warmup), int(cfg.repeats), int(cfg.rounds))
                rows += [latency_row(r, int(batch), size) for r in runners]
        layers = {}
        if cfg.layer_table:
            size = resolutions[0]
            example = torch.randn(1, 3, *size).to(device)
            for name, (factory, _) in nets.items():
                layers[name] = layer_table(factory().to(device).eval(), example, depth=int(cfg.layer_depth))

    report = {"device": str(device), "threads": torch.get_num_threads(), "reference_model": reference,
              "presets": presets, "latency": rows, "ratios": ratios(rows, reference), "unavailable": unavailable,
              "layers": layers, "settings": to_plain(cfg)}
    write_report(report, output_dir)
    print_report(report, console)
    if cfg.get("ckpt_path"):
        _add_to_checkpoint_run(report, Path(str(cfg.ckpt_path)).expanduser().absolute())
    return report


def _add_to_checkpoint_run(report: dict, ckpt_path: Path) -> None:
    """The run the checkpoint came from gets the report (``profile/``) and its summary a ``profile`` entry."""
    run = run_dir_of(ckpt_path)
    write_report(report, run / "profile")
    summary_path = run / "summary.json"
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        own = [r for r in report["latency"] if r["model"].startswith(f"{run.name}:")]
        summary["profile"] = {"device": report["device"], "threads": report["threads"], "latency": own,
                              "report": str(run / "profile" / "profile.md")}
        write_summary(summary, run)


def write_report(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "profile.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    if report["latency"]:
        with open(out / "profile.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(report["latency"][0]))
            writer.writeheader()
            writer.writerows(report["latency"])
    (out / "profile.md").write_text(markdown(report))
    plot(report, out / "latency.png")


def _num(value, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def markdown(report: dict) -> str:
    lines = [f"# Profile on {report['device']} ({report['threads']} threads)", ""]
    presets = report["presets"]
    size_keys = [k for k in presets[0] if k.startswith("gmacs@")]
    lines += ["## Params and compute (torch.utils.flop_counter; GFLOPs = 2 x GMACs)", "",
              "| model | encoder | decoder channels | params (M) | " + " | ".join(f"GMACs {k[6:]}" for k in size_keys) + " |",
              "|---|---|---|---:|" + "---:|" * len(size_keys)]
    for p in presets:
        lines.append(f"| {p['model']} | {p['encoder']} | {p['decoder_channels']} | {p['params'] / 1e6:.2f} | "
                     + " | ".join(f"{p[k]:.2f}" for k in size_keys) + " |")
    ratio = {(r["model"], r["backend"], r["height"], r["width"], r["batch"]): r for r in report["ratios"]}
    ref = report["reference_model"]
    lines += ["", "## Latency (median and p90 per forward pass, after warm-up)", "",
              f"| model | backend | input | median ms | p90 ms | images/s | vs own eager | vs {ref or 'reference'} (same backend) | setup s | ONNX max abs diff |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["latency"]:
        q = ratio[(r["model"], r["backend"], r["height"], r["width"], r["batch"])]
        lines.append(f"| {r['model']} | {r['backend']} | {r['batch']}x{r['height']}x{r['width']} | {r['median_ms']:.1f} | "
                     f"{r['p90_ms']:.1f} | {r['images_per_s']:.2f} | {_num(q['vs_own_eager'], '.3f')} | "
                     f"{_num(q['vs_reference'], '.3f')} | {r['setup_s']:.1f} | {_num(r['onnx_max_abs_diff'], '.1e')} |")
    if report["unavailable"]:
        lines += ["", "Not run here:", ""] + [f"- {u['model']} under {u['backend']}: {u['reason']}" for u in report["unavailable"]]
    for name, rows in report["layers"].items():
        lines += ["", f"## Layers of {name} (torch.profiler, one eager pass, slowest first)", "",
                  "| layer | calls | ms | share of the pass |", "|---|---:|---:|---:|"]
        lines += [f"| {r['layer']} | {r['calls']} | {r['time_ms']:.2f} | {_num(r['share'], '.1%')} |" for r in rows]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    eager = [r for r in report["latency"] if r["backend"] == "eager" and r["batch"] == min(x["batch"] for x in report["latency"])]
    if not eager:
        return
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for model in dict.fromkeys(r["model"] for r in eager):
        pts = sorted((r["height"] * r["width"] / 1e6, r["median_ms"]) for r in eager if r["model"] == model)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=model)
    ax.set(xscale="log", yscale="log", xlabel="megapixels per image", ylabel="median latency (ms, eager, batch "
           f"{eager[0]['batch']})", title=f"latency on {report['device']}, {report['threads']} threads")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def print_report(report: dict, console: Console) -> None:
    presets = Table(title="params and compute (GFLOPs = 2 x GMACs)")
    size_keys = [k for k in report["presets"][0] if k.startswith("gmacs@")]
    for column in ("model", "encoder", "params M", *(f"GMACs {k[6:]}" for k in size_keys)):
        presets.add_column(column, justify="left" if column in ("model", "encoder") else "right")
    for p in report["presets"]:
        presets.add_row(p["model"], str(p["encoder"]), f"{p['params'] / 1e6:.2f}", *(f"{p[k]:.2f}" for k in size_keys))
    console.print(presets)
    table = Table(title=f"latency on {report['device']} ({report['threads']} threads)")
    for column in ("model", "backend", "input", "median ms", "p90 ms", "images/s", f"vs {report['reference_model'] or 'reference'}"):
        table.add_column(column, justify="left" if column in ("model", "backend", "input") else "right")
    ratio = {(r["model"], r["backend"], r["height"], r["width"], r["batch"]): r for r in report["ratios"]}
    for r in report["latency"]:
        q = ratio[(r["model"], r["backend"], r["height"], r["width"], r["batch"])]
        table.add_row(r["model"], r["backend"], f"{r['batch']}x{r['height']}x{r['width']}", f"{r['median_ms']:.1f}",
                      f"{r['p90_ms']:.1f}", f"{r['images_per_s']:.2f}", _num(q["vs_reference"], ".3f"))
    console.print(table)
    for u in report["unavailable"]:
        console.print(f"[yellow]{u['model']} under {u['backend']} not run: {u['reason']}")


@hydra.main(version_base="1.3", config_path="../conf", config_name="profile")
def main(cfg: DictConfig) -> None:
    with errors_in_one_line():
        profile(cfg)


if __name__ == "__main__":
    main()
