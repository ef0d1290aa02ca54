"""experiments/teacher_softness.py: the teachers' scores are segkd's own metrics, the students' Δ and CI
are the paired ones computed by hand, and missing teachers are skipped with the command that trains them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from segkd.data.datasets import CityscapesDataset
from segkd.data.transforms import eval_transform
from segkd.metrics import NetScores
from segkd.models.checkpoint import load_net

from conftest import load_experiment, write_cityscapes_tree

T_975_DF2 = 4.302652729749464


@pytest.fixture(scope="module")
def ts():
    return load_experiment("teacher_softness")


def write_runs(root: Path, folder: str, mious: dict[int, float]) -> None:
    for seed, miou in mious.items():
        path = root / folder / f"seed{seed}" / "summary.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"seed": seed, "val": {"mIoU": miou}}))


def test_students_paired_with_scratch_and_with_the_reference_teachers_students(ts, tmp_path):
    write_runs(tmp_path, "scratch", {1: 0.20, 2: 0.22, 3: 0.21})
    write_runs(tmp_path, "cwd_w3", {1: 0.23, 2: 0.24, 3: 0.23})
    write_runs(tmp_path, "cwd_ls01", {1: 0.22, 2: 0.25, 3: 0.22, 4: 0.30})  # seed 4 has no scratch pair
    rows = {(r["paradigm"], r["teacher"]): r for r in ts.student_table(tmp_path)}
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


def test_teacher_scores_are_segkds_metrics_and_the_files_are_written(ts, teacher_ckpt, tmp_path):
    root = tmp_path / "data"
    write_cityscapes_tree(root, split="val", per_city=2, size=(32, 64))
    write_runs(tmp_path / "runs", "scratch", {1: 0.2})
    write_runs(tmp_path / "runs", "logits", {1: 0.25})
    result = ts.run({"reference": teacher_ckpt}, root, tmp_path / "runs", tmp_path / "out")

    net, _ = load_net(teacher_ckpt)
    dataset = CityscapesDataset(root, "val", transform=eval_transform())
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
    assert result["teachers"]["reference"]["cwd_spatial_entropy"] == pytest.approx(sum(spatial) / len(spatial))
    assert 0 < sum(spatial) / len(spatial) < 1
    got = result["teachers"]["reference"]
    for key in ("mIoU", "entropy", "dark_knowledge", "ece"):
        assert got[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-7), key
    assert got["entropy_normalised"] == pytest.approx(expected["entropy"] / math.log(dataset.num_classes))
    assert sum(got["entropy_histogram"]) == pytest.approx(1.0) and len(got["entropy_histogram"]) == ts.ENTROPY_BINS
    assert [r["runs"] for r in result["students"]] == ["logits"]
    written = json.loads((tmp_path / "out" / "teacher_softness.json").read_text())
    assert written["teachers"]["reference"]["ece"] == got["ece"]
    assert (tmp_path / "out" / "teacher_softness.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert ts.report(result).splitlines()[1].startswith("reference")


def test_a_missing_teacher_writes_nothing_and_names_its_training_command(ts, teacher_ckpt, tmp_path, capsys):
    missing = tmp_path / "nope.ckpt"
    out = tmp_path / "o"
    assert ts.main(["--teacher", f"reference={teacher_ckpt}", "--teacher", f"teacher_ls01={missing}",
                    "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "no checkpoint for teacher teacher_ls01" in err and "segkd.protocol" in err and "--only teacher_ls01" in err
    assert "teacher reference" not in err and "nothing written" in err
    assert not out.exists(), "a partial measurement must not replace the published one"
