#!/usr/bin/env bash
# The shipped models of 2026-12-01 (RESULTS.md section 2): the library train.sh trained (runs/ship/), ensemble-
# selected on the stress validation and released with the test-time views kept only if they help there;
# the 3-class file takes the binary file as its gate when the two-stage decision wins on the stress validation.
# Run from the repository root of a checkout beside shared/, after train.sh.
set -euo pipefail
DATA=../shared/data/chest_xray
T="python -m study.train --data $DATA --set resolution=200 --set holdout_fraction=0 --set epochs=16 ... --out runs/ship/NAME (docs/ship-2026-12-01/train.sh)"
.venv/bin/python -m analysis.release runs/ship/b-cos-ls-s0 runs/ship/b-cos-ls-s1 runs/ship/b-strong-cos-s0 \
    runs/ship/b-none-s0 runs/ship/b-cos-s2 --data $DATA --out models/binary.pt --command "$T"
.venv/bin/python -m analysis.release runs/ship/t-cos-s0 runs/ship/t-cos-ls-s1 runs/ship/t-cos-s2 \
    --data $DATA --gate models/binary.pt --out models/three_class.pt --command "$T --set num_classes=3"
