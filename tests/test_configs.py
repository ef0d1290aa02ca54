"""Every config file composes and every _target_ in it instantiates; every Trainer argument is a `trainer.X=` key."""

from __future__ import annotations

import re

import inspect

import pytest
from hydra.utils import instantiate
from lightning.pytorch import LightningDataModule, Trainer
from lightning.pytorch.profilers import SimpleProfiler
from omegaconf import OmegaConf

from segkd.config import compose_train_config, to_plain
from segkd.distill.schedules import Phase
from segkd.models import build_net

from conftest import CONF_DIR

GROUPS = {p.name: sorted(f.stem for f in p.glob("*.yaml")) for p in CONF_DIR.iterdir() if p.is_dir()}
CHOICES = [(g, o) for g in ("model", "dataset", "trainer", "logger", "callbacks", "distill_paradigm", "loss_schedule", "distill_loss") for o in GROUPS[g]]
EXPERIMENTS = GROUPS["experiment"]
DEBUG = GROUPS["debug"]

#: Trainer arguments segkd passes itself, from other config groups.
TRAINER_FROM_ELSEWHERE = {"callbacks", "logger"}
#: Where conf/trainer/default.yaml deliberately differs from Lightning's default (each says why there).
TRAINER_CHOICES = {"default_root_dir", "devices", "precision", "max_epochs", "num_sanity_val_steps", "deterministic",
                   "log_every_n_steps", "enable_progress_bar", "enable_model_summary", "plugins", "sync_batchnorm"}
TRAINER_ARGS = {name: p.default for name, p in inspect.signature(Trainer.__init__).parameters.items() if name != "self"}


def _trainer(cfg) -> Trainer:
    """The Trainer a config describes, built as train() builds it, minus callbacks and loggers."""
    return instantiate(to_plain(cfg.trainer), logger=False, enable_checkpointing=False)


def test_primary_config_has_the_design_groups_and_no_experiment_default():
    for group in ("model", "dataset", "distill_paradigm", "loss_schedule", "trainer", "logger", "callbacks", "paths", "hydra", "experiment"):
        assert GROUPS.get(group), f"conf/{group}/ is missing or empty"
    text = (CONF_DIR / "train.yaml").read_text()
    assert "experiment:" not in text.split("defaults:")[1].split("\n\n")[0]
    for name in EXPERIMENTS:
        assert (CONF_DIR / "experiment" / f"{name}.yaml").read_text().startswith("# @package _global_")


@pytest.mark.parametrize("group,option", CHOICES, ids=[f"{g}={o}" for g, o in CHOICES])
def test_every_group_option_composes_and_instantiates(make_cfg, group, option, tmp_path):
    # distill_loss options are used by paradigms, not selected in the primary config: add one to compose it
    cfg = make_cfg(f"{'+' if group == 'distill_loss' else ''}{group}={option}", fast=False)
    node = cfg[group]
    if group == "model":
        # eval mode: DeepLabV3+'s image-pooling branch normalises one value per channel, which BatchNorm
        # refuses to train on with a batch of one
        net = build_net(to_plain(node)).eval()
        assert net(__import__("torch").zeros(1, 3, 64, 64)).shape == (1, 19, 64, 64)
    elif group == "dataset":
        dm = instantiate(node)
        assert isinstance(dm, LightningDataModule) and dm.num_classes == 19
    elif group == "trainer":
        kwargs = to_plain(node)
        kwargs.update(devices=1, strategy="auto", sync_batchnorm=False, logger=False)
        assert isinstance(instantiate(kwargs), Trainer)
    elif group in ("logger", "callbacks"):
        objs = [instantiate(v) for v in node.values() if v is not None and "_target_" in v]
        assert len(objs) == len(node)
    elif group == "distill_loss":
        loss = instantiate(node)
        assert callable(loss)
    elif group == "loss_schedule":
        phase = instantiate(node)(0, 0)
        assert isinstance(phase, Phase) and phase.supervised + phase.distill > 0
    else:
        assert node.name == option


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes(make_cfg, experiment):
    extra = ["teacher_ckpt=/some/teacher.ckpt"] if "offline" in experiment else []
    cfg = make_cfg(f"+experiment={experiment}", *extra)
    assert cfg.task_name
    to_plain(cfg)  # every interpolation resolves


# ----------------------------------------------------------------------------- trainer: every argument

