"""How fast a network answers, measured the way a real-time system would see it.

Latency is wall time per forward pass on a fixed input, after warm-up, with the device synchronised
around each call (on CUDA, kernels are asynchronous: without a sync the clock stops before the work
does). Timings of several networks and backends are interleaved round by round, so drift on a shared
machine hits all of them alike; medians and 90th percentiles over all rounds are reported.

Backends: ``eager`` (the module as trained), ``channels_last`` (NHWC memory layout, which CPU and
tensor-core kernels often prefer), ``compile`` (torch.compile; its one-off compile time is reported
apart) and ``onnxruntime`` (the export of segkd.analysis.onnx_export, CPU; its parity is checked).
"""

from __future__ import annotations

import copy
import statistics
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from segkd.analysis.onnx_export import INPUT, OUTPUT, check_parity, export_onnx, onnx_session, parity

BACKENDS = ("eager", "channels_last", "compile", "onnxruntime")


def complexity_at(net_factory: Callable[[], nn.Module], size: Sequence[int]) -> dict:
    """Params, GMACs and GFLOPs (torch's counter: 2 FLOPs per multiply-add) of one 1x3xHxW pass,
    counted on the meta device: shapes only, so a 1024x2048 count of a large teacher costs nothing."""
    from segkd.models.architectures import on_meta

    net = on_meta(net_factory).eval()
    with torch.device("meta"), FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, 3, *size))
    flops = counter.get_total_flops()
    return {"params": sum(p.numel() for p in net.parameters()), "gmacs": flops / 2e9, "gflops": flops / 1e9}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Runner:
    """One network under one backend, ready to be timed on inputs of one shape."""

    model: str
    backend: str
    call: Callable[[torch.Tensor], object]
    prepare: Callable[[torch.Tensor], object]
    setup_s: float = 0.0  # compile or export time, paid once
    parity: Optional[float] = None
    times: list[float] = field(default_factory=list)


def make_runner(model: str, net: nn.Module, backend: str, example: torch.Tensor, tolerance: float,
                workdir: Path) -> Runner:
    """``net`` (eval mode, on the example's device) wrapped for ``backend``; raises when the backend
    cannot run here (the caller reports why and goes on with the others)."""
    start = time.perf_counter()
    if backend == "eager":
        return Runner(model, backend, net, lambda x: x)
    if backend == "channels_last":
        converted = copy.deepcopy(net).to(memory_format=torch.channels_last)  # .to() converts in place
        return Runner(model, backend, converted, lambda x: x.contiguous(memory_format=torch.channels_last))
    if backend == "compile":
        compiled = torch.compile(net)
        with torch.no_grad():
            compiled(example)  # compiles for this shape
        synchronize(example.device)
        return Runner(model, backend, compiled, lambda x: x, setup_s=time.perf_counter() - start)
    if backend == "onnxruntime":
        if example.device.type != "cpu":
            raise RuntimeError("segkd profiles ONNX Runtime on the CPU only")
        path = export_onnx(net, workdir / f"{model}.onnx", tuple(example.shape[-2:]))
        session = onnx_session(path)
        diff = parity(net, session, example)
        check_parity(diff, tolerance, f"{model} at {tuple(example.shape)}")
        return Runner(model, backend, lambda x: session.run([OUTPUT], {INPUT: x}), lambda x: x.numpy(),
                      setup_s=time.perf_counter() - start, parity=diff)
    raise ValueError(f"unknown backend '{backend}'; choose from {', '.join(BACKENDS)}")


def time_runners(runners: Sequence[Runner], example: torch.Tensor, warmup: int, repeats: int, rounds: int) -> None:
    """Fill each runner's ``times`` (seconds per call), interleaving runners round by round."""
    inputs = {id(r): r.prepare(example) for r in runners}
    with torch.no_grad():
        for runner in runners:
            for _ in range(warmup):
                runner.call(inputs[id(runner)])
            synchronize(example.device)
        for _ in range(rounds):
            for runner in runners:
                x = inputs[id(runner)]
                for _ in range(repeats):
                    synchronize(example.device)
                    start = time.perf_counter()
                    runner.call(x)
                    synchronize(example.device)
                    runner.times.append(time.perf_counter() - start)


