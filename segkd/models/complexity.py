"""Parameters and compute of a net at a given input size.

torch.utils.flop_counter counts 2 FLOPs per multiply-add; real-time segmentation papers usually quote
multiply-adds as "GFLOPs", so both are reported under unambiguous names (GMACs, GFLOPs).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def measure_complexity(net: nn.Module, input_size: Sequence[int], in_channels: int = 3) -> dict:
    """Params (all and trainable) and GMACs/GFLOPs of one forward pass on a 1x3xHxW input."""
    param = next(net.parameters())
    x = torch.zeros(1, in_channels, *input_size, dtype=param.dtype, device=param.device)
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            net(x)
    finally:
        net.train(was_training)
    flops = counter.get_total_flops()
    return {
        "params": sum(p.numel() for p in net.parameters()),
        "trainable_params": sum(p.numel() for p in net.parameters() if p.requires_grad),
        "gmacs": flops / 2e9,
        "gflops": flops / 1e9,
        "input_size": [int(s) for s in input_size],
    }
