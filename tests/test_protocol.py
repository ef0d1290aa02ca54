"""python -m segkd.protocol plans its jobs without running them (--dry-run): finished jobs are
skipped, interrupted ones resume, soft teachers' students point at their teacher's checkpoint and come
after it, budget curves scale the epochs, and bad requests fail before anything runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from segkd import protocol

TODO = re.compile(r"^\[todo\] (\S+) seed (\d+)( \(alone: [^)]*\))?: (.*)$")


def planned(capsys, alone: bool = False) -> list[tuple]:
    """(name, seed, command) per planned job; with ``alone``, (name, seed, runs alone) instead."""
    found = [TODO.match(line) for line in capsys.readouterr().out.splitlines() if line.startswith("[todo] ")]
    assert all(found), "every [todo] line parses"
    return [(m[1], m[2], bool(m[3])) if alone else (m[1], m[2], m[4]) for m in found]


def test_only_the_first_student_of_each_soft_teacher_runs_alone_to_build_its_cache(tmp_path, capsys):
    out = tmp_path / "p"
    assert protocol.main(["--dry-run", "--out", str(out), "--seeds", "1,2", "--only", "cwd_ls01,logits_ls01,cwd_cp01"]) == 0
    jobs = planned(capsys, alone=True)
    alone = [(name, seed) for name, seed, by_itself in jobs if by_itself]
    assert alone == [("cwd_ls01", "1"), ("cwd_cp01", "1")], "logits_ls01 reuses the cache cwd_ls01 built"
    order = [(name, seed) for name, seed, _ in jobs]
    assert order[:2] == [("teacher_ls01", "0"), ("teacher_cp01", "0")] and order[2:4] == alone


def test_dry_run_skips_finished_jobs_resumes_interrupted_ones_and_orders_soft_teachers_first(tmp_path, capsys):
    out = tmp_path / "p"
    (out / "scratch" / "seed1").mkdir(parents=True)
    (out / "scratch" / "seed1" / "summary.json").write_text("{}")
    (out / "scratch" / "seed2" / "checkpoints").mkdir(parents=True)
    (out / "scratch" / "seed2" / "checkpoints" / "last.ckpt").write_bytes(b"x")
    protocol.main(["--dry-run", "--out", str(out), "--seeds", "1,2", "--only", "scratch,cwd_ls01",
                   "--", "dataset.batch_size=4"])
    jobs = planned(capsys)
    assert [(name, seed) for name, seed, _ in jobs] == [  # the teacher's 20 epochs start before a student's 4
        ("teacher_ls01", "0"), ("scratch", "2"), ("cwd_ls01", "1"), ("cwd_ls01", "2")]
    commands = {(name, seed): cmd for name, seed, cmd in jobs}
    assert f"ckpt_path={out}/scratch/seed2/checkpoints/last.ckpt" in commands[("scratch", "2")]
    assert "system.loss.label_smoothing=0.1" in commands[("teacher_ls01", "0")]
    assert f"hydra.run.dir={out}/teacher_ls01/seed0" in commands[("teacher_ls01", "0")]
    student = commands[("cwd_ls01", "1")]
    assert f"teacher_ckpt={out}/teacher_ls01/seed0/checkpoints/last.ckpt" in student
    assert "dataset.batch_size=4" in student and "seed=1" in student
    assert not (out / "teacher").exists(), "a dry run writes nothing"


def test_a_recipe_of_ones_own_cannot_take_a_built_in_name():
    with pytest.raises(protocol.ProtocolError, match="built-in recipe"):
        protocol.parse_recipe("cwd_ls01=+experiment=student")


def test_a_protocol_without_cached_jobs_runs_none_alone_and_needs_the_teacher_only_for_kd(tmp_path, capsys):
    protocol.main(["--dry-run", "--out", str(tmp_path / "p"), "--seeds", "6,7", "--only", "encoder,scratch"])
    out = capsys.readouterr().out
    assert re.search(r"^\[teacher\] .*reference_teachers/", out, re.M), "encoder KD needs the reference teacher"
    jobs = [TODO.match(line) for line in out.splitlines() if line.startswith("[todo] ")]
    assert len(jobs) == 4 and not any(m[3] for m in jobs)
    protocol.main(["--dry-run", "--out", str(tmp_path / "p"), "--seeds", "6", "--only", "scratch"])
    assert "[teacher] not needed" in capsys.readouterr().out


def test_a_teacher_of_another_architecture_teaches_alone_and_averaged_with_the_reference_unet(tmp_path, capsys):
    out = tmp_path / "p"
    protocol.main(["--dry-run", "--out", str(out), "--seeds", "1", "--only", "cwd_dlv3p,cwd_r34_dlv3p"])
    printed = capsys.readouterr().out
    assert re.search(r"^\[teacher\] .*reference_teachers/", printed, re.M), "the ensemble reads the reference teacher"
    jobs = [TODO.match(line) for line in printed.splitlines() if line.startswith("[todo] ")]
    assert [(m[1], m[2], bool(m[3])) for m in jobs] == [
        ("teacher_dlv3p", "0", False), ("cwd_dlv3p", "1", True), ("cwd_r34_dlv3p", "1", False)]
    commands = {m[1]: m[4] for m in jobs}
    assert "model=teacher_dlv3p_r34" in commands["teacher_dlv3p"]
    dlv3p = f"{out}/teacher_dlv3p/seed0/checkpoints/last.ckpt"
    assert f"teacher_ckpt={dlv3p}" in commands["cwd_dlv3p"]
    assert "model@system.teacher.net=teacher_dlv3p_r34" in commands["cwd_dlv3p"]
    ensemble = re.search(r"teacher_ckpts=\[([^\]]*)\]", commands["cwd_r34_dlv3p"])[1].split(",")
    assert ensemble[0].endswith("checkpoints/last.ckpt") and "reference_teachers/" in ensemble[0]
    assert ensemble[1] == dlv3p


def test_budgets_scale_the_recipes_epochs_into_jobs_of_their_own(tmp_path, capsys):
    protocol.main(["--dry-run", "--out", str(tmp_path / "p"), "--seeds", "1", "--only", "scratch,cwd",
                   "--budgets", "scratch=1,1.25,2", "--budgets", "cwd=4"])
    jobs = {name: cmd for name, _, cmd in planned(capsys)}
    assert set(jobs) == {"scratch", "scratch_x1.25", "scratch_x2", "cwd_x4"}, "cwd=4 alone: no 1x cwd"
    assert "trainer.max_epochs" not in jobs["scratch"]
    assert "trainer.max_epochs=5" in jobs["scratch_x1.25"] and "trainer.max_epochs=8" in jobs["scratch_x2"]
    assert "trainer.max_epochs=16" in jobs["cwd_x4"] and f"{tmp_path}/p/cwd_x4/seed1" in jobs["cwd_x4"]


@pytest.mark.parametrize("args, message", [
    (["--only", "cwdd,scratch_"], r"unknown recipe name\(s\) \['cwdd', 'scratch_'\]; the protocol knows \['scratch', "),
    (["--seeds", "1,1"], r"--seeds 1,1: seed 1 given twice"),
    (["--budgets", "scratch=0"], r"--budgets takes NAME=M,M,\.\.\. with positive multiples"),
    (["--budgets", "scratchh=2"], r"unknown recipe name\(s\) \['scratchh'\]"),
    (["--only", "scratch", "--", "distill_paradigm=cdw"], r"Could not find 'distill_paradigm/cdw'.*overrides: "),
])
def test_a_bad_request_fails_before_anything_runs_with_one_line(tmp_path, capsys, args, message):
    assert protocol.main(["--dry-run", "--out", str(tmp_path / "p"), *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("segkd: error: ") and re.search(message, err[0]), err
    assert not (tmp_path / "p").exists()


def test_time_to_answer_sums_each_jobs_fit_and_the_scratch_share(tmp_path):
    import json

    def write(name, experiment, fit, distills=False):
        path = tmp_path / name / "seed1" / "summary.json"
        path.parent.mkdir(parents=True)
        fields = {"experiment": experiment, "paradigm": "cwd" if distills else None, "distills": distills}
        path.write_text(json.dumps({"recipe": {"fields": fields}, "cost": {"fit_s": fit}}))

    write("scratch", "student", 3600.0)
    write("scratch_x2", "student", 7200.0)
    write("cwd", "offline_kd", 5400.0, distills=True)
    (tmp_path / "teacher").mkdir()
    (tmp_path / "teacher" / "summary.json").write_text(json.dumps({"cost": {"fit_s": 99999.0}}))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "summary.json").write_text("{")
    spent = protocol.time_to_answer(tmp_path)
    assert spent == {"runs": 3, "fit_h": 4.5, "scratch_h": 3.0, "scratch_share": pytest.approx(3 / 4.5)}


def test_a_cache_a_finished_run_read_is_not_built_again_so_no_job_runs_alone(tmp_path, capsys):
    import json

    from segkd.recipe import recipe_config

    out, cache = tmp_path / "p", tmp_path / "cache" / "teacher_logits" / "train-abc"
    done = out / "cwd" / "seed1"
    done.mkdir(parents=True)
    cfg = protocol.compose(["+experiment=offline_kd", "distill_paradigm=cwd", "teacher_cache=true", "seed=1"], done)
    (done / "summary.json").write_text(json.dumps({"teacher_cache": {"path": str(cache)},
                                                    "recipe": {"config": recipe_config(cfg)}}))
    args = ["--dry-run", "--out", str(out), "--seeds", "1,2", "--only", "cwd", "--budgets", "cwd=2"]
    protocol.main(args)
    assert [alone for _, _, alone in planned(capsys, alone=True)] == [True, False], "no cache on disk: built first"
    cache.mkdir(parents=True)
    (cache / "meta.json").write_text("{}")
    protocol.main(args)
    assert [alone for _, _, alone in planned(capsys, alone=True)] == [False, False], "the cache is there: side by side"
    protocol.main([*args, "--", "dataset.logit_cache.stride=2"])
    assert [alone for _, _, alone in planned(capsys, alone=True)] == [True, False], "another cache: built first"
    half = "cwd_half=+experiment=offline_kd distill_paradigm=cwd teacher_cache=true teacher_scale=0.5"
    protocol.main(["--dry-run", "--out", str(out), "--seeds", "1,2", "--recipe", half, "--only", "cwd_half"])
    assert [alone for _, _, alone in planned(capsys, alone=True)] == [True, False], "the teacher at half size: built first"


def test_the_recommended_recipe_is_the_measured_cwd_at_twice_the_student_budget(tmp_path):
    """conf/experiment/kd_cwd_cached.yaml, the recipe the README recommends, is exactly the protocol's
    cached CWD at 2x the scratch student's epochs, whose evidence docs/RESULTS.md reports."""
    from segkd.recipe import recipe_config

    from conftest import ROOT

    cwd = dict(protocol.RECIPES)["cwd"]
    student_epochs = int(protocol.compose(["+experiment=student"], tmp_path / "s").trainer.max_epochs)
    measured = protocol.compose([*cwd, f"trainer.max_epochs={2 * student_epochs}", "seed=1"], tmp_path / "m")
    recommended = protocol.compose(["+experiment=kd_cwd_cached", "seed=1"], tmp_path / "r")
    assert recipe_config(recommended) == recipe_config(measured)
    assert "+experiment=kd_cwd_cached" in (ROOT / "README.md").read_text()


