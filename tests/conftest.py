"""Shared test fixtures: the real config composed and shrunk, small dataset trees written on disk."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from omegaconf import DictConfig

from segkd.config import CONF_DIR, compose_train_config
from segkd.data.labels import LABELS
from segkd.models import build_net
from segkd.models.checkpoint import with_classes  # noqa: F401  (tests import it from here)

ROOT = CONF_DIR.parent

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one worker per core: each trains on one thread, not every worker on all of them.
    torch.set_num_threads(1)


#: Shrinks any run to seconds on a CPU: tiny SynthStreets, small crops, one epoch.
FAST = [
    "dataset.prepare.num_train=16",
    "dataset.prepare.num_val=5",
    "dataset.prepare.height=64",
    "dataset.prepare.width=128",
    "dataset.crop_size=[64,64]",
    "dataset.batch_size=4",
    "dataset.val_batch_size=4",
    "trainer.accelerator=cpu",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.num_sanity_val_steps=0",
    "auto_resume=false",  # tests train several fresh runs in one run dir; the auto-resume tests turn it on
]


def compose_train(overrides: list[str], output_dir: Path, cache_dir: Path) -> DictConfig:
    """The real primary config with overrides; outputs and caches in the test's folders."""
    return compose_train_config(
        [*overrides, f"paths.cache_dir={cache_dir}", f"paths.log_dir={output_dir.parent}"], output_dir
    )


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One cache for the whole session, so SynthStreets is generated once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def make_cfg(tmp_path, cache_dir):
    def _make(*overrides: str, fast: bool = True) -> DictConfig:
        return compose_train((FAST if fast else []) + list(overrides), tmp_path / "run", cache_dir)

    return _make


# ----------------------------------------------------------------------------- small dataset trees

VALID_RAW_IDS = np.array([lb.id for lb in LABELS if lb.id >= 0], dtype=np.uint8)


def random_image(rng: np.random.Generator, size=(32, 64)) -> np.ndarray:
    return rng.integers(0, 256, (*size, 3), dtype=np.uint8)


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(path), array)
    return path


def write_cityscapes_tree(root: Path, split: str = "train", cities=("aachen", "bochum"), per_city=2, size=(32, 64), seed=0):
    """Official Cityscapes layout with raw label ids drawn from the whole label table."""
    rng = np.random.default_rng(seed)
    written = []
    for city in cities:
        for i in range(per_city):
            stem = f"{city}_{i:06d}_000019"
            image = write_png(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", random_image(rng, size))
            raw = rng.choice(VALID_RAW_IDS, size=size).astype(np.uint8)
            label = write_png(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", raw)
            written.append((image, label, raw))
    return written


def write_bdd_tree(root: Path, split: str = "train", n=3, size=(32, 64), seed=0):
    """BDD100K 10k layout: jpg images, png masks of train ids with some ignored pixels."""
    rng = np.random.default_rng(seed)
    written = []
    for i in range(n):
        stem = f"{i:07x}-{i:08x}"
        image_path = root / "images" / "10k" / split / f"{stem}.jpg"
        image_path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(image_path), random_image(rng, size))
        mask = rng.integers(0, 19, size, dtype=np.uint8)
        mask[rng.random(size) < 0.1] = 255
        label = write_png(root / "labels" / "sem_seg" / "masks" / split / f"{stem}.png", mask)
        written.append((image_path, label, mask))
    return written


@pytest.fixture(scope="session")
def teacher_ckpt(tmp_path_factory, cache_dir) -> Path:
    """One small teacher checkpoint (teacher_r34, 2 epochs on tiny SynthStreets) shared by every KD test."""
    from segkd.train import train

    out = tmp_path_factory.mktemp("teacher") / "run"
    summary = train(compose_train([*FAST, "+experiment=teacher", "trainer.max_epochs=2"], out, cache_dir))
    return Path(summary["last_checkpoint"])


@pytest.fixture(scope="session")
def student_run(tmp_path_factory, cache_dir) -> dict:
    """One student (student_mnv2) trained for 2 steps on tiny SynthStreets: its summary, with val scores
    and ``last_checkpoint``; shared by the evaluation and prediction tests."""
    from segkd.train import train

    out = tmp_path_factory.mktemp("student") / "run"
    return train(compose_train([*FAST, "trainer.limit_train_batches=2"], out, cache_dir))


#: A small UNet spec (what ``build_net`` and checkpoints take): a ResNet-18 encoder cut to 3 stages.
TINY_UNET = {"_target_": "segkd.models.build_unet", "encoder_name": "resnet18", "encoder_weights": None,
             "encoder_depth": 3, "decoder_channels": [16, 8, 8], "classes": 19}


def write_net_checkpoint(path: Path, spec: dict = TINY_UNET, seed: int = 0) -> Path:
    """A segkd checkpoint of one randomly initialised network (``net``), as load_net reads it: no training."""
    torch.manual_seed(seed)
    net = build_net(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"hyper_parameters": {"net": dict(spec)}, "global_step": 0,
                "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}}, path)
    return path


def run_script(script: str, *args: str):
    """A lab script of experiments/ run as its own process (tests never import one), one thread."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, script, *args], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="session")
def val_tree(tmp_path_factory) -> Path:
    """A small Cityscapes-layout val split (2 cities x 2 images of 32x64)."""
    root = tmp_path_factory.mktemp("cityscapes_val")
    write_cityscapes_tree(root, split="val", per_city=2, size=(32, 64))
    return root


# ----------------------------------------------------------------------------- what a run leaves in /tmp

_FAILED: list[str] = []


def pytest_runtest_logreport(report):
    if report.failed:
        _FAILED.append(report.nodeid.split("::")[-1])


def pytest_sessionfinish(session, exitstatus):
    """Leave at most what a failed test needs to be looked at. pytest keeps a passed test's tmp_path only
    under retention "all", but always keeps the dirs of session and module fixtures (a teacher, students,
    generated data: over 1 GB); they are made again in seconds to minutes by the next run."""
    import re
    import shutil

    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None:
        return
    try:
        base = factory.getbasetemp()
    except (OSError, ValueError):
        return
    keep = {re.sub(r"[\W]", "_", name)[:30] for name in _FAILED}
    for entry in base.iterdir():
        if not any(entry.name.startswith(prefix) for prefix in keep):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