def test_trainer_config_lists_every_lightning_trainer_argument():
    # A Lightning upgrade that adds (or drops) an argument fails here: list it with Lightning's default.
    listed = set(OmegaConf.load(CONF_DIR / "trainer" / "default.yaml")) - {"_target_"}
    assert listed == set(TRAINER_ARGS) - TRAINER_FROM_ELSEWHERE, (
        f"missing: {sorted(set(TRAINER_ARGS) - TRAINER_FROM_ELSEWHERE - listed)}, "
        f"not Trainer arguments: {sorted(listed - set(TRAINER_ARGS))}"
    )


def test_trainer_config_keeps_lightning_defaults_except_segkd_choices():
    node = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "trainer" / "default.yaml"))
    differs = {k for k in TRAINER_ARGS if k in node and node[k] != TRAINER_ARGS[k]}
    assert differs == TRAINER_CHOICES


def test_trainer_arguments_override_without_plus_and_reach_the_trainer(make_cfg):
    # fast_dev_run and overfit_batches set the limits themselves: each is checked on its own.
    assert _trainer(make_cfg("trainer.fast_dev_run=true")).fast_dev_run is True
    assert _trainer(make_cfg("trainer.overfit_batches=3")).overfit_batches == 3
    trainer = _trainer(make_cfg(
        "trainer.limit_train_batches=2", "trainer.limit_val_batches=0.5", "trainer.max_steps=7",
        "trainer.accumulate_grad_batches=2", "trainer.gradient_clip_val=1.5", "trainer.precision=bf16-mixed",
        "trainer.profiler=simple", "trainer.val_check_interval=0.5",
    ))
    assert (trainer.limit_train_batches, trainer.limit_val_batches, trainer.max_steps) == (2, 0.5, 7)
    assert trainer.accumulate_grad_batches == 2 and trainer.gradient_clip_val == 1.5
    assert trainer.precision == "bf16-mixed" and isinstance(trainer.profiler, SimpleProfiler)
    assert trainer.val_check_interval == 0.5


@pytest.mark.parametrize("option", ["cpu", "ddp"])
def test_trainer_presets_compose_on_the_full_default(make_cfg, option):
    cfg = make_cfg(f"trainer={option}", "trainer.fast_dev_run=true", fast=False)
    assert set(cfg.trainer) - {"_target_"} == set(TRAINER_ARGS) - TRAINER_FROM_ELSEWHERE
    assert cfg.trainer.fast_dev_run is True and cfg.trainer.max_epochs == 12
    assert (cfg.trainer.accelerator, cfg.trainer.strategy) == {"cpu": ("cpu", "auto"), "ddp": ("auto", "ddp")}[option]


# ----------------------------------------------------------------------------- debug group

@pytest.mark.parametrize("option", DEBUG)
@pytest.mark.parametrize("experiment", [None, "student"])
def test_every_debug_option_composes_without_plus(make_cfg, option, experiment):
    cfg = make_cfg(f"debug={option}", *([f"+experiment={experiment}"] if experiment else []), fast=False)
    trainer = _trainer(cfg)
    assert cfg.dataset.num_workers == 0 and trainer.num_devices == 1
    assert set(cfg.logger) == {"csv"}, "debug runs make no W&B runs"
    assert trainer._detect_anomaly is False and cfg.trainer.deterministic == "warn"
    if option == "fdr":
        assert trainer.fast_dev_run is True
    if option == "overfit":
        assert trainer.overfit_batches == 3 and cfg.dataset.jitter == 0 and list(cfg.dataset.scale_range) == [1, 1]
    if option == "limit":
        assert (trainer.limit_train_batches, trainer.limit_val_batches) == (5, 2)
    if option == "profiler":
        assert isinstance(trainer.profiler, SimpleProfiler)
    if experiment:
        # Hydra merges +experiment=... after the debug group: the experiment's own budget wins
        # (documented in conf/debug/default.yaml); what it does not set, debug decides.
        assert cfg.trainer.max_epochs == 4


def test_debug_runs_go_to_their_own_folder(tmp_path, cache_dir):
    # Without make_cfg, which points paths.log_dir at the test's folder: the debug config's own value counts.
    cfg = compose_train_config(["debug=fdr", f"paths.cache_dir={cache_dir}"], tmp_path / "run")
    assert cfg.paths.log_dir == f"{cfg.paths.root_dir}/outputs/debug"


# ----------------------------------------------------------------------------- dataset.root

