#!/usr/bin/env bash
# The shipped models of 2026-12-04 (RESULTS.md section 1): the 64 px x 20 epochs library train.sh trained
# (runs/ship64/, 16 binary and 4 3-class seeds), ensemble-selected on the stress validation (Caruana, at most
# analysis.ensemble's MAX_MEMBERS) and released with the test-time views kept only if they help there; the
# 3-class file takes the new binary file as its gate when the two-stage decision wins on the stress validation.
# Run from the repository root of a checkout beside shared/, after train.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."  # the repository root
DATA=../shared/data/chest_xray
T="python -m study.train --data $DATA --set resolution=64 --set holdout_fraction=0 --set epochs=20 --set lr_schedule=none --set seed=S --out runs/ship64/NAME (docs/ship-2026-12-04/train.sh)"
.venv/bin/python -m analysis.release $(for s in $(seq 0 15); do echo runs/ship64/b-s$s; done) \
    --data $DATA --out models/binary.pt --command "$T"
.venv/bin/python -m analysis.release runs/ship64/t-s0 runs/ship64/t-s1 runs/ship64/t-s2 runs/ship64/t-s3 \
    --data $DATA --gate models/binary.pt --out models/three_class.pt --command "$T --set num_classes=3"
