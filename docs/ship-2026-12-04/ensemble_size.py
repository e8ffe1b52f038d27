"""Issue 27, items 2 and 3, on the 16 binary members train.sh trained (64 px x 20 epochs, the budget front's pick).

Ensemble size against cost: libraries of 1, 2, 4, 8 and 16 members, drawn as disjoint blocks of the seeds (16
libraries of one, 8 of two, 4 of four, 2 of eight, 1 of sixteen), each selected by Caruana's greedy rule as
analysis.ensemble does it today. For each: the stress-validation figures of the selected ensemble (balanced
accuracy at 0.5, AUC, balanced log-loss, the selection rule), its plain validation accuracy, the library's
train seconds (the members' epoch_seconds summed, one thread each, from their metrics.json) and the selected
ensemble's predict seconds for 624 films (val films repeated) on one thread: analysis.ensemble.size_curve.

The operating point: for each single seed, two threshold rules on its stress validation, Youden's J (the
headline today) and the highest grid threshold whose stress sensitivity is at least 0.95; the spread over the
16 seeds of the specificity and sensitivity each rule lands on, on the plain validation (which neither rule
sees) and, by a patient-level split-half of the stress validation (choose on one half, score on the other,
both ways, 10 random halvings), out of sample. Inference only.

    PYTHONPATH=. .venv/bin/python docs/ship-2026-12-04/ensemble_size.py runs/ship64 docs/ship-2026-12-04
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from analysis import ensemble
from analysis.thresholds import headline_threshold, prepared, threshold_table
from study.engine.metrics import binary_metrics
from study.names import EPOCH_SECONDS

DATA = "../shared/data/chest_xray"
SENSITIVITY = 0.95   # the fixed-sensitivity rule's target on the stress validation
HALVINGS = 10


def train_seconds(folder: Path) -> float:
    return float(sum(r[EPOCH_SECONDS] for r in json.loads((folder / "metrics.json").read_text())))


def sensitivity_threshold(y: np.ndarray, p: np.ndarray, target: float = SENSITIVITY) -> float:
    """The highest grid threshold whose sensitivity on (y, p) is at least `target` (the lowest grid point if none)."""
    table = threshold_table(y, p)
    ok = table.loc[table["recall"] >= target, "threshold"]
    return float(ok.max()) if len(ok) else float(table["threshold"].min())


def rates(y: np.ndarray, p: np.ndarray, t: float) -> tuple[float, float]:
    """(sensitivity, specificity) at threshold t."""
    m = binary_metrics(y, p, t)
    return m["recall"], m["specificity"]


RULES = {"youden": lambda y, p: headline_threshold(y, p)[0], f"sens>={SENSITIVITY}": sensitivity_threshold}


def main(runs: Path, out: Path) -> None:
    folders = sorted((d for d in runs.glob("b-s*") if (d / "checkpoint.pt").is_file()),
                     key=lambda d: int(d.name.split("-s")[1]))
    cache: dict = {}
    lib = ensemble.library([str(d) for d in folders], [d.name for d in folders], DATA, cache)
    data = prepared(DATA, lib.cfg, cache)
    torch.set_num_threads(1)
    curve = ensemble.size_curve(lib, [train_seconds(d) for d in folders], data.val.images)
    curve.round(4).to_csv(out / "ensemble_size.csv", index=False)
    summary = ensemble.size_summary(curve)
    lines = [f"ensemble size against cost ({len(folders)} members of {runs}; Caruana's selection, MAX_MEMBERS="
             f"{ensemble.MAX_MEMBERS}, MAX_PICKS={ensemble.MAX_PICKS}); means over disjoint libraries; predict seconds "
             f"for {ensemble.FILMS} films on one thread", summary.round(4).to_string(index=False), ""]
    ensemble.size_figure(curve, "Ensemble size against cost: 64 px x 20 epochs members", out / "ensemble_size.png")

    # ---- the operating point, per single seed ----
    rng = np.random.default_rng(0)
    patients = np.asarray(data.stress.patients)
    unique = np.unique(patients)
    op = []
    for m, name in enumerate(lib.names):
        ps, pv = lib.probs_stress[m], lib.probs[m]
        for rule, choose in RULES.items():
            t = choose(lib.y_stress, ps)
            sens_v, spec_v = rates(lib.y, pv, t)
            sens_s, spec_s = rates(lib.y_stress, ps, t)
            halves = []
            for _ in range(HALVINGS):
                a = np.isin(patients, rng.choice(unique, len(unique) // 2, replace=False))
                for fit, score in ((a, ~a), (~a, a)):
                    th = choose(lib.y_stress[fit], ps[fit])
                    halves.append(rates(lib.y_stress[score], ps[score], th))
            op.append({"member": name, "rule": rule, "threshold": t, "val_sens": sens_v, "val_spec": spec_v,
                       "stress_sens": sens_s, "stress_spec": spec_s,
                       "half_sens": float(np.mean([h[0] for h in halves])),
                       "half_spec": float(np.mean([h[1] for h in halves])),
                       "half_spec_sd": float(np.std([h[1] for h in halves]))})
    opt = pd.DataFrame(op)
    opt.round(4).to_csv(out / "operating_point.csv", index=False)
    spread = opt.groupby("rule").agg(
        threshold_min=("threshold", "min"), threshold_max=("threshold", "max"),
        stress_spec_mean=("stress_spec", "mean"), stress_spec_sd=("stress_spec", "std"),
        stress_spec_min=("stress_spec", "min"), stress_spec_max=("stress_spec", "max"),
        stress_sens_mean=("stress_sens", "mean"), stress_sens_min=("stress_sens", "min"),
        half_spec_mean=("half_spec", "mean"), half_spec_sd_over_seeds=("half_spec", "std"),
        half_sens_mean=("half_sens", "mean"), half_sens_min=("half_sens", "min"),
        val_spec_mean=("val_spec", "mean"), val_spec_min=("val_spec", "min"),
        val_sens_mean=("val_sens", "mean"), val_sens_min=("val_sens", "min")).T
    lines += [f"operating point over the {len(lib.names)} single seeds: each rule chosen on its own stress validation; "
              f"half_*: chosen on a patient-level half, scored on the other ({HALVINGS} halvings x 2)",
              spread.round(4).to_string()]
    text = "\n".join(lines) + "\n"
    (out / "ensemble_size.txt").write_text(text)
    print(text)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
