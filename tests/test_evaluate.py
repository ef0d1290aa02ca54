"""segkd.evaluate: inference modes and TTA, the scores and files it writes, its errors, parity with the
official Cityscapes evaluator, and the same numbers from two DDP processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from segkd.config import compose_config
from segkd.data.labels import CATEGORIES, CLASS_NAMES, LABELS, TRAIN_TO_ID
from segkd.evaluate import evaluate
from segkd.inference import SegmentationPredictor
from segkd.models import build_net
from segkd.runtime.errors import errors_in_one_line

from conftest import FAST, ROOT, random_image, with_classes, write_bdd_tree, write_png

#: The tiny SynthStreets of the shared fixtures (5 val images: odd, for DDP) ...
TINY = [o for o in FAST if o.startswith("dataset.prepare.")]
#: ... scored on the CPU, in the batches training validated with.
DATA = [*TINY, "trainer.accelerator=cpu", "trainer.enable_progress_bar=false", "batch_size=4", "num_workers=0"]
EVAL_LABEL_IDS = sorted(int(TRAIN_TO_ID[t]) for t in range(len(CLASS_NAMES)))
IGNORED_LABEL_IDS = [lb.id for lb in LABELS if lb.id >= 0 and lb.train_id == 255]


def eval_cfg(tmp_path: Path, cache_dir: Path, *overrides: str, run: str = "eval"):
    """The evaluate config with overrides; other datasets than SynthStreets have no generator to shrink."""
    other_data = any(o.startswith("dataset=") for o in overrides)
    data = [o for o in DATA if not (other_data and o in TINY)]
    return compose_config("evaluate", [*data, *overrides, f"paths.cache_dir={cache_dir}", f"paths.log_dir={tmp_path}"],
                          tmp_path / run)


def predictions(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted(folder.iterdir())}


# ----------------------------------------------------------------------------- inference modes and TTA

def tiny_unet() -> nn.Module:
    torch.manual_seed(0)
    return build_net({"_target_": "segkd.models.build_unet", "encoder_name": "mobilenet_v2", "classes": 19,
                      "decoder_channels": [16, 16, 8, 8, 8]}).eval()


def test_whole_and_slide_agree_on_an_image_smaller_than_the_window():
    net, image = tiny_unet(), torch.randn(2, 3, 70, 100)  # not a multiple of 32: both pad the same way
    whole = SegmentationPredictor(net, mode="whole")(image)
    slide = SegmentationPredictor(net, mode="slide", window=(128, 256), stride=(64, 128))(image)
    assert whole.shape == (2, 19, 70, 100)
    assert torch.equal(whole, slide)


def test_slide_windows_cover_the_image_and_average_where_they_overlap():
    # A per-pixel model gives the same logits in any window: stitching and averaging must not change them.
    net = nn.Conv2d(3, 19, kernel_size=1)
    image = torch.randn(1, 3, 75, 130)
    whole = SegmentationPredictor(net, mode="whole")(image)
    slide = SegmentationPredictor(net, mode="slide", window=(32, 64), stride=(20, 40))(image)
    torch.testing.assert_close(slide, whole)


def mirror_conv(symmetric: bool) -> nn.Module:
    conv = nn.Conv2d(3, 19, kernel_size=3, padding=1)
    with torch.no_grad():
        if symmetric:  # a kernel equal to its mirror image: the model commutes with a horizontal flip
            conv.weight.copy_((conv.weight + conv.weight.flip(-1)) / 2)
    return conv


def test_flip_tta_of_a_flip_equivariant_model_changes_nothing():
    image = torch.randn(2, 3, 64, 96)
    net = mirror_conv(symmetric=True)
    plain = SegmentationPredictor(net)(image)
    flipped = SegmentationPredictor(net, flip=True)(image)
    torch.testing.assert_close(flipped, plain)
    assert torch.equal(flipped.argmax(1), plain.argmax(1))
    # ... and a model that is not equivariant shows that the mirror view was used
    skewed = mirror_conv(symmetric=False)
    assert not torch.allclose(SegmentationPredictor(skewed, flip=True)(image), SegmentationPredictor(skewed)(image))


def test_multi_scale_views_come_back_at_the_input_size():
    out = SegmentationPredictor(tiny_unet(), scales=(0.5, 1.0, 1.5), flip=True)(torch.randn(1, 3, 64, 128))
    assert out.shape == (1, 19, 64, 128)
    torch.testing.assert_close(out.sum(1), torch.ones(1, 64, 128))  # an average of probabilities


# ----------------------------------------------------------------------------- scores and files

def test_whole_image_scores_reproduce_training_validation_and_predictions_are_benchmark_files(
        tmp_path, cache_dir, student_run):
    report = evaluate(eval_cfg(tmp_path, cache_dir, f"ckpt_path={student_run['last_checkpoint']}"))
    val = student_run["val"]
    assert report["images"] == 5 and report["devices"] == 1
    assert report["mIoU"] == pytest.approx(val["mIoU"], abs=1e-12), "the metric and the data training validates with"
    assert report["pixel_acc"] == pytest.approx(val["pixel_acc"], abs=1e-12)
    for name in CLASS_NAMES:
        assert (report["IoU"][name] is None) == (val["IoU"][name] is None)
    assert list(report["category_IoU"]) == list(CATEGORIES)

    written = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert written["mIoU"] == report["mIoU"] and written["checkpoint"] == str(student_run["last_checkpoint"])
    assert {"mode", "tta", "dataset", "split", "images", "time_s", "category_IoU"} <= set(written)
    assert (written["mode"], written["split"], written["tta"]) == ("whole", "val", {"flip": False, "scales": [1.0]})

    results = predictions(tmp_path / "eval" / "cityscapes_results")
    assert len(results) == 5 and all(n.endswith("_000019_pred_labelIds.png") for n in results)
    assert all(p.shape == (64, 128) and p.dtype == np.uint8 for p in results.values())
    assert set(np.unique(np.concatenate([p.ravel() for p in results.values()]))) <= set(EVAL_LABEL_IDS)
    assert not (tmp_path / "eval" / "overlays").exists(), "overlays only when asked"


def test_overlays_go_to_their_own_folder_when_asked(tmp_path, cache_dir, student_run):
    evaluate(eval_cfg(tmp_path, cache_dir, f"ckpt_path={student_run['last_checkpoint']}", "save_overlays=true",
                      "mode=slide", "window=[32,64]"))
    overlays = sorted((tmp_path / "eval" / "overlays").iterdir())
    assert len(overlays) == 5 and cv2.imread(str(overlays[0])).shape == (64, 128, 3)
    assert len(list((tmp_path / "eval" / "cityscapes_results").iterdir())) == 5, "nothing else in the results"


def test_a_split_without_labels_gets_predictions_only(tmp_path, cache_dir, student_run):
    root = tmp_path / "cityscapes"
    for city, n in (("berlin", 2), ("bonn", 1)):
        for i in range(n):
            write_png(root / "leftImg8bit" / "test" / city / f"{city}_{i:06d}_000019_leftImg8bit.png",
                      random_image(np.random.default_rng(i), (40, 72)))
    report = evaluate(eval_cfg(tmp_path, cache_dir, f"ckpt_path={student_run['last_checkpoint']}", "dataset=cityscapes",
                               f"dataset.root={root}", "split=test"))
    assert report["images"] == 3 and "mIoU" not in report
    assert not (tmp_path / "eval" / "metrics.json").exists()
    results = predictions(tmp_path / "eval" / "cityscapes_results")
    assert sorted(results) == ["berlin_000000_000019_pred_labelIds.png", "berlin_000001_000019_pred_labelIds.png",
                               "bonn_000000_000019_pred_labelIds.png"]
    assert results["bonn_000000_000019_pred_labelIds.png"].shape == (40, 72), "the image's own size, unpadded"


def test_bdd100k_predictions_are_train_ids_named_after_the_image(tmp_path, cache_dir, student_run):
    written = write_bdd_tree(tmp_path / "bdd", split="val", n=3)
    report = evaluate(eval_cfg(tmp_path, cache_dir, f"ckpt_path={student_run['last_checkpoint']}", "dataset=bdd100k",
                               f"dataset.root={tmp_path / 'bdd'}"))
    assert report["images"] == 3 and 0.0 <= report["mIoU"] <= 1.0 and report["prediction_format"] == "train ids"
    results = predictions(tmp_path / "eval" / "bdd100k_results")
    assert sorted(results) == sorted(f"{image.stem}.png" for image, _, _ in written)
    assert all(p.max() < 19 for p in results.values())


def test_each_network_of_a_mutual_learning_checkpoint_is_scored_by_name(tmp_path, cache_dir):
    from segkd.train import train

    from conftest import compose_train

    summary = train(compose_train([*FAST, "+experiment=online_dml", "trainer.limit_train_batches=1"],
                                  tmp_path / "dml", cache_dir))
    ckpt = f"ckpt_path={summary['last_checkpoint']}"
    net = evaluate(eval_cfg(tmp_path, cache_dir, ckpt, run="net"))
    peer = evaluate(eval_cfg(tmp_path, cache_dir, ckpt, "net=peer", run="peer"))
    assert net["net"] == "net" and peer["net"] == "peer"
    assert net["mIoU"] == pytest.approx(summary["val"]["mIoU"], abs=1e-12)
    assert peer["mIoU"] == pytest.approx(summary["peers"]["peer"]["mIoU"], abs=1e-12)


# ----------------------------------------------------------------------------- errors in one line

def one_line_error(capsys, monkeypatch, cfg) -> str:
    monkeypatch.delenv("SEGKD_DEBUG", raising=False)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(SystemExit) as exit_info, errors_in_one_line():
        evaluate(cfg)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("segkd: error: "), err
    return err


@pytest.mark.parametrize("case, expected", [
    ("missing", "does not exist"), ("empty", "is empty"), ("not_segkd", "not a segkd checkpoint"),
    ("no_checkpoint", "no checkpoint given"), ("wrong_net", "has no network 'teacher'"),
    ("directory", "is a directory"), ("truncated", "cannot be read: truncated"),
])
def test_a_bad_checkpoint_is_one_line_naming_it(tmp_path, cache_dir, student_run, capsys, monkeypatch, case, expected):
    path = tmp_path / "model.ckpt"
    if case == "empty":
        path.touch()
    elif case == "not_segkd":
        torch.save({"state_dict": {"w": torch.zeros(1)}}, path)
    elif case == "directory":
        path.mkdir()
    elif case == "truncated":
        path.write_bytes(Path(student_run["last_checkpoint"]).read_bytes()[:5000])
    overrides = {"no_checkpoint": ["ckpt_path=null"],
                 "wrong_net": [f"ckpt_path={student_run['last_checkpoint']}", "net=teacher"],
                 }.get(case, [f"ckpt_path={path}"])
    err = one_line_error(capsys, monkeypatch, eval_cfg(tmp_path, cache_dir, *overrides))
    assert expected in err
    assert ("ckpt_path" in err) if case != "wrong_net" else ("['net']" in err)


def test_a_missing_dataset_root_is_one_line_naming_it(tmp_path, cache_dir, student_run, capsys, monkeypatch):
    cfg = eval_cfg(tmp_path, cache_dir, f"ckpt_path={student_run['last_checkpoint']}", "dataset=cityscapes",
                   "dataset.root=/nonexistent/cityscapes")
    err = one_line_error(capsys, monkeypatch, cfg)
    assert "/nonexistent/cityscapes does not exist" in err and "dataset.root" in err


def test_a_checkpoint_for_another_number_of_classes_is_one_line(tmp_path, cache_dir, student_run, capsys, monkeypatch):
    ckpt = with_classes(student_run["last_checkpoint"], 20, tmp_path / "classes20.ckpt")
    err = one_line_error(capsys, monkeypatch, eval_cfg(tmp_path, cache_dir, f"ckpt_path={ckpt}"))
    assert f"{ckpt} ('net') predicts 20 classes" in err and "has 19" in err


def test_a_split_the_dataset_does_not_have_is_one_line(tmp_path, cache_dir, student_run, capsys, monkeypatch):
    cfg = eval_cfg(tmp_path, cache_dir, f"ckpt_path={student_run['last_checkpoint']}", "split=test")
    assert "has no leftImg8bit/test" in one_line_error(capsys, monkeypatch, cfg)  # SynthStreets has train and val


@pytest.mark.parametrize("overrides, expected", [
    (["mode=bogus"], "mode='bogus' is not an inference mode"),
    (["mode=slide", "window=[0,64]"], "window=[0, 64] is not a size"),
    (["mode=slide", "window=[32,64]", "stride=[48,64]"], "stride=[48, 64] is larger than window=[32, 64]"),
    (["tta.scales=[0]"], "tta.scales=[0] must be positive factors"),
    (["save_overlays=true", "overlay_alpha=2"], "overlay_alpha=2 must be between 0"),
    (["batch_size=0"], "batch_size=0 must be a whole number of images"),
])
def test_a_bad_inference_option_is_one_line_naming_the_key(tmp_path, cache_dir, student_run, capsys, monkeypatch,
                                                            overrides, expected):
    cfg = eval_cfg(tmp_path, cache_dir, f"ckpt_path={student_run['last_checkpoint']}", *overrides)
    assert expected in one_line_error(capsys, monkeypatch, cfg)
    assert not (tmp_path / "eval" / "cityscapes_results").exists(), "refused before any prediction"


# ----------------------------------------------------------------------------- the official evaluator

#: ``python -m cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling`` (no arguments: it finds the
#: ground truth under CITYSCAPES_DATASET and the predictions under CITYSCAPES_RESULTS), run as its own
#: ``__main__``. cityscapesscripts 2.3.0 still calls ``np.in1d``, which NumPy 2.4 removed (for its
#: instance-weighted nIoU only); the alias is restored as the documented replacement ``np.isin``.
OFFICIAL_EVALUATOR = """
import runpy
import numpy as np
if not hasattr(np, "in1d"):
    np.in1d = lambda a, b, invert=False: np.isin(a, b, invert=invert).ravel()
