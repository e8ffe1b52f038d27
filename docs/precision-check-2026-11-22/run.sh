#!/usr/bin/env bash
# fp32 vs bf16 autocast on CPU, 5 paired seeds: the check behind precision="auto" (BENCHMARKS.md).
# Run from the repo root, two streams at once on a 2-core machine (one thread each):
#   bash docs/precision-check-2026-11-22/run.sh A OUT & bash docs/precision-check-2026-11-22/run.sh B OUT; wait
#   python docs/precision-check-2026-11-22/summarize.py OUT
# The streams interleave precisions so both carry the same mix of work.
set -eu
OUT=${2:?output folder}
export OMP_NUM_THREADS=1
if [ "$1" = A ]; then order="fp32:0 bf16:1 fp32:2 bf16:3 fp32:4"; else order="bf16:0 fp32:1 bf16:2 fp32:3 bf16:4"; fi
for job in $order; do
  p=${job%%:*}; s=${job##*:}
  echo "== $p seed $s start $(date -u +%H:%M:%S) $(cat /proc/loadavg)"
  python -m study.train --data ../shared/data/chest_xray --set resolution=128 --set max_train_images=2000 \
    --set epochs=12 --set seed=$s --set precision=$p --out "$OUT/${p}_s$s"
done
echo "== stream $1 done $(date -u +%H:%M:%S)"
