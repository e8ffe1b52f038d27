"""The confirmation stage: the study's selected binary and 3-class configurations, retrained with fresh seeds.

`study.run --confirm-seeds N` (on, with 3, whenever --data is given) ends the study with one more
experiment per task, run by Ray where the trials ran and stored beside the others:
STORAGE/confirm-binary/ and STORAGE/confirm-3class/, each N trials of the configuration that
study.select ranks first (highest mean selection score over its seeds), with seeds 0..N-1. The
report evaluates their kept models on the test split (inference only; it never trains), so the
test figures are a mean over seeds that played no part in choosing the configuration.
"""
from __future__ import annotations

from types import SimpleNamespace

from ray import tune

from study.config import BEST_METRIC, CONFIRM_PREFIX as PREFIX, STATUS
from study.select import rank
TASKS = {2: "binary", 3: "3class"}


def trial_rows(experiment: str, results) -> list[dict]:
    """study.select rows from a Ray ResultGrid."""
    rows = []
    for r in results:
        m = r.metrics or {}
        rows.append({"experiment": experiment, "config": dict(r.config or {}),
                     "score": None if r.error is not None else m.get(BEST_METRIC),  # an errored trial is never selected
                     "checkpoint": r.checkpoint.path if r.checkpoint else "", "status": m.get(STATUS),
                     "trial_id": m.get("trial_id")})
    return rows


def plans(rows: list[dict], seeds: int) -> list[tuple[str, dict, SimpleNamespace]]:
    """(experiment name, param_space, a search-space-like description) per task that has a selectable trial."""
    out = []
    for num_classes, task in TASKS.items():
        groups = rank(r for r in rows if int(r["config"].get("num_classes", 2)) == num_classes)
        if not groups:
            continue
        best = groups[0]
        config = {k: v for k, v in best["members"][0]["config"].items() if k != "seed"}
        picked = ", ".join(f"{m['trial_id']} ({m['score']:.4f})" for m in best["members"])
        doc = (f"Confirmation of the selected {task} configuration: {best['experiment']}'s configuration with the "
               f"highest mean {BEST_METRIC} ({best['mean']:.4f} over {best['seeds']} seed(s): {picked}), retrained "
               f"with seeds 0..{seeds - 1}. The report's test evaluation uses these models.")
        space = SimpleNamespace(QUESTION=f"Confirmation: the selected {task} configuration with {seeds} fresh seeds",
                                FIXED={}, SPACE={"seed": tune.grid_search(list(range(seeds)))}, NUM_SAMPLES=1,
                                MAX_EPOCHS=int(config.get("epochs", 12)), ASHA=None, __doc__=doc,
                                CONFIRMS={"experiment": best["experiment"], "mean": best["mean"], "seeds": best["seeds"],
                                          "trials": [m["trial_id"] for m in best["members"]]})
        out.append((PREFIX + task, {**config, **space.SPACE}, space))
    return out
