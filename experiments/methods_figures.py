"""The first two figures of docs/METHODS.md: what a real teacher's soft targets hold, and why the
tempered KL of logit distillation is multiplied by T².

1. Dark knowledge. Logit distillation only teaches something beyond the label where the teacher's
   softmax is *not* one-hot: its entropy (/ log C, 0 = certain, 1 = uniform) and its mass off the argmax
   (/ (1 - 1/C)) say where that is. The reference teacher of the distillation data is run over the
   embedded SynthStreets val split (segkd's own dataset and eval transform), and those two maps are
   averaged over (a) class-boundary pixels (some other valid class in the 3x3 neighbourhood of the
   label) vs interior pixels, (b) each class, rare vs frequent, (c) pixels of small vs large objects
   (8-connected regions of one class, as segkd.analysis.dataset_stats.object_areas counts them).
   If the soft targets carry information, it is concentrated where the label is least informative:
   on borders, small objects and rare classes. Numbers: ``dark_knowledge.json``.

2. Why T². With p = softmax(t/T), q = softmax(s/T), d KL(p||q)/ds = (q - p)/T, and for T much larger than
   the logit spread p, q ≈ (1 + (z - mean z)/T)/C, so q - p ≈ (s - t)/(C T): the gradient of KL alone
   falls as 1/T², that of T²·KL stays constant, and the temperature can be changed without retuning
   the weight of the KD term (Hinton et al., 2015). Measured with autograd through segkd's own
   LogitKD (checked against the closed form T·(q - p)) on the teacher's logits as t and two students
   as s: the teacher plus Gaussian noise, and a scratch-initialised student_mnv2. At small T the
   teacher's softmax is nearly one-hot, which shrinks q - p further, so the 1/T² law only holds once
   T exceeds the logits' spread. Numbers: ``temperature_gradient.json``.

    .venv/bin/python experiments/methods_figures.py [--ckpt PATH] [--out docs/figures/methods] [--images 3]

Without the reference teacher the script says so and prints the command that trains it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from segkd.analysis.dark_knowledge import RARE_SHARE, dark_knowledge
from segkd.analysis.kd_temperature import TEMPERATURES, temperature_table

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CKPT = REPO / ".cache/reference_teachers/synthstreets-s0_n2000-201_128x256-v1/checkpoints/last.ckpt"
DEFAULT_DATA = REPO / ".cache/synthstreets/s0_n2000-201_128x256"
DEFAULT_OUT = REPO / "docs/figures/methods"
TRAIN_COMMAND = "python -m segkd.run +experiment=reference_teacher"

NOISE_STD = 1.0
#: The first val images whose teacher logits the gradient measurement uses.
GRADIENT_IMAGES = 8

# The measurements (segkd.analysis.dark_knowledge, segkd.analysis.kd_temperature) are segkd's; this
# script runs them over the reference teacher and draws the figures.


def example_figure(net: nn.Module, dataset, indices: Sequence[int], path: Path) -> Path:
    """Per image: RGB | label | teacher entropy | teacher off-argmax mass (both on fixed 0-1 scales)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from segkd.inference.drawing import colorize
    from segkd.visual.knowledge import teacher_maps
    from segkd.visual.maps import colormap
    from segkd.visual.panels import AMOUNT_CMAP

    with torch.no_grad():
        batch = [dataset[i] for i in indices]
        logits = net(torch.stack([b["image"] for b in batch])).float()
    masks = torch.stack([b["mask"] for b in batch])
    maps = teacher_maps(logits, logits, masks, dataset.ignore_index)
    titles = ("image", "label", "teacher entropy / log C", "off-argmax mass / (1 - 1/C)")
    h, w = masks.shape[-2:]
    fig, axes = plt.subplots(len(indices), 4, figsize=(4 * 2.6, len(indices) * 2.6 * h / w + 0.6), squeeze=False)
    for row, index in enumerate(indices):
        rgb, label = dataset.load(index)  # segkd's reader: the image as stored, the label in train ids
        panels = (rgb, colorize(label), colormap(maps["entropy"][row, : rgb.shape[0], : rgb.shape[1]].numpy(), AMOUNT_CMAP),
                  colormap(maps["off_argmax"][row, : rgb.shape[0], : rgb.shape[1]].numpy(), AMOUNT_CMAP))
        for col, panel in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(panel, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(titles[col], fontsize=9)
        axes[row, 0].set_ylabel("\n".join(dataset.sample_id(index).split("_")[:2]), fontsize=7)  # city, sequence
    sm = plt.cm.ScalarMappable(cmap=AMOUNT_CMAP, norm=plt.Normalize(0, 1))
    fig.colorbar(sm, ax=axes[:, 2:].ravel().tolist(), fraction=0.03, pad=0.01)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def summary_figure(summary: dict, path: Path) -> Path:
    """Mean entropy by pixel group and by class (classes sorted by pixel share, log scale beside)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.4), gridspec_kw={"width_ratios": [1, 2.2]})
    groups = ["interior", "boundary", "large", "small", "frequent", "rare"]
    x = np.arange(len(groups))
    for k, (key, label) in enumerate((("entropy", "entropy / log C"), ("off_argmax", "off-argmax / (1-1/C)"))):
        ax1.bar(x + (k - 0.5) * 0.38, [summary[g][key] or 0 for g in groups], 0.38, label=label)
    ax1.set_xticks(x, groups, rotation=30, fontsize=8)
    ax1.set_title("teacher uncertainty by pixel group (val)", fontsize=9)
    ax1.legend(fontsize=7)
    classes = sorted(((n, c) for n, c in summary["per_class"].items() if c["pixels"]), key=lambda nc: -nc[1]["share"])
    names = [n for n, _ in classes]
    ax2.bar(range(len(names)), [c["entropy"] for _, c in classes], color="tab:blue", label="entropy / log C")
    ax2.set_xticks(range(len(names)), names, rotation=60, fontsize=7)
    ax2.set_ylabel("mean entropy / log C", fontsize=8)
    share_ax = ax2.twinx()
    share_ax.plot(range(len(names)), [c["share"] for _, c in classes], "k.-", label="pixel share")
    share_ax.set_yscale("log")
    share_ax.set_ylabel("pixel share (log)", fontsize=8)
    share_ax.axhline(RARE_SHARE, color="gray", ls=":", lw=1)
    ax2.set_title("per class, most frequent first (dotted: rare threshold)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------------------------------
# Why T²


def scratch_student(num_classes: int, seed: int = 0) -> nn.Module:
    """student_mnv2 as its config builds it (segkd.models.build_net), from random weights."""
    from omegaconf import OmegaConf

    from segkd.config import CONF_DIR
    from segkd.models import build_net

    spec = OmegaConf.to_container(OmegaConf.load(Path(CONF_DIR) / "model" / "student_mnv2.yaml"), resolve=False)
    spec.update(classes=num_classes, encoder_weights=None)
    torch.manual_seed(seed)
    return build_net(spec).eval()


def gradient_figure(tables: dict[str, list[dict]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for (name, rows), color in zip(tables.items(), ("tab:blue", "tab:orange", "tab:green")):
        ts = [r["T"] for r in rows]
        ax.loglog(ts, [r["grad_norm_kl"] for r in rows], "o--", color=color, label=f"KL, {name}")
        ax.loglog(ts, [r["grad_norm_t2_kl"] for r in rows], "s-", color=color, label=f"T²·KL, {name}")
        ref = rows[-1]["grad_norm_kl"] * rows[-1]["T"] ** 2
        ax.loglog(ts, [ref / t**2 for t in ts], ":", color="gray", lw=1)
    ax.plot([], [], ":", color="gray", label="∝ 1/T² (through the last point)")
    ax.set_xlabel("temperature T")
    ax.set_ylabel("mean per-pixel ‖∂loss/∂s‖")
    ax.set_title("gradient w.r.t. student logits (teacher = reference UNet)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------------------------------


def run(teacher: nn.Module, data_root: Path, out: Path, images: int = 3, limit: Optional[int] = None,
        student: Optional[nn.Module] = None, seed: int = 0) -> dict:
    """Both figures and both JSON files for ``teacher`` on ``data_root``'s val split into ``out``."""
    from segkd.data.datasets import CityscapesDataset
    from segkd.data.transforms import eval_transform

    out.mkdir(parents=True, exist_ok=True)
    dataset = CityscapesDataset(data_root, "val", transform=eval_transform())
    teacher.eval()
    start = time.perf_counter()
    summary, kept = dark_knowledge(teacher, dataset, limit, keep=GRADIENT_IMAGES)
    summary["images"] = min(limit or len(dataset), len(dataset))
    step = max(1, min(len(dataset), limit or len(dataset)) // max(images, 1))
    example = example_figure(teacher, dataset, [i * step for i in range(min(images, len(dataset)))],
                             out / "dark_knowledge_examples.png")
    summary_png = summary_figure(summary, out / "dark_knowledge_summary.png")
    (out / "dark_knowledge.json").write_text(json.dumps(summary, indent=2) + "\n")
    seconds_dk = time.perf_counter() - start

    t_logits, valid = kept["logits"], kept["masks"] != dataset.ignore_index
    generator = torch.Generator().manual_seed(seed)
    students = {f"teacher + N(0, {NOISE_STD:g}²)": t_logits + NOISE_STD * torch.randn(t_logits.shape, generator=generator)}
    student = student if student is not None else scratch_student(dataset.num_classes, seed)
    with torch.no_grad():
        first = torch.stack([dataset[i]["image"] for i in range(len(t_logits))])
        students["scratch student_mnv2"] = student.eval()(first).float()
    tables = {name: temperature_table(t_logits, s, valid) for name, s in students.items()}
    gradient_png = gradient_figure(tables, out / "temperature_gradient.png")
    gradients = {
        "temperatures": list(TEMPERATURES), "images": len(t_logits),
        "teacher_logit_spread": {"mean_max_minus_min": (t_logits.amax(1) - t_logits.amin(1))[valid].mean().item(),
                                 "mean_std_over_classes": t_logits.std(1)[valid].mean().item()},
        "students": {name: {"rows": rows,
                            "ratio_kl_T4_over_T8": _ratio(rows, "grad_norm_kl", 4, 8),
                            "ratio_t2_kl_T4_over_T8": _ratio(rows, "grad_norm_t2_kl", 4, 8)}
                     for name, rows in tables.items()},
        "formula": "per pixel: d(T^2 KL(p||q))/ds = T (q - p), p = softmax(t/T), q = softmax(s/T); KL alone: (q - p)/T",
    }
    (out / "temperature_gradient.json").write_text(json.dumps(gradients, indent=2) + "\n")
    return {"dark_knowledge": summary, "temperature_gradient": gradients, "seconds_dark_knowledge": seconds_dk,
            "files": [str(p) for p in (example, summary_png, out / "dark_knowledge.json", gradient_png,
                                       out / "temperature_gradient.json")]}


def _ratio(rows: list[dict], key: str, a: float, b: float) -> Optional[float]:
    by_t = {r["T"]: r[key] for r in rows}
    return by_t[a] / by_t[b] if a in by_t and b in by_t and by_t[b] else None


def _num(value: Optional[float], digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def report(result: dict) -> str:
    s = result["dark_knowledge"]
    lines = [f"dark knowledge over {s['images']} val images (mean entropy/logC, off-argmax/(1-1/C)):"]
    for g in ("all_valid", "boundary", "interior", "small", "large", "small_interior", "large_interior", "rare", "frequent"):
        lines.append(f"  {g:15s} entropy {_num(s[g]['entropy'])}  off-argmax {_num(s[g]['off_argmax'])}  pixels {s[g]['pixels']}")
    lines.append(f"  rare classes: {s['rare']['classes']}")
    lines.append("  per class (share, entropy, off-argmax):")
    for name, c in sorted(s["per_class"].items(), key=lambda nc: -nc[1]["share"]):
        if c["pixels"]:
            lines.append(f"    {name:14s} {c['share']:.4f}  {c['entropy']:.4f}  {c['off_argmax']:.4f}")
    g = result["temperature_gradient"]
    lines.append(f"gradient w.r.t. student logits ({g['images']} images; teacher logit max-min "
                 f"{g['teacher_logit_spread']['mean_max_minus_min']:.1f}):")
    for name, block in g["students"].items():
        lines.append(f"  student: {name}")
        lines.append("    T     |grad KL|    |grad T²KL|   T²KL        max|Δgrad| vs T(q-p)")
        for r in block["rows"]:
            lines.append(f"    {r['T']:<5g} {r['grad_norm_kl']:.4e}  {r['grad_norm_t2_kl']:.4e}  {r['loss_t2_kl']:.4e}  "
                         f"{r['max_abs_grad_error']:.1e}")
        lines.append(f"    ratio T=4/T=8: KL {_num(block['ratio_kl_T4_over_T8'], 3)} (1/T² law: 4), "
                     f"T²KL {_num(block['ratio_t2_kl_T4_over_T8'], 3)} (constant: 1)")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, default=DEFAULT_CKPT, help="teacher checkpoint (default: the reference teacher)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="dataset root, Cityscapes layout (val split is read)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--images", type=int, default=3, help="example images in the first figure")
    parser.add_argument("--limit", type=int, default=None, help="only the first N val images (default: all)")
    args = parser.parse_args(argv)
    if not args.ckpt.is_file():
        print(f"no teacher checkpoint at {args.ckpt}.\nTrain the reference teacher with:\n  {TRAIN_COMMAND}\n"
              "or give another one with --ckpt PATH", file=sys.stderr)
        return 1
    from segkd.models.checkpoint import load_net

    torch.set_grad_enabled(True)
    start = time.perf_counter()
    teacher, spec = load_net(args.ckpt)
    result = run(teacher, args.data, args.out, args.images, args.limit)
    print(report(result))
    print("wrote:\n  " + "\n  ".join(result["files"]))
    print(f"teacher {spec.get('encoder_name')}; {time.perf_counter() - start:.1f} s in all "
          f"({result['seconds_dark_knowledge']:.1f} s for the dark-knowledge pass)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
