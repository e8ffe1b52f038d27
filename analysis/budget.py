"""The budget question's answer: the selection score against train cost over resolution x epochs x seeds.

Each trial of a budget_R experiment (search_spaces/budget.py) is read at every epoch budget E of its
study.json: its best METRIC within the first E epochs, the stress AUC and plain validation accuracy of
that epoch, and its train cost, the sum of the first E epochs' epoch_seconds (one trial's wall seconds on
the machine and threads it ran with; evaluation included). A configuration (R, E) is the mean over its
seeds. The Pareto front keeps each configuration that scores above every cheaper one.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.results.load import TRAIN_SECONDS, Experiment
from study.names import EPOCH, EPOCH_SECONDS, METRIC, VAL_ACCURACY, VAL_SHIFT_AUC


def budget_rows(exp: Experiment) -> pd.DataFrame:
    """One row per trial and epoch budget it ran to: resolution, epochs, seed, score, stress AUC, val accuracy, cost."""
    res = int(exp.meta.get("base_config", {}).get("resolution", 0))
    budgets = [int(b) for b in exp.meta.get("epoch_budgets") or [exp.max_epochs]]
    rows = []
    for _, t in exp.trials.iterrows():
        e = exp.epochs[exp.epochs["trial_id"] == t["trial_id"]].sort_values(EPOCH)
        for b in budgets:
            first = e[e[EPOCH] <= b]
            if len(first) < b or first[METRIC].isna().all() or EPOCH_SECONDS not in first:
                continue
            best = first.loc[first[METRIC].idxmax()]
            rows.append({"resolution": res, "epochs": b, "seed": t["config"].get("seed"), METRIC: best[METRIC],
                         VAL_SHIFT_AUC: best[VAL_SHIFT_AUC], VAL_ACCURACY: best[VAL_ACCURACY],
                         "kept epoch": int(best[EPOCH]), TRAIN_SECONDS: float(first[EPOCH_SECONDS].sum())})
    return pd.DataFrame(rows)


def configurations(experiments: list[Experiment]) -> pd.DataFrame:
    """Every (resolution, epochs) of the budget experiments: means over seeds, the score's std, seeds, and
    `on front` (no cheaper configuration scores as high)."""
    frames = [budget_rows(e) for e in experiments]
    rows = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else pd.DataFrame()
    if not len(rows):
        return rows
    g = rows.groupby(["resolution", "epochs"])
    df = g[[METRIC, VAL_SHIFT_AUC, VAL_ACCURACY, TRAIN_SECONDS]].mean()
    df[f"{METRIC} std"] = g[METRIC].std(ddof=1)
    df["seeds"] = g.size()
    df = df.reset_index().sort_values(TRAIN_SECONDS, ignore_index=True)
    df["on front"] = df[METRIC] > df[METRIC].cummax().shift(fill_value=-np.inf)
    return df


def seeds_for_one(df: pd.DataFrame) -> tuple[pd.Series, pd.Series, int]:
    """(the cheapest configuration on the front, the most expensive configuration, how many runs of the first fit
    the train cost of one of the second)."""
    cheap = df[df["on front"]].iloc[0]
    dear = df.loc[df[TRAIN_SECONDS].idxmax()]
    return cheap, dear, int(dear[TRAIN_SECONDS] // cheap[TRAIN_SECONDS])


def front_figure(df: pd.DataFrame, out: Path) -> Path:
    """Score against train seconds (log), one marker per resolution, the front as a step line -> out PNG."""
    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.subplots()
    for r, g in df.groupby("resolution"):
        ax.errorbar(g[TRAIN_SECONDS], g[METRIC], yerr=g[f"{METRIC} std"].fillna(0), fmt="o", capsize=3, label=f"{r} px")
        for _, row in g.iterrows():
            ax.annotate(f"{row['epochs']:.0f} ep", (row[TRAIN_SECONDS], row[METRIC]), textcoords="offset points", xytext=(4, -10),
                        fontsize=7)
    f = df[df["on front"]]
    ax.step(f[TRAIN_SECONDS], f[METRIC], where="post", color="gray", lw=1, label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("train seconds per run (1 CPU thread, log scale)")
    ax.set_ylabel(f"{METRIC} (mean over seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return out
