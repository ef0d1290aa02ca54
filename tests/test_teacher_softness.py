"""docs/METHODS.md section 3 (the soft teachers): the teachers' scores segkd.analysis.teacher_softness
measures are segkd's own metrics, the students' Δ and CI are the paired ones computed by hand; and
experiments/teacher_softness.py, run as a process as the docs run it, writes them, or, when a teacher
is missing, writes nothing and names the command that trains it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from segkd.analysis.teacher_softness import ENTROPY_BINS, student_table, teacher_scores
from segkd.data.datasets import CityscapesDataset
from segkd.data.transforms import eval_transform
from segkd.metrics import NetScores
from segkd.models.checkpoint import load_net

import conftest
from conftest import write_net_checkpoint

T_975_DF2 = 4.302652729749464
SCRIPT = "experiments/teacher_softness.py"
#: (paradigm, teacher) -> the folder of its students, as the script's STUDENTS names them.
STUDENTS = {("cwd", "reference"): "cwd_w3", ("cwd", "teacher_ls01"): "cwd_ls01", ("cwd", "teacher_cp01"): "cwd_cp01",
            ("logits", "reference"): "logits"}


def write_runs(root: Path, folder: str, mious: dict[int, float]) -> None:
    for seed, miou in mious.items():
        path = root / folder / f"seed{seed}" / "summary.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"seed": seed, "val": {"mIoU": miou}}))


def run_script(*args: str):
    return conftest.run_script(SCRIPT, *args)


@pytest.fixture
def tree(val_tree) -> Path:
    return val_tree


def test_students_paired_with_scratch_and_with_the_reference_teachers_students(tmp_path):
    write_runs(tmp_path, "scratch", {1: 0.20, 2: 0.22, 3: 0.21})
    write_runs(tmp_path, "cwd_w3", {1: 0.23, 2: 0.24, 3: 0.23})
    write_runs(tmp_path, "cwd_ls01", {1: 0.22, 2: 0.25, 3: 0.22, 4: 0.30})  # seed 4 has no scratch pair
    rows = {(r["paradigm"], r["teacher"]): r for r in student_table(tmp_path, STUDENTS)}
    assert set(rows) == {("cwd", "reference"), ("cwd", "teacher_ls01")}, "folders without runs are left out"

    ref = rows[("cwd", "reference")]["vs_scratch"]
    diffs = [0.03, 0.02, 0.02]
    mean = sum(diffs) / 3
    half = T_975_DF2 * math.sqrt(sum((d - mean) ** 2 for d in diffs) / 2) / math.sqrt(3)
    assert ref["seeds"] == [1, 2, 3] and ref["delta_mean"] == pytest.approx(mean)
    assert ref["delta_ci95"] == pytest.approx([mean - half, mean + half]) and ref["verdict"] == "better"

    soft = rows[("cwd", "teacher_ls01")]
    assert soft["n_seeds"] == 4 and soft["vs_scratch"]["seeds"] == [1, 2, 3]
    assert soft["vs_reference_teacher"]["delta_mean"] == pytest.approx((-0.01 + 0.01 - 0.01) / 3)
    assert rows[("cwd", "reference")]["vs_reference_teacher"] is None


def test_teacher_scores_are_segkds_metrics(tree, tmp_path):
    net, _ = load_net(write_net_checkpoint(tmp_path / "teacher.ckpt"))
    dataset = CityscapesDataset(tree, "val", transform=eval_transform())
    got = teacher_scores(net, dataset, batch_size=3)  # two batches, the second short

    direct = NetScores(list(dataset.class_names))
    spatial = []
    with torch.no_grad():
        for i in range(len(dataset)):
            item = dataset[i]
            logits = net(item["image"][None]).float()
            direct.update(logits, item["mask"][None])
            p = logits[0].flatten(1).softmax(-1)  # per class: a distribution over the pixels
            spatial += (-(p * p.log()).sum(-1) / math.log(p.shape[-1])).tolist()
    expected = direct.compute_and_reset()
    assert got["cwd_spatial_entropy"] == pytest.approx(sum(spatial) / len(spatial))
    assert 0 < sum(spatial) / len(spatial) < 1
    for key in ("mIoU", "entropy", "dark_knowledge", "ece"):
        assert got[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-7), key
    assert got["entropy_normalised"] == pytest.approx(expected["entropy"] / math.log(dataset.num_classes))
    assert sum(got["entropy_histogram"]) == pytest.approx(1.0) and len(got["entropy_histogram"]) == ENTROPY_BINS
    assert "reliability" in got


@pytest.mark.slow
@pytest.mark.study
def test_the_script_writes_the_scores_and_the_figure(tree, tmp_path):
    ckpt = write_net_checkpoint(tmp_path / "teacher.ckpt")
    write_runs(tmp_path / "runs", "scratch", {1: 0.2})
    write_runs(tmp_path / "runs", "logits", {1: 0.25})
    out = tmp_path / "out"
    done = run_script("--teacher", f"reference={ckpt}", "--data", str(tree), "--runs", str(tmp_path / "runs"),
                      "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    written = json.loads((out / "teacher_softness.json").read_text())
    expected = teacher_scores(load_net(ckpt)[0], CityscapesDataset(tree, "val", transform=eval_transform()))
    got = written["teachers"]["reference"]
    for key in ("mIoU", "entropy", "ece", "cwd_spatial_entropy"):
        assert got[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-7), key
    assert got["loss"] == "cross-entropy" and written["images"] == 4
    assert [r["runs"] for r in written["students"]] == ["logits"]
    assert written["students"][0]["vs_scratch"]["delta_mean"] == pytest.approx(0.05)
    assert (out / "teacher_softness.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert done.stdout.splitlines()[1].startswith("reference")


@pytest.mark.slow
def test_a_missing_teacher_writes_nothing_and_names_its_training_command(tmp_path):
    present = tmp_path / "present.ckpt"
    present.write_bytes(b"only its existence is checked before anything runs")
    out = tmp_path / "o"
    done = run_script("--teacher", f"reference={present}", "--teacher", f"teacher_ls01={tmp_path / 'nope.ckpt'}",
                      "--out", str(out))
    assert done.returncode == 1
    err = done.stderr
    assert "no checkpoint for teacher teacher_ls01" in err and "segkd.protocol" in err and "--only teacher_ls01" in err
    assert "teacher reference" not in err and "nothing written" in err
    assert not out.exists(), "a partial measurement must not replace the published one"
