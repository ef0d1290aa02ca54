"""Offline KD and mutual learning systems: build-time checks, a frozen teacher, schedules in action."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch import Trainer

from segkd.config import to_plain
from segkd.distill.features import FeatureRecorder
from segkd.models import build_unet
from segkd.systems import DistillationSystem, MutualLearningSystem
from segkd import train as train_module
from segkd.train import train


def build_system(cfg):
    """What train() does to build a system (segkd.train.build_system), without training it."""
    return train_module.build_system(cfg, ["c"] * 19)


def test_recorder_reads_stage_outputs_by_index_and_forgets_each_step():
    net = build_unet("resnet18", classes=3, decoder_channels=(16, 16, 8, 8, 8))
    rec = FeatureRecorder(net, ["encoder#3", "decoder.blocks.1"], "student")
    with rec.record():
        net(torch.zeros(1, 3, 64, 64))
        feats = rec.features()
    assert feats["encoder#3"].shape == (1, 128, 8, 8)  # resnet18 stage 3: 1/8 resolution
    assert feats["decoder.blocks.1"].shape[1] == 16
    with rec.record():
        assert rec.outputs == {}, "each step starts empty"
    with pytest.raises(ValueError, match=r"returns list of 6 tensors; pick one with 'encoder#<index>'"):
        with rec.record():
            net(torch.zeros(1, 3, 64, 64))
            rec.get("encoder")


def test_recorder_keeps_nothing_outside_record():
    net = build_unet("resnet18", classes=3, decoder_channels=(16, 16, 8, 8, 8))
    rec = FeatureRecorder(net, ["decoder.blocks.1"], "student")
    net(torch.zeros(1, 3, 64, 64))  # e.g. a validation pass
    assert rec.outputs == {}, "hooks are active only inside record()"
    with pytest.raises(RuntimeError, match="did not run in the last recorded forward pass"):
        rec.get("decoder.blocks.1")


def test_recorder_keeps_every_call_of_a_module_run_twice():
    net = build_unet("resnet18", classes=3, decoder_channels=(16, 16, 8, 8, 8))
    rec = FeatureRecorder(net, ["decoder.blocks.1@0", "decoder.blocks.1@1"], "student")
    with rec.record():
        net(torch.zeros(1, 3, 64, 64))
        net(torch.ones(1, 3, 64, 64))  # the same module runs again in one recorded pass
        first, second = rec.get("decoder.blocks.1@0"), rec.get("decoder.blocks.1@1")
        assert not torch.equal(first, second), "each call is kept, in order"
        with pytest.raises(ValueError, match=r"'decoder.blocks.1' ran 2 times in one forward pass; pick a call with "
                                             r"'decoder.blocks.1@<n>' \(0..1\)"):
            rec.get("decoder.blocks.1")
        with pytest.raises(ValueError, match="asks for call 2 of a module that ran 2 time"):
            rec.get("decoder.blocks.1@2")


def test_unknown_hook_path_fails_at_build_time_with_the_paths_near_it(make_cfg, teacher_ckpt):
    cfg = make_cfg(
        "+experiment=offline_kd", f"teacher_ckpt={teacher_ckpt}", "distill_paradigm=decoder",
        "distill_paradigm.terms.dec2.inputs.student=student:decoder.blokcs.2",
    )
    with pytest.raises(ValueError, match=r"unknown module path 'decoder.blokcs.2' in the student; valid paths near it: \[.*'decoder.blocks.2'"):
        build_system(cfg)


def test_loss_inputs_are_checked_against_forward_at_build_time(make_cfg, teacher_ckpt):
    cfg = make_cfg("+experiment=offline_kd", f"teacher_ckpt={teacher_ckpt}", "+distill_paradigm.terms.logits.inputs.labels=target")
    with pytest.raises(ValueError, match=r"term 'logits' maps \['labels'\] but LogitKD.forward\(student, teacher, target\)"):
        build_system(cfg)


def test_teacher_checkpoint_that_does_not_match_its_config(make_cfg, teacher_ckpt, tmp_path):
    cfg = make_cfg("+experiment=offline_kd", f"teacher_ckpt={teacher_ckpt}", "model@system.teacher.net=student_r18")
    with pytest.raises(ValueError, match=r"does not match the teacher config \(encoder_name: checkpoint has 'resnet34', config says 'resnet18'; decoder_channels"):
        build_system(cfg)
    with pytest.raises(FileNotFoundError, match=r"nope.ckpt does not exist; train it once with "
                                                 r"`python -m segkd.run \+experiment=reference_teacher dataset=synthstreets_kd`"):
        build_system(make_cfg("+experiment=offline_kd", f"teacher_ckpt={tmp_path / 'nope.ckpt'}"))
    # Without teacher_ckpt, offline KD looks for the reference teacher of its data in the cache.
    with pytest.raises(FileNotFoundError, match=r"reference_teachers/synthstreets-s0_n16-5_64x128-v1/checkpoints/last.ckpt "
                                                 r"does not exist; train it once"):
        build_system(make_cfg("+experiment=offline_kd"))
    with pytest.raises(ValueError, match=r"is a directory; point teacher_ckpt at a .ckpt file"):
        build_system(make_cfg("+experiment=offline_kd", f"teacher_ckpt={tmp_path}"))
    with pytest.raises(ValueError, match=r"offline KD needs a teacher checkpoint"):
        build_system(make_cfg("+experiment=offline_kd", "teacher_ckpt=null"))
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(teacher_ckpt.read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"cannot be read"):
        build_system(make_cfg("+experiment=offline_kd", f"teacher_ckpt={broken}"))


def test_teacher_stays_frozen_and_out_of_the_student_checkpoint(make_cfg, teacher_ckpt):
    cfg = make_cfg("+experiment=offline_kd", f"teacher_ckpt={teacher_ckpt}", "distill_paradigm=logits_decoder", "trainer.max_epochs=2")
    system = build_system(cfg)
    before = {k: v.clone() for k, v in system.teacher.state_dict().items()}
    datamodule = instantiate(cfg.dataset)
    trainer = instantiate(to_plain(cfg.trainer), logger=False, enable_checkpointing=False)
    trainer.fit(system, datamodule=datamodule)
    after = system.teacher.state_dict()
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert torch.equal(value, after[key]), f"teacher buffer/param {key} changed during fit"
    assert not system.teacher.training and all(not m.training for m in system.teacher.modules())
    assert not any(p.requires_grad for p in system.teacher.parameters())
    assert not any(k.startswith("teacher") for k in system.state_dict()), "the teacher is not saved with the student"
    assert set(system.distiller.connectors) == {"dec2"}
    assert system.teacher_scores is not None and 0.0 <= system.teacher_scores["mIoU"] <= 1.0
    assert system.teacher_scores["entropy"] >= 0.0 and 0.0 <= system.teacher_scores["dark_knowledge"] <= 1.0


@pytest.mark.parametrize("paradigm, terms", [("pairwise", ["pairwise"]), ("logits_decoder", ["logits", "dec2"])])
def test_a_term_at_weight_zero_trains_the_student_exactly_as_scratch(make_cfg, teacher_ckpt, paradigm, terms):
    """What a paired Δ vs the scratch student measures is the distillation term alone: the live
    teacher, the hooks and a connector (logits_decoder's dec2) change nothing else in the student's
    training, down to the last bit."""

    def net(ckpt: str) -> dict:
        state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
        return {k: v for k, v in state.items() if k.startswith("net.")}

    steps = ("seed=3", "trainer.limit_train_batches=3", "trainer.limit_val_batches=1")
    scratch = train(make_cfg("+experiment=student", *steps))
    a = net(scratch["last_checkpoint"])  # read now: the KD run writes into the same run dir
    zero = [f"distill_paradigm.terms.{term}.weight=0" for term in terms]
    kd = train(make_cfg("+experiment=offline_kd", f"teacher_ckpt={teacher_ckpt}", f"distill_paradigm={paradigm}", *zero, *steps))
    b = net(kd["last_checkpoint"])
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert kd["val"]["mIoU"] == scratch["val"]["mIoU"]


def test_offline_kd_summary_names_the_teacher_scores(make_cfg, teacher_ckpt):
    summary = train(make_cfg("+experiment=offline_kd", f"teacher_ckpt={teacher_ckpt}", "distill_paradigm=cwd"))
    assert summary["experiment"] == "offline_kd" and "paradigm:cwd" in summary["tags"]
    assert set(summary["teacher"]) >= {"mIoU", "entropy", "dark_knowledge", "IoU"}
    assert set(summary["val"]) >= {"mIoU", "entropy", "dark_knowledge"}
    loaded = DistillationSystem.load_from_checkpoint(summary["last_checkpoint"], map_location="cpu")
    assert loaded.hparams.net["encoder_name"] == "mobilenet_v2"


def test_alternating_network_schedule_updates_one_network_per_step(make_cfg):
    cfg = make_cfg("+experiment=online_alternating", "loss_schedule=alternating_network", "loss_schedule.unit=steps")
    system = build_system(cfg)
    assert isinstance(system, MutualLearningSystem)
    datamodule = instantiate(cfg.dataset)
    nets = system.scored_nets()
    snapshot = lambda name: [t.detach().clone() for t in (*nets[name].parameters(), *nets[name].buffers())]  # noqa: E731
    net0, peer0 = snapshot("net"), snapshot("peer")
    trainer = Trainer(accelerator="cpu", max_steps=1, limit_train_batches=1, limit_val_batches=0, logger=False,
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(system, datamodule=datamodule)
    changed = lambda old, name: any(  # noqa: E731
        not torch.equal(a, b) for a, b in zip(old, (*nets[name].parameters(), *nets[name].buffers())))
    assert changed(net0, "net"), "step 0 updates the first network"
    assert not changed(peer0, "peer"), "...and only the first: the idle peer's weights and BatchNorm statistics stay"
    assert nets["peer"].training, "the idle network is back in train mode after its step"


def test_mutual_learning_counts_batches_as_steps(make_cfg):
    cfg = make_cfg("+experiment=online_dml", "trainer.max_epochs=-1", "trainer.max_steps=3", "callbacks=none")
    summary = train(cfg)
    assert summary["global_step"] == 3, "max_steps counts batches, not optimizer calls per network"


def test_mutual_terms_are_checked_at_build_time(make_cfg):
    cfg = make_cfg("+experiment=online_features", "distill_paradigm.terms.dec2.inputs.teacher=teacher:decoder.blokcs.2")
    with pytest.raises(ValueError, match=r"unknown module path 'decoder.blokcs.2' in the teacher"):
        build_system(cfg)
    cfg = make_cfg("+experiment=online_dml", "+distill_paradigm.terms.logits.inputs.labels=target")
    with pytest.raises(ValueError, match=r"term 'logits' maps \['labels'\] but LogitKD.forward"):
        build_system(cfg)
    cfg = make_cfg("+experiment=online_dml", "distill_paradigm.terms.logits.inputs.teacher=peers:logits")
    with pytest.raises(ValueError, match=r"unknown tensor source 'peers:logits'.*roles? of \['student', 'teacher'\]"):
        build_system(cfg)


@pytest.mark.parametrize("paradigm, terms", [("cwd", {"cwd"}), ("decoder", {"dec1", "dec2", "dec3"})])
def test_a_paradigm_of_offline_kd_links_the_peers_of_mutual_learning(make_cfg, paradigm, terms):
    cfg = make_cfg("+experiment=online_dml", f"distill_paradigm={paradigm}", "trainer.limit_train_batches=1")
    system = build_system(cfg)
    assert set(system.distillers["net_from_peer"].losses) == terms == set(system.distillers["peer_from_net"].losses)
    summary = train(cfg)
    assert summary["global_step"] == 1 and summary["recipe"]["fields"]["paradigm"] == paradigm


def test_terms_spelt_with_the_peer_role_still_build(make_cfg):
    system = build_system(make_cfg("+experiment=online_dml", "distill_paradigm.terms.logits.inputs.teacher=peer:logits"))
    assert set(system.distillers["net_from_peer"].losses) == {"logits"}


def test_feature_terms_link_peers_of_different_widths(make_cfg):
    cfg = make_cfg("+experiment=online_features", "model@system.peers.peer=teacher_r34", "trainer.max_epochs=1",
                   "trainer.limit_train_batches=2")
    summary = train(cfg)
    assert summary["global_step"] == 2 and set(summary["peers"]) == {"peer"}
    system = MutualLearningSystem.load_from_checkpoint(summary["last_checkpoint"], map_location="cpu")
    connector = system.distillers["net_from_peer"].connectors["dec2"].proj[0]
    assert connector.in_channels == 16 and connector.out_channels == 64, "student_mnv2 block 2 -> teacher_r34's"
    back = system.distillers["peer_from_net"].connectors["dec2"].proj[0]
    assert back.in_channels == 64 and back.out_channels == 16, "each direction has its own connector"


def test_a_network_of_a_mutual_learning_run_loads_as_a_teacher(make_cfg, tmp_path):
    summary = train(make_cfg("+experiment=online_dml", "model@system.peers.peer=teacher_r34", "trainer.limit_train_batches=1"))
    ckpt = summary["last_checkpoint"]
    cfg = make_cfg("+experiment=offline_kd", f"teacher_ckpt={ckpt}", "system.teacher.checkpoint_net=peer")
    system = build_system(cfg)
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    teacher_state = system.teacher.state_dict()
    assert all(torch.equal(teacher_state[k[len("peers.peer."):]], v) for k, v in saved.items() if k.startswith("peers.peer."))
    # The first network of that run is a student_mnv2: as a teacher_r34 it is refused, naming the difference.
    with pytest.raises(ValueError, match=r"\('net'\) does not match the teacher config \(encoder_name: checkpoint has 'mobilenet_v2'"):
        build_system(make_cfg("+experiment=offline_kd", f"teacher_ckpt={ckpt}"))
    with pytest.raises(ValueError, match=r"has no network 'peeer'; it holds \['net', 'peer'\]"):
        build_system(make_cfg("+experiment=offline_kd", f"teacher_ckpt={ckpt}", "system.teacher.checkpoint_net=peeer"))


@pytest.mark.parametrize("correct", [True, False])
def test_prior_correction_takes_the_teachers_class_weights_out_of_its_logits(make_cfg, teacher_ckpt, tmp_path, correct):
    ckpt = torch.load(teacher_ckpt, map_location="cpu", weights_only=True)
    weights = torch.linspace(0.5, 4.0, 19)  # as if trained with class weighting
    ckpt["state_dict"]["criterion.weight"] = weights
    torch.save(ckpt, tmp_path / "weighted.ckpt")
    cfg = make_cfg("+experiment=offline_kd", f"teacher_ckpt={tmp_path / 'weighted.ckpt'}", "trainer.fast_dev_run=true",
                   f"system.teacher.prior_correction={str(correct).lower()}")
    system = build_system(cfg)
    raw, taught = [], []
    system.teacher.register_forward_hook(lambda module, args, out: raw.append(out.detach().clone()))
    system.distiller.register_forward_pre_hook(lambda module, args: taught.append(args[0]["teacher"].detach().clone()))
    trainer = instantiate(to_plain(cfg.trainer), logger=False, enable_checkpointing=False)
    trainer.fit(system, datamodule=instantiate(cfg.dataset))
    shift = weights.log().view(1, -1, 1, 1) if correct else torch.zeros(1, 19, 1, 1)
    assert len(taught) == 1 and torch.allclose(taught[0], raw[-1] - shift, atol=1e-6)
    assert not any(k.startswith("teacher") for k in system.state_dict()), "nothing of the teacher in the student checkpoint"


@pytest.mark.parametrize("experiment", [[], ["+experiment=student"], ["+experiment=teacher"]])
def test_a_paradigm_on_a_run_that_does_not_distil_is_refused_in_one_line(make_cfg, experiment):
    cfg = make_cfg(*experiment, "distill_paradigm=cwd")
    with pytest.raises(ValueError, match=r"^distill_paradigm=cwd would do nothing: this run's system "
                                         r"\(SegmentationSystem\) trains from labels alone\. Distil .*"
                                         r"\+experiment=offline_kd distill_paradigm=cwd.*\+experiment=online_dml"):
        train(cfg)


@pytest.mark.parametrize("override, message", [
    ("distill_paradigm.terms.cwd.weight=-1", r"^distill_paradigm\.terms\.cwd\.weight=-1\.?0?: a term's weight must be a "
                                             r"finite number >= 0 \(0 switches the term off; a negative weight pushes"),
    ("distill_paradigm.terms.cwd.weight=nan", r"^distill_paradigm\.terms\.cwd\.weight=nan: a term's weight must be"),
    ("distill_paradigm.terms.cwd.weight=heavy", r"^distill_paradigm\.terms\.cwd\.weight=heavy: a term's weight must be"),
    ("distill_paradigm.terms.cwd.loss.tau=0", r"^distill_paradigm\.terms\.cwd\.loss: tau must be > 0, got 0"),
    ("distill_paradigm.terms.cwd.loss.tau=inf", r"^distill_paradigm\.terms\.cwd\.loss\.tau=inf: must be a finite number"),
    ("teacher_scale=0", r"^teacher_scale=0 \(system\.teacher\.input_scale\) must be a positive factor"),
    ("teacher_scale=-0.5", r"^teacher_scale=-0\.5 \(system\.teacher\.input_scale\) must be a positive factor"),
])
def test_bad_distillation_numbers_are_refused_at_build_time_naming_the_key_typed(make_cfg, teacher_ckpt, override, message):
    cfg = make_cfg("+experiment=offline_kd", f"teacher_ckpt={teacher_ckpt}", "distill_paradigm=cwd", override)
    with pytest.raises(ValueError, match=message):
        build_system(cfg)
