"""The confirmation stage: the study's selected binary and 3-class configurations, retrained with fresh seeds.

`study.run --confirm-seeds N` (on, with 3, whenever --data is given) ends the study with one more
experiment per task, run by Ray where the trials ran and stored beside the others:
STORAGE/confirm-binary/ and STORAGE/confirm-3class/, each N trials of the configuration that
study.tune.ranking ranks first (highest mean selection score over its seeds), with seeds 0..N-1. The
report evaluates their kept models on the test split (inference only; it never trains), so the
test figures are a mean over seeds that played no part in choosing the configuration.
"""
from __future__ import annotations

from ray import tune

from study.config import TrainConfig
from study.names import BEST_METRIC, CONFIRM_PREFIX, TASKS
from study.tune.plan import Plan
from study.tune.ranking import rank
from study.tune.space import SearchSpace


def plans(rows: list[dict], seeds: int) -> list[Plan]:
    """One confirmation experiment per task that has a selectable trial (rows: study.tune.outcome.trial_rows)."""
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
        base = TrainConfig.from_overrides(config)
        space = SearchSpace(name=CONFIRM_PREFIX + task, doc=doc, searched={"seed": tune.grid_search(list(range(seeds)))},
                            question=f"Confirmation: the selected {task} configuration with {seeds} fresh seeds",
                            max_epochs=base.epochs, answer="confirmation",
                            confirms={"experiment": best["experiment"], "mean": best["mean"], "seeds": best["seeds"],
                                      "trials": [m["trial_id"] for m in best["members"]]})
        out.append(Plan(space.name, base, {**base.to_dict(), **space.searched}, space, 1))
    return out
