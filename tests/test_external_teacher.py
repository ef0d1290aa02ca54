"""A teacher from outside segkd (segkd.distill.external_teacher): weight formats, the label-map maths
on logits computed by hand, each bad input's one line, a training step with a feature term by module
path, and the cache replaying the live external teacher."""

from __future__ import annotations

import json
import math
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import nn

from segkd.data.labels import CLASS_NAMES
from segkd.data.sampling import sample_seed
from segkd.distill.external_teacher import (
    UNMAPPED_LOGIT, ExternalTeacherError, label_groups, load_external_teacher, map_logits, read_label_map,
)
from segkd.distill.teacher_cache import open_or_build
from segkd.train import build_system

NAMES = list(CLASS_NAMES)
TARGET = f"{__name__}.TinyTeacher"


class TinyTeacher(nn.Module):
    """A network segkd knows nothing of: ``classes`` outputs at the input's size, named modules of its own."""

    def __init__(self, classes: int = 21, width: int = 8) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(width, classes, 1)

    def forward(self, x):
        return F.interpolate(self.head(self.body(self.stem(x))), size=x.shape[-2:], mode="bilinear",
                             align_corners=False)


class DictTeacher(TinyTeacher):
    """Answers as torchvision's segmentation models do: a dict of outputs."""

    def forward(self, x):
        logits = super().forward(x)
        return {"out": logits, "aux": logits}


class Flat(nn.Module):
    def forward(self, x):
        return x.mean(dim=(1, 2, 3))


def write_teacher(tmp_path: Path, classes: int = 21, seed: int = 0) -> tuple[TinyTeacher, Path]:
    torch.manual_seed(seed)
    net = TinyTeacher(classes)
    path = tmp_path / "teacher.pt"
    torch.save(net.state_dict(), path)
    return net.eval(), path


