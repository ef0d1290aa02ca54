"""Inference profiling, ONNX export and student budget presets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest
import torch
from torch import nn

from segkd.analysis.onnx_export import check_parity
from segkd.analysis.profiling import complexity_at, layer_table
from segkd.config import CONF_DIR, compose_config
from segkd.export import export
from segkd.models.checkpoint import load_net
from segkd.profile import preset_spec, profile
from segkd.train import train

from conftest import FAST, compose_train


def test_complexity_of_a_hand_made_conv_net():
    net = lambda: nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.Conv2d(8, 2, 1, bias=False))
    cx = complexity_at(net, (32, 64))
    macs = 32 * 64 * (8 * 3 * 3 * 3 + 2 * 8)  # per output pixel: 8 filters of 3x3x3, then 2 of 1x1x8
    assert cx["gmacs"] == pytest.approx(macs / 1e9) and cx["gflops"] == pytest.approx(2 * macs / 1e9)
    assert cx["params"] == 8 * 27 + 2 * 8


@pytest.mark.parametrize("preset", sorted(p.stem for p in (CONF_DIR / "model").glob("student_rt*.yaml")))
def test_budget_presets_hold_their_budget_at_1024x2048(preset):
    budget = float(preset.removeprefix("student_rt"))  # student_rt20: at most 20 GMACs
    from segkd.models import build_net

    cx = complexity_at(lambda: build_net(preset_spec(preset, 19)), (1024, 2048))
    assert cx["gmacs"] <= budget
    assert cx["gmacs"] >= 0.5 * budget, "a budget preset should use its budget, not a fraction of it"


def test_the_twenty_gmac_preset_exists():
    assert (CONF_DIR / "model" / "student_rt20.yaml").is_file()


@pytest.fixture(scope="module")
def kd_run(tmp_path_factory, cache_dir, teacher_ckpt) -> Path:
    """A distillation run with connectors (encoder paradigm): its checkpoint holds student, connectors and more."""
    out = tmp_path_factory.mktemp("kd") / "run"
    summary = train(compose_train([*FAST, "+experiment=offline_kd", f"teacher_ckpt={teacher_ckpt}",
                                   "distill_paradigm=encoder", "trainer.limit_train_batches=2"], out, cache_dir))
    return Path(summary["last_checkpoint"])


def test_export_writes_the_student_alone_and_matches_it(kd_run, tmp_path):
    cfg = compose_config("export", [f"ckpt_path={kd_run}", "input_size=[64,128]"], tmp_path / "export")
    report = export(cfg)
    path = Path(report["onnx"])
    assert path == kd_run.parent.parent / "export" / "net.onnx" and (path.parent / "export.json").is_file()
    model = onnx.load(str(path))
    student, _ = load_net(kd_run, "net")
    onnx_params = sum(int(torch.tensor(list(t.dims)).prod()) if t.dims else 1 for t in model.graph.initializer)
    # BatchNorm folds into convolutions on export, so the file holds at most the student's own numbers.
    assert onnx_params <= sum(p.numel() for p in student.parameters()) + sum(b.numel() for b in student.buffers())
    ckpt = torch.load(kd_run, map_location="cpu", weights_only=True)
    assert any(not k.startswith("net.") for k in ckpt["state_dict"]), "the KD checkpoint holds more than the student"
    assert [i.name for i in model.graph.input] == ["image"] and [o.name for o in model.graph.output] == ["logits"]
    # Parity at the traced size and at another one (free height and width).
    assert set(report["parity_max_abs_diff"]) == {"64x128", "32x64"}
    assert all(d <= 1e-3 for d in report["parity_max_abs_diff"].values())


def test_export_refuses_a_size_the_unet_cannot_take(kd_run, tmp_path):
    cfg = compose_config("export", [f"ckpt_path={kd_run}", "input_size=[60,128]"], tmp_path / "export")
    with pytest.raises(ValueError, match="multiple of 32"):
        export(cfg)


def test_a_parity_beyond_tolerance_is_one_clear_error():
    with pytest.raises(RuntimeError, match="not faithful"):
        check_parity(0.2, 1e-3, "x.onnx")
    with pytest.raises(RuntimeError):
        check_parity(float("nan"), 1e-3, "x.onnx")


def test_profile_reports_presets_and_a_checkpoint_and_adds_to_its_run(student_run, tmp_path):
    run = tmp_path / "student_run"
    shutil.copytree(Path(student_run["last_checkpoint"]).parent.parent, run)
    ckpt = run / "checkpoints" / "last.ckpt"
    cfg = compose_config("profile", ["models=[student_mnv2]", f"ckpt_path={ckpt}", "reference_model=student_mnv2",
                                     "resolutions=[[64,128]]", "backends=[eager,channels_last,onnxruntime]",
                                     "warmup=1", "repeats=1", "rounds=2"], tmp_path / "profile")
    report = profile(cfg)
    models = ["student_mnv2", "student_run:net"]
    assert [p["model"] for p in report["presets"]] == models
    assert {(r["model"], r["backend"]) for r in report["latency"]} == {
        (m, b) for m in models for b in ("eager", "channels_last", "onnxruntime")}
    assert all(r["calls"] == 2 and r["median_ms"] > 0 and r["p90_ms"] >= r["median_ms"] for r in report["latency"])
    ratios = {(r["model"], r["backend"]): r for r in report["ratios"]}
    assert ratios[("student_mnv2", "eager")]["vs_reference"] == pytest.approx(1.0)
    assert ratios[("student_mnv2", "onnxruntime")]["vs_reference"] == pytest.approx(1.0)
    assert ratios[("student_mnv2", "eager")]["vs_own_eager"] == pytest.approx(1.0)
    assert ratios[("student_run:net", "onnxruntime")]["vs_own_eager"] > 0
    onnx_rows = [r for r in report["latency"] if r["backend"] == "onnxruntime"]
    assert all(r["onnx_max_abs_diff"] <= 1e-3 for r in onnx_rows)
    # The same network (preset and checkpoint) counts the same compute.
    by_model = {p["model"]: p for p in report["presets"]}
    assert by_model["student_run:net"]["gmacs@64x128"] == pytest.approx(by_model["student_mnv2"]["gmacs@64x128"])
    for name in ("profile.md", "profile.csv", "profile.json", "latency.png"):
        assert (tmp_path / "profile" / name).is_file() and (run / "profile" / name).is_file()
    summary = json.loads((run / "summary.json").read_text())
    assert [r["model"] for r in summary["profile"]["latency"]] == ["student_run:net"] * 3
    assert set(report["layers"]) == set(models)


class Looped(nn.Module):
    """A ModuleList run in a loop, as smp's decoder runs its blocks: the list itself is never called."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Conv2d(3, 8, 3, padding=1)
        self.blocks = nn.ModuleList([nn.Conv2d(8, 8, 3, padding=1) for _ in range(3)])
        self.head = nn.Sequential(nn.Conv2d(8, 2, 1), nn.Identity())

    def forward(self, x):
        x = self.encoder(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def test_layer_table_looks_through_containers_that_never_run():
    rows = layer_table(Looped(), torch.randn(1, 3, 16, 16), depth=1)
    assert {r["layer"] for r in rows} == {"encoder", "blocks.0", "blocks.1", "blocks.2", "head.0", "head.1"}
    assert sum(r["share"] for r in rows) <= 1.0 + 1e-6


def test_layer_table_times_each_top_level_layer():
    net = nn.Sequential()
    net.add_module("encoder", nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(16, 16, 3, padding=1)))
    net.add_module("head", nn.Conv2d(16, 2, 1))
    rows = layer_table(net, torch.randn(1, 3, 32, 32), depth=0)
    assert {r["layer"] for r in rows} == {"encoder", "head"}
    assert all(r["calls"] == 1 and 0 < r["share"] <= 1.0 for r in rows)
    assert rows[0]["layer"] == "encoder"  # two 16-channel 3x3 convs cost more than one 1x1 conv


@pytest.mark.parametrize("damage", ["{not json", "[]"])
def test_a_damaged_run_summary_keeps_the_profile_and_says_so(tmp_path, monkeypatch, capsys, damage):
    from segkd.analysis import profile_report

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "summary.json").write_text(damage)
    monkeypatch.setattr(profile_report, "write_report", lambda report, path: path.mkdir(parents=True))
    profile_report.add_to_checkpoint_run({"latency": [], "device": "cpu", "threads": 1}, run / "checkpoints" / "last.ckpt")
    err = capsys.readouterr().err
    assert f"segkd: the run's {run / 'summary.json'} is " in err and f"the profile is in {run / 'profile'}" in err
    assert (run / "profile").is_dir() and (run / "summary.json").read_text() == damage, "nothing lost, nothing rewritten"