def latency_row(runner: Runner, batch: int, size: Sequence[int]) -> dict:
    median = statistics.median(runner.times)
    return {
        "model": runner.model, "backend": runner.backend, "height": int(size[0]), "width": int(size[1]),
        "batch": batch, "median_ms": 1e3 * median, "p90_ms": 1e3 * float(np.percentile(runner.times, 90)),
        "images_per_s": batch / median, "calls": len(runner.times), "setup_s": runner.setup_s,
        "onnx_max_abs_diff": runner.parity,
    }


def modules_that_run(net: nn.Module, example: torch.Tensor) -> set[str]:
    """Paths of the modules a forward pass calls (containers such as ModuleList never are)."""
    ran, handles = set(), []
    for name, module in net.named_modules():
        handles.append(module.register_forward_pre_hook(lambda mod, args, _name=name: ran.add(_name)))
    try:
        with torch.no_grad():
            net(example)
    finally:
        for handle in handles:
            handle.remove()
    return ran


def layers_at(net: nn.Module, ran: set[str], depth: int) -> list[str]:
    """The modules a reader calls layers: from the top, every module that runs at ``depth`` dots of its
    path (``encoder.layer1``, ``decoder.blocks.0``), or shallower when nothing below it runs; modules
    that never run themselves (a ModuleList, a Sequential a forward slices) are looked through."""
    layers = []

    def visit(prefix: str, module: nn.Module) -> None:
        for child_name, child in module.named_children():
            path = f"{prefix}.{child_name}" if prefix else child_name
            runs_below = any(r.startswith(path + ".") for r in ran)
            if path in ran and (path.count(".") >= depth or not runs_below):
                layers.append(path)
            elif runs_below:
                visit(path, child)

    visit("", net)
    return layers


