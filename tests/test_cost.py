"""summary.json's cost block: the arithmetic of training compute, checked against measure_complexity
and connectors counted by hand, on tiny real runs."""

from __future__ import annotations

import pytest
import torch

from segkd.callbacks import EpochTimer
from segkd.models import build_net, measure_complexity
from segkd.models.checkpoint import load_net
from segkd.models.complexity import TRAINED_FACTOR, training_cost
from segkd.train import train

CROP = (64, 64)  # tests' FAST crop


def _check_totals(cost: dict, batch_size: int = 4) -> None:
    assert cost["samples_seen"] == cost["optimizer_steps"] * batch_size
    assert cost["train_gmacs"] == pytest.approx(cost["gmacs_per_sample"] * cost["samples_seen"])
    assert cost["fit_s"] > 0 and 0 <= cost["val_s"] < cost["fit_s"]
    assert cost["train_s"] == pytest.approx(cost["fit_s"] - cost["val_s"])
    assert cost["step_s_median"] > 0


def test_a_scratch_run_costs_three_student_forwards_per_sample(make_cfg):
    cfg = make_cfg("trainer.limit_train_batches=3", "trainer.max_epochs=2")
    summary = train(cfg)
    cost = summary["cost"]
    student = measure_complexity(build_net(dict(cfg.model)), CROP)["gmacs"]  # built again, measured apart
    assert cost["optimizer_steps"] == summary["global_step"] == 6
    assert cost["forward_gmacs"] == {"trained": {"net": pytest.approx(student)}, "frozen": {}}
    assert cost["gmacs_per_sample"] == pytest.approx(TRAINED_FACTOR * student)
    assert cost["train_gmacs"] == pytest.approx(3 * student * 6 * 4)
    _check_totals(cost)


def _connector_gmacs(cfg, teacher_ckpt) -> float:
    """The encoder paradigm's 1x1 connectors counted by hand: C_student x C_teacher x H x W per stage."""
    student, teacher = build_net(dict(cfg.model)), load_net(teacher_ckpt)[0]
    total = 0.0
    for k in (2, 3, 4):
        side = CROP[0] // 2 ** k, CROP[1] // 2 ** k
        total += student.encoder.out_channels[k] * teacher.encoder.out_channels[k] * side[0] * side[1]
    return total / 1e9


def test_a_live_teacher_is_charged_its_forward_and_connectors_train(make_cfg, teacher_ckpt):
    cfg = make_cfg("+experiment=offline_kd", f"teacher_ckpt={teacher_ckpt}", "distill_paradigm=encoder",
                   "trainer.limit_train_batches=2")
    cost = train(cfg)["cost"]
    student = measure_complexity(build_net(dict(cfg.model)), CROP)["gmacs"]
    teacher = measure_complexity(load_net(teacher_ckpt)[0], CROP)["gmacs"]
    forward = cost["forward_gmacs"]
    assert forward["frozen"] == {"teacher": pytest.approx(teacher)}
    assert forward["trained"]["net"] == pytest.approx(student)
    assert forward["trained"]["distill_terms"] == pytest.approx(_connector_gmacs(cfg, teacher_ckpt), rel=1e-6)
    assert cost["gmacs_per_sample"] == pytest.approx(3 * (student + forward["trained"]["distill_terms"]) + teacher)
    assert "teacher_cache" not in cost
    _check_totals(cost)


def test_a_cached_teacher_is_not_charged_per_run_and_its_build_is_recorded(make_cfg, teacher_ckpt):
    cfg = make_cfg("+experiment=offline_kd", f"teacher_ckpt={teacher_ckpt}", "distill_paradigm=cwd",
                   "teacher_cache=true", "trainer.limit_train_batches=2")
    cost = train(cfg)["cost"]
    assert cost["forward_gmacs"]["frozen"] == {}
    student = measure_complexity(build_net(dict(cfg.model)), CROP)["gmacs"]
    assert cost["gmacs_per_sample"] == pytest.approx(3 * student, rel=1e-3)  # CWD multiplies no matrices
    # the build: one teacher pass per image and view (flip) over the 16 whole 64x128 train images
    teacher = measure_complexity(load_net(teacher_ckpt)[0], (64, 128))["gmacs"]
    assert cost["teacher_cache"]["build_gmacs"] == pytest.approx(teacher * 2 * 16)
    assert cost["teacher_cache"]["images"] == 16


def test_mutual_learning_counts_every_network_it_trains(make_cfg):
    cfg = make_cfg("+experiment=online_dml", "trainer.limit_train_batches=2")
    summary = train(cfg)
    trained = summary["cost"]["forward_gmacs"]["trained"]
    assert set(trained) == {"net", *cfg.system.peers, "distill_terms"}
    for name, spec in [("net", cfg.model), *cfg.system.peers.items()]:
        assert trained[name] == pytest.approx(measure_complexity(build_net(dict(spec)), CROP)["gmacs"])
    _check_totals(summary["cost"])


def test_cost_block_arithmetic_and_timer_state_survive_a_resume():
    cost = training_cost({"trained": {"net": 0.5}, "frozen": {"teacher": 2.0}}, optimizer_steps=10, batch_size=8,
                         fit_s=100.0, val_s=20.0, step_s=[3.0, 1.0, 2.0])
    assert cost["gmacs_per_sample"] == 3 * 0.5 + 2.0
    assert cost["samples_seen"] == 80 and cost["train_gmacs"] == 3.5 * 80
    assert cost["train_s"] == 80.0 and cost["step_s_median"] == 2.0
    timer = EpochTimer()
    timer.train_epoch_s, timer.train_steps, timer.val_epoch_s = [10.0, 20.0], [5, 5], [1.0, 2.0]
    restored = EpochTimer()
    restored.load_state_dict(torch.load(_roundtrip(timer.state_dict()), weights_only=True))
    assert restored.step_s() == [2.0, 4.0] and restored.val_epoch_s == [1.0, 2.0]


def _roundtrip(state: dict):
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer
