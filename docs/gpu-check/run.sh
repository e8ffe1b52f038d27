#!/usr/bin/env bash
# The GPU path's measurement (issues 22 and 25) in ONE device call of at most ~570 s: a preflight, stage a, stage b,
# each under its own timeout, each appending one JSON line per figure to $OUT (the device tool's folder that
# comes back; at most 6 small files: a.jsonl a.log b.jsonl b.log smi.csv preflight.jsonl) and printing its lines
# at its end, so the call's output tail shows the figures. Build what travels, here, first:
#
#   GPU_EXTRA_WHEELS="kornia==0.9.0 kornia-rs==0.2.0" ../shared/gpu/pack      # .gpu/sw: the wheels and Ray
#   docs/gpu-check/run.sh --dry-run       # .gpu/check (the data, sized to fit) and each part's size against 64 MiB
#
# then one call: carry [".gpu/sw", ".gpu/check"], command
#   source .gpu/sw/setup.sh && source .gpu/check/setup.sh && docs/gpu-check/run.sh all
#
#   preflight  imports torch, kornia, kornia_rs, ray, albumentations and pydantic and asserts CUDA: one JSON
#              line; on a failure the call ends there with it
#   a   env (nvidia-smi, torch, CUDA, cuDNN, MPS), eager img/s and CPU s/step at batch 32 and 256 for the default
#       and the seed recipe, host syncs per step (torch.cuda.set_sync_debug_mode), a profile (kernels per step,
#       GPU-busy %), 1 / 8 / 16 trainer processes in one shared window, then 8 / 16 with an MPS daemon that is
#       stopped afterwards, also on a timeout (docs/gpu-check/measure.py)
#   b   the 8 seed experiments at 200 px on $DATA, --confirm-seeds 0, storage under /tmp, for B_TIMEOUT s: study
#       seconds, images trained (counted from the driver's data line, so an experiment cut off still counts),
#       overall img/s, epochs run against each grid, a projected wall time when cut off, nvidia-smi utilisation,
#       and a headline line with stage a's figures beside them (docs/gpu-check/summary.py)
#
# SMALL=1 runs it all at CPU size (32 px, the bundled sample, no GPU): tests/e2e/test_gpu_check.py runs that.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gpu-check}
PY=${PY:-python3}
LIMIT_MIB=64
SEED_EXPS=baseline,add_one_layer,add_two_layers,depth_kernels,optimizers,dropout,early_stopping,three_class
export TUNE_GLOBAL_CHECKPOINT_S=${TUNE_GLOBAL_CHECKPOINT_S:-10}  # a driver killed at the deadline loses <= 10 s
MPS_PIPE=/tmp/mps-pipe  # docs/gpu-check/measure.py starts its MPS daemon on this pipe directory
if [ "${SMALL:-0}" = 1 ]; then
  A_TIMEOUT=${A_TIMEOUT:-300}; B_TIMEOUT=${B_TIMEOUT:-300}
  B_FLAGS=(--experiment baseline,depth_kernels --resolution 32 --max-epochs 2 --set dense_units=16)
else
  A_TIMEOUT=${A_TIMEOUT:-190}; B_TIMEOUT=${B_TIMEOUT:-320}  # + ~30 s of setup and preflight: one call <= ~570 s
  B_FLAGS=(--experiment $SEED_EXPS --data "${DATA:-}" --resolution 200 --gpus-per-trial ${GPU_PER_TRIAL:-0.125}
           --cpus-per-trial 1)
fi

show() { [ -f "$1" ] && cat "$1"; return 0; }

