"""Scale-out: the global batch, results independent of the process count, preemption and resume, launchers.

The in-process tests check the batch plan, the sampler and the resume inside an epoch; the slow ones
start real processes: 1 vs 2 DDP processes at the same global batch, a submitit_local sweep whose
jobs are signalled, requeued and resumed, and an Optuna search.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from segkd.data.errors import DatasetError
from segkd.data.sampling import SeededSampler, plan_batches
from segkd.train import train

from conftest import FAST, ROOT, compose_train

TESTS = Path(__file__).resolve().parent
# 40 images at a global batch of 8: five optimizer steps per epoch.
STEPS5 = ["dataset.prepare.num_train=40", "dataset.batch_size=8", "callbacks.weight_averaging=null"]


def recorder(path: Path) -> list[str]:
    return ["+callbacks.record._target_=scale_helpers.StepRecorder", f"+callbacks.record.path={path}"]


def recorded(path: Path, rank: int = 0) -> dict:
    return json.loads((path / f"rank{rank}.json").read_text())


def logged_steps(metrics_csv: Path) -> list[int]:
    """The steps of the per-step training-loss rows of a run's metrics.csv."""
    with metrics_csv.open(newline="") as f:
        return [int(row["step"]) for row in csv.DictReader(f) if row.get("train/loss_step")]


def params(ckpt: str | Path) -> dict[str, torch.Tensor]:
    state = torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]
    return {k: v for k, v in state.items() if k.startswith("net.") and v.is_floating_point()}


@pytest.fixture(autouse=True)
def helpers_importable(monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))


# ----------------------------------------------------------------------------- the global batch


def test_batch_plan_splits_the_global_batch_and_refuses_what_does_not_divide():
    assert plan_batches(16, 1) == plan_batches(16, 1, None)
    assert (plan_batches(16, 4).per_device, plan_batches(16, 4).accumulate) == (4, 1)
    assert (plan_batches(16, 2, 2).per_device, plan_batches(16, 2, 2).accumulate) == (2, 4)
    with pytest.raises(DatasetError, match=r"dataset.batch_size=10 is the global batch .* multiple of 4"):
        plan_batches(10, 4)
    with pytest.raises(DatasetError, match=r"dataset.device_batch_size=3 does not divide the 8 images"):
        plan_batches(16, 2, 3)


@pytest.mark.parametrize("world,accumulate", [(1, 1), (1, 2), (2, 1), (4, 2)])
def test_every_split_of_the_global_batch_trains_the_same_images_per_step(world, accumulate):
    data = list(range(37))  # 4 global batches of 8, 5 images dropped
    global_batch = 8
    reference = list(SeededSampler(data, seed=5, global_batch=global_batch))
    per_step = [sorted(i for i, _ in reference[k * 8:(k + 1) * 8]) for k in range(4)]
    shares = [list(SeededSampler(data, seed=5, num_replicas=world, rank=r, global_batch=global_batch))
              for r in range(world)]
    share = global_batch // world
    for k in range(4):
        step = sorted(i for r in range(world) for i, _ in shares[r][k * share:(k + 1) * share])
        assert step == per_step[k]
    assert all(len(s) == 4 * share for s in shares)
    seeds = dict(reference)
    assert all(seed == seeds[i] for s in shares for i, seed in s), "augmentation does not depend on the split"


def test_a_sampler_resumed_inside_an_epoch_continues_with_the_next_global_batch():
    data = list(range(40))
    whole = list(SeededSampler(data, seed=1, num_replicas=2, rank=1, global_batch=8))
    resumed = SeededSampler(data, seed=1, num_replicas=2, rank=1, global_batch=8)
    resumed.skip_steps(epoch=0, steps=3)
    assert list(resumed) == whole[3 * 4:]
    assert list(resumed) == whole, "the skip applies once"
    resumed.skip_steps(epoch=0, steps=3)
    resumed.set_epoch(1)
    assert len(list(resumed)) == len(whole), "another epoch is whole"


