"""Several teachers (system.teachers, segkd.distill.teacher_set and .ensemble): two identical teachers
teach as one, the confident rule picks by hand's rule, a cached ensemble replays the live one, a run
records every teacher, the set of teachers is part of the recipe, and bad sets are one line each."""

from __future__ import annotations

import csv
import json
import shutil

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from segkd import compare
from segkd import train as train_module
from segkd.config import CONF_DIR, compose_train_config
from segkd.data.sampling import sample_seed
from segkd.distill.ensemble import TeacherEnsemble, ensemble_logits
from segkd.recipe import recipe
from segkd.train import train

from conftest import TINY_UNET, write_net_checkpoint

LOGITS = ["distill_paradigm=logits"]


def build_system(cfg):
    return train_module.build_system(cfg, ["c"] * 19)


def one_teacher(make_cfg, ckpt, *extra):
    return build_system(make_cfg("+experiment=offline_kd", f"teacher_ckpt={ckpt}", *LOGITS, *extra))


def teacher_set(make_cfg, teachers: str, *extra):
    return build_system(make_cfg("+experiment=multi_teacher", f"system.teachers={teachers}", *LOGITS, *extra))


def student_gradients(system, batch) -> dict[str, torch.Tensor]:
    """The student's gradients of one batch's loss (supervised + weighted terms), in train mode."""
    system.train()
    system.zero_grad()
    _, supervised, _, weighted = system.step_losses(batch)
    (supervised + sum(weighted.values())).backward()
    return {k: p.grad.clone() for k, p in system.net.named_parameters() if p.grad is not None}


@pytest.fixture
def batch():
    torch.manual_seed(0)
    return {"image": torch.randn(2, 3, 64, 64), "mask": torch.randint(0, 19, (2, 64, 64))}


@pytest.fixture(scope="module")
def other_ckpt(tmp_path_factory):
    """A second, different teacher: a small UNet of random weights (its own net spec, so net: null),
    trained, as its checkpoint says, with class weights (so that a prior correction changes its logits)."""
    path = write_net_checkpoint(tmp_path_factory.mktemp("other") / "run" / "checkpoints" / "last.ckpt", TINY_UNET, 1)
    ckpt = torch.load(path, weights_only=True)
    ckpt["state_dict"]["criterion.weight"] = torch.linspace(0.25, 4.0, 19)
    torch.save(ckpt, path)
    return path


def test_two_identical_teachers_at_half_weight_give_the_one_teachers_gradients(make_cfg, teacher_ckpt, batch):
    one = one_teacher(make_cfg, teacher_ckpt)
    two = teacher_set(make_cfg, f"{{a:{{checkpoint:{teacher_ckpt},weight:0.5}},b:{{checkpoint:{teacher_ckpt},weight:0.5}}}}",
                      "system.ensemble=null")
    two.net.load_state_dict(one.net.state_dict())
    assert set(two.distillers) == {"a", "b"} and two.ensemble is None
    _, _, terms, weighted = two.step_losses(batch)
    assert set(terms) == {"logits/a", "logits/b"}, "each teacher's terms are named after it"
    torch.testing.assert_close(weighted["logits/a"], 0.5 * terms["logits/a"])
    expected = student_gradients(one, batch)
    got = student_gradients(two, batch)
    assert expected.keys() == got.keys() and expected
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], msg=key)


def test_in_mean_mode_two_identical_teachers_are_the_one_teacher(make_cfg, teacher_ckpt, batch):
    one = one_teacher(make_cfg, teacher_ckpt)
    two = teacher_set(make_cfg, f"[{teacher_ckpt},{teacher_ckpt}]")  # a list: teacher0, teacher1; weights 1
    two.net.load_state_dict(one.net.state_dict())
    assert isinstance(two.teacher, TeacherEnsemble) and two.teacher.mode == "mean"
    with torch.no_grad():
        torch.testing.assert_close(two.teacher(batch["image"]), one.teacher(batch["image"]), rtol=0, atol=0)
    expected, got = student_gradients(one, batch), student_gradients(two, batch)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], msg=key)


