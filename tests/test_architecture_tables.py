"""docs/ARCHITECTURE.md's tables: the per-stage rows of segkd.analysis.architecture, checked on a real
CPU forward pass by other means than its own (segkd.models.measure_complexity, torch's per-module FLOP
counts, segkd's FeatureRecorder, the paradigm YAMLs read directly); and experiments/architecture_tables.py,
run as the docs run it, writing those rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from segkd.analysis.architecture import hook_refs, model_report, model_spec, paradigm_terms
from segkd.config import CONF_DIR, compose_train_config
from segkd.distill.features import FeatureRecorder
from segkd.models import build_net, measure_complexity

from conftest import ROOT

MODEL, SIZE = "student_rt20", (64, 128)  # the timm encoder: stages found by the pass, not by module names


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    """The rows of MODEL at SIZE, measured as experiments/architecture_tables.py measures them."""
    workdir = tmp_path_factory.mktemp("compose")
    paradigms, _, _ = paradigm_terms(workdir)
    return model_report(MODEL, model_spec([f"model={MODEL}"], workdir), [SIZE], hook_refs(paradigms))


def test_stage_rows_match_the_network(report, tmp_path):
    rows, key = report["rows"], f"{SIZE[0]}x{SIZE[1]}"

    # The same network, for real, on the CPU.
    net = build_net(report["spec"]).eval()
    modules = dict(net.named_modules())
    cost = measure_complexity(net, SIZE)  # what train.py writes into summary.json
    assert sum(r["params"] for r in rows) == cost["params"] == report["totals"][key]["params"]
    assert sum(r["flops"][key] for r in rows) == round(cost["gflops"] * 1e9)

    # Each row's params and MACs are those of the modules it names (torch's per-module counts).
    with torch.no_grad(), FlopCounterMode(display=False, depth=None) as counter:
        net(torch.zeros(1, 3, *SIZE))
    per_module = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    for row in rows:
        assert row["params"] == sum(p.numel() for m in row["modules"] for p in modules[m].parameters()), row["ref"]
        assert row["flops"][key] == sum(per_module.get(f"Unet.{m}", 0) for m in row["modules"]), row["ref"]
    encoder_modules = [m for r in rows if r["part"] == "encoder" for m in r["modules"]]
    assert len(encoder_modules) == len(set(encoder_modules))  # stages do not share modules

    # Channels and strides: every row's ref resolved by segkd's own hook resolver on a real pass.
    refs = [r["ref"] for r in rows if r["ref"] != "logits"]
    recorder = FeatureRecorder(net, refs)
    with torch.no_grad(), recorder.record():
        logits = net(torch.zeros(1, 3, *SIZE))
    shapes = {ref: tuple(recorder.get(ref).shape[1:]) for ref in refs}
    shapes["logits"] = tuple(logits.shape[1:])
    for row in rows:
        expected = (row["out_channels"], SIZE[0] // row["stride"], SIZE[1] // row["stride"])
        assert shapes[row["ref"]] == expected, row["ref"]
    encoder_rows = [r for r in rows if r["part"] == "encoder"]
    assert [r["out_channels"] for r in encoder_rows] == list(net.encoder.out_channels[1:])
    assert [r["stride"] for r in encoder_rows] == [2, 4, 8, 16, 32]
    assert shapes["logits"][0] == report["spec"]["classes"]

    # Hook points: exactly the refs the paradigm YAMLs name (composed, so a paradigm made of others
    # counts their terms), each row credited with its terms.
    used = {}
    for path in (CONF_DIR / "distill_paradigm").glob("*.yaml"):
        composed = compose_train_config(["+experiment=offline_kd", f"distill_paradigm={path.stem}"], tmp_path / "c")
        for term, body in (composed.distill_paradigm.get("terms") or {}).items():
            for source in body["inputs"].values():
                if source != "target":
                    used.setdefault(source.partition(":")[2], set()).add(f"{path.stem}/{term}")
    assert {r["ref"]: set(r["used_by"]) for r in rows if r["used_by"]} == used
    assert set(report["hook_check"]["shapes"]) == set(used) - {"logits"}


@pytest.mark.slow
@pytest.mark.study
def test_the_script_writes_the_rows(report, tmp_path):
    """experiments/architecture_tables.py as ``make docs-figures`` runs it (one model, one small size):
    its per-model JSON holds the measured rows, its Markdown table names every row, presets.md is written."""
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "experiments/architecture_tables.py", "--out", str(out), "--models", MODEL,
                           "--resolution", str(SIZE[0]), str(SIZE[1]), "--no-dataset-crop", "--no-knobs",
                           "--no-figure"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    rows = report["rows"]
    written = json.loads((out / f"{MODEL}.json").read_text())
    assert written["rows"] == json.loads(json.dumps(rows)) and written["model"] == MODEL
    markdown = (out / f"{MODEL}.md").read_text()
    assert all(f"`{r['ref']}`" in markdown for r in rows)
    assert MODEL in (out / "presets.md").read_text() and MODEL in json.loads((out / "presets.json").read_text())["models"]
