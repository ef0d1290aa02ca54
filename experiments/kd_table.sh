#!/usr/bin/env bash
# The recipe table of docs/distillation.md: teacher, scratch student and every paradigm at equal
# epochs (the default budget) on SynthStreets, several seeds, then one aggregated table.
#   bash experiments/kd_table.sh [TEACHER_CKPT] [SEEDS]      (default: train a teacher first; seeds 1,2,3)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
OUT=outputs/kd_table
SEEDS=${2:-1,2,3}
TEACHER=${1:-}
if [ -z "$TEACHER" ]; then
  $PY -m segkd.run +experiment=teacher hydra.run.dir=$OUT/teacher trainer.enable_progress_bar=false
  TEACHER=$OUT/teacher/checkpoints/last.ckpt
fi
$PY -m segkd.run -m +experiment=student seed=$SEEDS hydra.sweep.dir=$OUT/scratch trainer.enable_progress_bar=false
$PY -m segkd.run -m +experiment=offline_kd teacher_ckpt=$TEACHER \
  distill_paradigm=logits,encoder,bottleneck,decoder,cwd,pairwise,logits_decoder seed=$SEEDS \
  hydra.sweep.dir=$OUT/offline_kd trainer.enable_progress_bar=false
$PY -m segkd.run -m +experiment=online_dml seed=$SEEDS hydra.sweep.dir=$OUT/online_dml trainer.enable_progress_bar=false
$PY experiments/kd_table.py $OUT "$(dirname "$TEACHER")/.."
