"""segkd.compare on a tree of summary.json files with known numbers: Δ, CI and verdicts by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from segkd import compare

T_975_DF2 = 4.302652729749464  # Student's t, 97.5% quantile, 2 degrees of freedom (printed tables: 4.303)
CLASSES = ("road", "car", "bicycle")


def write_summary(root: Path, name: str, seed: int, miou: float, experiment: str, paradigm: str | None = None,
                  overrides: tuple[str, ...] = (), teacher: float | None = None, bicycle: float | None = 0.1) -> None:
    tags = [experiment] + ([f"paradigm:{paradigm}"] if paradigm else [])
    summary = {
        "experiment": experiment, "model": "student_mnv2", "dataset": "synthstreets", "tags": tags,
        "overrides": [f"+experiment={experiment}", *overrides, f"seed={seed}", "trainer.enable_progress_bar=false"],
        "seed": seed, "val": {"mIoU": miou, "pixel_acc": 0.9, "IoU": {"road": 0.9, "car": miou, "bicycle": bicycle}},
        "best_val_mIoU": miou + 0.01, "complexity": {"params": 3_000_000, "gmacs": 0.125}, "epochs": 12,
        "input_size": [64, 128],
    }
    if teacher is not None:
        summary["teacher"] = {"mIoU": teacher}
    path = root / name / f"s{seed}" / "summary.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(summary))


@pytest.fixture
def tree(tmp_path) -> Path:
    base = {1: 0.20, 2: 0.22, 3: 0.21}
    for s, m in base.items():
        write_summary(tmp_path, "scratch", s, m, "student")
    for s, d in {1: 0.03, 2: 0.03, 3: 0.03}.items():
        write_summary(tmp_path, "a", s, base[s] + d, "offline_kd", "logits", teacher=0.3)
    for s, d in {1: 0.01, 2: -0.01, 3: 0.03}.items():
        write_summary(tmp_path, "b", s, base[s] + d, "offline_kd", "cwd", teacher=0.3)
    for s, d in {1: -0.02, 2: -0.03, 3: -0.025}.items():
        write_summary(tmp_path, "c", s, base[s] + d, "offline_kd", "decoder", teacher=0.3, bicycle=None)
    write_summary(tmp_path, "d", 1, base[1] + 0.05, "offline_kd", "pairwise")
    write_summary(tmp_path, "d", 4, 0.5, "offline_kd", "pairwise")
    # Only distillation settings may differ from the baseline; another decoder is another model.
    write_summary(tmp_path, "e", 1, 0.3, "offline_kd", "logits", overrides=("distill_paradigm.terms.logits.weight=2",))
    write_summary(tmp_path, "e2", 1, 0.3, "offline_kd", "logits", overrides=("model.decoder_channels=[8,8,8,8,8]",))
    write_summary(tmp_path, "teacher", 42, 0.35, "teacher")
    return tmp_path


def by_paradigm(rows: list[dict]) -> dict:
    return {(r["paradigm"], tuple(o for o in r["recipe"].split(" ")[1:])): r for r in rows}


def test_paired_delta_ci_and_verdicts_match_hand_computation(tree):
    rows = compare.report([tree], plots=True)
    found = by_paradigm(rows)
    scratch, a, b, c = found[(None, ())], found[("logits", ())], found[("cwd", ())], found[("decoder", ())]

    assert scratch["verdict"] == "baseline" and scratch["n_seeds"] == 3
    assert scratch["miou_mean"] == pytest.approx(0.21) and scratch["miou_std"] == pytest.approx(0.01)
    assert a["baseline"] == scratch["recipe"]

    assert a["delta_mean"] == pytest.approx(0.03) and a["delta_ci95"] == pytest.approx([0.03, 0.03])
    assert a["verdict"] == "better" and a["teacher_miou"] == pytest.approx(0.3)

    half = T_975_DF2 * 0.02 / math.sqrt(3)  # diffs 0.01, -0.01, 0.03: mean 0.01, sd 0.02
    assert b["delta_mean"] == pytest.approx(0.01) and b["delta_std"] == pytest.approx(0.02)
    assert b["delta_ci95"] == pytest.approx([0.01 - half, 0.01 + half])
    assert b["verdict"] == "not distinguishable"

    half = T_975_DF2 * 0.005 / math.sqrt(3)  # diffs -0.02, -0.03, -0.025
    assert c["delta_ci95"] == pytest.approx([-0.025 - half, -0.025 + half]) and c["verdict"] == "worse"
    assert c["per_class_delta"]["car"] == pytest.approx(-0.025) and c["per_class_delta"]["road"] == pytest.approx(0.0)
    assert c["per_class_delta"]["bicycle"] is None, "a class with no IoU on one side has no Δ"

    d = found[("pairwise", ())]
    assert d["n_seeds"] == 2 and d["n_paired"] == 1 and d["unpaired_seeds"] == [4]
    assert d["delta_mean"] == pytest.approx(0.05) and d["delta_ci95"] is None, "one pair gives no interval"
    assert d["verdict"] == "not distinguishable"

    e = found[("logits", ("distill_paradigm.terms.logits.weight=2",))]
    assert e["baseline"] == scratch["recipe"] and e["delta_mean"] == pytest.approx(0.1)
    e2 = found[("logits", ("model.decoder_channels=[8,8,8,8,8]",))]
    assert e2["verdict"] == "no baseline" and e2["baseline"] is None

    teacher = next(r for r in rows if r["experiment"] == "teacher")
    assert teacher["verdict"] == "teacher" and teacher["baseline"] is None and rows[0] is teacher

    written = json.loads((tree / "comparison.json").read_text())
    assert [r["recipe"] for r in written] == [r["recipe"] for r in rows]
    assert {"recipe", "n_seeds", "miou_mean", "miou_std", "delta_mean", "delta_ci95", "verdict"} <= set(written[0])
    assert (tree / "comparison.csv").read_text().count("\n") == len(rows) + 1
    md = (tree / "comparison.md").read_text()
    assert "seeds [4] have no baseline run" in md and "+3.00" in md
    assert (tree / "miou_vs_gmacs.png").stat().st_size > 0 and (tree / "paired_delta.png").stat().st_size > 0


def test_recipes_without_a_matching_baseline_are_reported(tmp_path):
    write_summary(tmp_path, "scratch", 1, 0.2, "student", overrides=("dataset.prepare.num_train=600",))
    write_summary(tmp_path, "kd", 1, 0.25, "offline_kd", "logits")
    rows = compare.report([tmp_path], plots=False)
    kd = next(r for r in rows if r["paradigm"] == "logits")
    assert kd["verdict"] == "no baseline" and kd["baseline"] is None
    assert "no scratch baseline" in (tmp_path / "comparison.md").read_text()


def test_explicit_baseline_and_metric(tree):
    rows = compare.report([tree], out=tree / "out", baseline="offline_kd/student_mnv2/cwd", metric="best", plots=False)
    a = next(r for r in rows if r["recipe"] == "offline_kd/student_mnv2/logits")
    assert a["baseline"] == "offline_kd/student_mnv2/cwd"
    assert a["delta_mean"] == pytest.approx(0.02)  # best = final + 0.01 on both sides; 0.03 - mean(0.01, -0.01, 0.03)
    with pytest.raises(ValueError, match="matches 0 recipes"):
        compare.report([tree], baseline="nope", plots=False)


def test_pareto_front():
    # (cost, score): the second point is dominated by the first.
    assert compare.pareto_front([(1, 10), (2, 9), (3, 12), (0.5, 5)]) == [3, 0, 2]


def test_cli_errors_in_one_line(tmp_path, capsys):
    assert compare.main([str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("segkd: error: ") and "does not exist" in err[0]


def test_a_summary_that_is_not_an_object_is_skipped_by_name(tree, caplog):
    (tree / "odd" / "s1").mkdir(parents=True)
    (tree / "odd" / "s1" / "summary.json").write_text("[]")
    rows = compare.report([tree], plots=False)
    assert "skipping" in caplog.text and "odd/s1/summary.json: a run summary is a JSON object, this one is a list" in caplog.text
    assert any(r["verdict"] == "better" for r in rows), "the rest is compared"


def test_a_multirun_and_a_single_run_of_one_recipe_are_one_recipe(tmp_path):
    # Hydra's multirun records `teacher_cache=True`; a single run's command line says `teacher_cache=true`.
    write_summary(tmp_path, "single", 1, 0.25, "offline_kd", "logits", overrides=("teacher_cache=true",))
    write_summary(tmp_path, "multi", 2, 0.27, "offline_kd", "logits", overrides=("teacher_cache=True",))
    rows = compare.report([tmp_path], plots=False)
    assert [r["n_seeds"] for r in rows if r["paradigm"] == "logits"] == [2]


def test_a_teacher_checkpoint_is_named_by_its_run_not_its_machine_path(tmp_path):
    # The same teacher on two machines (other roots) is one recipe; another teacher is another.
    write_summary(tmp_path, "here", 1, 0.25, "offline_kd", "cwd",
                  overrides=("teacher_ckpt=/work/main/outputs/p/teacher_ls01/seed0/checkpoints/last.ckpt",))
    write_summary(tmp_path, "there", 2, 0.27, "offline_kd", "cwd",
                  overrides=("teacher_ckpt=/scratch/u/segkd/outputs/p/teacher_ls01/seed0/checkpoints/last.ckpt",))
    write_summary(tmp_path, "other", 1, 0.26, "offline_kd", "cwd",
                  overrides=("teacher_ckpt=/work/main/outputs/p/teacher_cp01/seed0/checkpoints/last.ckpt",))
    rows = {r["recipe"]: r["n_seeds"] for r in compare.report([tmp_path], plots=False) if r["paradigm"] == "cwd"}
    assert rows == {"offline_kd/student_mnv2/cwd teacher_ckpt=teacher_ls01/seed0/last.ckpt": 2,
                    "offline_kd/student_mnv2/cwd teacher_ckpt=teacher_cp01/seed0/last.ckpt": 1}


def test_one_recipe_on_other_devices_or_launchers_is_one_recipe(tmp_path):
    # The global batch fixes what a step trains on; devices, launcher and micro-batch only carry it out.
    write_summary(tmp_path, "one", 1, 0.25, "offline_kd", "cwd")
    write_summary(tmp_path, "ddp", 2, 0.27, "offline_kd", "cwd", overrides=(
        "trainer=ddp", "trainer.devices=4", "hydra/launcher=local", "dataset.device_batch_size=2"))
    write_summary(tmp_path, "bf16", 3, 0.26, "offline_kd", "cwd", overrides=("trainer.precision=bf16-mixed",))
    rows = [r for r in compare.report([tmp_path], plots=False) if r["paradigm"] == "cwd"]
    assert sorted(r["n_seeds"] for r in rows) == [1, 2], "precision changes the numbers: another recipe"


def test_runs_made_under_different_defaults_are_different_recipes(tmp_path):
    """The same overrides under a changed default (CWD's weight 1 -> 3) are two recipes, named by the
    setting that differs; a run that records no settings joins its name's first group, and a key only
    newer runs record does not split anything."""
    base = {1: 0.20, 2: 0.22, 3: 0.21}
    for s, m in base.items():
        write_summary(tmp_path, "scratch", s, m, "student")
    for s in base:
        write_summary(tmp_path, "cwd_old", s, base[s] + 0.01, "offline_kd", "cwd")
        write_summary(tmp_path, "cwd_new", s, base[s] + 0.03, "offline_kd", "cwd")
    for path in (tmp_path / "cwd_old").rglob("summary.json"):  # an old run: settings beside it, not inside
        (path.parent / "resolved_config.yaml").write_text(
            "system:\n  distill:\n    terms:\n      cwd:\n        weight: 1.0\n")
    for path in (tmp_path / "cwd_new").rglob("summary.json"):
        summary = json.loads(path.read_text())
        summary["recipe_config"] = {"system.distill.terms.cwd.weight": 3.0, "system.teacher.input_scale": 1.0}
        path.write_text(json.dumps(summary))
    rows = {r["recipe"]: r for r in compare.compare(compare.group(compare.load_runs([tmp_path])))}
    old = rows["offline_kd/student_mnv2/cwd [system.distill.terms.cwd.weight=1.0]"]
    new = rows["offline_kd/student_mnv2/cwd [system.distill.terms.cwd.weight=3.0]"]
    assert old["n_seeds"] == new["n_seeds"] == 3
    assert old["delta_mean"] == pytest.approx(0.01) and new["delta_mean"] == pytest.approx(0.03)
    assert rows["student/student_mnv2"]["n_seeds"] == 3  # the scratch runs record nothing and stay one recipe


# ----------------------------------------------------------------------------- matched cost

def write_costed(root: Path, name: str, seed: int, miou: float, experiment: str, epochs: int, gmacs: float,
                 seconds: float, paradigm: str | None = None, cache: tuple[str, float] | None = None) -> None:
    overrides = () if epochs == 4 else (f"trainer.max_epochs={epochs}",)
    write_summary(root, name, seed, miou, experiment, paradigm, overrides=overrides)
    path = root / name / f"s{seed}" / "summary.json"
    summary = json.loads(path.read_text())
    summary["epochs"] = epochs
    summary["cost"] = {"train_gmacs": gmacs, "train_s": seconds}
    if cache is not None:
        summary["cost"]["teacher_cache"] = {"path": cache[0], "build_gmacs": cache[1]}
    path.write_text(json.dumps(summary))


@pytest.fixture
def budgets(tmp_path) -> Path:
    scratch = {4: {1: 0.20, 2: 0.22, 3: 0.21}, 8: {1: 0.24, 2: 0.25, 3: 0.23}, 16: {1: 0.26, 2: 0.26, 3: 0.27}}
    for epochs, scores in scratch.items():
        for s, m in scores.items():
            write_costed(tmp_path, f"scratch{epochs}", s, m, "student", epochs, gmacs=25.0 * epochs, seconds=2.5 * epochs)
    # live KD, 4 epochs: 1.5x the compute of scratch (150 GMACs), 2.5x its wall time (25 s)
    for s, m in {1: 0.26, 2: 0.27, 3: 0.245}.items():
        write_costed(tmp_path, "live", s, m, "offline_kd", 4, gmacs=150.0, seconds=25.0, paradigm="encoder")
    # cached KD: the compute of scratch, a little more wall; its cache (60 GMACs) read by its 3 runs
    for s, m in {1: 0.23, 2: 0.24, 3: 0.22}.items():
        write_costed(tmp_path, "cached", s, m, "offline_kd", 4, gmacs=100.0, seconds=11.0, paradigm="cwd",
                     cache=("/c/cache-a", 60.0))
    # too expensive for any scratch budget here
    for s in (1, 2, 3):
        write_costed(tmp_path, "huge", s, 0.3, "offline_kd", 16, gmacs=500.0, seconds=60.0, paradigm="logits")
    return tmp_path


def test_matched_cost_pairing_delta_ci_and_verdict_by_hand(budgets):
    rows = {r["recipe"]: r for r in compare.report([budgets], plots=True)}
    live = rows["offline_kd/student_mnv2/encoder"]
    # equal budget: vs scratch at 4 epochs; cost ratio 150/100 compute, 25/10 wall
    assert live["baseline"] == "student/student_mnv2"
    assert live["cost_ratio"] == {"compute": pytest.approx(1.5), "wall": pytest.approx(2.5)}
    assert live["delta_mean"] == pytest.approx((0.06 + 0.05 + 0.035) / 3)
    # matched compute: the nearest scratch budget at or above 150 GMACs is 8 epochs (200), not 16 (400)
    matched = live["matched"]
    assert matched["by"] == "compute" and matched["baseline"] == "student/student_mnv2 trainer.max_epochs=8"
    assert matched["baseline_cost_ratio"] == pytest.approx(200 / 150)
    diffs = [0.26 - 0.24, 0.27 - 0.25, 0.245 - 0.23]  # 0.02, 0.02, 0.015
    mean = sum(diffs) / 3
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 2)
    half = T_975_DF2 * sd / math.sqrt(3)
    assert matched["n_paired"] == 3 and matched["delta_mean"] == pytest.approx(mean)
    assert matched["delta_ci95"] == pytest.approx([mean - half, mean + half])
    assert matched["verdict"] == "better" and matched["reason"] is None
    assert (budgets / "miou_vs_training_compute.png").stat().st_size > 0
    assert rows["student/student_mnv2 trainer.max_epochs=16"]["teacher_ratio"] is None, "no teacher in this tree"
    md = (budgets / "comparison.md").read_text()
    assert "| 1.50x / 2.50x |" in md and "student/student_mnv2 trainer.max_epochs=8 (1.33x cost)" in md


def test_matched_wall_time_pairs_with_another_budget(budgets):
    rows = {r["recipe"]: r for r in compare.report([budgets], plots=False, match="wall")}
    matched = rows["offline_kd/student_mnv2/encoder"]["matched"]
    assert matched["by"] == "wall" and matched["baseline"] == "student/student_mnv2 trainer.max_epochs=16"
    diffs = [0.26 - 0.26, 0.27 - 0.26, 0.245 - 0.27]
    assert matched["delta_mean"] == pytest.approx(sum(diffs) / 3) and matched["verdict"] == "not distinguishable"


def test_a_recipe_no_scratch_budget_matches_gets_no_verdict_and_the_missing_budget(budgets):
    rows = {r["recipe"]: r for r in compare.report([budgets], plots=False)}
    huge = rows["offline_kd/student_mnv2/logits trainer.max_epochs=16"]
    assert huge["matched"]["verdict"] is None and huge["matched"]["baseline"] is None
    reason = huge["matched"]["reason"]
    assert "the largest, 'student/student_mnv2 trainer.max_epochs=16' (16 epochs), costs 400" in reason
    assert "at least 1.25x its epochs" in reason and "500" in reason
    assert huge["verdict"] == "better", "at equal epochs it still pairs with the 16-epoch scratch student"
    assert "no matched-cost verdict: no scratch budget costs at least" in (budgets / "comparison.md").read_text()


def test_a_cached_teacher_costs_its_runs_nothing_and_its_build_is_shared(budgets):
    rows = {r["recipe"]: r for r in compare.report([budgets], plots=False)}
    cached = rows["offline_kd/student_mnv2/cwd"]
    assert cached["matched"]["baseline"] == "student/student_mnv2", "equal compute matches the equal budget"
    assert cached["cost"]["cache_share_gmacs"] == pytest.approx(60.0 / 3)
    assert cached["cost_ratio"]["compute"] == pytest.approx(1.0)
    assert rows["student/student_mnv2"]["matched"] is None, "a scratch budget is a baseline, not a recipe"
    # charged its share (100 + 20 GMACs), the nearest scratch budget at or above is 8 epochs (200)
    charged = cached["matched_with_cache"]
    assert charged["baseline"] == "student/student_mnv2 trainer.max_epochs=8" and charged["cache_share_gmacs"] == 20.0
    assert charged["baseline_cost_ratio"] == pytest.approx(200 / 120)
    assert charged["delta_mean"] == pytest.approx(((0.23 - 0.24) + (0.24 - 0.25) + (0.22 - 0.23)) / 3)
    assert rows["offline_kd/student_mnv2/encoder"]["matched_with_cache"] is None, "no cache, nothing to charge"


def test_runs_without_a_cost_block_say_so(tree):
    rows = compare.report([tree], plots=False)
    found = by_paradigm(rows)
    assert "no cost.train_gmacs" in found[("logits", ())]["matched"]["reason"]


def test_each_student_is_a_share_of_its_teacher(tree):
    rows = by_paradigm(compare.report([tree], plots=False))
    # KD runs scored their own teacher (0.3); the scratch student has the comparison's one teacher (0.35)
    assert rows[("logits", ())]["teacher_ratio"] == pytest.approx((0.20 + 0.22 + 0.21) / 3 / 0.3 + 0.03 / 0.3)
    assert rows[(None, ())]["teacher_ratio"] == pytest.approx(0.21 / 0.35)
    assert rows[(None, ())]["verdict"] == "baseline"
