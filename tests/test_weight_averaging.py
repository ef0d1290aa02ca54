"""The EMA callback: its warm-up, what checkpoints hold, and that copies of a KD system leave the teacher out."""

from __future__ import annotations

import copy

import pytest
import torch

from segkd.callbacks.weight_averaging import WarmedUpEMA
from segkd.train import build_system, train


def test_warmed_up_ema_follows_the_net_first_then_settles_on_its_decay():
    ema = WarmedUpEMA(0.99)
    averaged, current = [torch.zeros(3)], [torch.ones(3)]
    ema(averaged, current, torch.tensor(0))  # decay min(0.99, 1/10) = 0.1
    assert torch.allclose(averaged[0], torch.full((3,), 0.9))
    averaged = [torch.zeros(3)]
    ema(averaged, current, torch.tensor(10_000))  # decay capped at 0.99
    assert torch.allclose(averaged[0], torch.full((3,), 0.01))
    counts = [torch.tensor(3)]
    ema(counts, [torch.tensor(7)], torch.tensor(5))
    assert counts[0].item() == 7, "integer buffers take the net's value"
    with pytest.raises(ValueError, match="decay"):
        WarmedUpEMA(1.0)


def test_checkpoint_holds_the_average_and_the_raw_weights_to_resume_from(make_cfg, tmp_path):
    summary = train(make_cfg("trainer.max_epochs=2"))
    ckpt = torch.load(summary["last_checkpoint"], map_location="cpu", weights_only=False)
    averaged, raw = ckpt["state_dict"], ckpt["current_model_state"]
    assert averaged.keys() == raw.keys()
    key = next(k for k in averaged if k.startswith("net.") and averaged[k].is_floating_point() and averaged[k].ndim > 1)
    assert not torch.equal(averaged[key], raw[key]), "the checkpoint's weights are the average, not the last step's"
    # Resuming continues from the raw weights and the average's own state (its update count).
    resumed = train(make_cfg("trainer.max_epochs=3", f"ckpt_path={summary['last_checkpoint']}"))
    assert resumed["global_step"] == 3 * (16 // 4) and len(resumed["val_curve"]) == 3


def test_a_copy_of_a_kd_system_holds_no_teacher(make_cfg, teacher_ckpt):
    cfg = make_cfg("+experiment=offline_kd", f"teacher_ckpt={teacher_ckpt}")
    system = build_system(cfg, ["c"] * 19)
    clone = copy.deepcopy(system)  # what the averaging callback makes of the system
    assert system.teacher is not None and clone.teacher is None
    assert torch.equal(next(clone.net.parameters()), next(system.net.parameters()))
