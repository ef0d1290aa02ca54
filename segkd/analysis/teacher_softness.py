"""How soft a teacher is, and whether its students gain from it (docs/METHODS.md, section 3).

:func:`teacher_scores` measures one network over a split with segkd's own metrics
(segkd.metrics.NetScores: mIoU, entropy, off-argmax mass, ECE with its reliability bins), a histogram
of per-pixel entropy / log C, and the entropy of what CWD matches (each class channel
softmax-normalised over space, / log HW). :func:`student_table` pairs students' val mIoU with
scratch students and with another teacher's students seed by seed (Student's t 95% CI over seeds, as
segkd.compare computes it). experiments/teacher_softness.py runs both over the protocol's teachers
and students and draws the figure.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Mapping, Optional

import torch

#: Bins of the per-pixel entropy / log C histogram, over [0, 1].
ENTROPY_BINS = 20
#: The protocol's folder of scratch students.
SCRATCH = "scratch"


@torch.no_grad()
def teacher_scores(net: torch.nn.Module, dataset, limit: Optional[int] = None, batch_size: int = 8) -> dict:
    """segkd's val scores of one network (with reliability bins) and its per-pixel entropy histogram."""
    from torch.utils.data import DataLoader, Subset

    from segkd.functional.softmax import entropy, tempered_log_softmax
    from segkd.metrics import NetScores

    scores = NetScores(list(dataset.class_names), dataset.ignore_index)
    histogram = torch.zeros(ENTROPY_BINS, dtype=torch.float64)
    log_c = math.log(dataset.num_classes)
    spatial_sum, spatial_count = 0.0, 0
    data = dataset if limit is None else Subset(dataset, range(min(limit, len(dataset))))
    for batch in DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=0):
        logits, target = net(batch["image"]).float(), batch["mask"]
        scores.update(logits, target)
        h = entropy(tempered_log_softmax(logits))[target != dataset.ignore_index] / log_c
        histogram += torch.histc(h.double(), bins=ENTROPY_BINS, min=0.0, max=1.0)
        # What CWD (tau 1) matches: each class channel softmax-normalised over the image's pixels.
        # Near 1 the channel is spread evenly over space and says little about where its class is.
        flat = logits.flatten(2)
        spatial = entropy(tempered_log_softmax(flat, dim=-1), dim=-1) / math.log(flat.shape[-1])
        spatial_sum, spatial_count = spatial_sum + spatial.sum().item(), spatial_count + spatial.numel()
    result = scores.compute_and_reset(details=True)
    result.pop("errors", None)
    result["entropy_normalised"] = result["entropy"] / log_c
    result["cwd_spatial_entropy"] = spatial_sum / max(spatial_count, 1)
    result["entropy_histogram"] = (histogram / histogram.sum().clamp_min(1)).tolist()
    return result


def seed_mious(folder: Path) -> dict[int, float]:
    """seed -> val mIoU of the runs under ``folder`` (``seed*/summary.json``)."""
    out = {}
    for path in sorted(folder.glob("seed*/summary.json")):
        summary = json.loads(path.read_text())
        out[int(summary["seed"])] = summary["val"]["mIoU"]
    return out


def paired(values: dict[int, float], base: dict[int, float]) -> Optional[dict]:
    """Mean paired difference over the shared seeds with its t 95% CI (segkd.compare's rule)."""
    from segkd.analysis.pairing import t_interval, verdict

    seeds = sorted(set(values) & set(base))
    if not seeds:
        return None
    diffs = [values[s] - base[s] for s in seeds]
    low, high = t_interval(diffs)
    return {"seeds": seeds, "delta_mean": statistics.fmean(diffs), "delta_ci95": [low, high],
            "verdict": verdict(low, high)}


def student_table(runs: Path, students: Mapping[tuple[str, str], str], scratch: str = SCRATCH,
                  reference: str = "reference") -> list[dict]:
    """Per (paradigm, teacher) of ``students`` (-> the folder of its runs under ``runs``): the students'
    mIoU, Δ vs the scratch students of the same seeds and, for another teacher than ``reference``, Δ vs
    the ``reference`` teacher's students of the same paradigm. Entries without runs are left out."""
    base = seed_mious(runs / scratch)
    rows = []
    for (paradigm, teacher), folder in students.items():
        mious = seed_mious(runs / folder)
        if not mious:
            continue
        others = seed_mious(runs / students[(paradigm, reference)]) if (paradigm, reference) in students else {}
        rows.append({
            "paradigm": paradigm, "teacher": teacher, "runs": folder, "n_seeds": len(mious),
            "miou_mean": statistics.fmean(mious.values()),
            "vs_scratch": paired(mious, base),
            "vs_reference_teacher": paired(mious, others) if teacher != reference else None,
        })
    return rows