def test_gradient_accumulation_takes_each_global_batch_in_one_step(make_cfg, tmp_path):
    one = train(make_cfg(*STEPS5, *recorder(tmp_path / "one")))
    accumulated = train(make_cfg(*STEPS5, "dataset.device_batch_size=2", *recorder(tmp_path / "acc")))
    a, b = recorded(tmp_path / "one"), recorded(tmp_path / "acc")
    assert (a["accumulate"], b["accumulate"]) == (1, 4)
    assert a["steps"] == b["steps"] and len(a["steps"]) == 5
    assert a["global_step"] == b["global_step"] == 5 and a["scheduler_steps"] == b["scheduler_steps"]
    assert accumulated["provenance"]["global_batch"] == one["provenance"]["global_batch"] == 8
    assert accumulated["provenance"]["batch_size_per_process"] == 2


def test_accumulation_set_by_hand_is_refused_with_the_key_to_use(make_cfg):
    with pytest.raises(ValueError, match=r"trainer.accumulate_grad_batches=2 .* set dataset.device_batch_size"):
        train(make_cfg("trainer.accumulate_grad_batches=2"))


# ----------------------------------------------------------------------------- preemption and resume


@pytest.mark.parametrize("signame", ["SIGUSR2", "SIGTERM"])
def test_a_stop_signal_saves_between_steps_and_the_run_resumes_by_itself(make_cfg, tmp_path, monkeypatch, signame):
    """USR2 (submitit's) anywhere, SIGTERM in a SLURM job (preemption, requeue): both save and resume to the
    run an uninterrupted one is, with the moving average of the weights too (it takes the step before the save)."""
    if signame == "SIGTERM":
        monkeypatch.setenv("SLURM_JOB_ID", "4242")
    ema = [s for s in STEPS5 if not s.startswith("callbacks.weight_averaging")]
    run = [*ema, "auto_resume=true", "trainer.log_every_n_steps=1", *recorder(tmp_path / "rec"),
           "callbacks.preemption.sigterm_linger_s=0",  # no SLURM here to end the process after the save
           "+callbacks.signal._target_=scale_helpers.SignalAt", "+callbacks.signal.step=2",
           f"+callbacks.signal.signame={signame}", f"+callbacks.signal.marker={tmp_path / 'signalled'}"]
    with pytest.raises(SystemExit) as stopped:  # no launcher here: the process would end after saving
        train(make_cfg(*run))
    assert stopped.value.code == 128 + int(getattr(signal, signame))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    saved = torch.load(last, map_location="cpu", weights_only=False)
    assert saved["global_step"] == 3, "saved at the first step boundary after the signal"
    assert not (tmp_path / "run" / "summary.json").exists()

    metrics = tmp_path / "run" / "csv" / "metrics.csv"
    before = logged_steps(metrics)
    resumed = train(make_cfg(*run))  # started again as submitit would: same arguments, no ckpt_path
    assert resumed["resumed_from"] == str(last)
    after_resume = logged_steps(metrics)
    assert before and after_resume[:len(before)] == before, "the curve logged before the checkpoint is kept"
    # Lightning logs a step's row after on_train_batch_end, where the save happens: step 2 has none.
    assert after_resume == sorted(set(after_resume)) and after_resume[len(before):] == [3, 4], "each step once"
    again = train(make_cfg(*run))  # a finished run dir is not trained again
    assert again["global_step"] == 5 and again["val"]["mIoU"] == resumed["val"]["mIoU"]

    reference = train(make_cfg(*ema, *recorder(tmp_path / "ref")))  # uninterrupted, in the same dir
    assert resumed["global_step"] == reference["global_step"] == 5
    after = recorded(tmp_path / "rec")["steps"]
    assert after == recorded(tmp_path / "ref")["steps"][3:], "the resumed epoch goes on with the next global batch"
    got, ref = (torch.load(r["last_checkpoint"], map_location="cpu", weights_only=False)
                for r in (resumed, reference))
    assert int(got["averaging_state"]["n_averaged"]) == int(ref["averaging_state"]["n_averaged"]) > 0
    # Bitwise on CPU: the same batches, the same order of operations, the same number of average updates.
    for key in ("state_dict", "current_model_state", "averaging_state"):
        assert got[key].keys() == ref[key].keys()
        unequal = [k for k in ref[key] if not torch.equal(ref[key][k], got[key][k])]
        assert not unequal, f"{key}: {len(unequal)} tensors differ from the uninterrupted run, e.g. {unequal[:3]}"
    assert resumed["val"]["mIoU"] == reference["val"]["mIoU"]


