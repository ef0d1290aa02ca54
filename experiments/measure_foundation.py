"""Measure the foundation on this machine: epoch wall time per model, loader vs training throughput,
and params / MACs / val mIoU after the default training budget.

    .venv/bin/python experiments/measure_foundation.py [--epochs N] [--models teacher_r34,student_r18,student_mnv2]

Every model is trained with the default config (the `make run` budget unless --epochs says otherwise)
on SynthStreets, one after another in this process, so the numbers are side by side on one machine.
Results are printed as a Markdown table and written to outputs/measure_foundation/results.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from hydra.utils import instantiate

from segkd.config import compose_train_config
from segkd.train import train


def loader_throughput(cfg, num_workers: int) -> float:
    """Images/s of one full pass over the train loader alone (decode + augment + collate)."""
    datamodule = instantiate(cfg.dataset, num_workers=num_workers)
    datamodule.prepare_data()
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    start = time.perf_counter()
    images = sum(batch["image"].shape[0] for batch in loader)
    return images / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="teacher_r34,student_r18,student_mnv2")
    parser.add_argument("--epochs", type=int, default=None, help="default: the config's trainer.max_epochs")
    parser.add_argument("--out", default="outputs/measure_foundation")
    args = parser.parse_args()
    out = Path(args.out)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    results = {}
    for model in args.models.split(","):
        # The `make run` setting: no +experiment (experiments train on the larger distillation setting).
        task = "teacher" if model.startswith("teacher") else "student"
        overrides = [f"task_name={task}", f"model={model}", "trainer.enable_progress_bar=false",
                     "trainer.enable_model_summary=false"]
        if args.epochs is not None:
            overrides.append(f"trainer.max_epochs={args.epochs}")
        summary = train(compose_train_config(overrides, out / model))
        timing = summary["timing"]  # medians over epochs, from segkd.callbacks.EpochTimer
        results[model] = {
            "params_M": summary["complexity"]["params"] / 1e6,
            "gmacs": summary["complexity"]["gmacs"],
            "gflops": summary["complexity"]["gflops"],
            "input_size": summary["complexity"]["input_size"],
            "epochs": summary["epochs"],
            "train_epoch_s": timing["train_epoch_s_median"],
            "val_epoch_s": timing["val_epoch_s_median"],
            "train_images_per_s": timing["train_images_per_s"],
            "val_mIoU": summary["val"]["mIoU"],
            "best_val_mIoU": summary["best_val_mIoU"],
            "wall_time_s": summary["wall_time_s"],
        }
    cfg = compose_train_config([], out / "loader")
    loader = {f"workers={w}": loader_throughput(cfg, w) for w in (0, 2)}

    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"models": results, "loader_images_per_s": loader}, indent=2))
    print("\n| model | params (M) | GMACs | GFLOPs | train epoch (s) | val pass (s) | train img/s | loader img/s ÷ train img/s (workers=0) | val mIoU (final / best) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for model, r in results.items():
        print(
            f"| {model} | {r['params_M']:.2f} | {r['gmacs']:.3f} | {r['gflops']:.3f} | {r['train_epoch_s']:.1f} "
            f"| {r['val_epoch_s']:.1f} | {r['train_images_per_s']:.1f} | {loader['workers=0'] / r['train_images_per_s']:.1f} "
            f"| {100 * r['val_mIoU']:.1f} / {100 * r['best_val_mIoU']:.1f} |"
        )
    print("\ndata loader alone: " + ", ".join(f"{k}: {v:.0f} img/s" for k, v in loader.items()))


if __name__ == "__main__":
    main()