def write_map(tmp_path: Path, text: str, name: str = "map.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


#: 21 teacher classes: 0-18 are the train ids, 19 ("bus lane") merges into road, 20 ("unknown") is dropped.
MAP_21 = "\n".join([f"{i}: {i}" for i in range(19)] + ["19: road", "20: null"]) + "\n"


def spec(weights: Path, label_map: Path | None = None, **net) -> dict:
    return {"net": {"_target_": TARGET, **net}, "weights": str(weights), "format": "auto",
            "label_map": str(label_map) if label_map else None, "output_key": None}


# ----------------------------------------------------------------------------- the mapping maths


def test_merge_is_log_sum_exp_and_dropped_classes_leave_the_softmax():
    # Teacher classes 0..3 with logits [ln 1, ln 2, ln 3, ln 4] at one pixel (probabilities 0.1 .. 0.4).
    logits = torch.tensor([1.0, 2.0, 3.0, 4.0]).log().view(1, 4, 1, 1)
    # 0 -> train id 0; 1 and 2 merged -> train id 1; 3 dropped; train id 2 gets no class.
    groups = label_groups({0: 0, 1: 1, 2: 1, 3: None}, 4, ["a", "b", "c"])
    assert groups == [[0], [1, 2], []]
    mapped = map_logits(logits, groups)
    assert mapped[0, 0].item() == pytest.approx(math.log(1.0))
    assert mapped[0, 1].item() == pytest.approx(math.log(2.0 + 3.0))  # log-sum-exp: the probabilities summed
    assert mapped[0, 2].item() == UNMAPPED_LOGIT
    # Renormalised over the mapped classes: 1/(1+5) and 5/(1+5); the class with none at 0.
    probs = mapped.softmax(dim=1).flatten()
    assert probs.tolist() == pytest.approx([1 / 6, 5 / 6, 0.0], abs=1e-7)
    # Nothing dropped: the merged probability is the teacher's own sum (0.2 + 0.3).
    full = map_logits(logits, label_groups({0: 0, 1: 1, 2: 1, 3: 2}, 4, ["a", "b", "c"])).softmax(dim=1).flatten()
    assert full.tolist() == pytest.approx([0.1, 0.5, 0.4], abs=1e-7)


def test_train_ids_may_be_class_names_and_keys_strings(tmp_path):
    raw = read_label_map(write_map(tmp_path, json.dumps({"0": "road", "1": 1, "2": None}), "map.json"))
    assert label_groups(raw, 3, NAMES)[:2] == [[0], [1]]


@pytest.mark.parametrize("text, name, message", [
    ("0: 0\n0: 1\n", "map.yaml", r"label_map=.*map.yaml: duplicate key 0; each teacher class id may be listed once"),
    ('{"0": 0, "0": 1}', "map.json", r"duplicate key '0'"),
    ("0: 0\n'0': 1\n", "map.yaml", r"duplicate key 0 \(given as '0' and another spelling\)"),
    ("0: 0\n25: 1\n", "map.yaml", r"teacher class ids \[25\] are out of range: the teacher predicts 21 classes \(ids 0..20\)"),
    ("0: 0\n1: 19\n", "map.yaml", r"unknown train ids \[19\]: the dataset's train ids are 0..18"),
    ("0: 0\n1: 0\n2: null\n", "map.yaml", r"maps the teacher onto 1 train id\(s\); a teacher needs at least 2"),
    ("- 0\n- 1\n", "map.yaml", r"must be a mapping of teacher class id to train id"),
])
def test_a_wrong_label_map_is_one_line(tmp_path, text, name, message):
    _, weights = write_teacher(tmp_path)
    with pytest.raises(ExternalTeacherError, match=message) as err:
        load_external_teacher(spec(weights, write_map(tmp_path, text, name)), NAMES)
    assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------- formats and errors


def test_each_weights_format_loads_the_same_teacher(tmp_path):
    from safetensors.torch import save_file

    net, state_file = write_teacher(tmp_path)
    label_map = write_map(tmp_path, MAP_21)
    x = torch.randn(2, 3, 32, 64)
    with torch.no_grad():
        expected = map_logits(net(x), label_groups(read_label_map(label_map), 21, NAMES))
    safetensors_file = tmp_path / "teacher.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(safetensors_file))
    scripted = tmp_path / "teacher_scripted.pt"
    torch.jit.script(net).save(str(scripted))
    wrapped = tmp_path / "lightning_like.ckpt"
    torch.save({"state_dict": net.state_dict(), "epoch": 3}, wrapped)
    for weights in (state_file, safetensors_file, scripted, wrapped):
        s = spec(weights, label_map)
        if weights == scripted:
            s["net"] = None  # a TorchScript file holds its network
        teacher, identity = load_external_teacher(s, NAMES)
        assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
        with torch.no_grad():
            torch.testing.assert_close(teacher(x), expected)
        assert identity.startswith("external:")


def test_weights_that_do_not_fit_are_one_line_naming_keys_and_shapes(tmp_path):
    _, weights = write_teacher(tmp_path)
    with pytest.raises(ExternalTeacherError) as err:
        load_external_teacher(spec(weights, write_map(tmp_path, MAP_21), width=16), NAMES)
    line = str(err.value)
    assert "\n" not in line and "does not fit" in line and "of another shape (file vs network)" in line
    assert "stem.0.weight (8, 3, 3, 3) vs (16, 3, 3, 3)" in line
    state = torch.load(weights, weights_only=True)
    state["extra.weight"] = torch.zeros(1)
    del state["head.bias"]
    torch.save(state, weights)
    with pytest.raises(ExternalTeacherError, match=r"1 missing, e.g. \['head.bias'\]; 1 unexpected, e.g. \['extra.weight'\]"):
        load_external_teacher(spec(weights, write_map(tmp_path, MAP_21)), NAMES)


def test_an_output_that_is_not_class_scores_is_one_line(tmp_path):
    _, weights = write_teacher(tmp_path)
    label_map = write_map(tmp_path, MAP_21)
    with pytest.raises(ExternalTeacherError, match=r"returns a dict with keys \['out', 'aux'\], not class scores of "
                                                   r"shape N x C x H x W; pick the logits with .*output_key"):
        load_external_teacher({**spec(weights, label_map), "net": {"_target_": f"{__name__}.DictTeacher"}}, NAMES)
    teacher, _ = load_external_teacher({**spec(weights, label_map), "net": {"_target_": f"{__name__}.DictTeacher"},
                                        "output_key": "out"}, NAMES)
    assert teacher(torch.zeros(1, 3, 32, 32)).shape == (1, 19, 32, 32)
    flat = tmp_path / "flat.pt"
    torch.save({}, flat)
    with pytest.raises(ExternalTeacherError, match=r"returns a tensor of shape \(1,\), not class scores of shape N x C x H x W"):
        load_external_teacher({**spec(flat), "net": {"_target_": f"{__name__}.Flat"}}, NAMES)


def test_a_teacher_of_other_classes_without_a_map_is_one_line(tmp_path):
    _, weights = write_teacher(tmp_path)
    with pytest.raises(ExternalTeacherError, match=r"predicts 21 classes, this dataset has 19; map them with "
                                                   r"system.teacher.external.label_map"):
        load_external_teacher(spec(weights), NAMES)
    with pytest.raises(ExternalTeacherError, match=r"weights=.*nope.pt does not exist"):
        load_external_teacher(spec(tmp_path / "nope.pt"), NAMES)


# ----------------------------------------------------------------------------- in a distillation run


def external_overrides(weights: Path, label_map: Path, *more: str) -> list[str]:
    return ["+experiment=external_teacher", f"teacher_net={{_target_:{TARGET},classes:21}}",
            f"teacher_weights={weights}", f"teacher_label_map={label_map}", *more]


def test_a_training_step_with_a_feature_term_by_module_path(make_cfg, tmp_path):
    net, weights = write_teacher(tmp_path)
    cfg = make_cfg(*external_overrides(
        weights, write_map(tmp_path, MAP_21), "distill_paradigm=logits_decoder",
        "distill_paradigm.terms.dec2.inputs.teacher=teacher:body"))
    datamodule = instantiate(cfg.dataset)
    system = build_system(cfg, datamodule.class_names)
    teacher = system.teacher
    assert type(teacher).__name__ == "TinyTeacher" and not teacher.training
    assert set(system.distiller.recorders["teacher"].refs) == {"body"}  # its own path, no prefix
    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=1, limit_train_batches=1, limit_val_batches=0,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    trainer.fit(system, datamodule=datamodule)
    assert trainer.global_step == 1
    terms = {k: float(v.detach()) for k, v in system.loss_terms.items()}
    assert set(terms) == {"supervised", "logits", "dec2"} and all(math.isfinite(v) and v > 0 for v in terms.values())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items()), "the teacher stayed frozen"
    assert system.teacher_scores["mIoU"] is not None


