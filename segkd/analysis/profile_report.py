"""What segkd.profile writes: profile.md, profile.csv, profile.json and latency.png, the console
tables, and a profiled checkpoint's run updated with its own rows (``<run>/profile/`` and ``profile``
in its summary.json)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from segkd.inference.checkpoint import run_dir_of
from segkd.reporting import console_table, markdown_table, new_figure, number, save_figure, write_csv
from segkd.summary import write_summary


def write_report(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "profile.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    if report["latency"]:
        write_csv(out / "profile.csv", report["latency"])
    (out / "profile.md").write_text(markdown(report))
    plot(report, out / "latency.png")


def add_to_checkpoint_run(report: dict, ckpt_path: Path) -> None:
    """The run the checkpoint came from gets the report (``profile/``) and its summary a ``profile`` entry."""
    run = run_dir_of(ckpt_path)
    write_report(report, run / "profile")
    summary_path = run / "summary.json"
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text())
        except (ValueError, OSError) as err:
            summary = None
            reason = f"not valid JSON ({err})" if isinstance(err, ValueError) else str(err)
        else:
            reason = "not a JSON object"
        if not isinstance(summary, dict):  # the profile is kept (written above); the damaged summary is left as it is
            print(f"segkd: the run's {summary_path} is {reason}: the profile is in {run / 'profile'}, not added to it",
                  file=sys.stderr)
            return
        own = [r for r in report["latency"] if r["model"].startswith(f"{run.name}:")]
        summary["profile"] = {"device": report["device"], "threads": report["threads"], "latency": own,
                              "report": str(run / "profile" / "profile.md")}
        write_summary(summary, run)


def _size_keys(report: dict) -> list[str]:
    return [k for k in report["presets"][0] if k.startswith("gmacs@")]


def _ratio(report: dict, r: dict) -> dict:
    by_key = {(q["model"], q["backend"], q["height"], q["width"], q["batch"]): q for q in report["ratios"]}
    return by_key[(r["model"], r["backend"], r["height"], r["width"], r["batch"])]


def markdown(report: dict) -> str:
    size_keys = _size_keys(report)
    ref = report["reference_model"]
    lines = [f"# Profile on {report['device']} ({report['threads']} threads)", "",
             "## Params and compute (torch.utils.flop_counter; GFLOPs = 2 x GMACs)", "",
             markdown_table(["model", "architecture", "encoder", "params (M)",
                             *(f"GMACs {k[6:]}" for k in size_keys)],
                            [[p["model"], p["architecture"], p["encoder"], f"{p['params'] / 1e6:.2f}",
                              *(f"{p[k]:.2f}" for k in size_keys)] for p in report["presets"]],
                            "lllr" + "r" * len(size_keys)),
             "", "## Latency (median and p90 per forward pass, after warm-up)", ""]
    rows = []
    for r in report["latency"]:
        q = _ratio(report, r)
        rows.append([r["model"], r["backend"], f"{r['batch']}x{r['height']}x{r['width']}", f"{r['median_ms']:.1f}",
                     f"{r['p90_ms']:.1f}", f"{r['images_per_s']:.2f}", number(q["vs_own_eager"], ".3f"),
                     number(q["vs_reference"], ".3f"), f"{r['setup_s']:.1f}", number(r["onnx_max_abs_diff"], ".1e")])
    lines.append(markdown_table(["model", "backend", "input", "median ms", "p90 ms", "images/s", "vs own eager",
                                 f"vs {ref or 'reference'} (same backend)", "setup s", "ONNX max abs diff"],
                                rows, "lll" + "r" * 7))
    if report["unavailable"]:
        lines += ["", "Not run here:", ""] + [f"- {u['model']} under {u['backend']}: {u['reason']}" for u in report["unavailable"]]
    for name, layers in report["layers"].items():
        lines += ["", f"## Layers of {name} (torch.profiler, one eager pass, slowest first)", "",
                  markdown_table(["layer", "calls", "ms", "share of the pass"],
                                 [[r["layer"], r["calls"], f"{r['time_ms']:.2f}", number(r["share"], ".1%")]
                                  for r in layers], "lrrr")]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    eager = [r for r in report["latency"] if r["backend"] == "eager" and r["batch"] == min(x["batch"] for x in report["latency"])]
    if not eager:
        return
    fig = new_figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for model in dict.fromkeys(r["model"] for r in eager):
        pts = sorted((r["height"] * r["width"] / 1e6, r["median_ms"]) for r in eager if r["model"] == model)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=model)
    ax.set(xscale="log", yscale="log", xlabel="megapixels per image", ylabel="median latency (ms, eager, batch "
           f"{eager[0]['batch']})", title=f"latency on {report['device']}, {report['threads']} threads")
    ax.legend(fontsize=8)
    save_figure(fig, path, dpi=110)


def print_report(report: dict, console) -> None:
    size_keys = _size_keys(report)
    console.print(console_table("params and compute (GFLOPs = 2 x GMACs)",
                                ["model", "architecture", "encoder", "params M",
                                 *(f"GMACs {k[6:]}" for k in size_keys)],
                                [[p["model"], str(p["architecture"]), str(p["encoder"]), f"{p['params'] / 1e6:.2f}",
                                  *(f"{p[k]:.2f}" for k in size_keys)] for p in report["presets"]], left=3))
    rows = [[r["model"], r["backend"], f"{r['batch']}x{r['height']}x{r['width']}", f"{r['median_ms']:.1f}",
             f"{r['p90_ms']:.1f}", f"{r['images_per_s']:.2f}", number(_ratio(report, r)["vs_reference"], ".3f")]
            for r in report["latency"]]
    console.print(console_table(f"latency on {report['device']} ({report['threads']} threads)",
                                ["model", "backend", "input", "median ms", "p90 ms", "images/s",
                                 f"vs {report['reference_model'] or 'reference'}"], rows, left=3))
    for u in report["unavailable"]:
        console.print(f"[yellow]{u['model']} under {u['backend']} not run: {u['reason']}")
