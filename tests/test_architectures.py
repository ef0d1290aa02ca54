"""Beyond one UNet: any smp architecture as teacher or student (issue 31, item 1).

The matrix: teacher architecture x student architecture x shipped paradigm, each cell built as
``python -m segkd.run +experiment=offline_kd`` builds it (segkd.train.build_system on the composed
config) and, where it should work, taking one training step; where it should not (a paradigm that
names UNet decoder blocks, on a network that has none), failing when the system is built with its one
line. Then what the rest of segkd reads of a network whatever its architecture: the input divisor,
the number of classes, the teacher cache, mutual learning, and the commands (evaluate, predict,
export, profile, bias_variance). Teachers are untrained checkpoints: nothing here depends on what
they know.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from segkd.config import build, compose_config, to_plain
from segkd.distill.distiller import Distiller
from segkd.distill.teacher import RescaledTeacher
from segkd.inference import SegmentationPredictor
from segkd.models import build_net, describe, num_classes, size_divisor
from segkd.models.roles import missing_feature, role_refs
from segkd.train import build_system, next_steps, train

from conftest import FAST, compose_train, random_image, write_net_checkpoint, write_png

#: Teachers of four families: UNet, DeepLabV3+ (output stride 16), FPN, and a transformer (SegFormer-B0).
TEACHERS = ["teacher_r34", "teacher_dlv3p_r34", "teacher_fpn_r34", "student_segformer_b0"]
STUDENTS = ["student_mnv2", "student_segformer_b0"]
#: Every shipped paradigm that reads something of its own (encoder_cwd is encoder + cwd, both here).
PARADIGMS = ["logits", "cwd", "encoder", "bottleneck", "decoder", "logits_decoder", "pairwise"]
#: Paradigms that name UNet decoder blocks (decoder.blocks.N): they need a UNet on both sides.
UNET_ONLY = {"decoder": "dec1", "logits_decoder": "dec2", "pairwise": "pairwise"}
UNETS = {"teacher_r34", "student_mnv2"}
#: The transformer teacher teaches the CNN student only, with a logit and a feature paradigm.
CELLS = [(t, s, p) for t in TEACHERS for s in STUDENTS for p in PARADIGMS
         if t != "student_segformer_b0" or (s == "student_mnv2" and p in ("cwd", "encoder"))]
#: The train crop and batch of every cell: the distillation setting's 64x128, two images.
STEP = ["dataset.crop_size=[64,128]", "dataset.batch_size=2", "dataset.val_batch_size=2"]


def model_spec(name: str, workdir: Path, cache_dir: Path) -> dict:
    """A preset of conf/model/ as training composes it (the class count filled in)."""
    return to_plain(compose_train([*FAST, f"model={name}"], workdir, cache_dir).model)


@pytest.fixture(scope="module")
def teacher_ckpts(tmp_path_factory, cache_dir) -> dict[str, Path]:
    """One untrained checkpoint per teacher architecture (written, not trained: seconds)."""
    folder = tmp_path_factory.mktemp("teachers")
    return {name: write_net_checkpoint(folder / f"{name}.ckpt", model_spec(name, folder / "c", cache_dir))
            for name in TEACHERS}


_BASE: dict[tuple[str, str], object] = {}
_PARADIGM: dict[str, object] = {}


def cell_config(teacher: str, student: str, paradigm: str, ckpt: Path, workdir: Path, cache_dir: Path, *extra: str):
    """``+experiment=offline_kd model=<student> model@system.teacher.net=<teacher> distill_paradigm=<paradigm>``,
    composed once per pair and once per paradigm (Hydra's compose is the slow part of a cell)."""
    if extra:
        return compose_train([*FAST, *STEP, "+experiment=offline_kd", f"teacher_ckpt={ckpt}", f"model={student}",
                              f"model@system.teacher.net={teacher}", f"distill_paradigm={paradigm}", *extra],
                             workdir / "run", cache_dir)
    if (teacher, student) not in _BASE:
        _BASE[(teacher, student)] = compose_train(
            [*FAST, *STEP, "+experiment=offline_kd", f"teacher_ckpt={ckpt}", f"model={student}",
             f"model@system.teacher.net={teacher}"], workdir / "run", cache_dir)
    if paradigm not in _PARADIGM:
        _PARADIGM[paradigm] = compose_train([*FAST, "+experiment=offline_kd", f"distill_paradigm={paradigm}"],
                                            workdir / "run", cache_dir).distill_paradigm
    cfg = _BASE[(teacher, student)].copy()
    cfg.distill_paradigm = _PARADIGM[paradigm].copy()
    cfg.paths.output_dir = str(workdir / "run")
    return cfg


def one_step(system, datamodule) -> L.Trainer:
    trainer = L.Trainer(accelerator="cpu", max_steps=1, limit_val_batches=0, num_sanity_val_steps=0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(system, datamodule=datamodule)
    return trainer


def should_work(teacher: str, student: str, paradigm: str) -> bool:
    return paradigm not in UNET_ONLY or (teacher in UNETS and student in UNETS)


@pytest.mark.parametrize("teacher, student, paradigm", CELLS, ids=["-".join(c) for c in CELLS])
def test_matrix(teacher, student, paradigm, teacher_ckpts, tmp_path, cache_dir):
    cfg = cell_config(teacher, student, paradigm, teacher_ckpts[teacher], tmp_path, cache_dir)
    datamodule = build(cfg.dataset)
    if not should_work(teacher, student, paradigm):
        with pytest.raises(ValueError) as info:
            build_system(cfg, datamodule.class_names)
        message = str(info.value)
        # The student's inputs are checked first; with a UNet student it is the teacher that lacks the block.
        role, name = ("student", student) if student not in UNETS else ("teacher", teacher)
        arch = {"teacher_dlv3p_r34": "DeepLabV3Plus (resnet34)", "teacher_fpn_r34": "FPN (resnet34)",
                "student_segformer_b0": "Segformer (mit_b0)"}[name]
        assert re.fullmatch(
            rf"distillation term '{UNET_ONLY[paradigm]}': the {role}, {re.escape(arch)}, has no module "
            rf"'decoder\.blocks\.\d'.*: this term needs a Unet {role}; address features by role instead "
            rf"\(the {role} has encoder#\d.*, decoder, logits\), as distill_paradigm=encoder, bottleneck, cwd and "
            rf"logits do", message), message
        assert "\n" not in message
        return
    system = build_system(cfg, datamodule.class_names)
    before = {k: v.clone() for k, v in system.net.state_dict().items() if v.is_floating_point()}
    trainer = one_step(system, datamodule)
    assert trainer.global_step == 1
    assert math.isfinite(float(trainer.callback_metrics["train/loss"]))
    assert any(not torch.equal(before[k], v) for k, v in system.net.state_dict().items() if k in before)
    # Connectors map the student's channels onto the teacher's, whatever the two architectures.
    for name, connector in system.distiller.connectors.items():
        inputs = system.distiller.inputs[name]
        assert connector.proj[0].in_channels != 0 and inputs["student"].startswith("student:")


def test_a_deeplab_student_takes_a_step_too(teacher_ckpts, tmp_path, cache_dir):
    """A student of output stride 16 (encoder#4 and #5 at 1/16) learning from a UNet's features at 1/32:
    connectors resize as well as map channels; the class weights the analysis computes train it."""
    cfg = cell_config("teacher_r34", "teacher_dlv3p_r34", "bottleneck", teacher_ckpts["teacher_r34"], tmp_path,
                      cache_dir, "system.loss.class_weighting=median")
    datamodule = build(cfg.dataset)
    system = build_system(cfg, datamodule.class_names)
    assert system.size_divisor == 32, "val images are padded for both: lcm(16, 32)"
    assert one_step(system, datamodule).global_step == 1
    assert system.criterion.weight is not None, "median-frequency class weights from the train split"


# ----------------------------------------------------------------------------- roles and the failure lines


@pytest.mark.parametrize("model, overrides, expected", [
    ("teacher_r34", [], None),
    ("teacher_dlv3p_r34", [], "model@system.teacher.net=teacher_dlv3p_r34"),
    ("teacher_dlv3p_r34", ["model.decoder_channels=128"], "system.teacher.net=null"),
], ids=["unet", "deeplab", "deeplab-narrowed"])
def test_a_teacher_runs_next_line_distils_it_whatever_its_network(model, overrides, expected, tmp_path, cache_dir):
    """The line a teacher's run ends with (segkd.train.next_steps) is a command that distils that teacher:
    offline KD expects teacher_r34, so another preset is named, and a preset with changed arguments
    is read from the checkpoint itself. Without it, the command fails on the checkpoint (it did)."""
    spec = to_plain(compose_train([*FAST, f"model={model}", *overrides], tmp_path / "spec", cache_dir).model)
    ckpt = write_net_checkpoint(tmp_path / "teacher.ckpt", spec)
    summary = {"model": model, "overrides": ["+experiment=teacher", f"model={model}", *overrides],
               "recipe": {"fields": {"teacher": True}}, "last_checkpoint": str(ckpt)}
    [line] = next_steps(summary, tmp_path)
    command = line.split("python -m segkd.run ", 1)[1].split()
    assert f"teacher_ckpt={ckpt}" in command
    if expected is None:
        assert not any("system.teacher.net" in c for c in command), line
    else:
        assert expected in command, line
        bare = [c for c in command if c != expected]
        cfg = compose_train([*FAST, *STEP, *bare], tmp_path / "bare", cache_dir)
        with pytest.raises(ValueError, match="does not match the teacher config"):
            build_system(cfg, build(cfg.dataset).class_names)
    cfg = compose_train([*FAST, *STEP, *command], tmp_path / "run", cache_dir)
    system = build_system(cfg, build(cfg.dataset).class_names)
    assert describe(system.teacher).startswith("Unet" if model == "teacher_r34" else "DeepLabV3Plus")


def test_roles_are_where_every_architecture_has_them(tmp_path, cache_dir):
    nets = {name: build_net(model_spec(name, tmp_path, cache_dir)) for name in
            ["teacher_r34", "teacher_dlv3p_r34", "teacher_fpn_r34", "student_segformer_b0", "student_fpn_mnv2"]}
    for name, net in nets.items():
        refs = role_refs(net)
        assert refs[-2:] == ["decoder", "logits"] and all(missing_feature(net, ref) is None for ref in refs), name
    assert role_refs(nets["student_segformer_b0"])[0] == "encoder#2", "mit_b0 has no stage at 1/2"
    assert missing_feature(nets["student_segformer_b0"], "encoder#1") == \
        "no encoder stage 1 (its encoder leaves stage 1 empty: 0 channels)"
    assert missing_feature(nets["teacher_r34"], "encoder#6") == \
        "no encoder stage 6 (its encoder returns stages 0-5, 0 being the input)"
    assert missing_feature(nets["teacher_fpn_r34"], "decoder.blocks.2") == "no module 'decoder.blocks.2'"
    assert missing_feature(nets["teacher_r34"], "decoder.blocks.2") is None


def test_an_empty_encoder_stage_fails_at_build_time_with_the_roles_there_are(teacher_ckpts, tmp_path, cache_dir):
    cfg = cell_config("teacher_r34", "student_segformer_b0", "encoder", teacher_ckpts["teacher_r34"], tmp_path,
                      cache_dir, "distill_paradigm.terms.enc2.inputs.student='student:encoder#1'")
    with pytest.raises(ValueError, match=r"^distillation term 'enc2': the student, Segformer \(mit_b0\), has no encoder "
                                         r"stage 1 \(its encoder leaves stage 1 empty: 0 channels\), which the teacher, "
                                         r"Unet \(resnet34\), has: address features by role instead \(the student has "
                                         r"encoder#2, encoder#3, encoder#4, encoder#5, decoder, logits\)"):
        build_system(cfg, ["c"] * 19)


def test_a_mistyped_path_still_lists_the_paths_near_it(teacher_ckpts, tmp_path, cache_dir):
    cfg = cell_config("teacher_dlv3p_r34", "student_segformer_b0", "encoder", teacher_ckpts["teacher_dlv3p_r34"],
                      tmp_path, cache_dir, "distill_paradigm.terms.enc2.inputs.teacher=teacher:decoder.asp")
    with pytest.raises(ValueError, match=r"unknown module path 'decoder.asp' in the teacher; valid paths near it: "
                                         r"\['decoder.aspp'"):
        build_system(cfg, ["c"] * 19)


def test_a_feature_term_without_connector_on_maps_of_other_shapes_fails_at_build_time(teacher_ckpts, tmp_path,
                                                                                       cache_dir):
    cfg = cell_config("teacher_fpn_r34", "student_segformer_b0", "encoder", teacher_ckpts["teacher_fpn_r34"],
                      tmp_path, cache_dir, "distill_paradigm.terms.enc3.connector=false")
    with pytest.raises(ValueError, match=r"^distillation term 'enc3' cannot compare the tensors it reads "
                                         r"\(student:encoder#3, teacher:encoder#3\): feature KD needs equal shapes, got "
                                         r"student \(2, 64, 8, 16\) and teacher \(2, 128, 8, 16\); add a connector"):
        build_system(cfg, ["c"] * 19)


def test_the_decoder_role_reads_each_architectures_decoder_output(teacher_ckpts, tmp_path, cache_dir):
    """``decoder`` (the map the head reads) at 1/4 in DeepLabV3+ and at full size in a UNet: the connector
    maps 8 channels to 256 and resizes the student's map onto the teacher's grid."""
    cfg = cell_config("teacher_dlv3p_r34", "student_mnv2", "logits_decoder", teacher_ckpts["teacher_dlv3p_r34"],
                      tmp_path, cache_dir, "distill_paradigm.terms.dec2.inputs.student=student:decoder",
                      "distill_paradigm.terms.dec2.inputs.teacher=teacher:decoder")
    datamodule = build(cfg.dataset)
    system = build_system(cfg, datamodule.class_names)
    conv = system.distiller.connectors["dec2"].proj[0]
    assert (conv.in_channels, conv.out_channels) == (8, 256)
    assert one_step(system, datamodule).global_step == 1


def test_logit_terms_compare_at_the_label_resolution():
    """A network whose logits come out at a quarter of its input (not an smp one) teaches a UNet: its logits
    are resized (bilinear) to the labels' size, so logit KD and CWD compare the same pixels."""

    class Quarter(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Conv2d(3, 19, 4, stride=4)

        def forward(self, x):
            return self.head(x)

    student = build_net({"_target_": "segkd.models.build_unet", "encoder_name": "resnet18", "classes": 19,
                         "encoder_depth": 3, "decoder_channels": [16, 8, 8]})
    teacher = Quarter()
    terms = {"kd": {"loss": {"_target_": "segkd.distill.losses.logit_kd.LogitKD", "temperature": 1.0},
                    "inputs": {"student": "student:logits", "teacher": "teacher:logits", "target": "target"}},
             "cwd": {"loss": {"_target_": "segkd.distill.losses.cwd.ChannelWiseKD", "tau": 1.0},
                     "inputs": {"student": "student:logits", "teacher": "teacher:logits"}}}
    distiller = Distiller(terms, {"student": student, "teacher": teacher}, (32, 64))
    x, target = torch.randn(2, 3, 32, 64), torch.zeros(2, 32, 64, dtype=torch.long)
    with torch.no_grad():
        s, t = student(x), teacher(x)
        values = distiller({"student": s, "teacher": t}, target)
        up = torch.nn.functional.interpolate(t, size=(32, 64), mode="bilinear", align_corners=False)
        expected = distiller.losses["kd"](s, up, target)
    assert t.shape[-2:] == (8, 16) and torch.equal(values["kd"], expected)
    assert math.isfinite(float(values["cwd"]))


# ----------------------------------------------------------------------------- input sizes and classes


def test_the_input_divisor_is_the_networks_output_stride(tmp_path, cache_dir):
    specs = {name: model_spec(name, tmp_path, cache_dir) for name in
             ["teacher_r34", "teacher_dlv3p_r34", "teacher_fpn_r34", "student_segformer_b0", "student_rt20"]}
    nets = {name: build_net(spec) for name, spec in specs.items()}
    assert {n: size_divisor(net) for n, net in nets.items()} == {
        "teacher_r34": 32, "teacher_dlv3p_r34": 16, "teacher_fpn_r34": 32, "student_segformer_b0": 32,
        "student_rt20": 32}
    shallow = build_net({**specs["teacher_dlv3p_r34"], "encoder_output_stride": 8})
    assert size_divisor(shallow) == 8
    assert size_divisor(RescaledTeacher(nets["teacher_dlv3p_r34"].eval(), 0.5)) == 16
    assert SegmentationPredictor(nets["teacher_dlv3p_r34"]).size_divisor == 16
    assert describe(nets["student_segformer_b0"]) == "Segformer (mit_b0)"
    assert {num_classes(net) for net in nets.values()} == {19}
    # Any network: classes from one blank pass, the divisor it states (else 32).
    other = nn.Conv2d(3, 5, 1)
    assert num_classes(other) == 5 and size_divisor(other) == 32
    other.size_divisor = 14
    assert size_divisor(other) == 14
    # A DeepLabV3+ image 16 pixels short of a multiple of 32 is padded by nothing: whole = the network's own pass.
    image = torch.randn(1, 3, 48, 80)
    net = nets["teacher_dlv3p_r34"].eval()
    with torch.no_grad():
        torch.testing.assert_close(SegmentationPredictor(net).logits(image), net(image))


def test_a_crop_the_network_cannot_take_is_one_line(tmp_path, cache_dir):
    with pytest.raises(ValueError, match=r"^dataset\.crop_size=\[48, 100\]: Segformer \(mit_b0\) needs "
                                         r"heights and widths that are multiples of 32 \(its output stride\); set "
                                         r"dataset\.crop_size=\[64, 96\]$"):
        train(compose_train([*FAST, "model=student_segformer_b0", "dataset.crop_size=[48,100]"], tmp_path / "run",
                            cache_dir))
    # A UNet resizes inside its decoder and takes any crop, as it always did.
    from segkd.models import check_input_size
    unet = build_net(model_spec("student_mnv2", tmp_path, cache_dir))
    assert check_input_size(unet, [48, 100], "dataset.crop_size") == (48, 100)


# ----------------------------------------------------------------------------- cache, mutual learning


def test_the_teacher_cache_of_a_deeplab_teacher_replays_its_logits(teacher_ckpts, tmp_path, cache_dir):
    cfg = cell_config("teacher_dlv3p_r34", "student_segformer_b0", "cwd", teacher_ckpts["teacher_dlv3p_r34"],
                      tmp_path, cache_dir, "teacher_cache=true", f"paths.cache_dir={tmp_path / 'cache'}")
    datamodule = build(cfg.dataset)
    system = build_system(cfg, datamodule.class_names)
    teacher = system.teacher
    one_step(system, datamodule)
    assert system.teacher is None and system.teacher_cache_info["images"] == 16
    from segkd.data.geometry import CropGeometry
    from segkd.distill.teacher_cache import replay

    for seed in range(4):  # augmented samples, flipped and not: each carries its crop of the stored logits
        sample = datamodule.train_set[(3, seed)]
        geometry = CropGeometry.of(sample["geometry"])
        image = datamodule.plain_train_set(16)[3]["image"][None]
        with torch.no_grad():  # the cache stores the mirror image's own logits for flipped crops
            live = teacher.eval()(image.flip(-1) if geometry.flip else image)[0]
        torch.testing.assert_close(sample["teacher_logits"].float(), replay(live, geometry, live.shape[-2:]),
                                   atol=2e-2, rtol=1e-2)


def test_mutual_learning_between_architectures(tmp_path, cache_dir):
    cfg = compose_train([*FAST, *STEP, "+experiment=online_dml", "model@system.peers.peer=student_segformer_b0",
                         "distill_paradigm=encoder"], tmp_path / "run", cache_dir)
    datamodule = build(cfg.dataset)
    system = build_system(cfg, datamodule.class_names)
    assert one_step(system, datamodule).global_step == 1
    cfg = compose_train([*FAST, *STEP, "+experiment=online_features", "model@system.peers.peer=student_segformer_b0"],
                        tmp_path / "run2", cache_dir)
    with pytest.raises(ValueError, match=r"^distillation term 'dec2': the teacher, Segformer \(mit_b0\), has no module "
                                         r"'decoder\.blocks\.2', which the student, Unet \(mobilenet_v2\), has"):
        build_system(cfg, datamodule.class_names)


# ----------------------------------------------------------------------------- the commands


@pytest.fixture(scope="module")
def dlv3p_run(tmp_path_factory, cache_dir) -> dict:
    """A DeepLabV3+ student (teacher_dlv3p_r34's preset at half width) trained for 2 steps on tiny SynthStreets."""
    out = tmp_path_factory.mktemp("dlv3p") / "run"
    return train(compose_train([*FAST, "model=teacher_dlv3p_r34", "model.encoder_name=resnet18",
                                "model.decoder_channels=64", "trainer.limit_train_batches=2"], out, cache_dir))


TINY = [o for o in FAST if o.startswith("dataset.prepare.")]


def test_evaluate_scores_a_deeplab_checkpoint_as_training_validated_it(dlv3p_run, tmp_path, cache_dir):
    from segkd.evaluate import evaluate

    report = evaluate(compose_config("evaluate", [*TINY, f"ckpt_path={dlv3p_run['last_checkpoint']}",
                                                  "trainer.accelerator=cpu", "trainer.enable_progress_bar=false",
                                                  "batch_size=4", "num_workers=0", f"paths.cache_dir={cache_dir}",
                                                  f"paths.log_dir={tmp_path}"], tmp_path / "eval"))
    assert report["mIoU"] == pytest.approx(dlv3p_run["val"]["mIoU"], abs=1e-12)


def test_predict_export_and_profile_take_the_networks_own_sizes(dlv3p_run, tmp_path):
    from segkd.export import export
    from segkd.predict import predict
    from segkd.profile import profile

    ckpt = dlv3p_run["last_checkpoint"]
    rng = np.random.default_rng(0)
    write_png(tmp_path / "in" / "a.png", random_image(rng, (40, 72)))  # padded to 48x80 (/16), not 64x96
    summary = predict(compose_config("predict", [f"ckpt_path={ckpt}", f"input={tmp_path / 'in'}", "device=cpu",
                                                 f"paths.log_dir={tmp_path}"], tmp_path / "pred"))
    assert summary["images"] == 1 and (tmp_path / "pred" / "masks" / "a.png").is_file()

    report = export(compose_config("export", [f"ckpt_path={ckpt}", "input_size=[48,96]", f"output={tmp_path / 'n.onnx'}"],
                                   tmp_path / "export"))
    assert set(report["parity_max_abs_diff"]) == {"48x96", "16x48"}, "sizes of 16, the output stride"
    assert "H, W multiples of 16" in report["inputs"]["image"] and "(N, 19, H, W)" in report["outputs"]["logits"]
    with pytest.raises(ValueError, match=r"input_size=\[40, 96\] must be \[height, width\], each a positive multiple of "
                                         r"16 \(the output stride of DeepLabV3Plus \(resnet18\)\)"):
        export(compose_config("export", [f"ckpt_path={ckpt}", "input_size=[40,96]"], tmp_path / "export2"))

    report = profile(compose_config("profile", ["models=[teacher_fpn_r34,student_segformer_b0]", f"ckpt_path={ckpt}",
                                                "resolutions=[[64,128]]", "backends=[eager]", "warmup=0", "repeats=1",
                                                "rounds=1", "layer_table=false", "reference_resolution=[64,128]",
                                                "reference_model=teacher_fpn_r34"], tmp_path / "profile"))
    rows = {p["model"]: (p["architecture"], p["encoder"]) for p in report["presets"]}
    assert rows == {"teacher_fpn_r34": ("FPN", "resnet34"), "student_segformer_b0": ("Segformer", "mit_b0"),
                    "run:net": ("DeepLabV3Plus", "resnet18")}
    assert "| model | architecture | encoder |" in (tmp_path / "profile" / "profile.md").read_text()
    with pytest.raises(ValueError, match=r"resolutions=\[48, 96\] must be .* multiple of 32 \(the output stride of "
                                         r"teacher_fpn_r34, FPN \(resnet34\)\)"):
        profile(compose_config("profile", ["models=[teacher_fpn_r34]", "resolutions=[[48,96]]"], tmp_path / "p2"))


def test_a_segformer_student_exports_to_onnx_that_answers_as_pytorch_does(tmp_path):
    """A transformer encoder (mit_b0) traces to ONNX, and ONNX Runtime agrees with PyTorch at two sizes."""
    from segkd.export import export

    spec = {"_target_": "segkd.models.build_smp", "arch": "Segformer", "encoder_name": "mit_b0",
            "encoder_weights": None, "decoder_segmentation_channels": 32, "classes": 19}
    ckpt = write_net_checkpoint(tmp_path / "segformer.ckpt", spec)
    report = export(compose_config("export", [f"ckpt_path={ckpt}", "input_size=[64,128]",
                                              f"output={tmp_path / 'segformer.onnx'}"], tmp_path / "export"))
    assert set(report["parity_max_abs_diff"]) == {"64x128", "32x64"}
    assert max(report["parity_max_abs_diff"].values()) < 1e-4
    assert "H, W multiples of 32" in report["inputs"]["image"] and (tmp_path / "segformer.onnx").stat().st_size > 0


def test_bias_variance_decomposes_segformer_students(tmp_path, cache_dir):
    from segkd.bias_variance import bias_variance

    spec = model_spec("student_segformer_b0", tmp_path, cache_dir)
    members = [write_net_checkpoint(tmp_path / f"s{seed}.ckpt", spec, seed=seed) for seed in (0, 1)]
    report = bias_variance(compose_config("bias_variance", [
        *TINY, f"groups={{seeds:[{members[0]},{members[1]}]}}", "progress_bar=false", "num_workers=0",
        f"paths.cache_dir={cache_dir}", f"paths.log_dir={tmp_path}"], tmp_path / "bv"))
    assert report["groups"]["seeds"]["n_members"] == 2 and report["groups"]["seeds"]["variance"] > 0
