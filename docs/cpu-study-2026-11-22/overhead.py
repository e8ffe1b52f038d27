"""Ray scheduling overhead per trial, from a finished experiment's result files.

    python docs/cpu-study-2026-11-22/overhead.py RESULTS/EXPERIMENT
"""
import json, glob, sys, statistics as st
exp = sys.argv[1]
meta = json.load(open(f"{exp}/study.json"))
first, per_iter, trial_wall, compute = [], [], [], 0.0
for f in glob.glob(f"{exp}/*/result.json"):
    L = [json.loads(l) for l in open(f)]
    first.append(L[0]["time_this_iter_s"] - L[0]["epoch_seconds"])
    per_iter += [l["time_this_iter_s"] - l["epoch_seconds"] for l in L[1:]]
    compute += sum(l["epoch_seconds"] for l in L)
    trial_wall.append(L[-1]["time_total_s"])
n = len(first)
print(f"{exp}: {n} trials, study wall {meta['wall_seconds']} s, sum of in-trial epoch time {compute:.1f} s, "
      f"concurrency {meta['resources']}")
print(f"  first-report overhead per trial (trial start, data from object store, model build): median {st.median(first):.2f} s")
print(f"  per-epoch report+checkpoint overhead: median {st.median(per_iter):.3f} s over {len(per_iter)} epochs")
print(f"  driver wall minus ideal (compute / 2 slots): {meta['wall_seconds'] - compute/2:.1f} s = {(meta['wall_seconds'] - compute/2)/n:.1f} s per trial")
