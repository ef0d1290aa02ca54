"""Command line: ``python -m segkd.export ckpt_path=PATH [net=net] [input_size=[512,1024]] [output=FILE.onnx]``

One network of a segkd checkpoint (by default ``net``: a distillation run's student, alone) as an
ONNX model with free batch, height and width, checked against the network under ONNX Runtime at two
sizes; the file and export.json go beside the checkpoint's run (``<run>/export/``) unless ``output``
says otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import hydra
import torch
from omegaconf import DictConfig
from rich.console import Console

from segkd.analysis.onnx_export import check_parity, export_onnx, onnx_session, parity
from segkd.inference.checkpoint import network_from
from segkd.runtime.errors import errors_in_one_line


def run_dir_of(ckpt_path: Path) -> Path:
    """The run a checkpoint belongs to: ``<run>/checkpoints/x.ckpt`` -> ``<run>``, else its folder."""
    return ckpt_path.parent.parent if ckpt_path.parent.name == "checkpoints" else ckpt_path.parent


def check_input_size(size, stride: int = 32) -> tuple[int, int]:
    if len(size) != 2 or any(int(s) <= 0 or int(s) % stride for s in size):
        raise ValueError(f"input_size={list(size)} must be [height, width], each a positive multiple of {stride} "
                         "(the UNet encoder's stride)")
    return int(size[0]), int(size[1])


def export(cfg: DictConfig) -> dict:
    """Export, check parity at ``input_size`` and at half of it, write export.json, return its contents."""
    net, spec, ckpt_path = network_from(cfg.get("ckpt_path"), cfg.net)
    height, width = check_input_size(cfg.input_size)
    output = Path(cfg.output) if cfg.get("output") else run_dir_of(ckpt_path) / "export" / f"{cfg.net}.onnx"
    net = net.cpu().eval()
    path = export_onnx(net, output, (height, width), dynamo=bool(cfg.dynamo), opset=int(cfg.opset))
    session = onnx_session(path)
    generator = torch.Generator().manual_seed(0)
    checks = {}
    for size in ((height, width), (max(32, height // 64 * 32), max(32, width // 64 * 32))):
        images = torch.randn(2, 3, *size, generator=generator)
        checks[f"{size[0]}x{size[1]}"] = diff = parity(net, session, images)
        check_parity(diff, float(cfg.tolerance), f"{path} at {size[0]}x{size[1]}")
    report = {
        "checkpoint": str(ckpt_path), "net": cfg.net, "model": spec, "onnx": str(path),
        "size_mb": path.stat().st_size / 2**20, "params": sum(p.numel() for p in net.parameters()),
        "exporter": "dynamo" if cfg.dynamo else "torchscript", "opset": int(cfg.opset),
        "inputs": {"image": "float32 (N, 3, H, W), normalised as in training; H, W multiples of 32"},
        "outputs": {"logits": f"float32 (N, {spec.get('classes')}, H, W)"},
        "parity_max_abs_diff": checks, "tolerance": float(cfg.tolerance),
    }
    path.with_name("export.json").write_text(json.dumps(report, indent=2) + "\n")
    Console().print(f"{path} ({report['size_mb']:.1f} MB, {report['params'] / 1e6:.2f} M params) · "
                    f"ONNX Runtime vs PyTorch max |Δ logits|: " + ", ".join(f"{k} {v:.2e}" for k, v in checks.items()))
    return report


@hydra.main(version_base="1.3", config_path="../conf", config_name="export")
def main(cfg: DictConfig) -> Optional[float]:
    with errors_in_one_line():
        export(cfg)


if __name__ == "__main__":
    main()
