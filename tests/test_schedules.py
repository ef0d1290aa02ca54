"""Loss schedules: weights and updating network per (step, epoch)."""

from __future__ import annotations

import dataclasses

import pytest

from segkd.distill.schedules import Alternating, Constant, Phase, Ramp

# (step, epoch) probes used to check that only the configured unit matters
PROBES = [(0, 0), (1, 0), (7, 3), (100, 10), (12345, 999)]


def test_phase_defaults_and_frozen():
    assert Phase() == Phase(1.0, 1.0, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Phase().distill = 0.0


def test_constant_is_the_same_phase_everywhere():
    schedule = Constant(supervised=0.7, distill=2.5)
    expected = Phase(0.7, 2.5, None)
    for step, epoch in PROBES:
        assert schedule(step, epoch) == expected
    assert Constant()(3, 1) == Phase(1.0, 1.0, None)


# ----------------------------------------------------------------------------- Ramp


def _ramp_at(schedule, unit, t, other=0):
    return schedule(t, other) if unit == "steps" else schedule(other, t)


@pytest.mark.parametrize("unit", ["epochs", "steps"])
def test_ramp_zero_midpoint_full(unit):
    schedule = Ramp(warmup=4, unit=unit, supervised=0.5, distill=2.0)
    assert _ramp_at(schedule, unit, 0) == Phase(0.5, 0.0, None)
    assert _ramp_at(schedule, unit, 1).distill == pytest.approx(0.5)
    assert _ramp_at(schedule, unit, 2).distill == pytest.approx(1.0)  # linear midpoint
    assert _ramp_at(schedule, unit, 3).distill == pytest.approx(1.5)
    assert _ramp_at(schedule, unit, 4) == Phase(0.5, 2.0, None)  # at warmup
    assert _ramp_at(schedule, unit, 5) == Phase(0.5, 2.0, None)  # and after
    assert _ramp_at(schedule, unit, 1000) == Phase(0.5, 2.0, None)
    for t in range(10):
        assert _ramp_at(schedule, unit, t).supervised == 0.5
        assert _ramp_at(schedule, unit, t).update is None


@pytest.mark.parametrize("unit", ["epochs", "steps"])
def test_ramp_uses_only_its_unit(unit):
    schedule = Ramp(warmup=10, unit=unit)
    # the other counter is far past warmup: it must not matter
    assert _ramp_at(schedule, unit, 0, other=500).distill == 0.0
    assert _ramp_at(schedule, unit, 5, other=500).distill == pytest.approx(0.5)


def test_ramp_default_unit_is_epochs():
    schedule = Ramp(warmup=2)
    assert schedule(1000, 0).distill == 0.0
    assert schedule(0, 1).distill == pytest.approx(0.5)
    assert schedule(0, 2).distill == 1.0


@pytest.mark.parametrize("unit", ["epochs", "steps"])
def test_ramp_honours_start(unit):
    schedule = Ramp(warmup=4, unit=unit, start=0.4, distill=2.0)
    assert _ramp_at(schedule, unit, 0).distill == pytest.approx(0.4)
    assert _ramp_at(schedule, unit, 2).distill == pytest.approx(1.2)  # 0.4 + (2.0 - 0.4) / 2
    assert _ramp_at(schedule, unit, 4).distill == pytest.approx(2.0)
    assert _ramp_at(schedule, unit, 9).distill == pytest.approx(2.0)


def test_ramp_can_ramp_down():
    schedule = Ramp(warmup=2, unit="steps", start=3.0, distill=1.0)
    assert [schedule(t, 0).distill for t in range(4)] == pytest.approx([3.0, 2.0, 1.0, 1.0])


@pytest.mark.parametrize("warmup", [0, -3])
def test_ramp_rejects_bad_warmup(warmup):
    with pytest.raises(ValueError, match=r"warmup must be >= 1"):
        Ramp(warmup=warmup)


def test_ramp_rejects_bad_unit():
    with pytest.raises(ValueError, match="iterations") as info:
        Ramp(warmup=2, unit="iterations")
    assert "steps" in str(info.value) and "epochs" in str(info.value)


# ----------------------------------------------------------------------------- Alternating


def _alt_at(schedule, unit, t, other=0):
    return schedule(t, other) if unit == "steps" else schedule(other, t)


@pytest.mark.parametrize("unit", ["epochs", "steps"])
@pytest.mark.parametrize("period", [1, 3])
def test_alternating_loss_mode(unit, period):
    schedule = Alternating(period=period, unit=unit, mode="loss", supervised=0.8, distill=1.5)
    sup_only, kd_only = Phase(0.8, 0.0, None), Phase(0.0, 1.5, None)
    assert _alt_at(schedule, unit, 0) == sup_only
    assert _alt_at(schedule, unit, period - 1) == sup_only
    assert _alt_at(schedule, unit, period) == kd_only
    assert _alt_at(schedule, unit, 2 * period - 1) == kd_only
    assert _alt_at(schedule, unit, 2 * period) == sup_only
    assert _alt_at(schedule, unit, 3 * period) == kd_only
    expected = [sup_only if (t // period) % 2 == 0 else kd_only for t in range(6 * period)]
    assert [_alt_at(schedule, unit, t) for t in range(6 * period)] == expected


@pytest.mark.parametrize("unit", ["epochs", "steps"])
def test_alternating_uses_only_its_unit(unit):
    schedule = Alternating(period=2, unit=unit, mode="loss")
    assert _alt_at(schedule, unit, 0, other=3) == Phase(1.0, 0.0, None)
    assert _alt_at(schedule, unit, 2, other=0) == Phase(0.0, 1.0, None)


def test_alternating_default_unit_and_mode():
    schedule = Alternating(period=2)
    assert schedule(1000, 0) == Phase(1.0, 0.0, None)
    assert schedule(0, 2) == Phase(0.0, 1.0, None)


@pytest.mark.parametrize("unit", ["epochs", "steps"])
def test_alternating_network_mode_two_networks(unit):
    schedule = Alternating(period=3, unit=unit, mode="network", supervised=0.6, distill=1.4)
    updates = [_alt_at(schedule, unit, t).update for t in range(12)]
    assert updates == [0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1]
    for t in range(12):
        phase = _alt_at(schedule, unit, t)
        assert (phase.supervised, phase.distill) == (0.6, 1.4)
    assert _alt_at(schedule, unit, 2) == Phase(0.6, 1.4, 0)
    assert _alt_at(schedule, unit, 3) == Phase(0.6, 1.4, 1)
    assert _alt_at(schedule, unit, 6) == Phase(0.6, 1.4, 0)


@pytest.mark.parametrize("unit", ["epochs", "steps"])
def test_alternating_network_mode_three_networks(unit):
    schedule = Alternating(period=2, unit=unit, mode="network", num_networks=3)
    updates = [_alt_at(schedule, unit, t).update for t in range(14)]
    assert updates == [0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2, 0, 0]
    assert all(_alt_at(schedule, unit, t).distill == 1.0 for t in range(14))
    assert all(_alt_at(schedule, unit, t).supervised == 1.0 for t in range(14))


def test_alternating_rejects_bad_unit():
    with pytest.raises(ValueError, match="iters") as info:
        Alternating(period=2, unit="iters")
    assert "steps, epochs" in str(info.value)


def test_alternating_rejects_bad_mode():
    with pytest.raises(ValueError, match="weights") as info:
        Alternating(period=2, mode="weights")
    assert "loss, network" in str(info.value)


@pytest.mark.parametrize("period", [0, -1])
def test_alternating_rejects_bad_period(period):
    with pytest.raises(ValueError, match=r"period must be >= 1"):
        Alternating(period=period)
