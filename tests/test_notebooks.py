"""The results notebook runs top to bottom on a tiny results tree (executed by a real kernel)."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient

from segkd import compare

from conftest import ROOT
from test_compare import write_summary


def test_kd_results_notebook_executes_on_a_small_tree(tmp_path, monkeypatch):
    for seed, (base, kd) in enumerate([(0.20, 0.24), (0.22, 0.25), (0.21, 0.23)], start=1):
        write_summary(tmp_path, "scratch", seed, base, "student")
        write_summary(tmp_path, "kd", seed, kd, "offline_kd", "logits", teacher=0.3)
    compare.report([tmp_path], plots=False)
    monkeypatch.setenv("SEGKD_RESULTS", str(tmp_path))
    notebook = nbformat.read(ROOT / "notebooks" / "kd_results.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    printed = "".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs)
    assert "2 recipes from" in printed and "better" in printed
    assert "6 run summaries" in printed
    images = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 3, "paired Δ, mIoU vs GMACs, per-class heat map"
