#!/bin/bash
# Every figure and table of the docs, from the embedded data and the checkpoints segkd trains itself:
#   make docs-figures
# The methods figures read the reference teacher of the distillation data; without it the script
# stops and prints its one training command (`python -m segkd.run +experiment=reference_teacher`).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

echo "== docs/ARCHITECTURE.md: per-stage tables and the UNet figure"
$PY experiments/architecture_tables.py --out docs/results/architecture

echo "== docs/DATASETS.md: segkd.analyze on both SynthStreets sizes, and sample images"
$PY -m segkd.analyze hydra.run.dir=outputs/analyze/synthstreets
$PY -m segkd.analyze dataset=synthstreets_kd hydra.run.dir=outputs/analyze/synthstreets_kd
mkdir -p docs/figures/datasets
for f in class_frequency class_presence object_sizes object_size_histograms; do
  cp outputs/analyze/synthstreets_kd/$f.png docs/figures/datasets/synthstreets_kd_$f.png
done
cp outputs/analyze/synthstreets/class_frequency.png docs/figures/datasets/synthstreets_class_frequency.png
$PY - <<'PYEOF'
import cv2, numpy as np
from segkd.data.synthstreets import render_synthstreets_image
from segkd.data.labels import RAW_TO_TRAIN, TRAIN_ID_COLORS
palette = np.zeros((256, 3), np.uint8); palette[:19] = TRAIN_ID_COLORS
rows = []
for i in (0, 1, 2):
    rgb, raw = render_synthstreets_image(0, 'train', i, 128, 256)
    rows.append(np.hstack([rgb, palette[RAW_TO_TRAIN[raw].astype(np.uint8)]]))
cv2.imwrite('docs/figures/datasets/synthstreets_samples.png', cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))
PYEOF

echo "== docs/METHODS.md: the reference teacher's dark knowledge, and the T^2 gradient check"
$PY experiments/methods_figures.py --out docs/figures/methods

echo "== docs/METHODS.md: the soft teachers (label smoothing, confidence penalty) and their students"
# Without every teacher's checkpoint it writes nothing and prints the commands that train them (python -m segkd.protocol).
$PY experiments/teacher_softness.py --out docs/figures/methods
