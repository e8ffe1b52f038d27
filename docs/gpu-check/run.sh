#!/usr/bin/env bash
# The GPU path's first measurement since the redesign (issue 22), in two stages, each under its own timeout,
# each appending one JSON line per figure to $OUT (the device tool's folder that comes back; at most 5
# small files: a.jsonl a.log b.jsonl b.log smi.csv). Run from the project root on the lent machine after
# ../shared/gpu/README.md's setup; kornia must be among the carried wheels:
#   GPU_EXTRA_WHEELS="kornia==0.9.0 kornia-rs==0.2.0" ../shared/gpu/pack
#
#   run 1 (carry .gpu/sw):   source .gpu/sw/setup.sh && docs/gpu-check/run.sh a      # no data needed, ~3 min
#   run 2 (carry .gpu/data): source .gpu/data/setup.sh && docs/gpu-check/run.sh b    # the time left, ~5.5 min
#
#   a   env (nvidia-smi, torch, CUDA, cuDNN, MPS), eager img/s and CPU s/step at batch 32 and 256 for the default
#       and the seed recipe, a profile (kernels per step, GPU-busy %), 1 / 8 / 16 trainer processes for 10 s
#       each, without and with an MPS daemon (docs/gpu-check/measure.py)
#   b   the 8 seed experiments at 200 px on the full train split, --confirm-seeds 0, storage under /tmp, for
#       B_TIMEOUT s: study seconds, train images/s overall, sampled nvidia-smi utilisation, ASHA's share of the
#       grid epochs (docs/gpu-check/summary.py)
#
# SMALL=1 runs both stages at CPU size (32 px, the bundled sample, no GPU): tests/test_gpu_check.py runs that.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gpu-check}; mkdir -p "$OUT"
PY=${PY:-python}
SEED_EXPS=baseline,add_one_layer,add_two_layers,depth_kernels,optimizers,dropout,early_stopping,three_class
if [ "${SMALL:-0}" = 1 ]; then
  A_TIMEOUT=${A_TIMEOUT:-300}; B_TIMEOUT=${B_TIMEOUT:-300}
  B_FLAGS=(--experiment baseline,depth_kernels --resolution 32 --max-epochs 2 --set dense_units=16)
else
  A_TIMEOUT=${A_TIMEOUT:-200}; B_TIMEOUT=${B_TIMEOUT:-330}
  B_FLAGS=(--experiment $SEED_EXPS --data "${DATA:?set DATA (source .gpu/data/setup.sh)}" --resolution 200
           --gpus-per-trial ${GPU_PER_TRIAL:-0.125} --cpus-per-trial 1)
fi
case "${1:?stage: a or b}" in
a)
  timeout -k 10 "$A_TIMEOUT" $PY docs/gpu-check/measure.py "$OUT" >> "$OUT/a.log" 2>&1
  echo "{\"stage\": \"A\", \"kind\": \"exit\", \"code\": $?}" >> "$OUT/a.jsonl" ;;
b)
  STORE=/tmp/gpu-check-study; rm -rf "$STORE"
  smi_pid=""
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader,nounits -l 1 > "$OUT/smi.csv" &
    smi_pid=$!
  fi
  start=$(date +%s.%N)
  timeout -s TERM -k 20 "$B_TIMEOUT" $PY -m study.run "${B_FLAGS[@]}" --confirm-seeds 0 --storage "$STORE" \
    > "$OUT/b-full.log" 2>&1
  code=$?
  end=$(date +%s.%N)
  [ -n "$smi_pid" ] && kill "$smi_pid"
  tail -n 60 "$OUT/b-full.log" > "$OUT/b.log"; rm -f "$OUT/b-full.log"
  $PY docs/gpu-check/summary.py "$STORE" "$OUT" "$code" "$start" "$end" >> "$OUT/b.log" 2>&1 ;;
*) echo "unknown stage $1 (a or b)" >&2; exit 2 ;;
esac
