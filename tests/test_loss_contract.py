"""What every distillation loss in conf/distill_loss/ promises, checked on each YAML as a run builds it.

The YAMLs are found by glob, so a new loss is held to the contract without a line of test code; what
to pass it is read from its ``forward`` signature. Each loss's own numbers are checked against plain
references in test_distill_losses.py.
"""

from __future__ import annotations

import inspect

import pytest
import torch
from hydra.utils import instantiate

from segkd.config import CONF_DIR, compose_train_config, to_plain
from segkd.distill.distiller import Connector

LOSSES = sorted(p.stem for p in (CONF_DIR / "distill_loss").glob("*.yaml"))
#: The option the bottleneck, encoder and decoder paradigms put behind a connector.
CONNECTED = "feature_mse"
SHAPE = (2, 4, 8, 8)  # N, C, H, W: logits or a feature map alike


@pytest.fixture(scope="module")
def loss_configs(tmp_path_factory) -> dict:
    """Each option composed into the real primary config (as a paradigm's defaults add it), so its
    defaults and interpolations resolve as in a run; resolved at once, as the next compose resets Hydra."""
    out = tmp_path_factory.mktemp("loss_contract")
    return {name: to_plain(compose_train_config([f"+distill_loss={name}"], out).distill_loss) for name in LOSSES}


def _build(loss_configs: dict, name: str) -> torch.nn.Module:
    return instantiate(loss_configs[name], _convert_="all")


def _target_calls(loss: torch.nn.Module, target: torch.Tensor) -> list[dict]:
    """The extra arguments to call the loss with: the target if it takes one, and none if the target is optional."""
    params = inspect.signature(loss.forward).parameters
    unknown = set(params) - {"student", "teacher", "target"}
    assert not unknown, f"{type(loss).__name__}.forward takes {sorted(unknown)}: teach this contract test what to pass"
    if "target" not in params:
        return [{}]
    return [{"target": target}] + ([{}] if params["target"].default is not inspect.Parameter.empty else [])


def _batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(*SHAPE, generator=g, dtype=torch.float64)
    teacher = torch.randn(*SHAPE, generator=g, dtype=torch.float64)
    n, c, h, w = SHAPE
    target = torch.randint(0, c, (n, h, w), generator=g)
    target[0, :2] = 255
    return student, teacher, target


@pytest.mark.parametrize("name", LOSSES)
def test_zero_when_student_equals_teacher(loss_configs, name):
    loss = _build(loss_configs, name)
    student, _, target = _batch()
    for extra in _target_calls(loss, target):
        assert abs(loss(student, student.clone(), **extra).item()) < 1e-6, extra.keys()


@pytest.mark.parametrize("name", LOSSES)
def test_gradient_reaches_the_student_and_never_the_teacher(loss_configs, name):
    loss = _build(loss_configs, name)
    batch_student, batch_teacher, target = _batch()
    for extra in _target_calls(loss, target):
        student, teacher = batch_student.clone().requires_grad_(), batch_teacher.clone().requires_grad_()
        loss(student, teacher, **extra).backward()
        assert student.grad is not None and student.grad.abs().max().item() > 0
        assert teacher.grad is None, "the loss must detach the teacher"


@pytest.mark.parametrize("name", LOSSES)
def test_finite_where_every_pixel_is_ignored(loss_configs, name):
    """A crop that is all void must add nothing, not NaN; a loss without a target is checked on a plain batch."""
    loss = _build(loss_configs, name)
    student, teacher, target = _batch()
    student.requires_grad_()
    takes_target = "target" in inspect.signature(loss.forward).parameters
    extra = {"target": torch.full_like(target, getattr(loss, "ignore_index", 255))} if takes_target else {}
    value = loss(student, teacher, **extra)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(student.grad).all()
    if takes_target:
        assert value.item() == 0.0


def test_gradient_reaches_the_connector(loss_configs):
    torch.manual_seed(0)
    loss = _build(loss_configs, CONNECTED)
    student = torch.randn(2, 3, 4, 4, requires_grad=True)
    teacher = torch.randn(2, 5, 8, 8, requires_grad=True)  # other channels and grid: projected and resized
    connector = Connector(3, 5)
    loss(connector(student, teacher.shape[-2:]), teacher).backward()
    for p in connector.parameters():
        assert p.grad is not None and p.grad.abs().max().item() > 0
    assert student.grad.abs().max().item() > 0
    assert teacher.grad is None