def test_last_checkpoint_is_also_written_on_time_between_steps(make_cfg, tmp_path):
    summary = train(make_cfg(*STEPS5, "callbacks.last_checkpoint=null", "callbacks.preemption.every_minutes=1e-6"))
    saved = torch.load(tmp_path / "run" / "last.ckpt", map_location="cpu", weights_only=False)
    assert saved["global_step"] == summary["global_step"] == 5
    assert saved["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [{"epoch": 0, "steps": 5}]


# ----------------------------------------------------------------------------- real processes


def run_cli(args: list[str], cwd_env: dict, timeout: int = 900) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "segkd.run", *args], cwd=ROOT, env=cwd_env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def env_for(cache_dir: Path) -> dict:
    return {**os.environ, "SEGKD_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(TESTS), "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_one_and_two_processes_at_one_global_batch_train_the_same_model(tmp_path, cache_dir):
    """The figures of docs/CLUSTER.md: steps, parameter difference, val mIoU gap (printed)."""
    # OHEM too: its threshold and the loss normaliser are taken over the whole global batch.
    # Scale augmentation on, as this measurement was made (the default is now scale 1 for students).
    common = [*FAST, *STEPS5, "system.loss.ohem_thresh=0.7", "system.loss.ohem_min_kept=4000", "dataset.scale_range=[0.5,1.25]"]
    results = {}
    for bn in ("eval", "train"):
        extra = ["+callbacks.bn._target_=scale_helpers.BatchNormEval"] if bn == "eval" else []
        one = train(compose_train([*common, *extra, *recorder(tmp_path / f"one_{bn}")], tmp_path / f"one_{bn}_run",
                                  cache_dir))
        ddp_dir = tmp_path / f"ddp_{bn}"
        run_cli([*common, *extra, "trainer=ddp", *recorder(tmp_path / f"two_{bn}"), f"hydra.run.dir={ddp_dir}"],
                env_for(cache_dir))
        two = json.loads((ddp_dir / "summary.json").read_text())
        results[bn] = (one, two)

    one, two = results["eval"]
    single = recorded(tmp_path / "one_eval")
    ranks = [recorded(tmp_path / "two_eval", r) for r in (0, 1)]
    assert two["provenance"]["world_size"] == 2 and two["provenance"]["batch_size_per_process"] == 4
    assert len(single["steps"]) == 5
    for k, step in enumerate(single["steps"]):
        assert sorted(ranks[0]["steps"][k] + ranks[1]["steps"][k]) == step
    assert single["global_step"] == ranks[0]["global_step"] == ranks[1]["global_step"] == 5
    assert single["scheduler_steps"] == ranks[0]["scheduler_steps"] == 5
    a, b = params(one["last_checkpoint"]), params(two["last_checkpoint"])
    diff = max((a[k] - b[k]).abs().max().item() for k in a)
    assert diff < 1e-4
    gaps = {bn: results[bn][1]["val"]["mIoU"] - results[bn][0]["val"]["mIoU"] for bn in results}
    print(f"\n1 vs 2 processes: 5 steps each; max |param diff| with BatchNorm in eval mode {diff:.2e}; "
          f"val mIoU (2 - 1 processes): BatchNorm eval {gaps['eval']:+.5f}, train {gaps['train']:+.5f}")


@pytest.mark.slow
def test_submitit_local_sweep_of_two_jobs_with_two_tasks_survives_a_stop_signal(tmp_path, cache_dir):
    """Each job (2 tasks, gloo) is signalled after step 2 as SLURM would before a time limit: it saves,
    submitit requeues it with its original arguments, and it resumes from last.ckpt in its own dir."""
    sweep = tmp_path / "sweep"
    args = ["-m", "hydra/launcher=local", *FAST, *STEPS5, "auto_resume=true", "trainer=ddp", "seed=1,2",
            "+callbacks.signal._target_=scale_helpers.SignalAt", "+callbacks.signal.step=2",
            "+callbacks.signal.marker=${paths.output_dir}/signalled", f"hydra.sweep.dir={sweep}"]
    done = run_cli(args, env_for(cache_dir))
    shown = done.stdout + done.stderr
    assert shown.count("preparing the sweep's data once") == 1, "one dataset for both jobs, made before submitting"
    assert "submitted 2 job(s)" in shown and "2/2 done" in shown, shown[-3000:]
    for job in ("0", "1"):
        summary = json.loads((sweep / job / "summary.json").read_text())
        assert summary["provenance"]["world_size"] == 2
        assert summary["global_step"] == 5, "the requeued job finished the run"
        assert summary["resumed_from"] == str(sweep / job / "checkpoints" / "last.ckpt")
        assert (sweep / job / "signalled").exists()
    logs = "".join(p.read_text() for p in (sweep / ".submitit").rglob("*_0_log.*"))
    assert "Requeued job" in logs and "saved" in logs
    assert "ConfigStore schema" not in logs and "generated SynthStreets" not in logs


@pytest.mark.slow
def test_optuna_search_trains_one_trial_on_every_rank_and_resumes_its_study(tmp_path, cache_dir, teacher_ckpt):
    """Two trials: the first under 2-process DDP (both ranks must train the sampled recipe), the second
    in the same sqlite-stored study started again."""
    import optuna

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    base = ["-m", "+experiment=kd_search", *FAST, f"teacher_ckpt={teacher_ckpt}", "trainer.max_epochs=1",
            "trainer.limit_train_batches=2", "hydra.sweeper.n_trials=1", f"hydra.sweeper.storage={storage}",
            "hydra.sweeper.study_name=test", "+callbacks.record._target_=scale_helpers.StepRecorder",
            "+callbacks.record.path=${paths.output_dir}/steps"]
    run_cli([*base, "trainer=ddp", f"hydra.sweep.dir={tmp_path / 'first'}"], env_for(cache_dir))
    results = (tmp_path / "first" / "optimization_results.yaml").read_text()
    assert "best_params" in results and "distill_paradigm.terms.cwd.loss.tau" in results
    trial = optuna.load_study(study_name="test", storage=storage).trials[0]
    ranks = [recorded(tmp_path / "first" / "0" / "steps", r) for r in (0, 1)]
    assert ranks[0]["world_size"] == 2 and ranks[0]["distill"] == ranks[1]["distill"]
    assert ranks[0]["schedule"] == ranks[1]["schedule"]
    assert ranks[1]["distill"]["terms"]["cwd"]["loss"]["tau"] == pytest.approx(
        trial.params["distill_paradigm.terms.cwd.loss.tau"]), "rank 1 trains the trial the sweeper sampled"
    assert ranks[1]["distill"]["terms"]["cwd"]["weight"] == pytest.approx(
        trial.params["distill_paradigm.terms.cwd.weight"])

    run_cli([*base, f"hydra.sweep.dir={tmp_path / 'second'}"], env_for(cache_dir))
    study = optuna.load_study(study_name="test", storage=storage)
    assert len(study.trials) == 2, "the study went on"
    assert all(t.value is not None for t in study.trials)


def test_a_job_whose_trainer_disagrees_with_its_launcher_tasks_is_refused(monkeypatch):
    from segkd.runtime.cluster import SubmititEnvironment, cluster_plugins

    monkeypatch.delenv("SUBMITIT_EXECUTOR", raising=False)
    assert cluster_plugins() == [], "outside a launcher Lightning starts its own processes"
    for key, value in {"SUBMITIT_EXECUTOR": "local", "SUBMITIT_LOCAL_JOB_ID": "4242", "SUBMITIT_LOCAL_NTASKS": "2",
                       "SUBMITIT_LOCAL_JOB_NUM_NODES": "1", "SUBMITIT_LOCAL_NODEID": "0",
                       "SUBMITIT_LOCAL_GLOBALID": "1", "SUBMITIT_LOCAL_LOCALID": "1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    assert isinstance(cluster_plugins()[0], SubmititEnvironment)
    env = SubmititEnvironment()
    assert (env.world_size(), env.global_rank(), env.local_rank(), env.node_rank()) == (2, 1, 1, 0)
    assert env.creates_processes_externally and env.main_address == "127.0.0.1"
    assert env.main_port == SubmititEnvironment().main_port, "every task of a job meets at one port"
    env.validate_settings(num_devices=2, num_nodes=1)
    with pytest.raises(ValueError, match=r"2 submitit task\(s\) on 1 node\(s\) but asks for trainer.devices=4 .* "
                                         r"cannot be swept"):
        env.validate_settings(num_devices=4, num_nodes=1)
