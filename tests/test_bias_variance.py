"""segkd.bias_variance: the Heskes decomposition against arithmetic done by hand, its accumulation over a
split (batches, ignored pixels, classes), the groups it reads, and the command end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from segkd.analysis.bias_variance import BiasVariance, pixel_terms
from segkd.bias_variance import bias_variance, expand_groups
from segkd.config import compose_config
from segkd.runtime.errors import errors_in_one_line

from conftest import FAST, compose_train, with_classes

CLASSES = ("a", "b", "c")


def logits_of(probabilities: list[list[list[float]]]) -> list[torch.Tensor]:
    """Members' logits (1, C, 1, P) whose softmax is the given [member][pixel][class] probabilities."""
    return [torch.tensor(member, dtype=torch.float64).log().T.reshape(1, len(member[0]), 1, len(member))
            for member in probabilities]


def by_hand(probabilities: list[list[float]], label: int) -> tuple[float, float, float]:
    """Expected CE, bias and variance at one pixel from the definitions, with the math module: the
    members' mean CE, the CE of the normalised geometric mean, and the members' mean KL(p̄ || p_m)."""
    members, classes = len(probabilities), len(probabilities[0])
    expected = sum(-math.log(p[label]) for p in probabilities) / members
    geometric = [math.prod(p[c] for p in probabilities) ** (1 / members) for c in range(classes)]
    centre = [g / sum(geometric) for g in geometric]
    kl = [sum(centre[c] * math.log(centre[c] / p[c]) for c in range(classes)) for p in probabilities]
    return expected, -math.log(centre[label]), sum(kl) / members


#: Three members, three pixels, three classes: [member][pixel][class].
MEMBERS = [
    [[0.5, 0.25, 0.25], [0.7, 0.2, 0.1], [0.1, 0.1, 0.8]],
    [[0.25, 0.5, 0.25], [0.6, 0.3, 0.1], [0.3, 0.3, 0.4]],
    [[0.25, 0.25, 0.5], [0.2, 0.2, 0.6], [0.05, 0.9, 0.05]],
]
LABELS = [0, 1, 2]


def test_a_symmetric_pixel_gives_the_closed_form():
    # The members put 1/2 on a different class each and 1/4 elsewhere: the geometric mean of every class
    # is (1/2 * 1/4 * 1/4)^(1/3) = 2^(-5/3), so p̄ is uniform and Z = 3 * 2^(-5/3).
    terms = pixel_terms(logits_of([[m[0]] for m in MEMBERS]), torch.tensor([[[0]]]))
    assert terms.expected_ce.item() == pytest.approx((1 + 2 + 2) / 3 * math.log(2), abs=1e-12)
    assert terms.bias.item() == pytest.approx(math.log(3), abs=1e-12)
    assert terms.variance.item() == pytest.approx(5 / 3 * math.log(2) - math.log(3), abs=1e-12)


def test_the_terms_are_the_definitions_and_add_up_to_the_mean_cross_entropy():
    terms = pixel_terms(logits_of(MEMBERS), torch.tensor([[LABELS]]))
    for pixel, label in enumerate(LABELS):
        expected, bias, variance = by_hand([member[pixel] for member in MEMBERS], label)
        assert terms.expected_ce[pixel].item() == pytest.approx(expected, abs=1e-12)
        assert terms.bias[pixel].item() == pytest.approx(bias, abs=1e-12)
        assert terms.variance[pixel].item() == pytest.approx(variance, abs=1e-12)
        assert abs(terms.bias[pixel].item() + terms.variance[pixel].item() - expected) < 1e-10
        assert variance > 1e-3  # the members disagree at every pixel


def test_identical_members_have_no_variance_and_their_own_cross_entropy_as_bias():
    torch.manual_seed(0)
    logits, target = torch.randn(2, 5, 8, 8) * 3, torch.randint(0, 5, (2, 8, 8))
    terms = pixel_terms([logits, logits.clone(), logits.clone()], target)
    assert terms.variance.abs().max().item() < 1e-12
    own = torch.nn.functional.cross_entropy(logits.double(), target, reduction="none").flatten()
    torch.testing.assert_close(terms.bias, own, atol=1e-12, rtol=0)


def test_extreme_logits_stay_finite_and_the_variance_non_negative():
    torch.manual_seed(1)
    members = [torch.randn(1, 4, 6, 6) * 200 for _ in range(3)]  # softmax underflows to 0 in float32
    terms = pixel_terms(members, torch.randint(0, 4, (1, 6, 6)))
    assert torch.isfinite(terms.bias).all() and torch.isfinite(terms.variance).all()
    assert terms.variance.min().item() >= 0 and terms.variance.max().item() > 1


