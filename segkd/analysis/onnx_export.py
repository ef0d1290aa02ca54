"""A network as an ONNX model, checked against itself: what `segkd.export` writes and `segkd.profile`
runs under ONNX Runtime.

The export holds one network (a distillation checkpoint's student, without teacher, connectors or
optimizer state). Batch, height and width stay free (dynamic axes), so one file serves every
resolution a multiple of the network's output stride (segkd.models.size_divisor: 32 for a UNet, 16
for DeepLabV3+). Parity is checked on the spot: ONNX Runtime's logits
against the eager network's on the same input, the largest absolute difference reported and bounded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from segkd.models.architectures import describe
from segkd.models.architectures import size_divisor as divisor_of

INPUT, OUTPUT = "image", "logits"


def export_onnx(net: nn.Module, path: str | Path, input_size: Sequence[int], dynamo: bool = False,
                opset: int = 18, size_divisor: Optional[int] = None) -> Path:
    """Write ``net`` (eval mode, on the CPU) to ``path`` for inputs (N, 3, H, W) with N, H, W free.

    ``dynamo=False`` uses torch's TorchScript-based exporter (seconds for a UNet); ``True`` the
    torch.export-based one (needs onnxscript; minutes with free shapes on a busy CPU, the path torch
    is moving to).
    """
    from torch.export import Dim

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(1, 3, *input_size)
    net = net.eval()
    with torch.no_grad():
        if dynamo:
            # smp's networks need sides that are multiples of their output stride.
            stride = size_divisor or divisor_of(net)
            height, width = Dim(f"height_{stride}", min=1, max=16384 // stride), Dim(f"width_{stride}", min=1,
                                                                                      max=16384 // stride)
            torch.onnx.export(net, (example,), str(path), dynamo=True, input_names=[INPUT], output_names=[OUTPUT],
                              dynamic_shapes=({0: Dim("batch", min=1, max=1024), 2: stride * height,
                                               3: stride * width},),
                              opset_version=opset)
        else:
            axes = {0: "batch", 2: "height", 3: "width"}
            torch.onnx.export(net, (example,), str(path), dynamo=False, input_names=[INPUT], output_names=[OUTPUT],
                              dynamic_axes={INPUT: axes, OUTPUT: axes}, opset_version=opset)
    return path


def onnx_session(path: str | Path, threads: int | None = None):
    """An ONNX Runtime session on the CPU with ``threads`` intra-op threads (None: torch's count, so
    that ONNX Runtime and eager PyTorch are timed with the same cores)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def parity(net: nn.Module, session, images: torch.Tensor) -> float:
    """Largest |logit difference| between the eager network and its ONNX Runtime session on ``images``."""
    with torch.no_grad():
        expected = net.eval()(images).float().cpu().numpy()
    got = session.run([OUTPUT], {INPUT: images.cpu().numpy().astype(np.float32)})[0]
    if got.shape != expected.shape:
        raise RuntimeError(f"ONNX model returns {got.shape} for input {tuple(images.shape)}, the network {expected.shape}")
    return float(np.abs(got - expected).max())


def check_parity(max_abs_diff: float, tolerance: float, what: str) -> None:
    if not max_abs_diff <= tolerance:  # NaN fails too
        raise RuntimeError(f"{what}: ONNX Runtime's logits differ from the network's by up to {max_abs_diff:.3g} "
                           f"(tolerance {tolerance:g}); the export is not faithful. Try dynamo=true, or another opset")


def check_input_size(size, stride: int = 32, what: str = "a UNet", key: str = "input_size") -> tuple[int, int]:
    """``size`` as ``(height, width)``, each a positive multiple of ``stride`` (the output stride of the
    network, ``what``: segkd.models.size_divisor), or one clear error naming ``key``."""
    if len(size) != 2 or any(int(s) <= 0 or int(s) % stride for s in size):
        raise ValueError(f"{key}={list(size)} must be [height, width], each a positive multiple of {stride} "
                         f"(the output stride of {what})")
    return int(size[0]), int(size[1])


def export_checked(net: nn.Module, path: str | Path, input_size: Sequence[int], tolerance: float,
                   dynamo: bool = False, opset: int = 18) -> tuple[Path, dict[str, float]]:
    """segkd.export's work: ``net`` exported to ``path`` (:func:`export_onnx`) and its ONNX Runtime
    logits checked against the network's at ``input_size`` and at about half of it (free height and
    width, rounded down to the network's divisor), each within ``tolerance``. Returns the file and
    ``"HxW" -> max |Δ logits|``."""
    stride = divisor_of(net)
    height, width = check_input_size(input_size, stride, describe(net))
    net = net.cpu().eval()
    path = export_onnx(net, path, (height, width), dynamo=dynamo, opset=opset, size_divisor=stride)
    session = onnx_session(path)
    generator = torch.Generator().manual_seed(0)
    checks = {}
    half = (max(stride, height // (2 * stride) * stride), max(stride, width // (2 * stride) * stride))
    for size in ((height, width), half):
        images = torch.randn(2, 3, *size, generator=generator)
        checks[f"{size[0]}x{size[1]}"] = diff = parity(net, session, images)
        check_parity(diff, tolerance, f"{path} at {size[0]}x{size[1]}")
    return path, checks
