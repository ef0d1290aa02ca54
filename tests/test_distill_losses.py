"""Distillation losses, the connector and the term signature check, against plain references written here.

What every loss promises (zero at student == teacher, no gradient into the teacher, finite on an
all-void crop, a gradient through a connector) is tested once for all of them in test_loss_contract.py.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F

from segkd.distill.distiller import Connector, check_signature
from segkd.distill.losses.cwd import ChannelWiseKD
from segkd.distill.losses.feature import FeatureKD
from segkd.distill.losses.logit_kd import LogitKD
from segkd.distill.losses.pairwise import PairwiseAffinityKD

RTOL = 1e-5
ATOL = 1e-8


def _pair(shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(*shape, generator=g, dtype=dtype)
    teacher = torch.randn(*shape, generator=g, dtype=dtype)
    return student, teacher


def _close(actual, expected):
    torch.testing.assert_close(actual, torch.as_tensor(expected, dtype=actual.dtype), rtol=RTOL, atol=ATOL)


# ----------------------------------------------------------------------------- references


def _log_softmax_list(values):
    """log softmax of a python list of floats, by hand."""
    m = max(values)
    log_z = m + math.log(sum(math.exp(v - m) for v in values))
    return [v - log_z for v in values]


def _kl_list(teacher_values, student_values):
    """KL(softmax(teacher) || softmax(student)) of two python lists, by hand."""
    lt, ls = _log_softmax_list(teacher_values), _log_softmax_list(student_values)
    return sum(math.exp(a) * (a - b) for a, b in zip(lt, ls))


def _ref_pixel_kl(student, teacher, temperature):
    """Per-pixel KL(p_t || p_s) at temperature T (without T²), as an N x H x W python nested list."""
    n, c, h, w = student.shape
    out = [[[0.0] * w for _ in range(h)] for _ in range(n)]
    for i in range(n):
        for y in range(h):
            for x in range(w):
                s = [student[i, k, y, x].item() / temperature for k in range(c)]
                t = [teacher[i, k, y, x].item() / temperature for k in range(c)]
                out[i][y][x] = _kl_list(t, s)
    return out


def _ref_logit_kd(student, teacher, temperature, target=None, ignore_index=255):
    kl = _ref_pixel_kl(student, teacher, temperature)
    n, _, h, w = student.shape
    total, count = 0.0, 0
    for i in range(n):
        for y in range(h):
            for x in range(w):
                if target is not None and target[i, y, x].item() == ignore_index:
                    continue
                total += kl[i][y][x]
                count += 1
    return temperature**2 * total / count


def _ref_cwd(student, teacher, tau):
    n, c = student.shape[:2]
    total = 0.0
    for i in range(n):
        for k in range(c):
            s = (student[i, k].reshape(-1) / tau).tolist()
            t = (teacher[i, k].reshape(-1) / tau).tolist()
            # softmax over H*W with explicit exp / sum
            zs = sum(math.exp(v) for v in s)
            zt = sum(math.exp(v) for v in t)
            p_t = [math.exp(v) / zt for v in t]
            p_s = [math.exp(v) / zs for v in s]
            total += sum(a * (math.log(a) - math.log(b)) for a, b in zip(p_t, p_s))
    return tau**2 * total / (n * c)


def _ref_affinity(features, grid, pool="avg"):
    """N x grid² x grid² cosine affinities of block-pooled cells, with explicit loops."""
    n, c, h, w = features.shape
    bh, bw = h // grid, w // grid
    out = []
    for i in range(n):
        cells = []
        for gy in range(grid):
            for gx in range(grid):
                vec = []
                for k in range(c):
                    block = features[i, k, gy * bh : (gy + 1) * bh, gx * bw : (gx + 1) * bw]
                    values = block.reshape(-1).tolist()
                    vec.append(max(values) if pool == "max" else sum(values) / (bh * bw))
                norm = math.sqrt(sum(v * v for v in vec))
                cells.append([v / norm for v in vec])
        m = len(cells)
        out.append([[sum(a * b for a, b in zip(cells[p], cells[q])) for q in range(m)] for p in range(m)])
    return out


def _ref_pairwise(student, teacher, grid, pool="avg"):
    a_s, a_t = _ref_affinity(student, grid, pool), _ref_affinity(teacher, grid, pool)
    total, count = 0.0, 0
    for ms, mt in zip(a_s, a_t):
        for rs, rt in zip(ms, mt):
            for vs, vt in zip(rs, rt):
                total += (vs - vt) ** 2
                count += 1
    return total / count


def _ref_feature_mse(student, teacher):
    s, t = student.reshape(-1).tolist(), teacher.reshape(-1).tolist()
    return sum((a - b) ** 2 for a, b in zip(s, t)) / len(s)


def _ref_feature_cosine(student, teacher):
    n, c, h, w = student.shape
    total = 0.0
    for i in range(n):
        for y in range(h):
            for x in range(w):
                a = [student[i, k, y, x].item() for k in range(c)]
                b = [teacher[i, k, y, x].item() for k in range(c)]
                dot = sum(u * v for u, v in zip(a, b))
                na = math.sqrt(sum(u * u for u in a))
                nb = math.sqrt(sum(v * v for v in b))
                total += 1.0 - dot / (na * nb)
    return total / (n * h * w)


# ----------------------------------------------------------------------------- LogitKD


def _logit_batch(seed=0, n=2, c=4, h=5, w=6):
    student, teacher = _pair((n, c, h, w), seed)
    g = torch.Generator().manual_seed(seed + 100)
    target = torch.randint(0, c, (n, h, w), generator=g)
    target[0, 0, :3] = 255
    target[1, 2, 4] = 255
    target[1, 4, :] = 255
    return student, teacher, target


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_logit_kd_matches_reference_with_target(temperature):
    student, teacher, target = _logit_batch()
    value = LogitKD(temperature=temperature)(student, teacher, target)
    _close(value, _ref_logit_kd(student, teacher, temperature, target))


def test_logit_kd_matches_reference_without_target_mean_over_all_pixels():
    student, teacher, _ = _logit_batch(seed=1)
    value = LogitKD(temperature=3.0)(student, teacher)
    _close(value, _ref_logit_kd(student, teacher, 3.0, None))
    kl = _ref_pixel_kl(student, teacher, 3.0)
    flat = [v for img in kl for row in img for v in row]
    _close(value, 9.0 * sum(flat) / len(flat))


def test_logit_kd_ignored_pixels_do_not_count():
    student, teacher, target = _logit_batch()
    loss = LogitKD(temperature=4.0, ignore_index=255)
    base = loss(student, teacher, target)
    ignored = (target == 255).unsqueeze(1).expand_as(student)
    assert ignored.any()
    g = torch.Generator().manual_seed(7)
    s2, t2 = student.clone(), teacher.clone()
    s2[ignored] = 50.0 * torch.randn(int(ignored.sum()), generator=g, dtype=student.dtype)
    t2[ignored] = -50.0 * torch.randn(int(ignored.sum()), generator=g, dtype=student.dtype)
    torch.testing.assert_close(loss(s2, t2, target), base, rtol=RTOL, atol=ATOL)
    # and the ignored pixels receive no gradient
    s3 = student.clone().requires_grad_()
    loss(s3, teacher, target).backward()
    assert s3.grad[ignored].abs().max().item() == 0.0
    assert s3.grad[~ignored].abs().max().item() > 0.0


def test_logit_kd_reduction_is_mean_over_valid_pixels():
    student, teacher, target = _logit_batch()
    t = 2.0
    kl = _ref_pixel_kl(student, teacher, t)
    valid = [kl[i][y][x] for i in range(2) for y in range(5) for x in range(6) if target[i, y, x].item() != 255]
    everything = [v for img in kl for row in img for v in row]
    assert len(valid) < len(everything)
    value = LogitKD(temperature=t)(student, teacher, target)
    _close(value, t * t * sum(valid) / len(valid))
    # not the sum, and not the mean over all pixels
    assert not math.isclose(value.item(), t * t * sum(everything) / len(everything), rel_tol=1e-4)
    assert not math.isclose(value.item(), t * t * sum(valid), rel_tol=1e-4)


def test_logit_kd_custom_ignore_index():
    student, teacher, target = _logit_batch()
    target = target.clone()
    target[target == 255] = 0
    target[0, 1, :] = -1
    value = LogitKD(temperature=2.0, ignore_index=-1)(student, teacher, target)
    _close(value, _ref_logit_kd(student, teacher, 2.0, target, ignore_index=-1))


@pytest.mark.parametrize("temperature", [0.5, 2.0, 5.0])
def test_logit_kd_temperature_squared_factor(temperature):
    student, teacher, target = _logit_batch(seed=3)
    kl = _ref_pixel_kl(student, teacher, temperature)
    valid = [kl[i][y][x] for i in range(2) for y in range(5) for x in range(6) if target[i, y, x].item() != 255]
    unscaled = sum(valid) / len(valid)
    value = LogitKD(temperature=temperature)(student, teacher, target)
    _close(value, temperature**2 * unscaled)
    _close(value / temperature**2, unscaled)


@pytest.mark.parametrize("temperature", [0.0, -1.0])
def test_logit_kd_rejects_non_positive_temperature(temperature):
    with pytest.raises(ValueError, match="temperature"):
        LogitKD(temperature=temperature)


# ----------------------------------------------------------------------------- ChannelWiseKD


@pytest.mark.parametrize("tau", [1.0, 4.0])
def test_cwd_matches_reference(tau):
    student, teacher = _pair((2, 3, 4, 5), seed=4)
    _close(ChannelWiseKD(tau=tau)(student, teacher), _ref_cwd(student, teacher, tau))


def test_cwd_shape_mismatch_mentions_connector():
    student, _ = _pair((2, 3, 4, 4))
    _, teacher = _pair((2, 5, 4, 4))
    with pytest.raises(ValueError, match="connector"):
        ChannelWiseKD()(student, teacher)


@pytest.mark.parametrize("tau", [0.0, -2.0])
def test_cwd_rejects_non_positive_tau(tau):
    with pytest.raises(ValueError, match="tau"):
        ChannelWiseKD(tau=tau)


# ----------------------------------------------------------------------------- PairwiseAffinityKD


@pytest.mark.parametrize("pool", ["max", "avg"])
@pytest.mark.parametrize("grid,size", [(2, 4), (4, 8), (2, 6)])
def test_pairwise_matches_reference(grid, size, pool):
    student, _ = _pair((2, 3, size, size), seed=5)
    _, teacher = _pair((2, 5, size, size), seed=6)  # channel counts may differ: no connector needed
    value = PairwiseAffinityKD(grid=grid, pool=pool)(student, teacher)
    _close(value, _ref_pairwise(student, teacher, grid, pool))
    assert value.item() > 0


# ----------------------------------------------------------------------------- FeatureKD


def test_feature_mse_matches_reference():
    student, teacher = _pair((2, 4, 5, 6), seed=8)
    _close(FeatureKD("mse")(student, teacher), _ref_feature_mse(student, teacher))


def test_normalised_feature_mse_matches_reference_and_ignores_scale():
    student, teacher = _pair((2, 4, 5, 6), seed=11)

    def standard(x):
        flat = x.reshape(len(x), -1)
        return ((flat - flat.mean(1, keepdim=True)) / (flat.var(1, unbiased=False, keepdim=True) + 1e-5).sqrt()).reshape(x.shape)

    loss = FeatureKD("mse", normalize=True)
    _close(loss(student, teacher), _ref_feature_mse(standard(student), standard(teacher)))
    torch.testing.assert_close(loss(student, 50.0 * teacher), loss(student, teacher), rtol=1e-4, atol=1e-5)


def test_feature_cosine_matches_reference():
    student, teacher = _pair((2, 4, 5, 6), seed=9)
    _close(FeatureKD("cosine")(student, teacher), _ref_feature_cosine(student, teacher))


def test_feature_cosine_is_scale_invariant_and_mse_is_not():
    student, teacher = _pair((2, 4, 5, 6), seed=10)
    cos, mse = FeatureKD("cosine"), FeatureKD("mse")
    torch.testing.assert_close(cos(3.0 * student, teacher), cos(student, teacher), rtol=RTOL, atol=ATOL)
    assert not math.isclose(mse(3.0 * student, teacher).item(), mse(student, teacher).item(), rel_tol=1e-3)


@pytest.mark.parametrize("metric", ["mse", "cosine"])
@pytest.mark.parametrize("teacher_shape", [(2, 5, 4, 4), (2, 3, 8, 8)])
def test_feature_shape_mismatch_mentions_connector(metric, teacher_shape):
    student, _ = _pair((2, 3, 4, 4))
    _, teacher = _pair(teacher_shape)
    with pytest.raises(ValueError, match="connector"):
        FeatureKD(metric)(student, teacher)


def test_feature_rejects_unknown_metric():
    with pytest.raises(ValueError, match="l1") as info:
        FeatureKD("l1")
    assert "mse" in str(info.value) and "cosine" in str(info.value)


# ----------------------------------------------------------------------------- Connector


def test_connector_resizes_bilinearly_to_teacher_size():
    torch.manual_seed(0)
    connector = Connector(3, 5).eval()
    student = torch.randn(2, 3, 4, 4, requires_grad=True)
    teacher = torch.randn(2, 5, 8, 8, requires_grad=True)
    out = connector(student, teacher.shape[-2:])
    assert out.shape == (2, 5, 8, 8)
    expected = F.interpolate(connector.proj(student), size=(8, 8), mode="bilinear", align_corners=False)
    torch.testing.assert_close(out, expected)
    # with equal sizes there is no resampling: the output is the 1x1 projection itself
    same = connector(student, (4, 4))
    assert same.shape == (2, 5, 4, 4)
    torch.testing.assert_close(same, connector.proj(student))
    # the resized term still trains the connector and the student, never the teacher
    FeatureKD("cosine")(out, teacher).backward()
    assert connector.proj[0].weight.grad.abs().max().item() > 0
    assert student.grad.abs().max().item() > 0
    assert teacher.grad is None


# ----------------------------------------------------------------------------- check_signature


def test_check_signature_accepts_complete_mappings():
    check_signature("kd", LogitKD(), {"student": "student:logits", "teacher": "teacher:logits", "target": "target"})
    check_signature("kd", LogitKD(), {"student": "student:logits", "teacher": "teacher:logits"})  # target optional
    check_signature("fit", FeatureKD(), {"student": "student:encoder.layer3", "teacher": "teacher:backbone#2"})


def test_check_signature_rejects_unknown_argument():
    inputs = {"student": "student:logits", "teacher": "teacher:logits", "labels": "target"}
    with pytest.raises(ValueError, match=r"\['labels'\]") as info:
        check_signature("kd", LogitKD(), inputs)
    assert "kd" in str(info.value)


def test_check_signature_rejects_missing_required_argument():
    with pytest.raises(ValueError, match=r"no source for \['teacher'\]") as info:
        check_signature("cwd", ChannelWiseKD(), {"student": "student:logits"})
    assert "cwd" in str(info.value)


@pytest.mark.parametrize("source", ["teachr:logits", "student:", "student", "targets", ""])
def test_check_signature_rejects_bad_source(source):
    with pytest.raises(ValueError, match=re.escape(f"unknown tensor source '{source}'")):
        check_signature("kd", LogitKD(), {"student": "student:logits", "teacher": source})
