"""docs/METHODS.md's first figures on a tiny random UNet and a generated tree (no .cache): the masks, the
normalised maps, the dark-knowledge groups and the T² scaling segkd.analysis measures, and the files
experiments/methods_figures.py writes from them (run as a process, as the docs run it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from segkd.analysis.dark_knowledge import boundary_mask, component_area_map, dark_knowledge
from segkd.analysis.kd_temperature import temperature_table
from segkd.data.datasets import CityscapesDataset
from segkd.data.transforms import eval_transform
from segkd.models import build_net
from segkd.visual.knowledge import teacher_maps

import conftest
from conftest import TINY_UNET, write_net_checkpoint

SCRIPT = "experiments/methods_figures.py"


def tiny_unet(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_net(TINY_UNET).eval()


def run_script(*args: str):
    return conftest.run_script(SCRIPT, *args)


@pytest.fixture
def tree(val_tree) -> Path:
    return val_tree


def test_boundary_and_interior_partition_the_valid_pixels(tree):
    # A hand-made mask: two blocks and an ignored strip; boundaries only where two valid classes meet.
    mask = np.zeros((8, 10), dtype=np.uint8)
    mask[:, 5:] = 13
    mask[:, 0] = 255
    boundary, interior = boundary_mask(mask)
    assert boundary[:, 4].all() and boundary[:, 5].all()
    assert not boundary[:, [1, 2, 3, 6, 7, 8, 9]].any()  # next to the ignored strip is not a boundary
    assert not (boundary | interior)[:, 0].any()
    dataset = CityscapesDataset(tree, "val")
    for i in range(len(dataset)):
        mask = dataset.load_mask(i)
        boundary, interior = boundary_mask(mask)
        assert not (boundary & interior).any()
        assert ((boundary | interior) == (mask != 255)).all()


def test_component_areas_match_object_areas(tree):
    from segkd.analysis.dataset_stats import object_areas

    mask = CityscapesDataset(tree, "val").load_mask(0)
    areas = component_area_map(mask, 19)
    for cls, sizes in object_areas(mask, 19).items():
        # Each region of area a contributes a pixels of area a.
        assert areas[mask == cls].sum() == (sizes.astype(np.int64) ** 2).sum()
    assert (areas[mask == 255] == 0).all()


def test_normalised_maps_lie_in_zero_one(tree):
    dataset = CityscapesDataset(tree, "val", transform=eval_transform())
    batch = torch.stack([dataset[i]["image"] for i in range(len(dataset))])
    logits = tiny_unet()(batch) * 5  # sharper than a random init: entropies spread over [0, 1]
    maps = teacher_maps(logits, logits, torch.stack([dataset[i]["mask"] for i in range(len(dataset))]))
    for key in ("entropy", "off_argmax"):
        assert maps[key].min() >= 0 and maps[key].max() <= 1
    uniform = teacher_maps(torch.zeros(1, 19, 2, 2), torch.zeros(1, 19, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    assert torch.allclose(uniform["entropy"], torch.ones(1, 2, 2)) and torch.allclose(uniform["off_argmax"], torch.ones(1, 2, 2))


def test_gradient_of_kl_falls_as_one_over_t_squared_and_t2_kl_does_not(tree):
    dataset = CityscapesDataset(tree, "val", transform=eval_transform())
    images = torch.stack([dataset[i]["image"] for i in range(len(dataset))])
    masks = torch.stack([dataset[i]["mask"] for i in range(len(dataset))])
    with torch.no_grad():
        teacher = tiny_unet(0)(images)
    student = teacher + 0.5 * torch.randn(teacher.shape, generator=torch.Generator().manual_seed(0))
    rows = {r["T"]: r for r in temperature_table(teacher, student, masks != 255, (1.0, 2.0, 4.0, 8.0))}
    assert abs(rows[4.0]["grad_norm_kl"] / rows[8.0]["grad_norm_kl"] / 4.0 - 1.0) < 0.2
    ratio = rows[4.0]["grad_norm_t2_kl"] / rows[8.0]["grad_norm_t2_kl"]
    assert 1 / 1.5 < ratio < 1.5
    for r in rows.values():  # segkd's LogitKD agrees with T²·KL and its gradient T·(q - p)
        assert r["max_abs_loss_error"] < 1e-4 and r["max_abs_grad_error"] < 1e-5


def test_dark_knowledge_groups_partition_the_valid_pixels(tree):
    dataset = CityscapesDataset(tree, "val", transform=eval_transform())
    dk, kept = dark_knowledge(tiny_unet(0), dataset, keep=3)
    assert dk["boundary"]["pixels"] + dk["interior"]["pixels"] == dk["all_valid"]["pixels"]
    assert dk["small"]["pixels"] + dk["large"]["pixels"] == dk["all_valid"]["pixels"]
    assert sum(c["pixels"] for c in dk["per_class"].values()) == dk["all_valid"]["pixels"]
    assert sum(b["pixels"] for b in dk["object_area_bins"]) == dk["all_valid"]["pixels"]
    assert dk["all_valid"]["pixels"] == sum(int((dataset.load_mask(i) != 255).sum()) for i in range(len(dataset)))
    assert 0 <= dk["all_valid"]["entropy"] <= 1
    assert kept["logits"].shape[0] == kept["masks"].shape[0] == 3 and kept["logits"].shape[1] == 19


@pytest.mark.slow
@pytest.mark.study
def test_script_writes_figures_and_json(tree, tmp_path):
    out = tmp_path / "methods"
    done = run_script("--ckpt", str(write_net_checkpoint(tmp_path / "teacher.ckpt")), "--data", str(tree),
                      "--out", str(out), "--images", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("dark_knowledge_examples.png", "dark_knowledge_summary.png", "temperature_gradient.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dk = json.loads((out / "dark_knowledge.json").read_text())
    expected, _ = dark_knowledge(tiny_unet(0), CityscapesDataset(tree, "val", transform=eval_transform()))
    assert dk["all_valid"] == pytest.approx(expected["all_valid"]) and dk["boundary"] == pytest.approx(expected["boundary"])
    tg = json.loads((out / "temperature_gradient.json").read_text())
    assert len(tg["students"]) == 2 and "report" not in tg
    for block in tg["students"].values():
        assert [r["T"] for r in block["rows"]] == tg["temperatures"]
        assert all(r["max_abs_grad_error"] < 1e-5 for r in block["rows"])
    assert "dark knowledge over 4 val images" in done.stdout and "ratio T=4/T=8" in done.stdout


@pytest.mark.slow
def test_missing_checkpoint_names_the_training_command(tmp_path):
    done = run_script("--ckpt", str(tmp_path / "nope.ckpt"), "--out", str(tmp_path / "o"))
    assert done.returncode == 1
    assert "python -m segkd.run +experiment=reference_teacher" in done.stderr
    assert not (tmp_path / "o").exists()
