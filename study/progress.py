"""Progress of a study off a terminal: one line per finished trial (a Ray Tune callback).

On a terminal Ray's own trial table shows progress; in a log file, a Ray Job's log or CI it is
printed rarely, so `study.run` adds this callback when stdout is not a terminal. Each line:

    [generalization] trial 3f2a1_00007 finished (12 epochs, val_shift_bacc 0.8613) 8/48 done, 6m12s elapsed, ETA 31m

status: study.config.trial_status's (finished / stopped by ASHA / early-stopped / diverged / errored). The ETA assumes the remaining trials take as long as the finished ones did on average.
"""
from __future__ import annotations

import sys
import time

from ray.tune import Callback

from study.config import BEST_METRIC, EARLY_STOPPED, ERRORED, METRIC, STOPPED_BY_ASHA, trial_budget, trial_status

WORDS = {STOPPED_BY_ASHA: "stopped by ASHA", EARLY_STOPPED: "early-stopped"}  # statuses as the line says them


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class TrialProgress(Callback):
    def __init__(self, experiment: str, budget_epochs: int, asha: bool):
        self.experiment, self.budget, self.asha = experiment, budget_epochs, asha  # pickled into tuner.pkl: no stream kept
        self.total, self.done, self.t0 = 0, 0, time.monotonic()

    def setup(self, stop=None, num_samples=None, total_num_samples=None, **info):
        self.total, self.t0 = total_num_samples or 0, time.monotonic()

    def _line(self, trial, status: str) -> None:
        self.done += 1
        r = trial.last_result or {}
        epochs = int(r.get("training_iteration", 0))
        score = r.get(BEST_METRIC)
        elapsed = time.monotonic() - self.t0
        left = max(self.total - self.done, 0)
        eta = f", ETA {_clock(elapsed / self.done * left)}" if self.total and left else ""
        total = f"/{self.total}" if self.total else ""
        metric = f", {METRIC} {score:.4f}" if isinstance(score, (int, float)) else ""
        print(f"[{self.experiment}] trial {trial.trial_id} {status} ({epochs} epochs{metric}) "
              f"{self.done}{total} done, {_clock(elapsed)} elapsed{eta}", file=sys.stdout, flush=True)

    def on_trial_complete(self, iteration, trials, trial, **info):
        """The status by study.config.trial_status, the one rule (the trial's own epoch budget; ASHA only
        where the experiment has it)."""
        last = trial.last_result or {}
        status = trial_status(last, trial_budget(trial.config or {}, self.budget), False, self.asha)
        self._line(trial, WORDS.get(status, status))

    def on_trial_error(self, iteration, trials, trial, **info):
        self._line(trial, ERRORED)
