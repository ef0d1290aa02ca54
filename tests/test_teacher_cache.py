"""Teacher-logit cache: replayed logits equal the live teacher's, the geometry maths, layouts, errors."""

from __future__ import annotations

import ast
import logging
import shutil
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

import segkd.systems
from segkd.data.geometry import CropGeometry
from segkd.data.sampling import sample_seed
from segkd.distill.teacher import RescaledTeacher, load_teacher
from segkd.distill.teacher_cache import (
    TeacherCacheError, TeacherLogitCache, bytes_per_image, compress, expand, open_or_build, replay,
)
from segkd.train import build_system, train


def reference_view(full: torch.Tensor, geometry: CropGeometry) -> torch.Tensor:
    """Resize the whole map to the scaled size, pad, crop, flip: the augmentation, done the long way."""
    sh, sw, pt, pb, pl, pr, x0, y0, x1, y1, flip = geometry
    scaled = F.interpolate(full[None], size=(sh, sw), mode="bilinear", align_corners=False)[0]
    padded = F.pad(scaled, (pl, pr, pt, pb))
    crop = padded[:, y0:y1, x0:x1]
    return crop.flip(-1) if flip else crop


def random_geometry(rng: np.random.Generator, h: int, w: int, flip: int, scaled: bool) -> CropGeometry:
    """A random scale -> pad -> crop -> flip record (scale 1 when not ``scaled``), as the data pipeline writes it."""
    sh, sw = (int(rng.integers(10, 60)), int(rng.integers(16, 90))) if scaled else (h, w)
    pt, pb, pl, pr = (int(v) for v in rng.integers(0, 6, 4))
    ch, cw = int(rng.integers(4, sh + pt + pb)), int(rng.integers(4, sw + pl + pr))
    y0, x0 = int(rng.integers(0, sh + pt + pb - ch + 1)), int(rng.integers(0, sw + pl + pr - cw + 1))
    return CropGeometry(sh, sw, pt, pb, pl, pr, x0, y0, x0 + cw, y0 + ch, flip)