def test_a_torchscript_teacher_refuses_feature_terms(make_cfg, tmp_path):
    net, _ = write_teacher(tmp_path)
    scripted = tmp_path / "scripted.pt"
    torch.jit.script(net).save(str(scripted))
    cfg = make_cfg("+experiment=external_teacher", "teacher_net=null", f"teacher_weights={scripted}",
                   f"teacher_label_map={write_map(tmp_path, MAP_21)}", "distill_paradigm=logits_decoder",
                   "distill_paradigm.terms.dec2.inputs.teacher=teacher:body")
    with pytest.raises(ExternalTeacherError, match=r"\['dec2'\] read teacher features, but a TorchScript teacher "
                                                   "takes no forward hooks"):
        build_system(cfg, instantiate(cfg.dataset).class_names)


def test_the_cache_replays_the_live_external_teacher(make_cfg, tmp_path):
    _, weights = write_teacher(tmp_path)
    label_map = write_map(tmp_path, MAP_21)
    cfg = make_cfg(*external_overrides(weights, label_map, "teacher_cache=true", "distill_paradigm=logits"),
                   "dataset.crop_size=[64,128]", "dataset.scale_range=[1.0,1.0]", "dataset.jitter=0")
    datamodule = instantiate(cfg.dataset)
    datamodule.prepare_data()
    datamodule.setup("fit")
    system = build_system(cfg, datamodule.class_names)
    teacher, member = system.teacher, system.members["teacher"]
    kwargs = dict(dataset=datamodule.plain_train_set(), num_classes=19, cache_dir=tmp_path / "logits", batch_size=4,
                  teacher_net=member.net_name, normalisation=datamodule.normalisation)
    cache = open_or_build(teacher, member.checkpoint, **kwargs)
    assert cache.meta["teacher_net"] == member.net_name and member.net_name.startswith("external:")
    datamodule.attach_train_extra(cache)
    for index in range(3):
        sample = datamodule.train_set[(index, sample_seed(0, 0, index))]
        with torch.no_grad():
            live = teacher(sample["image"][None])[0]
        assert sample["teacher_logits"].shape == live.shape == (19, 64, 128)
        torch.testing.assert_close(sample["teacher_logits"], live, atol=2e-3 * live.abs().max().item(), rtol=0)
    # Another label map is another teacher: another cache key.
    other_map = write_map(tmp_path, MAP_21.replace("19: road", "19: null"), "other.yaml")
    other, identity = load_external_teacher(spec(weights, other_map, classes=21), datamodule.class_names)
    assert identity != member.net_name
    assert open_or_build(other, weights, **{**kwargs, "teacher_net": identity}).path != cache.path


def test_the_recipe_names_the_teachers_files_not_the_machines_paths(make_cfg, tmp_path):
    from segkd.recipe import recipe_config, recipe_id

    def config(folder: Path) -> dict:
        overrides = external_overrides(folder / "teacher.pt", folder / "map.yaml")
        return recipe_config(make_cfg(*overrides))

    here, there = config(tmp_path / "a"), config(tmp_path / "b")
    assert here["system.teacher.external.weights"] == "teacher.pt"
    assert here["system.teacher.external.label_map"] == "map.yaml"
    assert recipe_id(here) == recipe_id(there)


def test_a_teacher_not_described_is_one_line(make_cfg, tmp_path):
    cfg = make_cfg("+experiment=external_teacher")
    with pytest.raises(ExternalTeacherError, match=r"system.teacher.external.weights is not set; point it \(teacher_weights=\)"):
        build_system(cfg, NAMES)
    _, weights = write_teacher(tmp_path)
    cfg = make_cfg("+experiment=external_teacher", f"teacher_weights={weights}")
    with pytest.raises(ExternalTeacherError, match=r"system.teacher.external.net must name the network's factory, e.g. "
                                                   r"teacher_net='\{_target_:my_module.MyNet,classes:21\}'"):
        build_system(cfg, NAMES)