def test_confident_takes_each_pixels_most_confident_teacher(make_cfg, teacher_ckpt, other_ckpt):
    # The rule on logits made by hand: per pixel, the teacher whose softmax has the higher maximum; a tie
    # goes to the first teacher.
    a = torch.tensor([[4.0, 0.0], [1.0, 0.0], [0.0, 0.0], [2.0, 0.0]]).T.reshape(1, 2, 1, 4)  # max p: .98 .73 .5 .88
    b = torch.tensor([[0.0, 1.0], [0.0, 3.0], [0.0, 0.0], [0.0, 2.0]]).T.reshape(1, 2, 1, 4)  # max p: .73 .95 .5 .88
    picked = ensemble_logits([a, b], [1.0, 1.0], "confident")
    torch.testing.assert_close(picked, torch.stack([a[..., 0], b[..., 1], a[..., 2], a[..., 3]], dim=-1))

    # Two different teachers through the system: its ensemble against a pixel-by-pixel hand computation.
    system = teacher_set(make_cfg, f"{{a:{{checkpoint:{teacher_ckpt}}},b:{{checkpoint:{other_ckpt},net:null}}}}",
                         "system.ensemble=confident")
    images = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        za, zb = (system.members[n].net(images)[0] for n in ("a", "b"))
        got = system.teacher(images)[0]
    expected = torch.empty_like(got)
    chose = set()
    for y in range(got.shape[1]):
        for x in range(got.shape[2]):
            pa, pb = za[:, y, x].softmax(0).max(), zb[:, y, x].softmax(0).max()
            expected[:, y, x] = za[:, y, x] if pa >= pb else zb[:, y, x]
            chose.add("a" if pa >= pb else "b")
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert chose == {"a", "b"}, "the image holds pixels of each teacher, so the rule was put to the test"


def test_the_cache_replays_the_live_ensemble(make_cfg, teacher_ckpt, other_ckpt):
    """teacher_cache=true caches each teacher under its own key; each sample carries both teachers'
    replayed logits, and their ensemble equals the live ensemble on the same augmented view."""
    cfg = make_cfg("+experiment=multi_teacher", f"system.teachers={{a:{{checkpoint:{teacher_ckpt}}},"
                   f"b:{{checkpoint:{other_ckpt},net:null}}}}", *LOGITS, "teacher_cache=true",
                   "system.teacher.prior_correction=true", "dataset.crop_size=[64,128]",
                   "dataset.scale_range=[1.0,1.0]", "dataset.jitter=0", "dataset.logit_cache.stride=1",
                   "dataset.logit_cache.top_k=null")
    datamodule = instantiate(cfg.dataset)
    system = build_system(cfg)
    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=1, limit_train_batches=1, limit_val_batches=1,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(system, datamodule=datamodule)
    caches = system.teacher_caches_info
    assert set(caches) == {"a", "b"} and caches["a"]["path"] != caches["b"]["path"], "each teacher its own cache"
    assert system.teacher is None and all(m.net is None for m in system.members.values()), "both let go"
    assert len(datamodule.train_extras) == 2
    flips = set()
    with system.inspection_teacher() as live:  # the same checkpoints, reloaded
        for index in range(6):
            sample = datamodule.train_set[(index, sample_seed(0, 0, index))]
            flips.add(int(sample["geometry"][-1]))
            batch = {k: v[None] for k, v in sample.items() if k == "image" or k.startswith("teacher_logits/")}
            assert set(batch) == {"image", "teacher_logits/a", "teacher_logits/b"}
            replayed = system.ensemble.combine(system.teacher_set_logits(batch))
            with torch.no_grad():
                expected = live(batch["image"])
            torch.testing.assert_close(replayed, expected, atol=2e-3 * expected.abs().max().item(), rtol=0)
    assert flips == {0, 1}, "both orientations were checked"


