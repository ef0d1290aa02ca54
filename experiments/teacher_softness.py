"""docs/METHODS.md section 3: what a teacher loss that raises output entropy does to the teacher, and
whether its students learn more from it.

A teacher trained with plain cross-entropy ends up confident: on the distillation data most of its
pixels carry little mass off the argmax, so a student matching its softmax learns mostly the label
again. Label smoothing (Szegedy et al. 2016) and the confidence penalty (Pereyra et al. 2017) train
the teacher towards softer outputs. Whether that helps a student is an empirical question, answered
here on segkd's own runs:

1. the teachers: each checkpoint over the embedded SynthStreets val split with segkd's own metrics
   (segkd.metrics.NetScores: mIoU, entropy, off-argmax mass, ECE with its reliability bins) and a
   histogram of per-pixel entropy / log C, and the entropy of what CWD matches (each class channel
   softmax-normalised over space, / log HW);
2. their students: the paired Δ val mIoU of CWD and logit students of each teacher against the
   scratch students of the same seeds (Student's t 95% CI over seeds, as segkd.compare computes
   it), and, seed by seed, against the students of the reference teacher, from the protocol's
   summaries (python -m segkd.protocol trains these teachers and students; docs/RESULTS.md).

    .venv/bin/python experiments/teacher_softness.py [--teacher NAME=CKPT ...] [--runs DIR]
        [--out docs/figures/methods] [--limit N]

Without --teacher the reference teacher and the protocol's soft teachers are measured; if a checkpoint
is missing nothing is written, and the command that trains it is printed. Writes teacher_softness.json
and .png. The measurements are segkd.analysis.teacher_softness's; this script picks the teachers and
students of the protocol and draws them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from segkd.analysis.teacher_softness import ENTROPY_BINS, SCRATCH, teacher_scores
from segkd.analysis.teacher_softness import student_table as paired_students

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / ".cache/synthstreets/s0_n2000-201_128x256"
DEFAULT_OUT = REPO / "docs/figures/methods"
DEFAULT_RUNS = REPO / "docs/results/kd_protocol_s4/runs"
PROTOCOL = REPO / "outputs/kd_protocol_s4"

#: name -> (checkpoint, the command that trains it, its teacher loss in words).
TEACHERS: dict[str, tuple[Path, str, str]] = {
    "reference": (REPO / ".cache/reference_teachers/synthstreets-s0_n2000-201_128x256-v1/checkpoints/last.ckpt",
                  "python -m segkd.run +experiment=reference_teacher", "cross-entropy"),
    "teacher_ls01": (PROTOCOL / "teacher_ls01/seed0/checkpoints/last.ckpt",
                     "python -m segkd.protocol --out outputs/kd_protocol_s4 --only teacher_ls01",
                     "label smoothing 0.1"),
    "teacher_cp01": (PROTOCOL / "teacher_cp01/seed0/checkpoints/last.ckpt",
                     "python -m segkd.protocol --out outputs/kd_protocol_s4 --only teacher_cp01",
                     "confidence penalty 0.1"),
}
#: (paradigm, teacher) -> the protocol folder of its students (docs/results/kd_protocol_s4/runs/...).
#: The reference teacher's CWD students are the weight-3 cached runs, the setting the soft teachers'
#: students ran with (CWD's default since session 6).
STUDENTS: dict[tuple[str, str], str] = {
    ("cwd", "reference"): "cwd_w3",
    ("cwd", "teacher_ls01"): "cwd_ls01",
    ("cwd", "teacher_cp01"): "cwd_cp01",
    ("logits", "reference"): "logits",
    ("logits", "teacher_ls01"): "logits_ls01",
}


def student_table(runs: Path) -> list[dict]:
    """The protocol's students of :data:`STUDENTS` paired with scratch and with the reference teacher's."""
    return paired_students(runs, STUDENTS, SCRATCH)


def figure(teachers: dict[str, dict], students: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    colors = dict(zip(TEACHERS, ("tab:blue", "tab:orange", "tab:green")))
    fig, (rel, hist, stu) = plt.subplots(1, 3, figsize=(14, 4))
    rel.plot([0, 1], [0, 1], ":", color="gray", lw=1)
    for name, s in teachers.items():
        bins = s["reliability"]
        keep = [i for i, n in enumerate(bins["count"]) if n > 0]
        rel.plot([bins["confidence"][i] for i in keep], [bins["accuracy"][i] for i in keep], "o-",
                 color=colors.get(name), label=f"{name}: ECE {s['ece']:.3f}")
        edges = np.linspace(0, 1, ENTROPY_BINS + 1)
        hist.step(edges[:-1], s["entropy_histogram"], where="post", color=colors.get(name),
                  label=f"{name}: mean {s['entropy_normalised']:.3f}")
    rel.set(xlabel="confidence (max softmax)", ylabel="accuracy", title="reliability on val", xlim=(0, 1), ylim=(0, 1))
    rel.legend(fontsize=8)
    hist.set(xlabel="per-pixel entropy / log C", ylabel="share of valid pixels", title="how soft the teacher is")
    hist.legend(fontsize=8)
    for i, row in enumerate(students):
        d = row["vs_scratch"]
        if d is None:
            continue
        low, high = d["delta_ci95"]
        err = [[100 * (d["delta_mean"] - low)], [100 * (high - d["delta_mean"])]] if not math.isnan(low) else None
        stu.errorbar([i], [100 * d["delta_mean"]], yerr=err, fmt="o", color=colors.get(row["teacher"]), capsize=4)
    stu.axhline(0, color="gray", lw=1)
    stu.set_xticks(range(len(students)), [f"{r['paradigm']}\n{r['teacher']}\n{r['n_seeds']} seeds" for r in students],
                   fontsize=7)
    stu.set(ylabel="Δ val mIoU vs scratch (points, 95% CI)", title="their students")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run(checkpoints: dict[str, Path], data_root: Path, runs: Path, out: Path, limit: Optional[int] = None) -> dict:
    from segkd.data.datasets import CityscapesDataset
    from segkd.data.transforms import eval_transform
    from segkd.models.checkpoint import load_net

    dataset = CityscapesDataset(data_root, "val", transform=eval_transform())
    teachers = {}
    for name, ckpt in checkpoints.items():
        net, _ = load_net(ckpt)
        teachers[name] = {"checkpoint": str(ckpt.relative_to(REPO) if ckpt.is_relative_to(REPO) else ckpt),
                          "loss": TEACHERS[name][2] if name in TEACHERS else None,
                          **teacher_scores(net, dataset, limit)}
    students = student_table(runs)
    result = {"images": min(limit or len(dataset), len(dataset)), "teachers": teachers, "students": students}
    out.mkdir(parents=True, exist_ok=True)
    (out / "teacher_softness.json").write_text(json.dumps(result, indent=1) + "\n")
    result["files"] = [str(out / "teacher_softness.json"), str(figure(teachers, students, out / "teacher_softness.png"))]
    return result


def report(result: dict) -> str:
    lines = ["teacher          loss                    mIoU   entropy/logC  off-argmax   ECE    CWD spatial entropy"]
    for name, s in result["teachers"].items():
        lines.append(f"{name:16s} {str(s['loss']):22s} {100 * s['mIoU']:5.2f}   {s['entropy_normalised']:.3f}"
                     f"         {s['dark_knowledge']:.3f}       {s['ece']:.3f}  {s['cwd_spatial_entropy']:.3f}")
    lines.append("students (Δ val mIoU points, paired seeds, 95% CI)")
    for row in result["students"]:
        parts = [f"{row['paradigm']:7s} {row['teacher']:14s} n={row['n_seeds']} mIoU {100 * row['miou_mean']:.2f}"]
        for key in ("vs_scratch", "vs_reference_teacher"):
            d = row[key]
            if d:
                low, high = d["delta_ci95"]
                parts.append(f"{key} {100 * d['delta_mean']:+.2f} [{100 * low:+.2f}, {100 * high:+.2f}]")
        lines.append("  " + " · ".join(parts))
    return "\n".join(lines)


def parse_teachers(items: Sequence[str]) -> dict[str, Path]:
    if not items:
        return {name: ckpt for name, (ckpt, _, _) in TEACHERS.items()}
    chosen = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            raise SystemExit(f"--teacher takes NAME=CKPT, got {item!r}")
        chosen[name] = Path(path)
    return chosen


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", action="append", default=[], metavar="NAME=CKPT")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="dataset root, Cityscapes layout (val split)")
    parser.add_argument("--runs", type=Path, default=DEFAULT_RUNS, help="the protocol's run summaries")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--limit", type=int, default=None, help="only the first N val images")
    args = parser.parse_args(argv)
    checkpoints = parse_teachers(args.teacher)
    missing = {name: ckpt for name, ckpt in checkpoints.items() if not ckpt.is_file()}
    if missing:
        # Measuring only some teachers would overwrite the published file with fewer rows than the
        # methods page quotes: write nothing, and say how to get each missing checkpoint.
        for name, ckpt in missing.items():
            hint = TEACHERS[name][1] if name in TEACHERS else "train it, or pass another --teacher"
            print(f"no checkpoint for teacher {name} at {ckpt}: {hint}", file=sys.stderr)
        print(f"nothing written to {args.out}; pass --teacher NAME=CKPT to measure only the teachers you have",
              file=sys.stderr)
        return 1
    start = time.perf_counter()
    result = run(checkpoints, args.data, args.runs, args.out, args.limit)
    print(report(result))
    print("wrote:\n  " + "\n  ".join(result["files"]) + f"\n{time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
