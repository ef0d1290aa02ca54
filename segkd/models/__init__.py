"""Networks (smp UNets and any other smp architecture, built by name), what segkd reads of any network
(input divisor, classes, feature roles) and their cost (params, MACs/FLOPs)."""

from segkd.models.architectures import (build_smp, check_input_size, common_divisor, describe, num_classes,
                                        on_meta, size_divisor)
from segkd.models.complexity import measure_complexity
from segkd.models.unet import build_net, build_unet

__all__ = ["build_net", "build_smp", "build_unet", "check_input_size", "common_divisor", "describe",
           "measure_complexity", "num_classes", "on_meta", "size_divisor"]
