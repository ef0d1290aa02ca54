"""Why a student's val mIoU moves at the end of a run: score checkpoints on clean inputs several ways.

    .venv/bin/python experiments/end_point_drift.py CKPT [CKPT ...] [-- OVERRIDE ...]

For each checkpoint (of a run on the distillation setting, `+experiment=student`): val mIoU / pixel
accuracy as validation computes it; on val cut into crop-size tiles (is it the resolution?); on
200 train images without augmentation (is it memorisation?); and with the BatchNorm statistics
re-estimated on 60 augmented train batches, or on val (is it noisy running statistics?).
Quoted in docs/RESULTS.md, section 4.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset

from segkd.config import build, compose_train_config
from segkd.metrics import NetScores
from segkd.models.checkpoint import load_net


def score(net, loader, tile=None) -> str:
    scores = NetScores(["c"] * 19, 255)
    with torch.no_grad():
        for batch in loader:
            x, y = batch["image"], batch["mask"]
            if tile is None:
                scores.update(net(x), y)
                continue
            th, tw = tile
            for i in range(x.shape[-2] // th):
                for j in range(x.shape[-1] // tw):
                    cut = (..., slice(i * th, (i + 1) * th), slice(j * tw, (j + 1) * tw))
                    scores.update(net(x[cut]), y[cut])
    r = scores.compute_and_reset()
    return f"{100 * r['mIoU']:.1f} / {100 * r['pixel_acc']:.1f}"


def reestimate_bn(net, batches) -> None:
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # a plain average over the given batches
    net.train()
    with torch.no_grad():
        for batch in batches:
            net(batch["image"])
    net.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    args, overrides = parser.parse_known_args()
    overrides = [o for o in overrides if o != "--"]
    cfg = compose_train_config(["+experiment=student", "seed=1", *overrides], Path("outputs/end_point_drift"))
    datamodule = build(cfg.dataset)
    datamodule.setup("fit")
    val = datamodule.val_dataloader()
    plain = datamodule.plain_train_set()
    train = DataLoader(Subset(plain, list(range(0, len(plain), max(1, len(plain) // 200)))[:200]), batch_size=8)
    print("| checkpoint | step | val | val tiles | train, no augmentation | BN on augmented train | BN on val |")
    print("|---|---|---|---|---|---|---|")
    for path in args.checkpoints:
        step = torch.load(path, map_location="cpu", weights_only=True)["global_step"]
        net, _ = load_net(path)
        row = [Path(path).name, str(step), score(net, val), score(net, val, tuple(datamodule.crop_size)), score(net, train)]
        reestimate_bn(net, itertools.islice(datamodule.train_dataloader(), 60))
        row.append(score(net, val))
        reestimate_bn(net, itertools.islice(val, 30))
        row.append(score(net, val))
        print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
