"""Command line: ``python -m segkd.profile [models=[teacher_r34,student_mnv2]] [ckpt_path=PATH] ...``

Teacher and students side by side: params, GMACs and GFLOPs, latency (median, p90) and throughput
over resolutions and batch sizes under eager PyTorch, channels_last, torch.compile and ONNX Runtime,
and a per-layer table; profile.md, profile.csv, profile.json and latency.png in the run dir. With
``ckpt_path`` the checkpoint's network is profiled too and the results are added to its run
(``<run>/profile/`` and ``profile`` in its summary.json). conf/profile.yaml lists every option;
docs/PROFILE.md has the measurements.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from torch import nn

from segkd.analysis.onnx_export import check_input_size
from segkd.analysis.profile_report import add_to_checkpoint_run, print_report, write_report
from segkd.analysis.profiling import profile_networks
from segkd.config import CONF_DIR, command_line, to_plain
from segkd.inference.checkpoint import network_from, run_dir_of
from segkd.inference.devices import resolve_device
from segkd.models import build_net, describe, on_meta, size_divisor
from segkd.runtime.errors import errors_in_one_line


def preset_spec(name: str, num_classes: int) -> dict:
    """A model preset of conf/model/ as a plain spec, with the class count filled in."""
    path = CONF_DIR / "model" / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
        raise ValueError(f"unknown model preset '{name}'; conf/model/ has {known}")
    spec = OmegaConf.load(path)
    spec.classes = num_classes
    return to_plain(spec)


def networks(cfg: DictConfig) -> dict[str, tuple[Callable[[], nn.Module], dict]]:
    """name -> (a factory of the network, its spec): the presets asked for, then the checkpoint's."""
    nets = {}
    for name in cfg.models or []:
        spec = preset_spec(name, int(cfg.num_classes))
        nets[name] = ((lambda s=spec: build_net(s)), spec)
    if cfg.get("ckpt_path"):
        loaded, spec, path = network_from(cfg.ckpt_path, cfg.net)
        nets[f"{run_dir_of(path).name}:{cfg.net}"] = ((lambda n=loaded: n), spec)
    if not nets:
        raise ValueError("nothing to profile: give models=[...] (conf/model/ presets) and/or ckpt_path=...")
    return nets


def input_strides(nets: dict[str, tuple[Callable[[], nn.Module], dict]]) -> dict[str, tuple[int, str]]:
    """name -> (the input sides' divisor, what the network is), each network built on the meta device."""
    strides = {}
    for name, (factory, _) in nets.items():
        net = on_meta(factory)
        strides[name] = (size_divisor(net), f"{name}, {describe(net)}")
    return strides


def check_resolution(size, strides: dict[str, tuple[int, str]], key: str) -> tuple[int, int]:
    """``size`` as ``(height, width)`` when every network takes it (a multiple of each one's stride)."""
    for stride, what in strides.values():
        check_input_size(size, stride, what, key)
    return int(size[0]), int(size[1])


def profile(cfg: DictConfig) -> dict:
    """Profile what ``cfg`` names, write the reports into the run dir (and the checkpoint's run), return the report."""
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    device = resolve_device(str(cfg.device))
    nets = networks(cfg)
    strides = input_strides(nets)
    resolutions = [check_resolution(s, strides, "resolutions") for s in cfg.resolutions]
    console = Console()
    report = profile_networks(
        nets, resolutions, [int(b) for b in cfg.batch_sizes], list(cfg.backends), device,
        check_resolution(cfg.reference_resolution, strides, "reference_resolution"),
        reference=cfg.get("reference_model") if cfg.get("reference_model") in nets else None,
        tolerance=float(cfg.tolerance), warmup=int(cfg.warmup), repeats=int(cfg.repeats), rounds=int(cfg.rounds),
        layer_depth=int(cfg.layer_depth) if cfg.layer_table else None, say=console.print)
    report["settings"] = to_plain(cfg)
    write_report(report, output_dir)
    print_report(report, console)
    if cfg.get("ckpt_path"):
        add_to_checkpoint_run(report, Path(str(cfg.ckpt_path)).expanduser().absolute())
    return report


@hydra.main(version_base="1.3", config_path="../conf", config_name="profile")
def main(cfg: DictConfig) -> None:
    with errors_in_one_line():
        profile(cfg)


if __name__ == "__main__":
    sys.argv = command_line("profile", sys.argv)
    main()
