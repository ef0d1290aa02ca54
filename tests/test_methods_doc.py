"""docs/METHODS.md quotes measured numbers: they must be the ones the result files hold, so the page
cannot drift from what segkd measured (a rerun of `make docs-figures` or the protocol changes both)."""

from __future__ import annotations

import json
import re

import pytest

from conftest import ROOT

DOC = (ROOT / "docs" / "METHODS.md").read_text()
FIGURES = ROOT / "docs" / "figures" / "methods"
COMPARISON = json.loads((ROOT / "docs" / "results" / "kd_protocol_s4" / "comparison.json").read_text())

#: METHODS.md's paradigm rows -> the recipe of comparison.json each one quotes.
PARADIGM_ROWS = {
    "`logits`, T=1, cached teacher": "offline_kd/student_mnv2/logits teacher_cache=true",
    "`cwd`, tau 1, weight 3, cached": "offline_kd/student_mnv2/cwd distill_paradigm.terms.cwd.weight=3 teacher_cache=true",
    "`cwd`, tau 1, weight 3, live teacher": "offline_kd/student_mnv2/cwd",
    "`encoder` (FitNets": "offline_kd/student_mnv2/encoder",
    "`encoder_cwd` (both": "offline_kd/student_mnv2/encoder_cwd",
    "`bottleneck` (deepest": "offline_kd/student_mnv2/bottleneck",
    "`decoder` (decoder blocks)": "offline_kd/student_mnv2/decoder",
    "online DML": "online_dml/student_mnv2/constant",
    "`pairwise` (decoder block 3": "offline_kd/student_mnv2/pairwise",
    "`logits_decoder`": "offline_kd/student_mnv2/logits_decoder",
    "online alternating": "online_alternating/student_mnv2/alternating",
}


def row_of(label: str) -> str:
    rows = [line for line in DOC.splitlines() if line.startswith(f"| {label}")]
    assert len(rows) == 1, f"one table row starts with {label!r}"
    return rows[0]


@pytest.mark.parametrize("label", PARADIGM_ROWS)
def test_each_paradigm_row_quotes_the_protocol_comparison(label):
    recipe = next(r for r in COMPARISON if r["recipe"] == PARADIGM_ROWS[label])
    row = row_of(label)
    low, high = recipe["delta_ci95"]
    assert f"{100 * recipe['delta_mean']:+.2f} ({recipe['n_seeds']})" in row
    assert f"[{100 * low:+.2f}, {100 * high:+.2f}]" in row


def test_dark_knowledge_rows_quote_the_figure_script_numbers():
    numbers = json.loads((FIGURES / "dark_knowledge.json").read_text())
    for label, group in [("class boundaries", "boundary"), ("interiors", "interior"), ("rare classes", "rare"),
                         ("frequent classes", "frequent")]:
        row = row_of(label)
        cells = [c.strip().strip("*") for c in row.split("|")[1:-1]]
        assert cells[2] == f"{numbers[group]['entropy']:.3f}", label
        assert cells[3] == f"{numbers[group]['off_argmax']:.3f}", label
        share = numbers[group]["pixels"] / numbers["all_valid"]["pixels"]
        assert cells[1] == f"{100 * share:.1f}%", label


def test_temperature_rows_quote_the_measured_gradients():
    numbers = json.loads((FIGURES / "temperature_gradient.json").read_text())
    students = list(numbers["students"].values())
    for row in students[0]["rows"]:
        line = row_of(f"{row['T']:g} |")
        cells = [float(c) for c in line.split("|")[2:-1]]
        measured = [row["grad_norm_kl"], row["grad_norm_t2_kl"],
                    *[(r["grad_norm_kl"], r["grad_norm_t2_kl"]) for r in students[1]["rows"] if r["T"] == row["T"]][0]]
        assert cells == pytest.approx(measured, rel=0.02, abs=1e-4)


def test_every_figure_the_page_shows_exists():
    shown = set(re.findall(r"\]\((figures/[^)]+\.png)\)", DOC))
    assert shown and all((ROOT / "docs" / f).is_file() for f in shown)


def test_teacher_softness_rows_quote_the_measured_teachers():
    measured = json.loads((ROOT / "docs" / "results" / "teacher_softness" / "torch_weighted_smoothing.json").read_text())
    for label, name in [("reference (cross-entropy", "reference"),
                        ("label smoothing 0.1, PyTorch's class-weighted", "ls01_torch_weighted")]:
        t = measured["teachers"][name]
        cells = [c.strip() for c in row_of(label).split("|")[1:-1]]
        assert cells[1:] == [f"{100 * t['mIoU']:.2f}", f"{t['entropy_normalised']:.3f}",
                             f"{t['dark_knowledge']:.3f}", f"{t['ece']:.3f}"], label


SOFTNESS = json.loads((FIGURES / "teacher_softness.json").read_text())


@pytest.mark.parametrize("name", ["reference", "teacher_ls01", "teacher_cp01"])
def test_soft_teacher_rows_quote_teacher_softness(name):
    t = SOFTNESS["teachers"][name]
    cells = [c.strip() for c in row_of(f"`{name}` |").split("|")[1:-1]]
    assert cells[2:] == [f"{100 * t['mIoU']:.2f}", f"{t['entropy_normalised']:.3f}", f"{t['dark_knowledge']:.3f}",
                         f"{t['ece']:.3f}", f"{t['cwd_spatial_entropy']:.3f}"], name


def _delta_cell(d: dict) -> str:
    low, high = d["delta_ci95"]
    return f"{100 * d['delta_mean']:+.2f} [{100 * low:+.2f}, {100 * high:+.2f}]"


@pytest.mark.parametrize("row", SOFTNESS["students"], ids=lambda r: f"{r['paradigm']}-{r['teacher']}")
def test_soft_teacher_student_rows_quote_their_paired_deltas(row):
    cells = [c.strip().strip("*") for c in row_of(f"{row['paradigm']} from `{row['teacher']}` |").split("|")[1:-1]]
    assert cells[1] == str(row["n_seeds"]) and cells[2] == f"{100 * row['miou_mean']:.2f}"
    assert cells[3] == _delta_cell(row["vs_scratch"])
    assert cells[4] == ("—" if row["vs_reference_teacher"] is None else _delta_cell(row["vs_reference_teacher"]))
