"""Observability: W&B runs organised for comparison, layer-wise images, the teacher's report, calibration."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassCalibrationError

from segkd.config import CONF_DIR, compose_train_config
from segkd.metrics.calibration import CalibrationBins
from segkd.metrics.segmentation import class_errors
from segkd.runtime.loggers import choose_mode
from segkd.train import run_identity, train
from segkd.visual.knowledge import AGREEMENT, teacher_maps
from segkd.visual.maps import normalise
from wandb_records import read_run


def logits_of(probabilities: list[list[float]]) -> torch.Tensor:
    """(pixels, classes) probabilities -> (1, C, 1, pixels) logits with exactly that softmax."""
    return torch.tensor(probabilities).log().T.reshape(1, len(probabilities[0]), 1, len(probabilities))


# ----------------------------------------------------------------------------- calibration and errors

def test_calibration_error_of_a_hand_made_prediction():
    # Two pixels at confidence 0.9 (one right, one wrong), two at 0.7 (both right), one unlabelled.
    logits = logits_of([[0.9, 0.1], [0.9, 0.1], [0.3, 0.7], [0.3, 0.7], [0.9, 0.1]])
    target = torch.tensor([[[0, 1, 1, 1, 255]]])
    metric = CalibrationBins(n_bins=15)
    metric.update(logits, target)
    out = metric.compute()
    # ECE = 2/4 * |0.5 - 0.9| + 2/4 * |1.0 - 0.7| = 0.35
    assert out["ece"].item() == pytest.approx(0.35, abs=1e-6)
    assert out["count"].sum().item() == 4
    assert out["count"][13].item() == 2 and out["accuracy"][13].item() == pytest.approx(0.5)
    assert out["count"][10].item() == 2 and out["confidence"][10].item() == pytest.approx(0.7)


def test_calibration_bins_equal_torchmetrics_and_add_up_over_batches():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 8, 8, generator=gen) * 3
    target = torch.randint(0, 5, (3, 8, 8), generator=gen)
    target[0, :2] = 255
    split = CalibrationBins(n_bins=10)
    for i in range(3):
        split.update(logits[i:i + 1], target[i:i + 1])
    valid = target != 255
    flat_logits = logits.permute(0, 2, 3, 1)[valid]
    reference = MulticlassCalibrationError(num_classes=5, n_bins=10, norm="l1")(flat_logits.softmax(-1), target[valid])
    assert split.compute()["ece"].item() == pytest.approx(reference.item(), abs=1e-6)


def test_class_errors_name_the_class_most_pixels_go_to():
    confmat = torch.tensor([[8, 2, 0], [3, 0, 1], [0, 0, 0]])
    errors = class_errors(confmat, ["road", "car", "bus"])
    assert errors["road"] == {"miss_rate": pytest.approx(0.2), "confused_with": "car", "confused_share": pytest.approx(0.2)}
    assert errors["car"]["miss_rate"] == pytest.approx(1.0) and errors["car"]["confused_with"] == "road"
    assert errors["car"]["confused_share"] == pytest.approx(0.75)
    assert errors["bus"] == {"miss_rate": None, "confused_with": None, "confused_share": None}


def test_teacher_maps_sort_pixels_by_who_is_right():
    teacher = logits_of([[0.9, 0.1], [0.9, 0.1], [0.2, 0.8], [0.2, 0.8], [0.5, 0.5]])
    student = logits_of([[0.8, 0.2], [0.1, 0.9], [0.7, 0.3], [0.3, 0.7], [0.9, 0.1]])
    target = torch.tensor([[[0, 0, 0, 0, 255]]])
    maps = teacher_maps(teacher, student, target)
    names = [AGREEMENT[int(code)][0] for code in maps["agreement"].flatten()]
    assert names == ["both right", "teacher right, student wrong", "student right, teacher wrong", "both wrong",
                     "not labelled"]
    assert maps["entropy"].flatten()[4].item() == pytest.approx(1.0)  # uniform over 2 classes
    assert maps["off_argmax"].flatten()[4].item() == pytest.approx(1.0)
    assert maps["off_argmax"].flatten()[0].item() == pytest.approx(0.2)  # 0.1 of at most 0.5


def test_maps_are_normalised_each_on_its_own():
    maps = torch.stack([torch.arange(100.0).view(10, 10), 1000 + 5 * torch.arange(100.0).view(10, 10),
                        torch.full((10, 10), 3.0)])
    out = normalise(maps)
    assert out[0].min() == 0 and out[0].max() == 1 and torch.allclose(out[0], out[1], atol=1e-4)
    assert out[2].abs().sum() == 0  # constant: nothing to show
    spiked = torch.arange(100.0).view(10, 10)
    spiked[0, 0] = 1e6  # one extreme pixel (a padded border makes such) does not wash out the rest
    assert normalise(spiked[None])[0].median().item() == pytest.approx(0.5, abs=0.02)


# ----------------------------------------------------------------------------- W&B

def test_wandb_mode_is_offline_unless_logged_in_and_reachable(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert choose_mode(None) == ("offline", None)
    assert choose_mode("disabled") == ("disabled", None)
    mode, reason = choose_mode("online")
    assert mode == "offline" and "wandb login" in reason
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    mode, reason = choose_mode(None, timeout=2)
    assert mode == "offline" and "did not answer" in reason
    with pytest.raises(ValueError, match="WANDB_MODE='loud'"):
        choose_mode("loud")


def test_offline_wandb_run_holds_identity_config_and_val_scores(make_cfg, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    cfg = make_cfg("logger=csv_wandb", "logger.wandb.log_model=true", "seed=7", "trainer.max_epochs=2",
                   "trainer.log_every_n_steps=1")
    summary = train(cfg)
    (run_dir,) = (Path(cfg.paths.output_dir) / "wandb").glob("offline-run-*")
    run = read_run(run_dir)
    assert run["project"] == "segkd" and run["group"] == "student" and run["job_type"] == "student"
    assert run["run_id"] == run_identity(cfg, type("S", (), {"job_type": None})())["id"]  # resumes continue it
    # Named as segkd.compare names the recipe (every override but the seed), then the seed.
    recipe = run["config"]["recipe"]
    assert recipe.startswith("student/student_mnv2 dataset.batch_size=4") and "seed" not in recipe
    assert run["name"] == f"{recipe} seed7"
    # Every setting is a column: the resolved config's top-level groups, the recipe and the complexity.
    assert run["config"]["seed"] == 7 and run["config"]["dataset"]["crop_size"] == [64, 64]
    assert run["config"]["complexity"]["params"] == summary["complexity"]["params"]
    assert run["history"]["val/mIoU"] == pytest.approx(summary["val"]["mIoU"], abs=1e-6)
    assert "perf/images_per_s" in run["history"] and run["history"]["perf/images_per_s"] > 0
    assert run["summary"]["final/val_mIoU"] == pytest.approx(summary["val"]["mIoU"], abs=1e-6)
    assert run["summary"]["complexity/gmacs"] == pytest.approx(summary["complexity"]["gmacs"])
    assert run["artifacts"], "log_model=true logs the checkpoints as artifacts"
    metrics = (Path(cfg.paths.output_dir) / "csv" / "metrics.csv").read_text().splitlines()[0]
    assert "perf/images_per_s" in metrics and "val/ece" in metrics


def test_a_multirun_groups_its_runs_by_sweep(tmp_path):
    overrides = ["+experiment=offline_kd", "distill_paradigm=cwd", "seed=3", "hydra.mode=MULTIRUN",
                 f"hydra.sweep.dir={tmp_path}/cwd_sweep"]
    cfg = compose_train_config(overrides, tmp_path / "0")

    class KD:
        job_type = "offline_kd"

    identity = run_identity(cfg, KD())
    assert identity.pop("id") != run_identity(compose_train_config(overrides, tmp_path / "1"), KD())["id"]
    assert identity == {"recipe": "offline_kd/student_mnv2/cwd", "name": "offline_kd/student_mnv2/cwd seed3",
                        "group": "offline_kd sweep cwd_sweep", "job_type": "offline_kd"}


# ----------------------------------------------------------------------------- pictures

def test_layer_images_are_off_by_default_and_keep_the_checkpoints_when_on(make_cfg):
    default = make_cfg()
    assert "layer_images" not in default.callbacks
    on = make_cfg("callbacks=layer_images")
    assert set(on.callbacks) == set(default.callbacks) | {"layer_images"}
    assert (CONF_DIR / "callbacks" / "layer_images.yaml").is_file()


def read_png(path: Path) -> np.ndarray:
    picture = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert picture is not None, f"{path} is not a readable image"
    return cv2.cvtColor(picture, cv2.COLOR_BGR2RGB)


def test_layer_images_and_teacher_report_of_a_cached_kd_run(make_cfg, teacher_ckpt):
    layers = ["encoder#3", "decoder.blocks.2"]
    cfg = make_cfg("+experiment=offline_kd", f"teacher_ckpt={teacher_ckpt}", "distill_paradigm=cwd",
                   "teacher_cache=true", "callbacks=layer_images", "callbacks.layer_images.layers=[" + ",".join(f'"{ref}"' for ref in layers) + "]",
                   "callbacks.layer_images.num_images=3", "trainer.limit_train_batches=2")
    summary = train(cfg)
    out = Path(cfg.paths.output_dir)
    rows, height, width = 3, 64, 128  # three val images of 64x128
    epoch = out / "layer_images" / "epoch000"
    for name in ("encoder_3", "decoder.blocks.2"):
        picture = read_png(epoch / f"{name}.png")
        # teacher mean | student mean | |difference| | teacher PCA | student PCA
        assert picture.shape == (rows * height, 5 * width, 3) and picture.dtype == np.uint8
        for r in range(rows):
            for col in (3, 4):  # PCA views: every channel of every map spans the whole range
                panel = picture[r * height:(r + 1) * height, col * width:(col + 1) * width]
                assert panel.reshape(-1, 3).min(0).tolist() == [0, 0, 0]
                assert panel.reshape(-1, 3).max(0).tolist() == [255, 255, 255]
            for col in (0, 1):  # channel means: not a flat colour
                assert picture[r * height:(r + 1) * height, col * width:(col + 1) * width].std() > 0
    assert read_png(epoch / "predictions.png").shape == (rows * height, 4 * width, 3)
    assert read_png(epoch / "teacher_knowledge.png").shape == (rows * height, 3 * width, 3)

    # The teacher's report: calibration and per-class errors in summary.json, pictures once per run.
    teacher = json.loads((out / "summary.json").read_text())["teacher"]
    assert 0 <= teacher["ece"] <= 1 and set(teacher["errors"]) == set(teacher["IoU"])
    assert len(teacher["reliability"]["count"]) == 15
    assert sum(teacher["reliability"]["count"]) > 0 and not math.isnan(summary["teacher"]["ece"])
    assert read_png(out / "teacher" / "teacher_report.png").ndim == 3
    assert read_png(out / "teacher" / "teacher_knowledge.png").shape == (4 * height, 3 * width, 3)
