"""End to end in-process: each experiment trains under fast_dev_run; a short run writes summary.json; CLI habits."""

from __future__ import annotations

import json
import time

import pytest
import torch

from segkd.systems import SegmentationSystem
from segkd.train import RunDirError, train

from conftest import CONF_DIR

EXPERIMENTS = sorted(f.stem for f in (CONF_DIR / "experiment").glob("*.yaml"))


def external_teacher_overrides(folder) -> list[str]:
    """A teacher segkd did not make: a bare 1x1 convolution to 19 classes and its state dict."""
    torch.manual_seed(0)
    weights = folder / "conv_teacher.pt"
    torch.save(torch.nn.Conv2d(3, 19, 1).state_dict(), weights)
    return ["teacher_net={_target_:torch.nn.Conv2d,in_channels:3,out_channels:19,kernel_size:1}",
            f"teacher_weights={weights}"]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_fast_dev_run(make_cfg, experiment, request, tmp_path):
    if experiment == "external_teacher":
        extra = external_teacher_overrides(tmp_path)
    elif experiment == "multi_teacher":  # its teachers are teacher_ckpts, and teacher_ckpt names none
        ckpt = request.getfixturevalue("teacher_ckpt")
        extra = [f"teacher_ckpts=[{ckpt},{ckpt}]"]
    elif "teacher_ckpt" in make_cfg(f"+experiment={experiment}"):  # offline KD and searches over it
        extra = [f"teacher_ckpt={request.getfixturevalue('teacher_ckpt')}"]
    else:
        extra = []
    cfg = make_cfg(f"+experiment={experiment}", "trainer.fast_dev_run=true", *extra)
    summary = train(cfg)
    assert summary["global_step"] == 1, "one optimizer step per batch, mutual learning included"
    assert summary["last_checkpoint"] is None and summary["best_checkpoint"] is None, "fast_dev_run writes none"
    assert summary["experiment"] == experiment
    assert 0.0 <= summary["val"]["mIoU"] <= 1.0


