#!/usr/bin/env bash
# The shipped models' library of 2026-12-04 (RESULTS.md section 1): the budget question's pick, 64 px and 20 epochs
# of the default recipe (lr_schedule none), the full train split less the patient-level validation carve
# (holdout_fraction=0); 16 binary seeds and 4 3-class seeds, one thread per run, two queues at once.
# Run from the repository root of a checkout beside shared/.
set -u
cd "$(dirname "$0")/../.."  # the repository root
export OMP_NUM_THREADS=1 PYTHONPATH=$PWD
PY=${PY:-.venv/bin/python}
T="-m study.train --data ../shared/data/chest_xray --set resolution=64 --set holdout_fraction=0 --set epochs=20 --set lr_schedule=none"
run() { name=$1; shift; [ -f runs/ship64/$name/checkpoint.pt ] && grep -q '"epoch": 20' runs/ship64/$name/metrics.json 2>/dev/null && return
        echo "$(date -u +%FT%TZ) start $name: python $T $* --out runs/ship64/$name"
        $PY $T "$@" --out runs/ship64/$name > runs/ship64/$name.log 2>&1; echo "$(date -u +%FT%TZ) end $name rc=$?"; }
mkdir -p runs/ship64
q1() { for s in 0 2 4 6 8 10 12 14; do run b-s$s --set seed=$s; done; run t-s0 --set num_classes=3 --set seed=0; run t-s2 --set num_classes=3 --set seed=2; }
q2() { for s in 1 3 5 7 9 11 13 15; do run b-s$s --set seed=$s; done; run t-s1 --set num_classes=3 --set seed=1; run t-s3 --set num_classes=3 --set seed=3; }
q1 > runs/ship64/q1.log 2>&1 &
q2 > runs/ship64/q2.log 2>&1 &
wait
