"""segkd.recipe: one definition of what a recipe is, from the resolved config. A setting nobody
registered still makes another recipe; launching, logging, devices and machine paths do not."""

from __future__ import annotations

import json
import shutil

import pytest

from segkd import compare
from segkd.config import CONF_DIR, compose_train_config
from segkd.recipe import is_recipe_key, recipe

KD = ["+experiment=offline_kd", "distill_paradigm=cwd", "teacher_cache=true"]


def _recipe(overrides, tmp_path, config_dir=None):
    return recipe(compose_train_config(list(overrides), tmp_path / "run", config_dir), list(overrides))


def test_a_key_added_to_a_paradigm_yaml_makes_another_recipe_without_registration(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    before = _recipe(KD, tmp_path)
    paradigm = conf / "distill_paradigm" / "cwd.yaml"
    paradigm.write_text(paradigm.read_text() + "    spatial_pool: 2   # a setting added tomorrow\n")
    after = _recipe(KD, tmp_path, conf)
    assert after["config"]["system.distill.terms.cwd.spatial_pool"] == 2
    assert after["id"] != before["id"] and after["name"] == before["name"]
    # segkd.compare keeps the two apart and names them by the setting that differs
    for seed, rec in ((1, before), (2, after)):
        path = tmp_path / "runs" / rec["id"] / "summary.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"recipe": rec, "seed": seed, "val": {"mIoU": 0.2}, "overrides": KD}))
    names = sorted(r.name for r in compare.group(compare.load_runs([tmp_path / "runs"])))
    assert names == ["offline_kd/student_mnv2/cwd teacher_cache=true [system.distill.terms.cwd.spatial_pool=2]",
                     "offline_kd/student_mnv2/cwd teacher_cache=true [system.distill.terms.cwd.spatial_pool=unset]"]


@pytest.mark.parametrize("setting", [
    "trainer.devices=2", "trainer.accelerator=cpu", "hydra/launcher=local", "auto_resume=false",
    "logger=csv_wandb", "callbacks.epoch_timer=null", "dataset.num_workers=2", "dataset.val_batch_size=2",
    "seed=5", "paths.cache_dir=/somewhere/else/.cache", "trainer.enable_progress_bar=false",
])
def test_how_a_run_is_launched_logged_split_or_seeded_is_not_its_recipe(tmp_path, setting):
    base, other = _recipe(KD, tmp_path), _recipe([*KD, setting], tmp_path)
    assert other["id"] == base["id"] and other["name"] == base["name"], setting


@pytest.mark.parametrize("setting", ["trainer.max_epochs=8", "dataset.batch_size=4", "system.optimizer.lr=0.001",
                                     "distill_paradigm.terms.cwd.weight=5", "teacher_scale=0.5"])
def test_what_changes_learning_is_the_recipe_and_shows_in_its_name(tmp_path, setting):
    base, other = _recipe(KD, tmp_path), _recipe([*KD, setting], tmp_path)
    assert other["id"] != base["id"] and setting in other["name"]


def test_a_teacher_checkpoint_is_named_by_its_run_on_any_machine(tmp_path):
    a = _recipe([*KD, "teacher_ckpt=/home/a/runs/t1/checkpoints/last.ckpt"], tmp_path)
    b = _recipe([*KD, "teacher_ckpt=/scratch/b/runs/t1/checkpoints/last.ckpt"], tmp_path)
    assert a["id"] == b["id"] and a["config"]["teacher_ckpt"] == "runs/t1/last.ckpt"
    assert a["name"].endswith("teacher_ckpt=runs/t1/last.ckpt") and a["name"] == b["name"]


def test_scratch_and_distillation_fields():
    assert not is_recipe_key("trainer.devices") and is_recipe_key("trainer.max_epochs")
    assert not is_recipe_key("callbacks.weight_averaging.decay") and is_recipe_key("system.loss.label_smoothing")


def test_the_summary_spells_the_recipe_the_logger_names(make_cfg):
    from segkd.train import run_identity, train

    cfg = make_cfg("trainer.limit_train_batches=1")
    summary = train(cfg)
    expected = json.loads(json.dumps(recipe(cfg)))
    assert summary["recipe"]["id"] == expected["id"] and summary["recipe"]["config"] == expected["config"]
    assert "trainer.limit_train_batches=1" in summary["recipe"]["name"], "what the user overrode names it"
    assert run_identity(cfg, type("S", (), {"job_type": None})())["recipe"] == summary["recipe"]["name"]
    assert compare.recipe_fields(summary) == summary["recipe"]["fields"]


def test_runs_named_while_the_definition_changed_are_named_alike_from_their_resolved_config(tmp_path):
    """A run dir keeps its resolved config: compare spells every run's recipe by today's definition."""
    from omegaconf import OmegaConf

    cfg = compose_train_config(["+experiment=student"], tmp_path / "x")
    for seed, stale in ((1, {"name": "student/student_mnv2", "config": {"old.key": 1}}), (2, None)):
        run = tmp_path / "runs" / f"seed{seed}"
        run.mkdir(parents=True)
        (run / "resolved_config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        summary = {"seed": seed, "val": {"mIoU": 0.2}, "overrides": ["+experiment=student", f"seed={seed}"]}
        if stale:
            summary["recipe"] = stale  # what an older definition wrote
        (run / "summary.json").write_text(json.dumps(summary))
    (recipe_,) = compare.group(compare.load_runs([tmp_path / "runs"]))
    assert recipe_.name == "student/student_mnv2" and sorted(recipe_.runs) == [1, 2]
    published = tmp_path / "published" / "summary.json"  # a copy without its run dir keeps its own record
    published.parent.mkdir()
    published.write_text(json.dumps({"seed": 3, "recipe": {"name": "x", "config": {"a": 1}, "fields": {
        "experiment": "student", "model": "m", "overrides": []}}}))
    (run_,) = compare.load_runs([published])
    assert run_.summary["recipe"]["config"] == {"a": 1}