def test_short_run_writes_a_complete_summary_and_a_self_describing_checkpoint(make_cfg, tmp_path):
    cfg = make_cfg("model=student_mnv2", "trainer.max_epochs=2", "system.loss.class_weighting=median")
    summary = train(cfg)
    written = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert written["experiment"] == "student" and written["model"] == "student_mnv2"
    assert written["epochs"] == 2 and written["global_step"] == 2 * (16 // 4)
    assert 0.0 <= written["val"]["mIoU"] <= 1.0 and 0.0 <= written["val"]["pixel_acc"] <= 1.0
    assert set(written["val"]["IoU"]) >= {"road", "sky", "bicycle"}
    assert written["best_val_mIoU"] >= written["val"]["mIoU"] - 1e-9
    assert len(written["val_curve"]) == 2 and written["val_curve"][-1] == written["val"]["mIoU"]
    cx = written["complexity"]
    assert cx["params"] > 1e6 and cx["gflops"] == pytest.approx(2 * cx["gmacs"]) and cx["input_size"] == [64, 64]
    assert written["input_size"] == [64, 64] and written["wall_time_s"] > 0
    assert "model=student_mnv2" in written["overrides"]

    # The checkpoint alone rebuilds the net, with the class weights it trained with.
    system = SegmentationSystem.load_from_checkpoint(summary["last_checkpoint"], map_location="cpu")
    assert system.hparams.net["encoder_name"] == "mobilenet_v2"
    assert len(system.hparams.class_names) == 19
    assert not torch.allclose(system.criterion.weight, torch.ones(19)), "median weights were applied"


def test_last_checkpoint_is_the_last_step_even_when_the_best_came_early(make_cfg):
    # Monitoring the epoch number with mode=min makes epoch 0 the best forever.
    summary = train(make_cfg("trainer.max_epochs=3", "callbacks.model_checkpoint.monitor=epoch",
                             "callbacks.model_checkpoint.mode=min"))
    best = torch.load(summary["best_checkpoint"], map_location="cpu", weights_only=False)
    last = torch.load(summary["last_checkpoint"], map_location="cpu", weights_only=False)
    assert best["global_step"] == 16 // 4, "the best checkpoint stayed at the first epoch"
    assert summary["last_checkpoint"].endswith("last.ckpt")
    assert last["global_step"] == summary["global_step"] == 3 * (16 // 4), "last.ckpt holds the final step"


def test_wandb_logger_runs_offline_into_the_run_dir(make_cfg, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = make_cfg("logger=csv_wandb", "trainer.max_epochs=1", "trainer.limit_train_batches=1")
    train(cfg)
    import wandb

    assert wandb.run is None, "train() finishes its W&B run, so a sweep's next job starts a new one"
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, "offline by default: no network, no login"
    log = next(runs[0].glob("run-*.wandb"))  # the offline run's transaction log
    record = b""
    for _ in range(60):  # wandb-core writes it from its own process and may still be flushing after finish()
        record = log.read_bytes()
        if b"val/mIoU" in record and b"encoder_name" in record:
            break
        time.sleep(0.5)
    assert b"val/mIoU" in record and b"encoder_name" in record, "metrics and the config reach W&B"


# ----------------------------------------------------------------------------- command-line habits

def test_trainer_limits_from_the_command_line_reach_the_run(make_cfg):
    summary = train(make_cfg("trainer.limit_train_batches=2", "trainer.max_steps=2", "trainer.max_epochs=5"))
    assert summary["global_step"] == 2 and summary["epochs"] == 1


def test_debug_fdr_trains_in_process(make_cfg, tmp_path):
    summary = train(make_cfg("debug=fdr"))
    assert summary["global_step"] == 1 and 0.0 <= summary["val"]["mIoU"] <= 1.0
    assert not summary["last_checkpoint"], "fast_dev_run writes no checkpoints"


@pytest.mark.parametrize("option,steps", [("overfit", 3), ("limit", 4), ("profiler", 4)])
def test_debug_options_run_one_epoch(make_cfg, tmp_path, option, steps):
    # FAST's trainer.max_epochs=1 (command line) outranks the debug config's epochs; the rest is its own.
    summary = train(make_cfg(f"debug={option}"))
    assert summary["global_step"] == steps and summary["val"] is not None
    if option == "profiler":
        report = (tmp_path / "run" / "fit-profile.txt").read_text()
        assert "run_training_epoch" in report


def test_hydra_main_returns_the_val_miou_for_sweepers(make_cfg, tmp_path):
    from segkd.run import main

    task = main.__wrapped__  # the function under @hydra.main, as Hydra calls it for each job
    score = task(make_cfg("trainer.fast_dev_run=true"))
    written = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert isinstance(score, float) and score == written["val"]["mIoU"]
    assert task(make_cfg("trainer.max_steps=1", "trainer.limit_val_batches=0")) is None, "no validation, no score"


def test_auto_resume_refuses_a_run_dir_that_holds_another_recipe_or_seed(make_cfg, tmp_path):
    first = train(make_cfg("auto_resume=true", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1"))
    written = (tmp_path / "run" / "summary.json").read_text()
    base = ("auto_resume=true", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1")
    assert train(make_cfg(*base))["val"] == first["val"], "the same run again returns its summary"
    with pytest.raises(RunDirError, match=r"system.loss.label_smoothing: 0.0 there, 0.1 now.*hydra.run.dir=.*ckpt_path="):
        train(make_cfg(*base, "system.loss.label_smoothing=0.1"))
    with pytest.raises(RunDirError, match=rf"seed: {first['seed']} there, 7 now"):
        train(make_cfg(*base, "seed=7"))
    assert (tmp_path / "run" / "summary.json").read_text() == written, "nothing already written is touched"

    (tmp_path / "run" / "summary.json").unlink()  # an unfinished run: only its last.ckpt would be resumed
    with pytest.raises(RunDirError, match=r"system.loss.label_smoothing"):
        train(make_cfg(*base, "system.loss.label_smoothing=0.1"))
    explicit = train(make_cfg(*base, "system.loss.label_smoothing=0.1",
                              f"ckpt_path={tmp_path / 'run' / 'checkpoints' / 'last.ckpt'}"))
    assert explicit["resumed_from"].endswith("last.ckpt"), "an explicit ckpt_path continues it on purpose"


def test_the_model_summary_counts_flops_and_the_run_says_what_to_run_next(make_cfg, capsys):
    from segkd.models import build_net, measure_complexity

    cfg = make_cfg("trainer.enable_model_summary=true", "trainer.limit_train_batches=1")
    train(cfg)
    out = capsys.readouterr().out
    total = next(line for line in out.splitlines() if "Total FLOPs" in line)
    assert not total.strip().startswith("0 "), total
    gflops = 2 * measure_complexity(build_net(dict(cfg.model)), (64, 64))["gmacs"]
    assert f"FLOPs: {int(gflops * 1e3)} M" in total, (total, gflops)  # Lightning counts 2 FLOPs per multiply-add too
    assert "next: does a teacher make this student better?" in out
    assert "python -m segkd.run +experiment=reference_teacher" in out and "python -m segkd.protocol" in out
