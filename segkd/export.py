"""Command line: ``python -m segkd.export ckpt_path=PATH [net=net] [input_size=[512,1024]] [output=FILE.onnx]``

One network of a segkd checkpoint (by default ``net``: a distillation run's student, alone) as an
ONNX model with free batch, height and width, checked against the network under ONNX Runtime at two
sizes; the file and export.json go beside the checkpoint's run (``<run>/export/``) unless ``output``
says otherwise.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import hydra
from omegaconf import DictConfig
from rich.console import Console

from segkd.analysis.onnx_export import check_input_size, export_checked
from segkd.inference.checkpoint import network_from, run_dir_of
from segkd.config import command_line
from segkd.models import describe, num_classes, size_divisor
from segkd.reporting import number
from segkd.runtime.errors import errors_in_one_line


def export(cfg: DictConfig) -> dict:
    """Export, check parity at ``input_size`` and at half of it, write export.json, return its contents."""
    net, spec, ckpt_path = network_from(cfg.get("ckpt_path"), cfg.net)
    stride = size_divisor(net)  # the network's output stride: 32 for a UNet, 16 for DeepLabV3+
    check_input_size(cfg.input_size, stride, describe(net))  # before anything is written
    output = Path(cfg.output) if cfg.get("output") else run_dir_of(ckpt_path) / "export" / f"{cfg.net}.onnx"
    path, checks = export_checked(net, output, cfg.input_size, float(cfg.tolerance), dynamo=bool(cfg.dynamo),
                                  opset=int(cfg.opset))
    report = {
        "checkpoint": str(ckpt_path), "net": cfg.net, "model": spec, "onnx": str(path),
        "size_mb": path.stat().st_size / 2**20, "params": sum(p.numel() for p in net.parameters()),
        "exporter": "dynamo" if cfg.dynamo else "torchscript", "opset": int(cfg.opset),
        "inputs": {"image": f"float32 (N, 3, H, W), normalised as in training; H, W multiples of {stride}"},
        "outputs": {"logits": f"float32 (N, {num_classes(net)}, H, W)"},
        "parity_max_abs_diff": checks, "tolerance": float(cfg.tolerance),
    }
    path.with_name("export.json").write_text(json.dumps(report, indent=2) + "\n")
    Console().print(f"{path} ({report['size_mb']:.1f} MB, {report['params'] / 1e6:.2f} M params) · "
                    "ONNX Runtime vs PyTorch max |Δ logits|: "
                    + ", ".join(f"{k} {number(v, '.2e')}" for k, v in checks.items()))
    return report


@hydra.main(version_base="1.3", config_path="../conf", config_name="export")
def main(cfg: DictConfig) -> Optional[float]:
    with errors_in_one_line():
        export(cfg)


if __name__ == "__main__":
    sys.argv = command_line("export", sys.argv)
    main()
