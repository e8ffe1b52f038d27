"""Which searched hyperparameters mattered: a random forest from config to the selection score (BEST_METRIC),
read through permutation importance (scikit-learn), plus the plain per-value means it rests on.

One column per hyperparameter (numbers as numbers, lr on a log10 scale, anything else as category
codes), so permutation importance is per hyperparameter rather than per one-hot column. With few
trials nothing can be estimated, and the forest's out-of-bag R^2 says whether the configuration
predicts accuracy at all; `seed`, when searched, is a random-number seed: its importance is the noise floor.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestRegressor
from sklearn.inspection import permutation_importance

from analysis.results.load import fmt
from study.names import BEST_METRIC, METRIC

MIN_TRIALS = 8


@dataclass
class Importance:
    scope: str
    n_trials: int
    note: str                              # what can (not) be concluded, one or two sentences
    marginal: pd.DataFrame                 # hyperparameter, value, trials, mean/std/max of BEST_METRIC
    importance: dict[str, float] | None = None
    importance_std: dict[str, float] | None = None
    oob_r2: float | None = None


def _column(values: list) -> np.ndarray:
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return np.asarray(values, float)
    return pd.factorize(pd.Series([fmt(v) for v in values]), sort=True)[0].astype(float)


def marginal_table(trials: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """Per value of each feature; features with a different value in every trial (random seeds) are left out."""
    rows = []
    for f in features:
        vals = trials["config"].map(lambda c: fmt(c.get(f)))
        if vals.nunique() == len(vals):
            continue
        for v, g in trials.groupby(vals, sort=True)[BEST_METRIC]:
            rows.append({"hyperparameter": f, "value": v, "trials": len(g), "mean " + BEST_METRIC: g.mean(),
                         "std": g.std(ddof=1) if len(g) > 1 else float("nan"), "max": g.max()})
    return pd.DataFrame(rows)


def estimate(trials: pd.DataFrame, features: list[str], scope: str) -> Importance:
    """Importance of `features` (config keys) for BEST_METRIC over `trials` (rows with a config)."""
    t = trials[trials[BEST_METRIC].notna()]
    varying = [f for f in features if t["config"].map(lambda c: fmt(c.get(f))).nunique() > 1]
    marginal = marginal_table(t, varying)
    if len(t) < MIN_TRIALS or not varying:
        why = (f"only {len(t)} trial(s)" if len(t) < MIN_TRIALS else "no searched hyperparameter varies")
        return Importance(scope, len(t), f"Too few trials to estimate importance: {why} "
                                         f"(need at least {MIN_TRIALS} and a varying hyperparameter).", marginal)
    y = t[BEST_METRIC].to_numpy(float)
    if np.ptp(y) == 0:
        return Importance(scope, len(t), f"Every trial reached the same best {METRIC} ({y[0]:.4f}): "
                                         f"there is no difference to attribute to any hyperparameter.", marginal)
    cols = []
    for f in varying:
        vals = t["config"].map(lambda c: c.get(f)).tolist()
        col = _column(vals)
        cols.append(np.log10(col) if f == "lr" and np.all(col > 0) else col)
    X = np.column_stack(cols)
    rf = RandomForestRegressor(n_estimators=300, min_samples_leaf=2, oob_score=True, random_state=0).fit(X, y)
    pi = permutation_importance(rf, X, y, n_repeats=20, random_state=0)
    imp = dict(zip(varying, pi.importances_mean.tolist()))
    std = dict(zip(varying, pi.importances_std.tolist()))
    top = max(imp, key=imp.get)
    r2 = float(rf.oob_score_)
    note = (f"Random forest (300 trees) on {len(t)} trials, permutation importance = drop in R^2 when one "
            f"hyperparameter is shuffled (on the trials it was fitted to). Largest: {top} ({imp[top]:.3f}). "
            f"Out-of-bag R^2 {r2:.2f}: ")
    note += ("the configuration predicts accuracy reasonably, so the ranking is informative."
             if r2 >= 0.3 else "the configuration barely predicts accuracy out of bag, so read the ranking "
             "as weak (differences are mostly noise or too few trials).")
    if "seed" in imp:
        note += f" The seed (pure noise) scores {imp['seed']:.3f}: anything not above it is not distinguishable from noise."
    return Importance(scope, len(t), note, marginal, imp, std, r2)
