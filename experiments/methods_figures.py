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
import math
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np
import torch
from torch import Tensor, nn

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CKPT = REPO / ".cache/reference_teachers/synthstreets-s0_n2000-201_128x256-v1/checkpoints/last.ckpt"
DEFAULT_DATA = REPO / ".cache/synthstreets/s0_n2000-201_128x256"
DEFAULT_OUT = REPO / "docs/figures/methods"
TRAIN_COMMAND = "python -m segkd.run +experiment=reference_teacher"

TEMPERATURES = (1.0, 2.0, 4.0, 8.0, 16.0)
#: A class is rare when it holds less than this share of the labelled val pixels.
RARE_SHARE = 0.01
#: An object (8-connected region of one class) is small below this share of its image's pixels
#: (0.2% = 66 pixels of a 128x256 image).
SMALL_OBJECT_SHARE = 0.002
#: Object-size bins (shares of the image) for the finer table.
AREA_BINS = (0.0, 1e-3, 1e-2, 1e-1, 1.0 + 1e-9)
NOISE_STD = 1.0
GRADIENT_IMAGES = 8


# ---------------------------------------------------------------------------------------------------------------------
# Masks


def boundary_mask(mask: np.ndarray, ignore_index: int = 255) -> tuple[np.ndarray, np.ndarray]:
    """``(boundary, interior)`` boolean maps of a train-id mask (H, W).

    A valid pixel is on a boundary when one of its 8 neighbours holds another *valid* class (ignored
    neighbours, and the outside of the image, do not count); every other valid pixel is interior, so
    the two partition the valid pixels.
    """
    valid = mask != ignore_index
    padded = np.pad(mask, 1, mode="edge")
    h, w = mask.shape
    boundary = np.zeros_like(valid)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            if dy == 1 and dx == 1:
                continue
            neighbour = padded[dy:dy + h, dx:dx + w]
            boundary |= (neighbour != mask) & (neighbour != ignore_index)
    boundary &= valid
    return boundary, valid & ~boundary


def component_area_map(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """Per pixel, the area (pixels) of the 8-connected region of its class it lies in (0 when ignored):
    the regions :func:`segkd.analysis.dataset_stats.object_areas` counts, mapped back to pixels."""
    areas = np.zeros(mask.shape, dtype=np.int64)
    for cls in np.unique(mask):
        if cls >= num_classes:
            continue
        n, labels, stats, _ = cv2.connectedComponentsWithStats((mask == cls).astype(np.uint8), connectivity=8)
        inside = labels > 0
        areas[inside] = stats[labels[inside], cv2.CC_STAT_AREA]
    return areas


# ---------------------------------------------------------------------------------------------------------------------
# Dark knowledge


class DarkKnowledge:
    """Sums of the teacher's normalised entropy and off-argmax mass over groups of pixels."""

    GROUPS = ("boundary", "interior", "small", "large", "small_interior", "large_interior")

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.sums = {g: np.zeros(3) for g in self.GROUPS}  # count, entropy, off-argmax
        self.per_class = np.zeros((num_classes, 3))
        self.bins = np.zeros((len(AREA_BINS) - 1, 3))
        self.valid = np.zeros(3)

    @staticmethod
    def _add(acc: np.ndarray, where: np.ndarray, ent: np.ndarray, off: np.ndarray) -> None:
        acc += (where.sum(), ent[where].sum(), off[where].sum())

    def add(self, ent: np.ndarray, off: np.ndarray, mask: np.ndarray, ignore_index: int = 255) -> None:
        """One image: entropy and off-argmax maps (H, W) in [0, 1], its train-id mask (H, W)."""
        ent, off = ent.astype(np.float64), off.astype(np.float64)
        valid = mask != ignore_index
        boundary, interior = boundary_mask(mask, ignore_index)
        share = component_area_map(mask, self.num_classes) / mask.size
        small, large = valid & (share < SMALL_OBJECT_SHARE), valid & (share >= SMALL_OBJECT_SHARE)
        groups = {"boundary": boundary, "interior": interior, "small": small, "large": large,
                  "small_interior": small & interior, "large_interior": large & interior}
        for name, where in groups.items():
            self._add(self.sums[name], where, ent, off)
        self._add(self.valid, valid, ent, off)
        labels = mask[valid].astype(np.int64)
        self.per_class[:, 0] += np.bincount(labels, minlength=self.num_classes)
        self.per_class[:, 1] += np.bincount(labels, ent[valid], minlength=self.num_classes)
        self.per_class[:, 2] += np.bincount(labels, off[valid], minlength=self.num_classes)
        for i, (lo, hi) in enumerate(zip(AREA_BINS[:-1], AREA_BINS[1:])):
            self._add(self.bins[i], valid & (share >= lo) & (share < hi), ent, off)

    @staticmethod
    def _means(acc: Sequence[float]) -> dict:
        n = float(acc[0])
        return {"pixels": int(n), "entropy": acc[1] / n if n else None, "off_argmax": acc[2] / n if n else None}

    def summary(self, class_names: Sequence[str]) -> dict:
        out = {"all_valid": self._means(self.valid)}
        out.update({g: self._means(self.sums[g]) for g in self.GROUPS})
        shares = self.per_class[:, 0] / max(self.per_class[:, 0].sum(), 1.0)
        classes = {}
        for c, name in enumerate(class_names):
            classes[name] = {**self._means(self.per_class[c]), "share": float(shares[c])}
        out["per_class"] = classes
        present = self.per_class[:, 0] > 0
        rare, frequent = present & (shares < RARE_SHARE), present & (shares >= RARE_SHARE)
        out["rare"] = {**self._means(self.per_class[rare].sum(axis=0)),
                       "classes": [class_names[c] for c in np.flatnonzero(rare)]}
        out["frequent"] = {**self._means(self.per_class[frequent].sum(axis=0)),
                           "classes": [class_names[c] for c in np.flatnonzero(frequent)]}
        # Per-class means, unweighted by pixels: a rare class counts as much as road.
        out["rare"]["class_mean_entropy"] = float(np.mean(self.per_class[rare, 1] / self.per_class[rare, 0])) if rare.any() else None
        out["frequent"]["class_mean_entropy"] = (float(np.mean(self.per_class[frequent, 1] / self.per_class[frequent, 0]))
                                                 if frequent.any() else None)
        out["object_area_bins"] = [{"area_share": [lo, min(hi, 1.0)], **self._means(acc)}
                                   for lo, hi, acc in zip(AREA_BINS[:-1], AREA_BINS[1:], self.bins)]
        out["definitions"] = {
            "entropy": "teacher entropy / log C (segkd.visual.knowledge.teacher_maps)",
            "off_argmax": "(1 - max prob) / (1 - 1/C) (segkd.visual.knowledge.teacher_maps)",
            "boundary": "valid pixel with another valid class among its 8 neighbours in the label",
            "rare_share": RARE_SHARE, "small_object_share": SMALL_OBJECT_SHARE,
            "object": "8-connected region of one class (segkd.analysis.dataset_stats.object_areas)",
        }
        return out


@torch.no_grad()
def teacher_pass(net: nn.Module, dataset, batch_size: int = 8, limit: Optional[int] = None):
    """Yield (index, logits, mask) batches of ``dataset`` (a segkd dataset with the eval transform)."""
    from torch.utils.data import DataLoader, Subset

    data = dataset if limit is None else Subset(dataset, range(min(limit, len(dataset))))
    for batch in DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=0):
        yield batch["index"], net(batch["image"]).float(), batch["mask"]


