"""Choosing the configuration for the report: study.tune.ranking's rule (configurations ranked by their
mean selection score over seeds; the representative trial is the best seed) applied to a results
tree's trials frame, with the table the report shows and the best-of-N selection bias.

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

from analysis.results.load import AT_BEST
from study.names import BEST_METRIC, VAL_ACCURACY, VAL_SHIFT_AUC
from study.tune.ranking import rank


def expected_max_normal(n: int) -> float:
    """E[max of n independent standard normals] (0 for n = 1)."""
    if n <= 1:
        return 0.0
    f = lambda x: x * n * stats.norm.pdf(x) * stats.norm.cdf(x) ** (n - 1)
    return float(integrate.quad(f, -12, 12)[0])


def pooled_seed_std(groups: list[dict]) -> tuple[float | None, int]:
    """Pooled within-configuration std of the selection score (study.tune.ranking.rank's groups), and its d.o.f."""
    ss = sum(g["std"] ** 2 * (g["seeds"] - 1) for g in groups if g["std"] is not None)
    dof = sum(g["seeds"] - 1 for g in groups if g["std"] is not None)
    return (float(np.sqrt(ss / dof)), int(dof)) if dof else (None, 0)


@dataclass
class Choice:
    row: pd.Series              # the representative trial (best seed of the best configuration)
    checkpoints: list           # every trial of the best configuration (best seed first)
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
    """The configuration with the highest mean selection score among trials of `num_classes`
    (study.tune.ranking.rank); None if no trial can be selected."""
    t = trials[trials["num_classes"] == num_classes]
    rows = [{"experiment": r["experiment"], "config": r["config"], "score": float(r[BEST_METRIC]),
             "checkpoint": r["checkpoint"], "status": r.get("status"), "index": i} for i, r in t.iterrows()]
    groups = rank(rows)
    if not groups:
        return None
    table = pd.DataFrame([{
        "experiment": g["experiment"], "label": t.loc[g["members"][0]["index"], "config_label"], "seeds": g["seeds"],
        f"mean {BEST_METRIC}": g["mean"], "std (seeds)": g["std"],
        "min": min(m["score"] for m in g["members"]), "max": max(m["score"] for m in g["members"]),
        f"mean plain {VAL_ACCURACY}": t.loc[[m["index"] for m in g["members"]], VAL_ACCURACY + AT_BEST].mean(),
        "mean stress AUC": t.loc[[m["index"] for m in g["members"]], VAL_SHIFT_AUC + AT_BEST].mean()} for g in groups])
    sigma, _ = pooled_seed_std(groups)
    seeds, n = groups[0]["seeds"], len(groups)
    bias = sigma / np.sqrt(seeds) * expected_max_normal(n) if sigma is not None else None
    margin = groups[0]["mean"] - groups[1]["mean"] if n > 1 else None
    members = groups[0]["members"]
    return Choice(t.loc[members[0]["index"]], [m["checkpoint"] for m in members], table, n, seeds, sigma, bias, margin)