def test_a_job_run_alone_gets_every_core_of_the_protocol_and_the_rest_one_each(tmp_path, monkeypatch):
    """A cache builder runs alone: on one thread (an inherited OMP_NUM_THREADS=1) it would leave the
    other cores idle for its whole run."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = {}

    def run(cmd: list[str], log_file: Path, n) -> int:
        threads[log_file.parent.name] = n
        return 0

    monkeypatch.setattr(protocol, "_run", run)
    plan = protocol.Plan(None, [], [([protocol.Job("builder", "1", [], tmp_path / "builder")],
                                     [protocol.Job(n, "1", [], tmp_path / n) for n in ("a", "b")])])
    assert protocol.execute(plan, tmp_path, jobs=2) == []
    assert threads == {"builder": 2, "a": 1, "b": 1}
    assert protocol.execute(plan, tmp_path, jobs=1) == []
    assert set(threads.values()) == {None}, "one job at a time: the environment's own setting"


def test_the_students_of_a_teacher_whose_cache_a_finished_run_read_all_run_side_by_side(tmp_path, capsys):
    """A protocol teacher's first student builds that teacher's cache alone, unless a finished student
    already read it (a second budget of the same recipe, or an interrupted protocol run again)."""
    import json

    from segkd.recipe import recipe_config

    out, cache = tmp_path / "p", tmp_path / "cache" / "teacher_logits" / "train-ls01"
    teacher = out / "teacher_ls01" / f"seed{protocol.TEACHER_SEED}"
    (teacher / "checkpoints").mkdir(parents=True)
    (teacher / "summary.json").write_text("{}")
    args = ["--dry-run", "--out", str(out), "--seeds", "1,2", "--only", "cwd_ls01"]
    protocol.main([*args, "--budgets", "cwd_ls01=2"])
    assert [alone for _, _, alone in planned(capsys, alone=True)] == [True, False], "its cache: built first"
    done = out / "cwd_ls01" / "seed1"
    done.mkdir(parents=True)
    recipe = dict(protocol.TAUGHT_RECIPES)["cwd_ls01"]
    overrides = [o.format(teacher_ls01=teacher / "checkpoints" / "last.ckpt") for o in recipe]
    cfg = protocol.compose([*overrides, "seed=1"], done)
    (done / "summary.json").write_text(json.dumps({"teacher_cache": {"path": str(cache)},
                                                    "recipe": {"config": recipe_config(cfg)}}))
    cache.mkdir(parents=True)
    (cache / "meta.json").write_text("{}")
    protocol.main([*args, "--budgets", "cwd_ls01=2"])
    assert [alone for _, _, alone in planned(capsys, alone=True)] == [False, False], "read by cwd_ls01: side by side"


def test_side_by_side_the_longest_schedules_start_first(tmp_path, capsys):
    """Three 4x jobs and three 1x jobs on two workers: started 1x first, the last 4x job would run on
    alone while the other core idles."""
    protocol.main(["--dry-run", "--out", str(tmp_path / "p"), "--seeds", "1,2,3", "--only", "scratch",
                   "--budgets", "scratch=1,4"])
    assert [name for name, _, _ in planned(capsys)] == ["scratch_x4"] * 3 + ["scratch"] * 3
