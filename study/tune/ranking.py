"""The selection rule, in one place: configurations ranked by their mean selection score over seeds.

A trial's selection score is its BEST_METRIC (study/names.py: the METRIC of the epoch it kept,
balanced accuracy on the stress validation). A configuration is the trials of one experiment
whose configs differ only in `seed`. It is ranked by the mean of its trials' scores (ties: by
experiment name, then first seen), so one lucky seed does not win; its representative trial (the
checkpoint a threshold or a shipped model starts from) is its best-scoring seed. Trials without a
finite score or a kept model, diverged ones, and the confirmation stage's repeats are never selected.

study.run applies it to choose what the confirmation stage retrains; analysis.selection applies
it to a results tree for the report. Neither has a copy of its own.
"""
from __future__ import annotations

import math
from typing import Iterable

from study.names import CONFIRM_PREFIX, DIVERGED, ERRORED


def hashable(v):
    if isinstance(v, (list, tuple)):
        return tuple(hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, hashable(x)) for k, x in v.items()))
    return v


def config_key(config: dict) -> tuple:
    """A trial's configuration without its seed: trials with equal keys are repeats of one configuration."""
    return tuple(sorted((k, hashable(v)) for k, v in config.items() if k != "seed"))


def selectable(row: dict) -> bool:
    score = row.get("score")
    return (isinstance(score, (int, float)) and math.isfinite(score) and bool(row.get("checkpoint"))
            and row.get("status") not in (DIVERGED, ERRORED) and not str(row["experiment"]).startswith(CONFIRM_PREFIX))


def rank(rows: Iterable[dict]) -> list[dict]:
    """rows: {"experiment", "config", "score", "checkpoint", ...}, one per trial. -> configurations, best
    mean first: {"experiment", "key", "mean", "std" (None for one seed), "seeds", "members" (best first)}."""
    groups: dict[tuple, dict] = {}
    for row in rows:
        if not selectable(row):
            continue
        key = (row["experiment"], config_key(row["config"]))
        groups.setdefault(key, {"experiment": row["experiment"], "key": key, "members": []})["members"].append(row)
    out = []
    for g in groups.values():
        scores = [m["score"] for m in g["members"]]
        n, mean = len(scores), sum(scores) / len(scores)
        std = math.sqrt(sum((s - mean) ** 2 for s in scores) / (n - 1)) if n > 1 else None
        g["members"].sort(key=lambda m: -m["score"])  # stable: the first seen wins a tie
        out.append({**g, "mean": mean, "std": std, "seeds": n})
    return sorted(out, key=lambda g: (-g["mean"], g["experiment"]))
