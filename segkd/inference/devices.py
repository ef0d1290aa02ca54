"""Which device a command runs on, from its ``device`` option: one rule for every command."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """``auto`` (a GPU when there is one), or a device this machine has; anything else is one clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device={name} is not a device; use device=auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise ValueError(f"device={name}: this machine has no such GPU ({torch.cuda.device_count()} visible); "
                         "use device=auto or device=cpu")
    return device