def random_split(seed: int = 0, images: int = 4, classes: int = 3):
    """Three members' logits and labels of a few images, with some ignored pixels."""
    generator = torch.Generator().manual_seed(seed)
    members = [torch.randn(images, classes, 6, 7, generator=generator) * 2 for _ in range(3)]
    target = torch.randint(0, classes, (images, 6, 7), generator=generator)
    target[torch.rand(target.shape, generator=generator) < 0.2] = 255
    return members, target


def test_batch_by_batch_equals_the_split_at_once():
    members, target = random_split()
    whole = BiasVariance(CLASSES)
    whole.update(members, target)
    batched = BiasVariance(CLASSES)
    for i in range(target.shape[0]):
        batched.update([m[i:i + 1] for m in members], target[i:i + 1])
    a, b = whole.compute(), batched.compute()
    assert a["pixels"] == b["pixels"] == int((target != 255).sum())
    for term in ("expected_ce", "bias", "variance"):
        assert a[term] == pytest.approx(b[term], abs=1e-12)
        for cls in CLASSES:
            assert a["per_class"][cls][term] == pytest.approx(b["per_class"][cls][term], abs=1e-12)


def test_ignored_pixels_are_left_out_whatever_the_members_say_there():
    members, target = random_split()
    ignored = target == 255
    before = BiasVariance(CLASSES)
    before.update(members, target)
    changed = [torch.where(ignored.unsqueeze(1), m * 50 + 7, m) for m in members]
    after = BiasVariance(CLASSES)
    after.update(changed, target)
    assert before.compute() == after.compute()
    terms = pixel_terms(members, target)
    assert terms.bias.numel() == int((~ignored).sum()) < target.numel()
    assert before.compute()["expected_ce"] == pytest.approx(terms.expected_ce.mean().item(), abs=1e-12)


def test_per_class_terms_weighted_by_pixels_add_up_to_the_overall_ones():
    members, target = random_split(seed=3)
    decomposition = BiasVariance(CLASSES)
    decomposition.update(members, target)
    result = decomposition.compute()
    per_class = result["per_class"]
    assert sum(v["pixels"] for v in per_class.values()) == result["pixels"]
    for cls, value in per_class.items():
        assert value["pixels"] == int((target == CLASSES.index(cls)).sum())
    for term in ("expected_ce", "bias", "variance"):
        weighted = sum(v[term] * v["pixels"] for v in per_class.values()) / result["pixels"]
        assert weighted == pytest.approx(result[term], abs=1e-12)
    assert result["bias"] + result["variance"] == pytest.approx(result["expected_ce"], abs=1e-10)
    for term in ("expected_ce", "bias", "variance"):  # the class mean weighs each class equally
        assert result["class_mean"][term] == pytest.approx(sum(v[term] for v in per_class.values()) / 3, abs=1e-12)


def test_a_class_without_pixels_has_no_terms():
    members, target = random_split()
    target[target == 1] = 0
    decomposition = BiasVariance(CLASSES)
    decomposition.update(members, target)
    result = decomposition.compute()
    assert result["per_class"]["b"] == {"pixels": 0, "expected_ce": None, "bias": None, "variance": None}
    seen = [result["per_class"][c]["bias"] for c in ("a", "c")]
    assert result["class_mean"]["bias"] == pytest.approx(sum(seen) / 2, abs=1e-12)


def test_members_that_predict_other_classes_than_the_data_are_refused():
    members, target = random_split(classes=4)
    with pytest.raises(ValueError, match="the members predict 4 classes, the data has 3"):
        BiasVariance(CLASSES).update(members, target)
    with pytest.raises(ValueError, match="every member must predict the same classes"):
        pixel_terms([members[0], members[1][:, :3]], target)


# ----------------------------------------------------------------------------- groups

def test_globs_expand_sorted_and_plain_paths_are_kept(tmp_path):
    for seed in (3, 1, 2):
        (tmp_path / f"seed{seed}").mkdir()
        (tmp_path / f"seed{seed}" / "last.ckpt").touch()
    groups = expand_groups({"kd": [str(tmp_path / "seed*" / "last.ckpt")], "pair": ["x.ckpt", "x.ckpt"]})
    assert groups == {"kd": [tmp_path / f"seed{s}" / "last.ckpt" for s in (1, 2, 3)],
                      "pair": [Path("x.ckpt"), Path("x.ckpt")]}


@pytest.mark.parametrize("groups, expected", [
    (None, "no groups given"),
    (["a.ckpt", "b.ckpt"], "groups is a list (2 items); it must be a mapping of a group name to its checkpoints"),
    ({"scratch": ["a.ckpt"]}, "groups.scratch has 1 checkpoint(s): variance needs at least two seeds"),
    ({"kd": ["/nonexistent/seed*/last.ckpt"]}, "the pattern /nonexistent/seed*/last.ckpt matches no file"),
    ({"kd": [3]}, "groups.kd must be a list of checkpoint paths or glob patterns"),
])
def test_bad_groups_are_refused_by_name(groups, expected):
    with pytest.raises((ValueError, FileNotFoundError)) as info:
        expand_groups(groups)
    assert expected in str(info.value)


