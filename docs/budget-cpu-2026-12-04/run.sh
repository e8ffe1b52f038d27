#!/usr/bin/env bash
# The budget grid of RESULTS.md section 1 (2026-12-04, 2-core Intel Xeon with AMX, one trial at a time, 1 thread).
set -u
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1 PYTHONPATH=$PWD
D=../shared/data/chest_xray
.venv/bin/python -m study.run --experiment budget_32,budget_64,budget_96,budget_128 --data $D --storage runs/budget --max-concurrent 1 --confirm-seeds 0
.venv/bin/python -m study.run --experiment budget_200 --max-epochs 10 --data $D --storage runs/budget --max-concurrent 1 --confirm-seeds 0
.venv/bin/python -m analysis.report runs/budget --out docs/budget-cpu-2026-12-04
PYTHONPATH=. .venv/bin/python docs/budget-cpu-2026-12-04/stress_rank.py runs/budget > docs/budget-cpu-2026-12-04/stress_rank.txt
