"""What cluster runs need: provenance in every summary, mixed precision with full-precision
distillation losses, and pretrained encoder weights from a local file."""

from __future__ import annotations

import math
import subprocess

import pytest
import torch

from segkd.config import to_plain
from segkd.distill.distiller import Distiller
from segkd.models import build_net, build_unet
from segkd.models.checkpoint import load_net
from segkd.train import train

from conftest import ROOT

SMALL = {"_target_": "segkd.models.build_unet", "encoder_name": "resnet18", "encoder_weights": None,
         "encoder_depth": 5, "decoder_channels": [16, 16, 8, 8, 8], "classes": 19}


def test_summary_records_where_the_result_came_from(make_cfg):
    summary = train(make_cfg("trainer.limit_train_batches=2", "dataset.batch_size=8", "dataset.device_batch_size=4",
                             "seed=5"))
    record = summary["provenance"]
    assert record["seed"] == 5 and record["world_size"] == 1
    assert record["batch_size_per_process"] == 4 and record["accumulate_grad_batches"] == 2
    assert record["global_batch"] == 8  # 4 per micro-batch x 2 accumulated
    assert record["versions"]["torch"] == torch.__version__ and record["versions"]["lightning"]
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert record["git"]["commit"] == (head.stdout.strip() if head.returncode == 0 else None)
    assert record["precision"] == "32-true"


def test_bf16_mixed_distillation_trains_on_cpu(make_cfg, teacher_ckpt):
    summary = train(make_cfg("+experiment=offline_kd", f"teacher_ckpt={teacher_ckpt}", "distill_paradigm=cwd",
                             "trainer.precision=bf16-mixed", "trainer.limit_train_batches=2"))
    assert summary["provenance"]["precision"] == "bf16-mixed"
    assert summary["global_step"] == 2 and math.isfinite(summary["val"]["mIoU"])


def test_distillation_terms_are_computed_in_fp32_under_autocast():
    gen = torch.Generator().manual_seed(0)
    student, teacher = build_net(SMALL), build_net(SMALL)
    terms = {"kd": {"loss": {"_target_": "segkd.distill.losses.logit_kd.LogitKD", "temperature": 1.0},
                    "inputs": {"student": "student:logits", "teacher": "teacher:logits"}}}
    distiller = Distiller(terms, {"student": student, "teacher": teacher}, probe_size=(32, 32))
    s_logits, t_logits = torch.randn(2, 19, 8, 8, generator=gen), torch.randn(2, 19, 8, 8, generator=gen)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = {"student": s_logits.bfloat16(), "teacher": t_logits.bfloat16()}  # what bf16 layers hand over
        value = distiller(low)["kd"]
    assert value.dtype == torch.float32
    expected = distiller({"student": low["student"].float(), "teacher": low["teacher"].float()})["kd"]
    assert value.item() == expected.item()


@pytest.fixture
def encoder_file(tmp_path):
    reference = build_net(SMALL)
    path = tmp_path / "resnet18_encoder.pth"
    torch.save(reference.encoder.state_dict(), path)
    return reference, path


def test_encoder_weights_from_a_local_file(encoder_file, tmp_path):
    reference, path = encoder_file
    wrapped = tmp_path / "wrapped.pt"
    torch.save({"state_dict": {f"encoder.{k}": v for k, v in reference.encoder.state_dict().items()}}, wrapped)
    for file in (path, wrapped):
        net = build_net({**SMALL, "encoder_weights": str(file)})
        for (name, a), b in zip(net.encoder.state_dict().items(), reference.encoder.state_dict().values()):
            assert torch.equal(a, b), name


def unet(**changes):
    """build_unet itself: its errors as the user sees them (segkd.config.build unwraps Hydra's)."""
    return build_unet(**{k: v for k, v in {**SMALL, **changes}.items() if k != "_target_"})


def test_encoder_weights_that_do_not_fit_are_one_clear_error(encoder_file, tmp_path):
    _, path = encoder_file
    with pytest.raises(ValueError, match="does not fit encoder 'mobilenet_v2'"):
        unet(encoder_name="mobilenet_v2", encoder_weights=str(path))
    with pytest.raises(FileNotFoundError, match="no such file"):
        unet(encoder_weights=str(tmp_path / "missing.pth"))
    resnet34 = unet(encoder_name="resnet34")
    torch.save(resnet34.encoder.state_dict(), tmp_path / "r34.pth")
    with pytest.raises(ValueError, match="does not fit encoder 'resnet18'.*unknown to it"):
        unet(encoder_weights=str(tmp_path / "r34.pth"))
    with_classifier = {**torch.load(path, weights_only=True), "fc.weight": torch.zeros(1000, 512)}
    torch.save(with_classifier, tmp_path / "torchvision_style.pth")  # a backbone saved with its classifier
    unet(encoder_weights=str(tmp_path / "torchvision_style.pth"))


def test_a_checkpoint_rebuilds_without_its_encoder_weights_file(encoder_file, tmp_path, student_run):
    _, path = encoder_file
    ckpt = torch.load(student_run["last_checkpoint"], map_location="cpu", weights_only=True)
    ckpt["hyper_parameters"]["net"]["encoder_weights"] = str(tmp_path / "gone" / "weights.pth")  # another machine's
    moved = tmp_path / "moved.ckpt"
    torch.save(ckpt, moved)
    net, spec = load_net(moved)
    assert spec["encoder_weights"].endswith("weights.pth")
    state = {k[len("net."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    assert all(torch.equal(net.state_dict()[k], v) for k, v in state.items())
    assert to_plain(spec) == spec