@pytest.mark.parametrize("flip", [0, 1])
@pytest.mark.parametrize("seed", range(4))
def test_replay_equals_resize_pad_crop_flip(seed, flip):
    rng = np.random.default_rng(seed)
    h, w = 24, 40
    full = torch.randn(5, h, w)
    geometry = random_geometry(rng, h, w, flip, scaled=True)
    view = full.flip(-1) if flip else full  # the cache stores the mirror image's map for flipped samples
    torch.testing.assert_close(replay(view, geometry, (h, w)), reference_view(full, geometry), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("flip", [0, 1])
@pytest.mark.parametrize("seed", range(4))
def test_unscaled_replay_is_an_exact_slice(seed, flip):
    """At scale 1 on a full-resolution map, replay slices (padding included) and equals the long way exactly."""
    rng = np.random.default_rng(seed)
    h, w = 24, 40
    full = torch.randn(5, h, w)
    geometry = random_geometry(rng, h, w, flip, scaled=False)
    view = full.flip(-1) if flip else full
    torch.testing.assert_close(replay(view, geometry, (h, w)), reference_view(full, geometry), atol=0, rtol=0)


def test_top_k_keeps_the_top_classes_and_the_mass_of_the_rest():
    logits = torch.randn(2, 19, 6, 8) * 3
    stored = compress(logits, top_k=4)
    assert stored["values"].dtype == torch.float16 and stored["ids"].dtype == torch.uint8
    dense = torch.stack([expand(stored["values"][i], stored["ids"][i], stored["rest"][i], 19) for i in range(2)])
    p, q = logits.softmax(1), dense.softmax(1)
    top = logits.topk(4, dim=1).indices
    torch.testing.assert_close(q.gather(1, top), p.gather(1, top), atol=3e-3, rtol=3e-3)
    rest = 1 - p.gather(1, top).sum(1)
    torch.testing.assert_close(1 - q.gather(1, top).sum(1), rest, atol=3e-3, rtol=3e-3)
    assert torch.equal(expand(compress(logits, None)["values"][0], None, None, 19), logits[0].half().float())
    assert bytes_per_image((1024, 2048), 19, stride=4, top_k=5) == 2 * 256 * 512 * (5 * 3 + 2)


@pytest.fixture
def whole_image_datamodule(make_cfg):
    """Crops of the whole image at scale 1 with no colour jitter: the cached and live views coincide."""
    cfg = make_cfg("dataset.crop_size=[64,128]", "dataset.scale_range=[1.0,1.0]", "dataset.jitter=0")
    datamodule = instantiate(cfg.dataset)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return cfg, datamodule


def test_replayed_cache_equals_the_live_teacher_on_the_same_view(whole_image_datamodule, teacher_ckpt, tmp_path,
                                                                  caplog):
    cfg, datamodule = whole_image_datamodule
    teacher = load_teacher(teacher_ckpt).net
    with caplog.at_level(logging.INFO, logger="segkd.distill.teacher_cache"):
        cache = open_or_build(teacher, teacher_ckpt, datamodule.plain_train_set(), 19, tmp_path / "logits",
                              batch_size=4, normalisation=datamodule.normalisation)
    # Without a terminal (a log file, a cluster job) the build reports its progress in lines.
    progress = [r.getMessage() for r in caplog.records if "s left" in r.getMessage()]
    assert [line.split(" images")[0] for line in progress] == [f"teacher-logit cache: {n}/16" for n in (4, 8, 12, 16)]
    assert cache.meta["stored_size"] == [64, 128] and cache.meta["arrays"]["values"][:3] == [16, 2, 19]
    datamodule.attach_train_extra(cache)
    train_set = datamodule.train_set
    flips = set()
    for index in range(6):
        sample = train_set[(index, sample_seed(0, 0, index))]
        flips.add(int(sample["geometry"][-1]))
        with torch.no_grad():
            live = teacher(sample["image"][None])[0]
        assert sample["teacher_logits"].shape == live.shape
        torch.testing.assert_close(sample["teacher_logits"], live, atol=2e-3 * live.abs().max().item(), rtol=0)
    assert flips == {0, 1}, "both orientations were checked"

    # The same cache is found again by its key; another teacher's bytes make it refuse.
    again = open_or_build(teacher, teacher_ckpt, datamodule.plain_train_set(), 19, tmp_path / "logits",
                          normalisation=datamodule.normalisation)
    assert again.path == cache.path
    other = tmp_path / "other.ckpt"
    other.write_bytes(teacher_ckpt.read_bytes() + b"\0")
    with pytest.raises(TeacherCacheError, match="does not match this run.*teacher_sha256"):
        open_or_build(teacher, other, datamodule.plain_train_set(), 19, tmp_path / "logits", path=cache.path,
                      normalisation=datamodule.normalisation)
    with pytest.raises(TeacherCacheError, match="top_k"):
        open_or_build(teacher, teacher_ckpt, datamodule.plain_train_set(), 19, tmp_path / "x", path=cache.path, top_k=3,
                      normalisation=datamodule.normalisation)

    # A cache whose build never finished, or whose arrays were cut short, says so.
    broken = tmp_path / "broken"
    shutil.copytree(cache.path, broken)
    (broken / "values.npy").write_bytes((broken / "values.npy").read_bytes()[:1000])
    with pytest.raises(TeacherCacheError, match="values.npy cannot be read.*delete the folder"):
        TeacherLogitCache(broken)
    (broken / "meta.json").unlink()
    with pytest.raises(TeacherCacheError, match="missing or incomplete"):
        TeacherLogitCache(broken)


def test_cached_teacher_refuses_feature_terms(make_cfg, teacher_ckpt):
    cfg = make_cfg("+experiment=offline_kd", f"teacher_ckpt={teacher_ckpt}", "teacher_cache=true",
                   "distill_paradigm=decoder")
    with pytest.raises(ValueError, match=r"holds logits only.*\['dec1', 'dec2', 'dec3'\].*teacher_cache=false"):
        train(cfg)


def test_offline_kd_trains_from_the_cache(make_cfg, teacher_ckpt, tmp_path):
    cfg = make_cfg("+experiment=offline_kd", f"teacher_ckpt={teacher_ckpt}", "teacher_cache=true",
                   "distill_paradigm=cwd", "trainer.limit_train_batches=2")
    summary = train(cfg)
    info = summary["teacher_cache"]
    assert info["images"] == 16 and info["mb_per_image"] > 0 and info["stored_size"] == [64, 128]
    assert summary["global_step"] == 2 and summary["val"]["mIoU"] >= 0


def test_a_rescaled_teacher_caches_and_replays_its_own_logits(whole_image_datamodule, teacher_ckpt, tmp_path):
    """input_scale: the teacher sees the image at half size and answers at full size; the cache holds
    exactly that (under another key than the unscaled teacher's), and a whole-image view replays it."""
    cfg, datamodule = whole_image_datamodule
    net = load_teacher(teacher_ckpt).net
    teacher = RescaledTeacher(net, 0.5)
    image = datamodule.plain_train_set()[0]["image"][None]  # 64x128 (padded to /32 already)
    with torch.no_grad():
        small = F.interpolate(image, size=(32, 64), mode="bilinear", align_corners=False)
        expected = F.interpolate(net(small), size=(64, 128), mode="bilinear", align_corners=False)
        torch.testing.assert_close(teacher(image), expected)
        assert not torch.allclose(teacher(image), net(image), atol=1e-3), "the scale changes what it says"

    cache = open_or_build(teacher, teacher_ckpt, datamodule.plain_train_set(), 19, tmp_path / "logits",
                          batch_size=4, input_scale=0.5, normalisation=datamodule.normalisation)
    plain = open_or_build(net, teacher_ckpt, datamodule.plain_train_set(), 19, tmp_path / "logits", batch_size=4,
                          normalisation=datamodule.normalisation)
    assert cache.path != plain.path and cache.meta["teacher_input_scale"] == 0.5
    assert "teacher_input_scale" not in plain.meta  # the unscaled teacher's cache keeps its name
    datamodule.attach_train_extra(cache)
    train_set = datamodule.train_set
    sample = train_set[(0, sample_seed(0, 0, 0))]
    with torch.no_grad():
        live = teacher(sample["image"][None])[0]
    torch.testing.assert_close(sample["teacher_logits"], live, atol=2e-3 * live.abs().max().item(), rtol=0)
    with pytest.raises(TeacherCacheError, match="teacher_input_scale"):
        open_or_build(net, teacher_ckpt, datamodule.plain_train_set(), 19, tmp_path / "x", path=cache.path,
                      normalisation=datamodule.normalisation)


def test_a_rescaled_teacher_refuses_feature_terms_and_scores_at_its_scale(make_cfg, teacher_ckpt):
    cfg = make_cfg("+experiment=offline_kd", f"teacher_ckpt={teacher_ckpt}", "teacher_scale=0.5",
                   "distill_paradigm=decoder")
    with pytest.raises(ValueError, match=r"input_scale=0.5.*\['dec1', 'dec2', 'dec3'\].*input_scale 1"):
        train(cfg)
    with pytest.raises(ValueError, match="must be a positive factor"):
        RescaledTeacher(torch.nn.Identity(), 0.0)


def test_the_system_hands_the_cache_to_the_datamodule_and_touches_no_dataset(make_cfg, teacher_ckpt, monkeypatch):
    """A cached run's setup: the cache arrives through SegmentationDataModule.attach_train_extra, and no
    system module reads or writes a dataset's train set or extras."""
    cfg = make_cfg("+experiment=offline_kd", f"teacher_ckpt={teacher_ckpt}", "teacher_cache=true",
                   "distill_paradigm=logits")
    datamodule = instantiate(cfg.dataset)
    system = build_system(cfg, datamodule.class_names)
    attached = []
    attach = datamodule.attach_train_extra
    monkeypatch.setattr(datamodule, "attach_train_extra", lambda extra: (attached.append(extra), attach(extra))[1])
    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=1, limit_train_batches=1, limit_val_batches=0,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(system, datamodule=datamodule)
    assert len(attached) == 1 and isinstance(attached[0], TeacherLogitCache)
    cache = attached[0]
    assert datamodule.train_extras == (cache,) and datamodule.train_set.extras == [cache]
    assert system.teacher is None and system.teacher_cache_info["path"] == str(cache.path)
    assert "teacher_logits" in datamodule.train_set[(0, sample_seed(0, 0, 0))]
    # Attaching an extra of the same kind again replaces it (a second fit does not stack caches).
    again = TeacherLogitCache(cache.path)
    attach(again)
    assert datamodule.train_extras == (again,) and datamodule.train_set.extras == [again]

    # No system names a datamodule's datasets or a dataset's extras, so none reads or writes them.
    for path in sorted(Path(segkd.systems.__file__).parent.rglob("*.py")):
        names = {node.attr for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Attribute)}
        assert not names & {"train_set", "val_set", "extras"}, f"{path.name} reaches into a dataset"


def test_a_killed_builds_leftovers_are_removed_and_a_live_builds_are_kept(tmp_path):
    import fcntl
    import os
    import time

    from segkd.distill.teacher_cache import WRITER, remove_stale_builds

    target = tmp_path / "logits" / "citysc-train-abc"
    killed, live, old, fresh = (target.with_name(f".{target.name}.tmp-{h}") for h in ("dead0001", "live0002", "old00003", "new00004"))
    for tmp in (killed, live, old, fresh):
        tmp.mkdir(parents=True)
        (tmp / "values.npy").write_bytes(b"x" * 1000)
    (killed / WRITER).touch()  # its writer died: nobody holds the mark
    (live / WRITER).touch()
    fd = os.open(live / WRITER, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a build running now
    os.utime(old, (time.time() - 7200, time.time() - 7200))  # unmarked (older segkd), two hours old
    try:
        removed = remove_stale_builds(target)
    finally:
        os.close(fd)
    assert sorted(removed) == sorted([killed, old])
    assert live.is_dir() and fresh.is_dir() and not killed.exists() and not old.exists()