runpy.run_module("cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling", run_name="__main__", alter_sys=True)
"""
CITIES = {"frankfurt": 2, "lindau": 1}
SIZE = (64, 128)


def write_cityscapes_ground_truth(root: Path, predicted: dict[str, np.ndarray], rng) -> dict:
    """Label ids built around what the network predicted, so that every case the spec names occurs:
    a class it predicts that the ground truth lacks, a class neither holds, and ignored label ids
    (unlabeled, static, parking, guard rail, ...) under valid predictions. The rest is the prediction
    with 40% of pixels changed to other evaluated classes, so IoUs are neither 0 nor 1."""
    all_predicted = np.unique(np.concatenate([p.ravel() for p in predicted.values()]))
    only_predicted = int(all_predicted[0])  # predicted, never in the ground truth
    absent = next(i for i in EVAL_LABEL_IDS if i not in all_predicted)  # in neither
    allowed = np.array([i for i in EVAL_LABEL_IDS if i not in (only_predicted, absent)], dtype=np.uint8)
    for stem, pred in predicted.items():
        gt = pred.copy()
        change = (rng.random(pred.shape) < 0.4) | (gt == only_predicted)
        gt[change] = rng.choice(allowed, size=int(change.sum()))
        gt[:, :24] = rng.choice(np.array(IGNORED_LABEL_IDS, dtype=np.uint8), size=(pred.shape[0], 24))
        # official instanceIds: id*1000+k on classes with instances (ids 24..33; here k is the image half),
        # the label id elsewhere
        instances = gt.astype(np.uint16)
        half = np.broadcast_to(np.arange(gt.shape[1]) >= gt.shape[1] // 2, gt.shape)
        things = gt >= 24
        instances[things] = gt[things].astype(np.uint16) * 1000 + half[things]
        city = stem.split("_")[0]
        write_png(root / "gtFine" / "val" / city / f"{stem}_gtFine_labelIds.png", gt)
        write_png(root / "gtFine" / "val" / city / f"{stem}_gtFine_instanceIds.png", instances)
    return {"only_predicted": only_predicted, "absent": absent}


def silenced(ckpt_path: str, train_id: int, out: Path) -> Path:
    """A copy of a checkpoint whose network never predicts ``train_id`` (its logit bias is -1e4): a tiny,
    barely trained net predicts every class somewhere, and the parity test needs one it never predicts."""
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    ckpt["state_dict"]["net.segmentation_head.0.bias"][train_id] = -1e4
    torch.save(ckpt, out)
    return out


def test_scores_agree_with_the_official_cityscapes_evaluator(tmp_path, cache_dir, student_run):
    root, rng = tmp_path / "cityscapes", np.random.default_rng(0)
    ckpt = silenced(student_run["last_checkpoint"], CLASS_NAMES.index("train"), tmp_path / "silenced.ckpt")
    for city, n in CITIES.items():
        for i in range(n):
            image = root / "leftImg8bit" / "val" / city / f"{city}_{i:06d}_000019_leftImg8bit.png"
            write_png(image, random_image(rng, SIZE))
    common = [f"ckpt_path={ckpt}", "dataset=cityscapes", f"dataset.root={root}"]
    first = evaluate(eval_cfg(tmp_path, cache_dir, *common, "labels=false", run="first"))  # what the network predicts
    assert first["images"] == 3
    predicted = {name[: -len("_pred_labelIds.png")]: p
                 for name, p in predictions(tmp_path / "first" / "cityscapes_results").items()}
    case = write_cityscapes_ground_truth(root, predicted, rng)

    report = evaluate(eval_cfg(tmp_path, cache_dir, *common, run="scored"))
    env = {**os.environ, "CITYSCAPES_DATASET": str(root), "CITYSCAPES_EXPORT_DIR": str(tmp_path),
           "CITYSCAPES_RESULTS": str(tmp_path / "scored" / "cityscapes_results")}
    done = subprocess.run([sys.executable, "-c", OFFICIAL_EVALUATOR], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    official = json.loads((tmp_path / "resultPixelLevelSemanticLabeling.json").read_text())

    name_of = {lb.id: lb.name for lb in LABELS}
    assert report["IoU"][name_of[case["only_predicted"]]] == 0.0, "predicted, never true: IoU 0"
    assert report["IoU"][name_of[case["absent"]]] is None, "in neither: NaN officially, null here"
    assert report["mIoU"] == pytest.approx(official["averageScoreClasses"], abs=1e-6)
    for name in CLASS_NAMES:
        theirs = official["classScores"][name]
        assert (report["IoU"][name] is None) == np.isnan(theirs), name
        if not np.isnan(theirs):
            assert report["IoU"][name] == pytest.approx(theirs, abs=1e-6), name
    for name in CATEGORIES:
        assert report["category_IoU"][name] == pytest.approx(official["categoryScores"][name], abs=1e-6), name
    assert 0.0 < report["mIoU"] < 1.0


# ----------------------------------------------------------------------------- DDP

@pytest.mark.slow
def test_two_cpu_processes_score_an_odd_split_like_one(tmp_path, cache_dir, student_run):
    ckpt = f"ckpt_path={student_run['last_checkpoint']}"
    single = evaluate(eval_cfg(tmp_path, cache_dir, ckpt, "batch_size=2", run="single"))
    run_dir = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "segkd.evaluate", *DATA, ckpt, "batch_size=2", "trainer.devices=2",
           f"paths.cache_dir={cache_dir}", f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    ddp = json.loads((run_dir / "metrics.json").read_text())
    assert (run_dir / "ddp_rank1.log").exists(), "a second process ran"
    assert ddp["devices"] == 2 and ddp["images"] == single["images"] == 5, "5 images over 2 ranks, none twice"
    assert ddp["mIoU"] == pytest.approx(single["mIoU"], abs=1e-12)
    assert ddp["pixel_acc"] == pytest.approx(single["pixel_acc"], abs=1e-12)
    assert ddp["IoU"] == pytest.approx(single["IoU"], abs=1e-12)
    mine, theirs = predictions(run_dir / "cityscapes_results"), predictions(tmp_path / "single" / "cityscapes_results")
    assert sorted(mine) == sorted(theirs) and len(mine) == 5
    assert all(np.array_equal(mine[name], theirs[name]) for name in mine)