dry_run() {
  # What one call carries: the working tree's files and the carried paths, against LIMIT_MIB.
  SW=${GPU_SW:-.gpu/sw}; CHECK=${GPU_CHECK:-.gpu/check}
  [ -d "$SW" ] || { echo "dry run: $SW is missing; build it with: GPU_EXTRA_WHEELS=\"kornia==0.9.0 kornia-rs==0.2.0\" ../shared/gpu/pack" >&2; return 2; }
  # the device tool carries tracked files and untracked ones git does not ignore
  tracked=$(git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
  sw=$(du -sb "$SW" | cut -f1)
  room=$(( LIMIT_MIB * 1048576 - tracked - sw - ${MARGIN_BYTES:-2097152} ))
  [ "$room" -gt 1048576 ] || { echo "dry run: the tracked files and $SW leave no room for the data under $LIMIT_MIB MiB" >&2; return 1; }
  $PY docs/gpu-check/pack_data.py "${SOURCE_DATA:-../shared/data/chest_xray}" "$CHECK" --mib "$(( room / 1048576 ))" > /dev/null || return 1
  check=$(du -sb "$CHECK" | cut -f1)
  total=$(( tracked + sw + check ))
  $PY - "$tracked" "$SW" "$sw" "$CHECK" "$check" "$total" "$LIMIT_MIB" <<'PY'
import json, sys, zipfile
tracked, sw_path, sw, check_path, check, total, limit = sys.argv[1:]
mib = lambda b: round(int(b) / 2**20, 1)
pack = json.loads(zipfile.ZipFile(f"{check_path}/chest_xray.zip").read("chest_xray/PACK.json"))
print(f"working tree       {mib(tracked):6} MiB  (tracked and untracked, not ignored)")
print(f"{sw_path:<18} {mib(sw):6} MiB  (wheels and Ray)")
print(f"{check_path:<18} {mib(check):6} MiB  (the data set: {pack['note']})")
print(f"one call           {mib(total):6} MiB of {limit} MiB: {'fits' if int(total) <= int(limit) * 2**20 else 'OVER'}")
PY
  [ "$total" -le $(( LIMIT_MIB * 1048576 )) ]
}

preflight() {
  $PY - "$OUT/preflight.jsonl" <<'PY'
import importlib, json, sys
found, failed = {}, {}
for name in ("torch", "kornia", "kornia_rs", "ray", "albumentations", "pydantic"):
    try:
        found[name] = getattr(importlib.import_module(name), "__version__", "?")
    except Exception as e:  # noqa: BLE001 - reported, then the call ends
        failed[name] = f"{type(e).__name__}: {e}"
import os
small = os.environ.get("SMALL") == "1"
cuda = "torch" in found and __import__("torch").cuda.is_available()
ok = not failed and (cuda or small)
line = {"stage": "preflight", "ok": ok, "cuda": cuda, "found": found, "failed": failed}
open(sys.argv[1], "a").write(json.dumps(line) + "\n")
print(json.dumps(line))
sys.exit(0 if ok else 1)
PY
}

stage_a() {
  timeout -k 10 "$A_TIMEOUT" $PY docs/gpu-check/measure.py "$OUT" >> "$OUT/a.log" 2>&1
  code=$?
  if [ -d "$MPS_PIPE" ] && command -v nvidia-cuda-mps-control > /dev/null; then  # stopped also after a timeout
    echo quit | CUDA_MPS_PIPE_DIRECTORY=$MPS_PIPE CUDA_MPS_LOG_DIRECTORY=$MPS_PIPE timeout 20 nvidia-cuda-mps-control
    pkill -f "nvidia-cuda-mps-control -f" 2> /dev/null
  fi
  echo "{\"stage\": \"A\", \"kind\": \"exit\", \"code\": $code}" >> "$OUT/a.jsonl"
  show "$OUT/a.jsonl"
}

stage_b() {
  [ "${SMALL:-0}" = 1 ] || [ -n "${DATA:-}" ] || { echo "stage b: set DATA (source .gpu/check/setup.sh)" >&2; return 2; }
  STORE=/tmp/gpu-check-study; rm -rf "$STORE"
  smi_pid=""
  if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader,nounits -l 1 > "$OUT/smi.csv" &
    smi_pid=$!
  fi
  start=$(date +%s.%N)
  timeout -s TERM -k 20 "$B_TIMEOUT" $PY -m study.run "${B_FLAGS[@]}" --confirm-seeds 0 --storage "$STORE" \
    > "$OUT/b-full.log" 2>&1
  code=$?
  end=$(date +%s.%N)
  [ -n "$smi_pid" ] && kill "$smi_pid"
  $PY docs/gpu-check/summary.py "$STORE" "$OUT" "$code" "$start" "$end" "$OUT/b-full.log" "${DATA:-}/PACK.json" \
    > "$OUT/b-summary.log" 2>&1
  { tail -n 60 "$OUT/b-full.log"; cat "$OUT/b-summary.log"; } > "$OUT/b.log"; rm -f "$OUT/b-full.log" "$OUT/b-summary.log"
  show "$OUT/b.jsonl"
}

case "${1:?stage: --dry-run, all, a or b}" in
--dry-run) dry_run ;;
all) mkdir -p "$OUT"; preflight || exit 1; stage_a; stage_b ;;
a) mkdir -p "$OUT"; stage_a ;;
b) mkdir -p "$OUT"; stage_b ;;
*) echo "unknown stage $1 (--dry-run, all, a or b)" >&2; exit 2 ;;
esac