@contextmanager
def module_ranges(net: nn.Module, names: Sequence[str]) -> Iterator[None]:
    """torch.profiler ranges named after modules (``layer::<path>``), opened and closed by forward
    hooks: the profiler itself labels operators, not the layers a reader thinks in."""
    modules, handles = dict(net.named_modules()), []
    for name in names:
        state: dict = {}

        def pre(mod, args, _name=name, _state=state):
            _state["range"] = torch.autograd.profiler.record_function(f"layer::{_name}")
            _state["range"].__enter__()

        def post(mod, args, output, _state=state):
            _state.pop("range").__exit__(None, None, None)

        handles += [modules[name].register_forward_pre_hook(pre), modules[name].register_forward_hook(post)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def layer_table(net: nn.Module, example: torch.Tensor, depth: int = 1, warmup: int = 2) -> list[dict]:
    """Per-layer time of one forward pass from torch.profiler: each layer's total (its operators
    included) and its share of the pass, slowest first."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if example.device.type == "cuda" else [])
    with torch.no_grad():
        for _ in range(warmup):
            net(example)
        names = layers_at(net, modules_that_run(net, example), depth)
        with module_ranges(net, names), profile(activities=activities) as prof:
            start = time.perf_counter()
            net(example)
            synchronize(example.device)
            total_us = (time.perf_counter() - start) * 1e6
    rows = []
    for event in prof.key_averages():
        if event.key.startswith("layer::"):
            device_us = getattr(event, "device_time_total", 0.0) or 0.0
            elapsed = max(event.cpu_time_total, device_us)
            rows.append({"layer": event.key[len("layer::"):], "calls": event.count, "time_ms": elapsed / 1e3,
                         "share": elapsed / total_us if total_us > 0 else None})
    return sorted(rows, key=lambda r: -r["time_ms"])


def workdir() -> tempfile.TemporaryDirectory:
    """Where ONNX files made only for timing go (and are deleted afterwards)."""
    return tempfile.TemporaryDirectory(prefix="segkd-profile-")


def ratios(rows: list[dict], reference: Optional[str]) -> list[dict]:
    """Per resolution and batch: each model's latency / the reference model's under the same backend,
    and / its own eager latency (what the backend buys)."""
    out = []
    by_key = {(r["model"], r["backend"], r["height"], r["width"], r["batch"]): r for r in rows}
    for r in rows:
        eager = by_key.get((r["model"], "eager", r["height"], r["width"], r["batch"]))
        ref = by_key.get((reference, r["backend"], r["height"], r["width"], r["batch"])) if reference else None
        out.append({**{k: r[k] for k in ("model", "backend", "height", "width", "batch")},
                    "vs_own_eager": r["median_ms"] / eager["median_ms"] if eager else None,
                    "vs_reference": r["median_ms"] / ref["median_ms"] if ref else None})
    return out


def profile_networks(nets: dict[str, tuple[Callable[[], nn.Module], dict]], resolutions: Sequence[Sequence[int]],
                     batch_sizes: Sequence[int], backends: Sequence[str], device: torch.device,
                     reference_resolution: Sequence[int], reference: Optional[str] = None, tolerance: float = 1e-3,
                     warmup: int = 3, repeats: int = 5, rounds: int = 3, layer_depth: Optional[int] = 1,
                     say: Callable[[str], None] = print) -> dict:
    """segkd.profile's measurements: ``nets`` (name -> (a factory of the network, its model spec))
    counted at ``reference_resolution`` and each of ``resolutions`` (params, GMACs, GFLOPs, from the
    spec on the meta device), timed under each backend at each resolution and batch size, and, unless
    ``layer_depth`` is None, a per-layer table of each at the first resolution. A backend this machine
    cannot run is listed under ``unavailable`` with its reason; the others are still timed. ``say``
    is told what is being timed."""
    import logging

    from segkd.models import build_net

    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise ValueError(f"unknown backends {unknown}; choose from {list(BACKENDS)}")
    from segkd.models.architectures import architecture_name, encoder_name, on_meta

    presets = []
    for name, (_, spec) in nets.items():
        built = on_meta(lambda: build_net(spec))  # what the network is, from the network (any architecture)
        row = {"model": name, "architecture": architecture_name(built),
               "encoder": encoder_name(built) or spec.get("encoder_name")}
        for size in [reference_resolution, *resolutions]:
            cx = complexity_at(lambda: build_net(spec), size)  # from the spec: counted on the meta device
            row.update(params=cx["params"], **{f"gmacs@{size[0]}x{size[1]}": cx["gmacs"],
                                               f"gflops@{size[0]}x{size[1]}": cx["gflops"]})
        presets.append(row)

    rows, unavailable, layers = [], [], {}
    with workdir() as tmp:
        for size in resolutions:
            for batch in batch_sizes:
                example = torch.randn(int(batch), 3, *size, generator=torch.Generator().manual_seed(0)).to(device)
                runners = []
                for name, (factory, _) in nets.items():
                    net = factory().to(device).eval()
                    for backend in backends:
                        try:
                            runners.append(make_runner(name, net, backend, example, tolerance, Path(tmp)))
                        except Exception as err:  # a backend this machine cannot run: say why, time the rest
                            if "differ from the network" in str(err):
                                raise
                            unavailable.append({"model": name, "backend": backend, "size": list(size), "batch": batch,
                                                "reason": f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"})
                            logging.getLogger(__name__).warning("%s under %s unavailable: %s", name, backend,
                                                                unavailable[-1]["reason"])
                say(f"timing {len(runners)} network/backend pairs at {batch}x3x{size[0]}x{size[1]} on {device} ...")
                time_runners(runners, example, warmup, repeats, rounds)
                rows += [latency_row(r, int(batch), size) for r in runners]
        if layer_depth is not None:
            example = torch.randn(1, 3, *resolutions[0]).to(device)
            for name, (factory, _) in nets.items():
                layers[name] = layer_table(factory().to(device).eval(), example, depth=int(layer_depth))
    return {"device": str(device), "threads": torch.get_num_threads(), "reference_model": reference,
            "presets": presets, "latency": rows, "ratios": ratios(rows, reference), "unavailable": unavailable,
            "layers": layers}
