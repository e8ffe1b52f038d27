#!/usr/bin/env bash
# The capacity question at CPU size (RESULTS.md section 3): 64 px, 2000 train images, one seed per configuration,
# two trials at a time on the 2-core CPU machine; then the report (its ensemble section and the hold-out test).
# Run from a checkout beside shared/ (code at commit 129a429 for the study, 5decbad for the report).
set -euo pipefail
.venv/bin/python -m study.run --experiment capacity --data ../shared/data/chest_xray --storage runs/cap64 \
    --resolution 64 --max-train-images 2000 --confirm-seeds 0
.venv/bin/python -m analysis.report runs/cap64/capacity --out runs/cap64-report
