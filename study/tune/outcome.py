"""What an experiment's trials came to: Ray's results turned into one row per trial, once, and the summary
`study.run` prints and writes into the experiment's study.json.

A row: {"experiment", "trial", "trial_id", "status" (study.names.trial_status, each trial against its own
epoch budget), "epochs", "budget", "score" (its BEST_METRIC; None when it errored or diverged, so it
is never selected), "config", "path", "checkpoint", "why"}. The confirmation stage ranks these rows
(study.tune.ranking), the summary counts them.
"""
from __future__ import annotations

import math
from pathlib import Path

from study.names import (
    BEST_METRIC,
    DIVERGED,
    DONE_STATUSES,
    EARLY_STOPPED,
    EPOCH,
    ERROR_MESSAGE,
    ERRORED,
    METRIC,
    MODE,
    STOPPED_BY_ASHA,
    diverged_why,
    trial_budget,
    trial_status,
)


def last_line(error) -> str:
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(error).__name__


def trial_rows(experiment: str, results, default_budget: int, asha: bool) -> list[dict]:
    """One row per trial of a Ray ResultGrid (see the module docstring)."""
    rows = []
    for r in results:
        last, config = r.metrics or {}, dict(r.config or {})
        budget = trial_budget(config, default_budget)
        status = trial_status(last, budget, r.error is not None, asha)
        why = None
        if r.error is not None:
            why = last_line(r.error)
        elif status == DIVERGED:
            why = diverged_why(last)
        elif status == ERRORED:
            why = last.get(ERROR_MESSAGE) or f"stopped after {last.get(EPOCH, 0)} of {budget} epochs"
        score = last.get(BEST_METRIC) if status not in (ERRORED, DIVERGED) else None
        rows.append({"experiment": experiment, "trial": Path(r.path).name, "trial_id": last.get("trial_id"),
                     "status": status, "epochs": int(last.get(EPOCH) or 0), "budget": budget, "score": score,
                     "config": config, "path": r.path, "checkpoint": r.checkpoint.path if r.checkpoint else "",
                     "why": why})
    return rows


def summarize(name: str, rows: list[dict], searched: list[str], path: str) -> dict:
    """The experiment's outcome: one line printed (errored and diverged trials counted apart from
    ASHA's stops), one more per errored or diverged trial; the same in study.json's "summary"."""
    count = {s: sum(t["status"] == s for t in rows) for s in (*DONE_STATUSES, ERRORED)}
    out = {"trials": len(rows), "trial_names": sorted(t["trial"] for t in rows), "errors": count[ERRORED],
           "diverged": count[DIVERGED], "epochs_run": sum(t["epochs"] for t in rows),
           "epochs_budget": sum(t["budget"] for t in rows), "stopped_by_asha": count[STOPPED_BY_ASHA],
           "stopped_by_patience": count[EARLY_STOPPED], "statuses": count,
           "errored_trials": [{"trial": t["trial"], "error": t["why"]} for t in rows if t["status"] == ERRORED],
           "diverged_trials": [{"trial": t["trial"], "why": t["why"]} for t in rows if t["status"] == DIVERGED]}
    ranked = [t for t in rows if isinstance(t["score"], (int, float)) and math.isfinite(t["score"])]
    if ranked:
        best = (max if MODE == "max" else min)(ranked, key=lambda t: t["score"])
        out.update({"best_" + METRIC: best["score"], "best_config": {k: best["config"][k] for k in searched},
                    "best_trial_path": best["path"]})
    best_txt = (f"best {METRIC} {out['best_' + METRIC]:.4f} ({', '.join(f'{k}={v}' for k, v in out['best_config'].items())})"
                if "best_config" in out else "no successful trial")
    print(f"{name}: {out['trials']} trials ({out['errors']} errored, {out['diverged']} diverged), {out['epochs_run']}/"
          f"{out['epochs_budget']} epochs run (ASHA stopped {out['stopped_by_asha']}, early stopping "
          f"{out['stopped_by_patience']}), {best_txt}, results in {path}", flush=True)
    for t in rows:
        if t["status"] in (ERRORED, DIVERGED):
            print(f"  {t['status']}: {t['trial']}: {t['why']}", flush=True)
    return out
