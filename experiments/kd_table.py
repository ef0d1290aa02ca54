"""Aggregate summary.json files into a recipe table: val mIoU mean ± std over seeds.

    .venv/bin/python experiments/kd_table.py outputs/student/multiruns/<time> outputs/offline_kd/multiruns/<time> ...

Runs are grouped by experiment, model, distillation paradigm and loss schedule (read from the
summary's overrides and tags); seeds are the repeats. The commands that produced the numbers in
docs/distillation.md are listed there.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def recipe(summary: dict) -> tuple[str, str, str]:
    tags = summary.get("tags") or []
    paradigm = next((t.split(":", 1)[1] for t in tags if t.startswith("paradigm:")), "-")
    schedule = next((t.split(":", 1)[1] for t in tags if t.startswith("schedule:")), "-")
    return summary.get("experiment") or "?", f"{summary.get('model')}", paradigm if paradigm != "-" else schedule


def main(paths: list[str]) -> None:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for root in paths:
        for path in sorted(Path(root).rglob("summary.json")):
            summary = json.loads(path.read_text())
            groups[recipe(summary)].append(summary)
    print("| experiment | model | paradigm / schedule | seeds | val mIoU (%) final, mean ± std | best, mean ± std | GMACs |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for key, runs in groups.items():
        final = [100 * r["val"]["mIoU"] for r in runs]
        best = [100 * r["best_val_mIoU"] for r in runs if r.get("best_val_mIoU") is not None]
        rows.append((statistics.mean(final), key, len(runs), final, best, runs[0]["complexity"]["gmacs"]))
    for mean, (exp, model, variant), n, final, best, gmacs in sorted(rows, key=lambda r: -r[0]):
        sd = statistics.stdev(final) if n > 1 else 0.0
        bsd = statistics.stdev(best) if len(best) > 1 else 0.0
        bmean = statistics.mean(best) if best else float("nan")
        print(f"| {exp} | {model} | {variant} | {n} | {mean:.2f} ± {sd:.2f} | {bmean:.2f} ± {bsd:.2f} | {gmacs:.3f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
