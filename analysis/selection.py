"""Choosing the configuration: configurations ranked by their mean selection score over seeds.

A trial's selection score is BEST_METRIC: the METRIC (study/config.py: balanced accuracy on the
stress validation) of the epoch it kept. A configuration is one experiment's trials that differ
only in `seed`; it is ranked by the mean of its trials' scores, shown with their spread, so one
lucky seed does not win. The configuration's representative checkpoint (for the threshold, the
shipped model and predictions) is its best-scoring seed.

Best-of-N bias: picking the best of N configurations by a noisy score overstates the winner even
when all N are equally good. With seed-to-seed std sigma and k seeds per configuration, the
expected excess of the best of N equal configurations is sigma / sqrt(k) * E[max of N standard
normals]; the report prints it next to the winner's margin.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import integrate, stats

from analysis.load import AT_BEST
from study.config import BEST_METRIC, VAL_ACCURACY, VAL_SHIFT_AUC


def config_key(config: dict) -> tuple:
    """A trial's configuration without its seed: trials with equal keys are repeats of one configuration."""
    return tuple(sorted((k, v) for k, v in config.items() if k != "seed"))


def expected_max_normal(n: int) -> float:
    """E[max of n independent standard normals] (0 for n = 1)."""
    if n <= 1:
        return 0.0
    f = lambda x: x * n * stats.norm.pdf(x) * stats.norm.cdf(x) ** (n - 1)  # noqa: E731
    return float(integrate.quad(f, -12, 12)[0])


def pooled_seed_std(trials: pd.DataFrame) -> tuple[float | None, int]:
    """Pooled within-configuration std of the selection score, and its degrees of freedom."""
    ss = dof = 0.0
    for _, g in trials.groupby("config_key"):
        v = g[BEST_METRIC].dropna()
        if len(v) >= 2:
            ss, dof = ss + v.var(ddof=1) * (len(v) - 1), dof + len(v) - 1
    return (float(np.sqrt(ss / dof)), int(dof)) if dof else (None, 0)


@dataclass
class Choice:
    row: pd.Series              # the representative trial (best seed of the best configuration)
    table: pd.DataFrame         # configurations, best mean first
    n_configs: int
    seeds: int                  # seeds of the winner
    sigma: float | None         # pooled seed std of the selection score
    bias: float | None          # expected best-of-N excess under no real difference
    margin: float | None        # winner's mean minus the runner-up's

    def note(self) -> str:
        if self.sigma is None:
            return (f"{self.n_configs} configuration(s) compared, one seed each: there is no seed-to-seed spread to "
                    f"say how much of the winner's lead is luck (run spaces with 2+ seeds).")
        text = (f"{self.n_configs} configurations compared, ranked by their mean {BEST_METRIC} over seeds (pooled "
                f"seed-to-seed std {self.sigma:.4f}). Best-of-N selection bias: even if all {self.n_configs} were "
                f"equally good, the best mean of {self.seeds} seed(s) would exceed their common mean by about "
                f"{self.bias:.4f} on average (sigma / sqrt(seeds) x E[max of {self.n_configs} normals] = "
                f"{self.sigma:.4f} / sqrt({self.seeds}) x {expected_max_normal(self.n_configs):.2f})")
        if self.margin is not None:
            text += (f"; the winner leads the runner-up by {self.margin:.4f}, "
                     + ("less than that bias, so the order of the top configurations is not established." if
                        self.margin < self.bias else "more than that bias."))
        return text + " Expect the winner's validation figure to drop by about that much on new data."


def choose(trials: pd.DataFrame, num_classes: int) -> Choice | None:
    """The configuration with the highest mean selection score among trials of `num_classes` that kept
    a model (a checkpoint and a finite score); None if there is none."""
    t = trials[(trials["num_classes"] == num_classes) & (trials["checkpoint"] != "") & trials[BEST_METRIC].notna()]
    t = t[np.isfinite(t[BEST_METRIC].astype(float))]
    if "status" in t:  # a diverged trial is recorded, never selected
        t = t[t["status"].fillna("") != "diverged"]
    if not len(t):
        return None
    t = t.assign(config_key=[(e, config_key(c)) for e, c in zip(t["experiment"], t["config"])])
    agg = t.groupby("config_key", sort=False).agg(
        experiment=("experiment", "first"), seeds=(BEST_METRIC, "size"), mean=(BEST_METRIC, "mean"),
        std=(BEST_METRIC, "std"), min=(BEST_METRIC, "min"), max=(BEST_METRIC, "max"),
        plain_val_accuracy=(VAL_ACCURACY + AT_BEST, "mean"), stress_auc=(VAL_SHIFT_AUC + AT_BEST, "mean"),
        label=("config_label", "first"))
    agg = agg.sort_values(["mean", "experiment"], ascending=[False, True], kind="stable")
    best_key = agg.index[0]
    members = t[t["config_key"] == best_key]
    row = members.loc[members[BEST_METRIC].idxmax()]
    sigma, _ = pooled_seed_std(t)
    seeds = int(agg.iloc[0]["seeds"])
    n = len(agg)
    bias = sigma / np.sqrt(seeds) * expected_max_normal(n) if sigma is not None else None
    margin = float(agg.iloc[0]["mean"] - agg.iloc[1]["mean"]) if n > 1 else None
    table = agg.reset_index(drop=True)[["experiment", "label", "seeds", "mean", "std", "min", "max",
                                         "plain_val_accuracy", "stress_auc"]]
    table = table.rename(columns={"mean": f"mean {BEST_METRIC}", "std": "std (seeds)",
                                  "plain_val_accuracy": f"mean plain {VAL_ACCURACY}", "stress_auc": "mean stress AUC"})
    return Choice(row, table, n, seeds, sigma, bias, margin)