@pytest.mark.parametrize("dataset", ["cityscapes", "bdd100k"])
def test_dataset_root_is_one_key_that_reaches_the_dataset(make_cfg, dataset, tmp_path):
    cfg = make_cfg(f"dataset={dataset}", f"dataset.root={tmp_path / 'data'}", fast=False)
    assert cfg.dataset.dataset.root == str(tmp_path / "data")
    assert cfg.reference_teacher_dir.endswith(f"/{dataset}-data-v1"), "the reference teacher is named after the root"
    datamodule = instantiate(cfg.dataset)
    assert datamodule.root == str(tmp_path / "data")


def test_synthstreets_root_moves_both_the_generator_and_the_reader(make_cfg, tmp_path):
    default = make_cfg()
    assert default.dataset.root.endswith("/synthstreets/s0_n16-5_64x128"), "the generator's parameters name it"
    assert default.dataset.prepare.root == default.dataset.dataset.root == default.dataset.root
    cfg = make_cfg(f"dataset.root={tmp_path / 'mine'}")
    assert cfg.dataset.prepare.root == cfg.dataset.dataset.root == str(tmp_path / "mine")


def test_students_train_at_scale_1_and_the_reference_teacher_keeps_its_recipe(tmp_path):
    def scales(*overrides):
        return to_plain(compose_train_config(list(overrides), tmp_path).dataset.scale_range)

    assert scales("+experiment=student") == scales("+experiment=offline_kd") == [1.0, 1.0]
    assert scales("+experiment=reference_teacher") == [0.5, 1.25], "v1 of the reference teacher's recipe"
    assert scales("+experiment=reference_teacher", "dataset=cityscapes") == [0.5, 2.0]


def test_a_value_with_an_equals_sign_reaches_the_config_as_typed(tmp_path):
    """Lightning names checkpoints epoch=0-step=2.ckpt; Hydra's override grammar stops at the second '='
    unless the value is quoted, which the commands do for the user (issue 29 #14)."""
    from segkd.config import quote_path_values

    path = "/runs/a/checkpoints/epoch=0-step=2.ckpt"
    argv = ["segkd.run", "-m", f"ckpt_path={path}", "seed=1,2", "+experiment=student", "x='a=b'", "--cfg", "job"]
    quoted = quote_path_values(argv)
    assert quoted == ["segkd.run", "-m", f"ckpt_path='{path}'", "seed=1,2", "+experiment=student", "x='a=b'",
                      "--cfg", "job"]
    assert compose_train_config([quoted[2]], tmp_path).ckpt_path == path


@pytest.mark.parametrize("overrides, message", [
    (["distill_paradigm=cdw"], r"^In 'train': Could not find 'distill_paradigm/cdw'; available options in "
                               r"'distill_paradigm': bottleneck; cwd; .*; pairwise$"),
    (["trainer.max_epoch=3"], r"^Could not override 'trainer\.max_epoch'\.; To append to your config use "
                              r"\+trainer\.max_epoch=3$"),
    (["seed=1=2"], r"^mismatched input '=' expecting <EOF>; See https://hydra\.cc/"),
])
def test_hydras_config_errors_are_one_segkd_line_with_its_suggestion(overrides, message, capsys):
    """issue 29 #25: Hydra's clear but several-line errors, as one line a user reads."""
    from segkd.config import command_line

    with pytest.raises(SystemExit) as exit_:
        command_line("train", ["segkd.run", *overrides])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 1 and len(err) == 1 and err[0].startswith("segkd: error: ")
    assert re.search(message, err[0].removeprefix("segkd: error: ")), err[0]
    assert command_line("train", ["segkd.run", "+experiment=student", "seed=3"]) == ["segkd.run", "+experiment=student", "seed=3"]
    assert command_line("train", ["segkd.run", "-m", "seed=1,2"]) == ["segkd.run", "-m", "seed=1,2"], "a sweep goes to Hydra"


def test_a_run_dir_that_cannot_be_written_is_one_line(tmp_path, monkeypatch, capsys):
    """issue 29 #16: Hydra would create hydra.run.dir and fail with its own report before segkd runs."""
    import errno
    from pathlib import Path

    from segkd.config import command_line

    target = tmp_path / "ro" / "run"
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if self == target:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(SystemExit):
        command_line("train", ["segkd.run", f"hydra.run.dir={target}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"segkd: error: cannot write {target}: a read-only file system")
    assert command_line("train", ["segkd.run", f"hydra.run.dir={tmp_path / 'ok'}"])[1] == f"hydra.run.dir={tmp_path / 'ok'}"
