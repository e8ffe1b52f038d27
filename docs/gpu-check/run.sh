#!/usr/bin/env bash
# The GPU figures issues 11 and 13 ask for, in stages that each fit one device call. Run on the lent
# machine after ../shared/gpu/README.md's setup (DATA set by .gpu/data/setup.sh); results go under
# $OUT (the device tool's folder that comes back), then `summary` prints them as BENCHMARKS.md rows.
#
#   docs/gpu-check/run.sh bench     # ~1-2 min: images/s at 200 px, ratio to ImageFolder; augment none vs strong alone
#   docs/gpu-check/run.sh packed    # ~3-4 min: 15 trials on one GPU (0.0625 each), augment none vs strong (issue 11: <= 1.2x)
#   docs/gpu-check/run.sh study     # the whole study, 200 px, full train split, nvidia-smi sampled each second (issue 13)
#   docs/gpu-check/run.sh summary   # reads $OUT: one line per figure
#
# SMALL=1 runs every stage at a CPU size (32 px, the bundled sample, no GPU) to check this script here.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gpu-check}; mkdir -p "$OUT"
PY=${PY:-python}
if [ "${SMALL:-0}" = 1 ]; then
  DATA_FLAG=(); RES=32; EPOCHS=2; GPU=0; BATCHES=5; STUDY_EXPS=quick,baseline
else
  DATA_FLAG=(--data "${DATA:?set DATA (source .gpu/data/setup.sh)}"); RES=200; EPOCHS=3; GPU=0.0625; BATCHES=200; STUDY_EXPS=all
fi
smi() {  # GPU utilisation and memory each second, until killed
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader,nounits -l 1 > "$1" &
    echo $!
  else echo ""; fi
}
case "${1:?stage: bench, packed, study or summary}" in
bench)
  $PY -m study.bench "${DATA_FLAG[@]}" --resolution $RES --batches $BATCHES --compare --json > "$OUT/bench.json"
  for a in none strong; do
    $PY -m study.bench "${DATA_FLAG[@]}" --resolution $RES --batches $BATCHES --json --set augment=$a > "$OUT/bench-$a.json"
  done ;;
packed)
  for a in none strong; do
    rm -rf "$OUT/packed-$a"
    $PY -m study.run --experiment baseline --num-samples 3 "${DATA_FLAG[@]}" --resolution $RES --max-epochs $EPOCHS \
      --set augment=$a --gpus-per-trial $GPU --cpus-per-trial 1 --confirm-seeds 0 --storage "$OUT/packed-$a" > "$OUT/packed-$a.log" 2>&1
  done ;;
study)
  rm -rf "$OUT/study"; pid=$(smi "$OUT/smi.csv")
  start=$(date +%s)
  $PY -m study.run --experiment $STUDY_EXPS "${DATA_FLAG[@]}" --resolution $RES --set holdout_fraction=0 \
    --gpus-per-trial $GPU --cpus-per-trial 1 --confirm-seeds 0 --storage "$OUT/study" > "$OUT/study.log" 2>&1 \
    || echo "study.run exited $? (see study.log)" >&2
  echo $(( $(date +%s) - start )) > "$OUT/study-wall-s"
  if [ -n "$pid" ]; then kill "$pid"; fi ;;
summary)
  $PY docs/gpu-check/summary.py "$OUT" ;;
*) echo "unknown stage $1" >&2; exit 2 ;;
esac
