"""Networks (smp UNets built by name) and their cost (params, MACs/FLOPs)."""

from segkd.models.complexity import measure_complexity
from segkd.models.unet import build_net, build_unet

__all__ = ["build_net", "build_unet", "measure_complexity"]
