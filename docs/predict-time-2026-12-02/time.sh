#!/usr/bin/env bash
# BENCHMARKS.md "Prediction time": wall clock of study.predict --json over the 624 proxy films, 3 runs each.
# Run from the repository root of a checkout beside shared/; OLD: the model file to compare against (optional).
set -u
P=${P:-runs/timing624}
[ -d "$P" ] || .venv/bin/python docs/predict-time-2026-12-02/proxy.py ../shared/data/chest_xray "$P"
imgs=$(ls "$P"/*.jpeg)
for spec in "old|${OLD:+--model $OLD}" "binary|" "binary_tta_all|--tta all" "three_class|--three-class"; do
  name=${spec%%|*}; args=${spec#*|}
  [ "$name" = old ] && [ -z "${OLD:-}" ] && continue
  for r in 1 2 3; do
    s=$(date +%s.%N); .venv/bin/python -m study.predict --json $args $imgs > /dev/null; rc=$?; e=$(date +%s.%N)
    echo "$name run$r rc=$rc $(echo "$e - $s" | bc) s, load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
