"""How much a teacher-logit cache layout loses: stride and top-k against the exact logits.

    .venv/bin/python experiments/cache_layouts.py TEACHER_CKPT [--images 32] [-- OVERRIDE ...]

For each layout (store at 1/stride of the resolution; keep all classes or the k largest logits
plus the log-mean-exp of the rest), the stored logits of the first train images are expanded and
replayed at full resolution exactly as training does, then compared with the teacher's exact
logits: mean KL(teacher_T || replayed_T) per pixel at T = 1 and T = 4, agreement of the argmax,
and the bytes per image here and for a 1024x2048 image. Prints a Markdown table.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from segkd.config import build, compose_train_config
from segkd.data.geometry import CropGeometry
from segkd.distill.teacher import load_teacher
from segkd.distill.teacher_cache import bytes_per_image, compress, expand, replay, stored_size
from segkd.functional.softmax import softmax_kl

LAYOUTS = [(1, None), (1, 8), (1, 5), (1, 3), (2, None), (2, 5), (4, None), (4, 5), (8, 5)]


def kl(p_logits: torch.Tensor, q_logits: torch.Tensor, t: float) -> float:
    return float(softmax_kl(p_logits, q_logits, t, dim=0).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("teacher")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    cfg = compose_train_config(["+experiment=student", *args.overrides], "outputs/cache_layouts")
    datamodule = build(cfg.dataset)
    datamodule.prepare_data()
    datamodule.setup("fit")
    plain = datamodule.plain_train_set()
    teacher = load_teacher(args.teacher).net
    rows = {layout: {"kl1": [], "kl4": [], "agree": []} for layout in LAYOUTS}
    with torch.no_grad():
        for i in range(min(args.images, len(plain))):
            sample = plain[i]
            h, w = plain.image_size(i)
            exact = teacher(sample["image"][None])[0, :, :h, :w].float()
            for stride, top_k in LAYOUTS:
                small = F.adaptive_avg_pool2d(exact[None], stored_size((h, w), stride))
                stored = {k: v[0] for k, v in compress(small, top_k).items()}
                dense = expand(stored["values"], stored.get("ids"), stored.get("rest"), exact.shape[0])
                back = replay(dense, CropGeometry.whole(h, w), (h, w))
                r = rows[(stride, top_k)]
                r["kl1"].append(kl(exact, back, 1.0))
                r["kl4"].append(kl(exact, back, 4.0))
                r["agree"].append(float((exact.argmax(0) == back.argmax(0)).float().mean()))
    print(f"\n{min(args.images, len(plain))} train images at {h}x{w}, teacher {args.teacher}")
    print("| stride | top-k | KL at T=1 (nats/pixel) | KL at T=4 | argmax agreement | MB per image here | MB per 1024x2048 image |")
    print("|---|---|---|---|---|---|---|")
    for (stride, top_k), r in rows.items():
        mean = {k: sum(v) / len(v) for k, v in r.items()}
        print(f"| {stride} | {top_k or 'all'} | {mean['kl1']:.5f} | {mean['kl4']:.5f} | {100 * mean['agree']:.2f}% "
              f"| {bytes_per_image((h, w), 19, stride, top_k) / 1e6:.2f} | {bytes_per_image((1024, 2048), 19, stride, top_k) / 1e6:.1f} |")


if __name__ == "__main__":
    main()
