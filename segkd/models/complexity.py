"""Parameters and compute of a net at a given input size, and what a training run spends.

torch.utils.flop_counter counts 2 FLOPs per multiply-add; real-time segmentation papers usually quote
multiply-adds as "GFLOPs", so both are reported under unambiguous names (GMACs, GFLOPs).
"""

from __future__ import annotations

import statistics
from contextlib import contextmanager
from typing import Callable, Iterator, Mapping, Optional, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

#: A trained part of a step costs its forward pass plus a backward pass of about twice the forward:
#: every layer computes the gradient of its input and the gradient of its weights, each a product of
#: the forward's size (the "6N per token" rule of Kaplan et al. 2020 is 2N forward + 4N backward).
#: The first layer needs no input gradient, so 3x slightly overcounts a net; it is the same for
#: every recipe, so cost ratios are unaffected. A frozen part (a live teacher) costs its forward only.
TRAINED_FACTOR = 3
FROZEN_FACTOR = 1


def count_gmacs(fn: Callable[[], object]) -> float:
    """Multiply-adds (in G) of the matrix products and convolutions ``fn()`` runs."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 2e9


@contextmanager
def evaluating(*nets: nn.Module) -> Iterator[None]:
    """The nets in eval mode for the duration (a probe pass must not move BatchNorm statistics)."""
    modes = [net.training for net in nets]
    for net in nets:
        net.eval()
    try:
        yield
    finally:
        for net, mode in zip(nets, modes):
            net.train(mode)


def blank_input(net: nn.Module, input_size: Sequence[int], in_channels: int = 3, batch: int = 1) -> torch.Tensor:
    """A zero image batch on the net's device and dtype."""
    param = next(net.parameters())
    return torch.zeros(batch, in_channels, *input_size, dtype=param.dtype, device=param.device)


def measure_complexity(net: nn.Module, input_size: Sequence[int], in_channels: int = 3) -> dict:
    """Params (all and trainable) and GMACs/GFLOPs of one forward pass on a 1x3xHxW input."""
    x = blank_input(net, input_size, in_channels)
    with evaluating(net):
        gmacs = count_gmacs(lambda: net(x))
    return {
        "params": sum(p.numel() for p in net.parameters()),
        "trainable_params": sum(p.numel() for p in net.parameters() if p.requires_grad),
        "gmacs": gmacs,
        "gflops": 2 * gmacs,
        "input_size": [int(s) for s in input_size],
    }


def step_gmacs_per_sample(forward: Mapping[str, Mapping[str, float]]) -> float:
    """Training GMACs per sample from the forward GMACs of a system's parts: ``{"trained": {part:
    gmacs}, "frozen": {part: gmacs}}`` (segkd systems' ``forward_gmacs``)."""
    trained = sum((forward.get("trained") or {}).values())
    frozen = sum((forward.get("frozen") or {}).values())
    return TRAINED_FACTOR * trained + FROZEN_FACTOR * frozen


def training_cost(forward: Mapping[str, Mapping[str, float]], optimizer_steps: int, batch_size: int,
                  fit_s: Optional[float] = None, val_s: Optional[float] = None,
                  step_s: Sequence[float] = ()) -> dict:
    """The ``cost`` block of summary.json: what a run spent to train, in steps, samples, time and GMACs.

    ``forward`` holds each part's forward GMACs per sample at the training crop; ``batch_size`` is the
    global batch (one optimizer step's samples over every process and accumulation). ``fit_s`` is the
    fit's wall time (validation included, the teacher's scoring and cache build before it excluded);
    ``val_s`` the validation passes within it; ``step_s`` per-epoch seconds per optimizer step.
    """
    per_sample = step_gmacs_per_sample(forward)
    samples = int(optimizer_steps) * int(batch_size)
    train_s = fit_s - val_s if fit_s is not None and val_s is not None else None
    return {
        "optimizer_steps": int(optimizer_steps),
        "samples_seen": samples,
        "fit_s": fit_s,
        "val_s": val_s,
        "train_s": train_s,
        "step_s_median": statistics.median(step_s) if step_s else None,
        "forward_gmacs": {k: dict(v) for k, v in forward.items()},
        "factors": {"trained": TRAINED_FACTOR, "frozen": FROZEN_FACTOR},
        "gmacs_per_sample": per_sample,
        "train_gmacs": per_sample * samples,
    }