def dark_knowledge(net: nn.Module, dataset, limit: Optional[int] = None) -> tuple[dict, dict]:
    """Statistics over the split and the logits of its first :data:`GRADIENT_IMAGES` images."""
    from segkd.visual.knowledge import teacher_maps

    stats = DarkKnowledge(dataset.num_classes)
    kept_logits, kept_masks = [], []
    for _, logits, masks in teacher_pass(net, dataset, limit=limit):
        maps = teacher_maps(logits, logits, masks, dataset.ignore_index)
        for i in range(len(masks)):
            stats.add(maps["entropy"][i].numpy(), maps["off_argmax"][i].numpy(), masks[i].numpy(), dataset.ignore_index)
        if sum(len(x) for x in kept_logits) < GRADIENT_IMAGES:
            kept_logits.append(logits)
            kept_masks.append(masks)
    kept = {"logits": torch.cat(kept_logits)[:GRADIENT_IMAGES], "masks": torch.cat(kept_masks)[:GRADIENT_IMAGES]}
    return stats.summary(dataset.class_names), kept


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


def kd_gradient(teacher: Tensor, student: Tensor, valid: Tensor, temperature: float) -> dict:
    """Gradients of KL and of T²·KL (segkd's LogitKD) with respect to the student logits, per valid pixel.

    Returns the mean per-pixel L2 norm (over classes) of each, and the largest deviation of LogitKD's
    value and gradient from the direct formulas T²·Σ p (log p - log q) and T·(q - p).
    """
    from segkd.distill.losses.logit_kd import LogitKD

    t = temperature
    target = torch.where(valid, 0, 255)
    s = student.detach().clone().requires_grad_(True)
    loss = LogitKD(temperature=t, ignore_index=255)(s, teacher.detach(), target)
    (grad,) = torch.autograd.grad(loss, s)
    n_valid = valid.sum().clamp_min(1)
    per_pixel = grad * n_valid  # LogitKD averages over valid pixels; undo it to get d(per-pixel loss)/ds
    log_p = torch.log_softmax(teacher.double() / t, dim=1)
    log_q = torch.log_softmax(student.double() / t, dim=1)
    direct_loss = ((log_p.exp() * (log_p - log_q)).sum(1) * valid).sum() / n_valid * t * t
    direct_grad = t * (log_q.exp() - log_p.exp()) * valid.unsqueeze(1)
    norm_t2 = per_pixel.norm(dim=1)[valid].mean().item()
    return {
        "T": t,
        "grad_norm_kl": norm_t2 / (t * t),
        "grad_norm_t2_kl": norm_t2,
        "loss_t2_kl": loss.item(),
        "max_abs_loss_error": abs(loss.item() - direct_loss.item()),
        "max_abs_grad_error": (per_pixel.double() - direct_grad).abs().max().item(),
    }


def temperature_table(teacher: Tensor, student: Tensor, valid: Tensor,
                      temperatures: Sequence[float] = TEMPERATURES) -> list[dict]:
    return [kd_gradient(teacher, student, valid, t) for t in temperatures]


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
    summary, kept = dark_knowledge(teacher, dataset, limit)
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