# ----------------------------------------------------------------------------- the command

TINY = [o for o in FAST if o.startswith("dataset.prepare.")]


def bv_cfg(tmp_path: Path, cache_dir: Path, groups: dict[str, list], *overrides: str):
    spec = ",".join(f"{name}:[{','.join(str(p) for p in paths)}]" for name, paths in groups.items())
    return compose_config("bias_variance", [*TINY, f"groups={{{spec}}}", "progress_bar=false", "num_workers=0",
                                            *overrides, f"paths.cache_dir={cache_dir}", f"paths.log_dir={tmp_path}"],
                          tmp_path / "bv")


@pytest.fixture(scope="module")
def second_student(tmp_path_factory, cache_dir) -> dict:
    """Another tiny student, trained with another seed: a group member that really differs."""
    from segkd.train import train

    out = tmp_path_factory.mktemp("student_seed1") / "run"
    return train(compose_train([*FAST, "seed=1", "trainer.limit_train_batches=2"], out, cache_dir))


def test_the_command_decomposes_each_group_and_writes_its_reports(tmp_path, cache_dir, student_run, second_student):
    first, second = student_run["last_checkpoint"], second_student["last_checkpoint"]
    report = bias_variance(bv_cfg(tmp_path, cache_dir, {"same": [first, first], "seeds": [first, second]}))

    same, seeds = report["groups"]["same"], report["groups"]["seeds"]
    assert report["images"] == 5 and same["n_members"] == seeds["n_members"] == 2
    assert seeds["members"] == [str(first), str(second)]
    assert same["variance"] < 1e-12 and seeds["variance"] > 1e-4
    # one network twice: its own val mIoU and cross-entropy; the pixels are those training scored
    assert same["member_mIoU"][0] == pytest.approx(student_run["val"]["mIoU"], abs=1e-6)
    assert same["mean_mIoU"] == same["ensemble_mIoU"] == same["member_mIoU"][0]
    assert seeds["mean_mIoU"] == pytest.approx((student_run["val"]["mIoU"] + second_student["val"]["mIoU"]) / 2,
                                               abs=1e-6)
    assert same["bias"] == pytest.approx(same["expected_ce"], abs=1e-12)
    assert same["pixels"] == seeds["pixels"] > 0
    for group in (same, seeds):
        assert group["bias"] + group["variance"] == pytest.approx(group["expected_ce"], abs=1e-10)
        counted = [v for v in group["per_class"].values() if v["pixels"]]
        assert sum(v["variance"] * v["pixels"] for v in counted) / group["pixels"] == pytest.approx(group["variance"],
                                                                                                     abs=1e-10)

    run = tmp_path / "bv"
    assert json.loads((run / "bias_variance.json").read_text()) == json.loads(json.dumps(report))
    table = (run / "bias_variance.md").read_text()
    assert "| same | 2 |" in table and "| seeds | 2 |" in table and "seeds variance" in table
    assert (run / "bias_variance.png").read_bytes()[:4] == b"\x89PNG"


def one_line_error(capsys, monkeypatch, cfg) -> str:
    monkeypatch.delenv("SEGKD_DEBUG", raising=False)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(SystemExit), errors_in_one_line():
        bias_variance(cfg)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("segkd: error: "), err
    return err


def test_a_group_of_one_seed_is_one_line(tmp_path, cache_dir, student_run, capsys, monkeypatch):
    cfg = bv_cfg(tmp_path, cache_dir, {"scratch": [student_run["last_checkpoint"]]})
    assert "variance needs at least two seeds" in one_line_error(capsys, monkeypatch, cfg)


def test_a_missing_member_is_one_line_naming_it_and_its_group(tmp_path, cache_dir, student_run, capsys, monkeypatch):
    cfg = bv_cfg(tmp_path, cache_dir, {"kd": [student_run["last_checkpoint"], tmp_path / "gone.ckpt"]})
    err = one_line_error(capsys, monkeypatch, cfg)
    assert f"{tmp_path / 'gone.ckpt'} does not exist" in err and "each member of a group" in err


def test_a_member_for_other_classes_is_one_line(tmp_path, cache_dir, student_run, capsys, monkeypatch):
    other = with_classes(student_run["last_checkpoint"], 20, tmp_path / "classes20.ckpt")
    cfg = bv_cfg(tmp_path, cache_dir, {"kd": [student_run["last_checkpoint"], other]})
    err = one_line_error(capsys, monkeypatch, cfg)
    assert f"{other} predicts 20 classes" in err and "has 19" in err
