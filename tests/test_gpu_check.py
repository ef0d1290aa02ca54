"""benchmarks/gpu_check.py, the check for the day a GPU machine is lent, tested where there is no GPU.

Tests import no code of benchmarks/ (tests/test_import_rules.py), so the script is run as its users
run it, in two light processes (it imports torch only on these paths, ~4 s each): without CUDA (the
one line, exit 0, and the plan it would run, which is then composed here with the real configs), and
``--summarize`` on known step times (the medians and ratios).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from segkd.config import compose_train_config

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
#: What the no-CUDA path must not import: everything a check itself needs.
HEAVY = {"lightning", "pytorch_lightning", "hydra", "omegaconf", "segkd", "segmentation_models_pytorch", "timm",
         "albumentations"}


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


@pytest.fixture(scope="module")
def without_cuda(tmp_path_factory):
    """``python benchmarks/gpu_check.py --out X`` with no GPU visible (CUDA_VISIBLE_DEVICES empty: this
    machine has none anyway), its imports listed by ``-X importtime``."""
    out = tmp_path_factory.mktemp("gpu_check") / "skipped.json"
    done = run("-X", "importtime", str(SCRIPT), "--out", str(out), env={"CUDA_VISIBLE_DEVICES": ""})
    return done, out


@pytest.mark.slow
def test_without_cuda_it_says_so_in_one_line_and_exits_0_importing_nothing_heavy(without_cuda):
    done, out = without_cuda
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout
    line = lines[0]
    assert line.startswith("gpu_check: CUDA is not available"), line
    for what in ("teacher_cache=true", "bf16-mixed", "channels_last", "trainer=ddp", "NCCL", "live-teacher KD"):
        assert what in line, f"the line does not say it would run {what!r}: {line}"
    imported = {m.group(1).split(".")[0] for m in re.finditer(r"^import time:[^|]*\|[^|]*\|\s*(\S+)", done.stderr, re.M)}
    assert "torch" in imported, "no import listed: -X importtime's format changed?"
    assert not imported & HEAVY, f"the no-CUDA path imported {sorted(imported & HEAVY)}"
    skipped = json.loads(out.read_text())
    assert skipped["skipped"] == "CUDA is not available" and skipped["passed"] is None


@pytest.mark.slow
def test_the_plan_composes_with_the_real_configs(without_cuda, tmp_path):
    """Every fit the check would make, composed as segkd.run composes it: a renamed key or group fails here."""
    plan = json.loads(without_cuda[1].read_text())["plan"]
    work = str(Path(plan["teacher"]["path"]).parent)

    def cfg(overrides: list[str], name: str) -> dict:
        return OmegaConf.to_container(compose_train_config(overrides, tmp_path / name), resolve=True)

    teacher = cfg(plan["teacher"]["overrides"], "teacher")
    kd = cfg(plan["kd_fit"]["overrides"], "kd_fit")
    ddp = cfg(plan["ddp_nccl"]["overrides"], "ddp")
    timed = {name: cfg(o, name) for name, o in plan["step_times"]["systems"].items()}
    assert list(timed) == ["student", "kd_cached", "kd_live"]

    # (a) offline KD, CWD from the teacher-logit cache, bf16-mixed, channels_last through the probe callback
    assert kd["system"]["_target_"] == "segkd.systems.DistillationSystem"
    assert kd["distill_paradigm"]["name"] == "cwd" and kd["system"]["teacher"]["cache"]["enabled"] is True
    assert kd["system"]["teacher"]["checkpoint"] == plan["teacher"]["path"]
    assert kd["trainer"]["precision"] == "bf16-mixed"
    assert (kd["trainer"]["accelerator"], kd["trainer"]["devices"]) == ("gpu", 1)
    assert kd["trainer"]["limit_train_batches"] == plan["kd_fit"]["steps"] and kd["trainer"]["max_epochs"] == 1
    assert kd["callbacks"]["gpu_check"] == {"_target_": "__main__.gpu_probe", "channels_last": True}
    assert re.search(r"^def gpu_probe\(channels_last", SCRIPT.read_text(), re.M), "the probe's _target_ is gone"
    assert kd["auto_resume"] is False

    # (b) the same KD run under Lightning's DDP strategy, one GPU process (NCCL is Lightning's choice on CUDA)
    assert (ddp["trainer"]["strategy"], ddp["trainer"]["devices"], ddp["trainer"]["accelerator"]) == ("ddp", 1, "gpu")
    assert ddp["trainer"]["sync_batchnorm"] is True and ddp["trainer"]["precision"] == "32-true"
    assert ddp["system"]["teacher"]["cache"]["enabled"] is True and plan["ddp_nccl"]["backend"] == "nccl"
    assert ddp["callbacks"]["gpu_check"]["_target_"] == "__main__.gpu_probe"

    # the teacher it trains is the net offline KD expects (load_teacher refuses any other), on the same data
    assert teacher["system"]["_target_"] == "segkd.systems.SegmentationSystem"
    assert teacher["model"] == kd["system"]["teacher"]["net"]
    assert teacher["model"]["encoder_name"] == "resnet34"

    # (c) three systems that differ only in the teacher: same student, data, precision and device
    assert timed["student"]["system"]["_target_"] == "segkd.systems.SegmentationSystem"
    assert [timed[n]["system"]["teacher"]["cache"]["enabled"] for n in ("kd_cached", "kd_live")] == [True, False]
    for name in ("kd_cached", "kd_live"):
        assert timed[name]["system"]["_target_"] == "segkd.systems.DistillationSystem"
        assert timed[name]["distill_paradigm"]["name"] == "cwd"
        assert timed[name]["system"]["teacher"]["checkpoint"] == plan["teacher"]["path"]
    for name, c in timed.items():
        assert c["model"] == kd["model"], name
        assert c["dataset"] == kd["dataset"] == teacher["dataset"] == ddp["dataset"], name
        assert (c["trainer"]["precision"], c["trainer"]["accelerator"]) == ("bf16-mixed", "gpu"), name

    # its own small data, generated in its work dir (not the repository's .cache)
    assert kd["dataset"]["name"] == "synthstreets" and kd["dataset"]["prepare"]["num_train"] == 128
    assert kd["dataset"]["root"].startswith(work) and kd["system"]["teacher"]["cache"]["dir"].startswith(work)


@pytest.mark.slow
def test_summarize_takes_medians_over_rounds_and_ratios_to_the_student(tmp_path):
    """Known step times in, medians (not means) and ratios out; peaks are the largest of the rounds."""
    raw = {
        "student": {"step_s": [[0.10, 0.30, 0.20], [0.20, 0.20, 0.40]], "peak_mb": [100, 120]},
        "kd_cached": {"step_s": [[0.25, 0.20, 0.30], [0.30, 0.30, 0.20]], "peak_mb": [150, 132]},
        "kd_live": {"step_s": [[0.50, 0.40, 0.45], [0.60, 0.40]], "peak_mb": [300, None]},
    }
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({"checks": {"step_times": {"raw": raw}}}))  # a gpu_check JSON's layout
    out = tmp_path / "summary.json"
    done = run(str(SCRIPT), "--summarize", str(earlier), "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| kd_live |" in done.stdout
    summary = json.loads(out.read_text())["summary"]
    approx = pytest.approx
    systems, ratios = summary["systems"], summary["ratios"]
    assert systems["student"]["median_ms"] == approx(200.0)  # the mean would be 233.3
    assert systems["student"]["round_median_ms"] == approx([200.0, 200.0])
    assert systems["kd_cached"]["median_ms"] == approx(275.0)  # even count: between 0.25 and 0.30
    assert systems["kd_live"]["median_ms"] == approx(450.0) and systems["kd_live"]["steps"] == 5
    assert [systems[n]["peak_mb"] for n in ("student", "kd_cached", "kd_live")] == approx([120, 150, 300])
    assert set(ratios) == {"kd_cached/student", "kd_live/student"}
    assert ratios["kd_cached/student"]["step"] == approx(1.375)
    assert ratios["kd_cached/student"]["per_round"] == approx([1.25, 1.5])
    assert ratios["kd_cached/student"]["peak_memory"] == approx(1.25)
    assert ratios["kd_live/student"]["step"] == approx(2.25)
    assert ratios["kd_live/student"]["per_round"] == approx([2.25, 2.5])
    assert ratios["kd_live/student"]["peak_memory"] == approx(2.5)
