"""experiments/kd_protocol.py plans its jobs without running them (--dry-run): finished jobs are
skipped, interrupted ones resume, and the soft teachers' students point at their teacher's checkpoint
and come after it."""

from __future__ import annotations

import re

import pytest

from conftest import load_experiment


@pytest.fixture
def protocol(monkeypatch, tmp_path):
    module = load_experiment("kd_protocol")
    teacher = tmp_path / "reference_teacher"
    monkeypatch.setattr(module, "reference_teacher_dir", lambda extra: teacher)  # no Hydra subprocess
    return module


TODO = re.compile(r"^\[todo\] (\S+) seed (\d+)( \(alone: [^)]*\))?: (.*)$")


def planned(capsys, alone: bool = False) -> list[tuple]:
    """(name, seed, command) per planned job; with ``alone``, (name, seed, runs alone) instead."""
    found = [TODO.match(line) for line in capsys.readouterr().out.splitlines() if line.startswith("[todo] ")]
    assert all(found), "every [todo] line parses"
    return [(m[1], m[2], bool(m[3])) if alone else (m[1], m[2], m[4]) for m in found]


def test_only_the_first_student_of_each_soft_teacher_runs_alone_to_build_its_cache(protocol, tmp_path, capsys):
    out = tmp_path / "p"
    protocol.main(["--dry-run", "--out", str(out), "--seeds", "1,2", "--only", "cwd_ls01,logits_ls01,cwd_cp01"])
    jobs = planned(capsys, alone=True)
    alone = [(name, seed) for name, seed, by_itself in jobs if by_itself]
    assert alone == [("cwd_ls01", "1"), ("cwd_cp01", "1")], "logits_ls01 reuses the cache cwd_ls01 built"
    order = [(name, seed) for name, seed, _ in jobs]
    assert order[:2] == [("teacher_ls01", "0"), ("teacher_cp01", "0")] and order[2:4] == alone


def test_dry_run_skips_finished_jobs_resumes_interrupted_ones_and_orders_soft_teachers_first(protocol, tmp_path, capsys):
    out = tmp_path / "p"
    (out / "scratch" / "seed1").mkdir(parents=True)
    (out / "scratch" / "seed1" / "summary.json").write_text("{}")
    (out / "scratch" / "seed2" / "checkpoints").mkdir(parents=True)
    (out / "scratch" / "seed2" / "checkpoints" / "last.ckpt").write_bytes(b"x")
    protocol.main(["--dry-run", "--out", str(out), "--seeds", "1,2", "--only", "scratch,cwd_ls01",
                   "--", "dataset.batch_size=4"])
    jobs = planned(capsys)
    assert [(name, seed) for name, seed, _ in jobs] == [
        ("scratch", "2"), ("teacher_ls01", "0"), ("cwd_ls01", "1"), ("cwd_ls01", "2")]
    commands = {(name, seed): cmd for name, seed, cmd in jobs}
    assert f"ckpt_path={out}/scratch/seed2/checkpoints/last.ckpt" in commands[("scratch", "2")]
    assert "system.loss.label_smoothing=0.1" in commands[("teacher_ls01", "0")]
    assert f"hydra.run.dir={out}/teacher_ls01/seed0" in commands[("teacher_ls01", "0")]
    student = commands[("cwd_ls01", "1")]
    assert f"teacher_ckpt={out}/teacher_ls01/seed0/checkpoints/last.ckpt" in student
    assert "dataset.batch_size=4" in student and "seed=1" in student
    assert not (out / "teacher").exists(), "a dry run writes nothing"


def test_a_recipe_of_ones_own_cannot_take_a_built_in_name(protocol):
    with pytest.raises(SystemExit, match="built-in recipe"):
        protocol.parse_recipe("cwd_ls01=+experiment=student")


def test_a_protocol_without_cached_jobs_runs_none_alone(protocol, tmp_path, capsys):
    protocol.main(["--dry-run", "--out", str(tmp_path / "p"), "--seeds", "6,7", "--only", "encoder,scratch"])
    jobs = planned(capsys, alone=True)
    assert len(jobs) == 4 and not any(by_itself for _, _, by_itself in jobs)