def test_a_short_multi_teacher_run_records_every_teacher(make_cfg, teacher_ckpt, tmp_path):
    summary = train(make_cfg("+experiment=multi_teacher", f"teacher_ckpts=[{teacher_ckpt},{teacher_ckpt}]",
                             "trainer.limit_train_batches=2"))
    written = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert set(written["teachers"]) == {"teacher0", "teacher1"} and written["experiment"] == "multi_teacher"
    assert written["teacher"]["mIoU"] == written["teachers"]["teacher0"]["mIoU"], "the ensemble of two equal teachers"
    frozen = written["cost"]["forward_gmacs"]["frozen"]
    assert set(frozen) == {"teacher/teacher0", "teacher/teacher1"}, "each live teacher's forward is charged"
    with open(tmp_path / "run" / "csv" / "metrics.csv") as f:
        columns = next(csv.reader(f))
    assert {"teacher/val/mIoU", "teacher/teacher0/val/mIoU", "teacher/teacher1/val/mIoU"} <= set(columns)
    reports = {p.name for p in (tmp_path / "run" / "teacher").glob("teacher_report*.png")}
    assert reports == {"teacher_report.png", "teacher_report_teacher0.png", "teacher_report_teacher1.png"}
    assert summary["global_step"] == 2


def test_a_teacher_may_teach_through_a_paradigm_of_its_own(make_cfg, teacher_ckpt, tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    (conf / "experiment" / "mt_own.yaml").write_text(
        "# @package _global_\n"
        "defaults:\n  - multi_teacher\n  - _self_\n  - /distill_paradigm@system.teachers.b.distill: cwd\n"
        f"teacher_ckpts: null\nsystem:\n  ensemble: null\n  teachers:\n"
        f"    a: {{checkpoint: {teacher_ckpt}}}\n    b: {{checkpoint: {teacher_ckpt}, weight: 0.5}}\n")
    cfg = compose_train_config(["+experiment=mt_own", *LOGITS, "dataset.crop_size=[64,64]"], tmp_path / "run", conf)
    system = build_system(cfg)
    _, _, terms, weighted = system.step_losses({"image": torch.randn(2, 3, 64, 64),
                                                "mask": torch.randint(0, 19, (2, 64, 64))})
    assert set(terms) == {"logits/a", "cwd/b"}
    torch.testing.assert_close(weighted["cwd/b"], 0.5 * system.distillers["b"].weights["cwd"] * terms["cwd/b"])


def _summary(overrides, tmp_path, seed=1):
    cfg = compose_train_config(list(overrides), tmp_path / "compose")
    return {"recipe": recipe(cfg, list(overrides)), "seed": seed, "val": {"mIoU": 0.2 + 0.01 * seed},
            "overrides": list(overrides)}


def test_the_set_of_teachers_is_part_of_the_recipe(tmp_path):
    def teachers(*runs, root="/home/a/runs"):
        return ["+experiment=multi_teacher",
                "teacher_ckpts=[" + ",".join(f"{root}/{r}/checkpoints/last.ckpt" for r in runs) + "]"]

    ab = _summary(teachers("t1", "t2"), tmp_path)["recipe"]
    assert ab["id"] == _summary(teachers("t1", "t2", root="/scratch/b/runs"), tmp_path)["recipe"]["id"], \
        "one set of teachers on two machines is one recipe"
    assert ab["config"]["teacher_ckpts"] == ["runs/t1/last.ckpt", "runs/t2/last.ckpt"]
    assert ab["config"]["system.teachers.teacher0.checkpoint"] == "runs/t1/last.ckpt"
    assert _summary(teachers("t1", "t3"), tmp_path)["recipe"]["id"] != ab["id"], "another teacher, another recipe"
    assert _summary([*teachers("t1", "t2"), "system.ensemble=confident"], tmp_path)["recipe"]["id"] != ab["id"]
    # where each teacher's cache is kept is not the recipe; how it is stored is
    per_teacher = ["+experiment=multi_teacher", "system.teachers={a:{checkpoint:/x/t1/checkpoints/last.ckpt}}"]
    base = _summary(per_teacher, tmp_path)["recipe"]
    assert _summary([*per_teacher, "+system.teachers.a.cache.dir=/elsewhere"], tmp_path)["recipe"]["id"] == base["id"]
    assert _summary([*per_teacher, "+system.teachers.a.cache.stride=2"], tmp_path)["recipe"]["id"] != base["id"]

    # A multi-teacher recipe is paired, seed by seed, with the scratch student it differs from in teachers only.
    for seed in (1, 2):
        for name, overrides in (("multi", teachers("t1", "t2")), ("scratch", ["+experiment=student"])):
            path = tmp_path / "runs" / f"{name}{seed}" / "summary.json"
            path.parent.mkdir(parents=True)
            path.write_text(json.dumps(_summary(overrides, tmp_path, seed)))
    rows = {r["experiment"]: r for r in compare.report([tmp_path / "runs"], plots=False)}
    assert rows["multi_teacher"]["baseline"] == "student/student_mnv2" and rows["multi_teacher"]["n_paired"] == 2


def test_compare_charges_each_teachers_cache_once(tmp_path):
    """Two cached teachers are two caches to amortise; two entries of one checkpoint share one."""
    def run(caches: dict) -> compare.Run:
        return compare.Run(tmp_path / "summary.json", {"cost": {"teacher_caches": caches}})

    a, b = {"path": "/c/a", "build_gmacs": 10.0}, {"path": "/c/b", "build_gmacs": 30.0}
    assert run({"t0": a, "t1": b}).caches() == [("/c/a", 10.0), ("/c/b", 30.0)]
    assert run({"t0": a, "t1": dict(a)}).caches() == [("/c/a", 10.0)]
    recipe_ = compare.Recipe("multi", {"experiment": "multi_teacher"}, {1: run({"t0": a, "t1": b}), 2: run({"t0": a})})
    assert compare._cache_shares([recipe_]) == {"/c/a": 5.0, "/c/b": 30.0}


@pytest.mark.parametrize("overrides, message", [
    (["teacher_ckpt={ckpt}", "teacher_ckpts=[{ckpt}]"],
     r"^system\.teacher\.checkpoint and system\.teachers both name teachers; give every teacher under system\.teachers"),
    (["teacher_ckpts=[{ckpt}]", "distill_paradigm=encoder"],
     r"^distillation terms \['enc2', 'enc3', 'enc4'\] read teacher features, but system\.ensemble=mean combines"),
    (["system.teachers={{a:{{checkpoint:{ckpt},weight:-1}}}}"],
     r"^system\.teachers\.a\.weight=-1: a teacher's weight must be a finite number >= 0"),
    (["system.teachers={{a:{{checkpoint:{ckpt},weight:inf}}}}"],
     r"^system\.teachers\.a\.weight=inf: a teacher's weight must be a finite number >= 0"),
    (["teacher_ckpts=[{ckpt}]", "system.ensemble=median"],
     r"^system\.ensemble='median' is not a way to combine teachers; use null .*, mean .* or confident"),
    ([], r"^system\.teachers is empty: name at least one teacher, e\.g\. teacher_ckpts=\["),
    (["system.teachers={{a:{{checkpoint:{ckpt}}},b:{{checkpoint:{ckpt},weight:0.5}}}}", "system.ensemble=confident"],
     r"^system\.teachers\.b\.weight=0\.5 means nothing with system\.ensemble=confident"),
])
def test_a_bad_set_of_teachers_is_refused_in_one_line(make_cfg, teacher_ckpt, overrides, message):
    cfg = make_cfg("+experiment=multi_teacher", *(o.format(ckpt=teacher_ckpt) for o in overrides))
    with pytest.raises(ValueError, match=message) as err:
        build_system(cfg)
    assert "\n" not in str(err.value)
