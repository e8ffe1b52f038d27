#!/usr/bin/env bash
# The generalization question on the real data at CPU size (2026-11-23, 2-core CPU machine, bf16 autocast),
# then its report. 48 trials x 12 epochs took 4879 s (81 min) beside other work on the same 2 cores.
set -euo pipefail
DATA=${DATA:-../shared/data/chest_xray}
python -m study.run --experiment generalization --data "$DATA" --storage runs/gen64 \
    --resolution 64 --max-train-images 2000 --max-epochs 12 --confirm-seeds 0
python -m analysis.report runs/gen64/generalization --out runs/gen64-report
