#!/usr/bin/env bash
# Real-data CPU study: every question at 64 px on a 1500-image stratified train subset.
cd "$(dirname "$0")/../.."
export PNEUMONIA_CACHE=/tmp/pcache
D=../shared/data/chest_xray
S=runs/real/results
C="--data $D --storage $S --resolution 64 --max-train-images 1500"
set -x
date
# baseline ran first (02:45-02:48 UTC), before ASHA moved to AUC; it has no ASHA so is unaffected
.venv/bin/python -m study.run --experiment optimizers $C --max-epochs 12 --overwrite
.venv/bin/python -m study.run --experiment add_one_layer $C --max-epochs 10 --num-samples 1
.venv/bin/python -m study.run --experiment add_two_layers $C --max-epochs 10 --num-samples 1
.venv/bin/python -m study.run --experiment depth_kernels $C --max-epochs 10
.venv/bin/python -m study.run --experiment dropout $C --max-epochs 10 --num-samples 1
.venv/bin/python -m study.run --experiment early_stopping $C --max-epochs 20 --num-samples 1
.venv/bin/python -m study.run --experiment three_class $C --max-epochs 10
date
