"""The study's Ray Tune callbacks: one progress line per finished trial, ASHA's rungs kept with every
experiment snapshot, W&B runs with their status, and the pruning of superseded checkpoints.

TrialProgress: off a terminal (a log file, a Ray Job, CI) `study.run` prints one line per finished trial:

    [generalization] trial 3f2a1_00007 finished (12 epochs, val_shift_bacc 0.8613) 8/48 done, 6m12s elapsed, ETA 31m

with study.names.trial_status's outcome (finished / stopped by ASHA / early-stopped / diverged / errored);
the ETA assumes the remaining trials take as long as the finished ones did on average.

CheckpointPruner: Ray keeps every checkpoint a trial reports (CheckpointConfig(num_to_keep=None)), so it
never forces an experiment snapshot per epoch and never deletes a checkpoint that a saved snapshot still
points at. (With num_to_keep set, Ray deletes the previous checkpoint as soon as the next is registered;
a driver killed before the next snapshot left a snapshot pointing at a deleted folder, and every
--resume failed with "checkpoint_000000 does not exist on storage anymore".) At every snapshot this
callback reads the newest experiment state on storage, the one a --resume would read, and deletes each
trial's checkpoints older than the one that state would restore it from (its checkpoint manager's
latest, not its last result, which can name the next checkpoint a moment before Ray registers it): what
is deleted can never be needed.
"""
from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from pathlib import Path

import ray.cloudpickle
from pyarrow import fs as pafs
from ray import tune
from ray.air.integrations.wandb import WandbLoggerCallback
from ray.tune import Callback
from ray.tune.schedulers import TrialScheduler

from study.names import (
    BEST_METRIC,
    EARLY_STOPPED,
    ERROR_MESSAGE,
    ERRORED,
    METRIC,
    STATUS,
    STOPPED_BY_ASHA,
    WHY,
    trial_budget,
    trial_status,
)

WORDS = {STOPPED_BY_ASHA: "stopped by ASHA", EARLY_STOPPED: "early-stopped"}  # statuses as the line says them
_CHECKPOINT = re.compile(r"^checkpoint_(\d+)$")


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
        """The status by study.names.trial_status, the one rule (the trial's own epoch budget; ASHA only
        where the experiment has it)."""
        last = trial.last_result or {}
        status = trial_status(last, trial_budget(trial.config or {}, self.budget), False, self.asha)
        self._line(trial, WORDS.get(status, status))

    def on_trial_error(self, iteration, trials, trial, **info):
        self._line(trial, ERRORED)


class SchedulerState(tune.Callback):
    """Keeps the trial scheduler's state (ASHA's rungs) with every experiment checkpoint and puts it
    back on Tuner.restore. Ray 2.x saves the searcher's and the callbacks' state there but not the
    scheduler's, so a resumed study would judge its trials against empty rungs. The state goes
    through the scheduler's own save/restore; this callback and the TuneConfig share the one
    scheduler object in tuner.pkl (one pickle), so restoring the callback restores the scheduler."""

    def __init__(self, scheduler: TrialScheduler):
        self.scheduler = scheduler

    def get_state(self) -> dict:
        with tempfile.TemporaryDirectory() as d:
            self.scheduler.save(f"{d}/scheduler.pkl")
            return {"scheduler": Path(d, "scheduler.pkl").read_bytes()}

    def set_state(self, state: dict) -> None:
        with tempfile.TemporaryDirectory() as d:
            Path(d, "scheduler.pkl").write_bytes(state["scheduler"])
            self.scheduler.restore(f"{d}/scheduler.pkl")


class WandbWithStatus(WandbLoggerCallback):
    """W&B's Ray callback, with each run's STATUS (running, finished, early_stopped, diverged,
    errored) and its reason in the run's config, where W&B keeps strings (its log takes numbers)."""
    AUTO_CONFIG_KEYS = [*WandbLoggerCallback.AUTO_CONFIG_KEYS, STATUS, WHY, ERROR_MESSAGE]


def _restore_point(meta: dict) -> int | None:
    """The index of the checkpoint a saved trial would be restored from: its checkpoint manager's latest (the
    trial's last result may already name the next one, registered a moment later), or None."""
    manager = meta.get("checkpoint_manager") or {}
    if manager.get("_type") != "CLOUDPICKLE_FALLBACK":
        return None
    latest = ray.cloudpickle.loads(bytes.fromhex(manager["value"])).latest_checkpoint_result
    m = _CHECKPOINT.match(Path(latest.checkpoint.path).name) if latest is not None else None
    return int(m.group(1)) if m else None


class CheckpointPruner(Callback):
    """Deletes a trial's checkpoints older than the one the experiment state on storage points at (see the
    module docstring); stateless, so nothing of it goes into a snapshot."""

    def __init__(self):
        self._trials: list = []
        self._pruned: dict = {}  # trial_id -> the checkpoint index pruned up to

    def on_step_begin(self, iteration, trials, **info):
        self._trials = trials

    def get_state(self):  # called at every experiment snapshot
        self.prune()
        return None

    def on_experiment_end(self, trials, **info):
        self._trials = trials
        self.prune()

    def prune(self) -> None:
        if not self._trials:
            return
        storage = self._trials[0].storage
        fs, exp = storage.storage_filesystem, storage.experiment_fs_path
        try:
            states = sorted(f.path for f in fs.get_file_info(pafs.FileSelector(exp))
                            if Path(f.path).name.startswith("experiment_state-") and f.path.endswith(".json"))
            if not states:
                return
            with fs.open_input_stream(states[-1]) as f:
                saved = json.loads(f.read().decode())
            refs = {}
            for trial_json, meta in saved["trial_data"]:
                ref = _restore_point(json.loads(meta))
                if ref is not None:
                    refs[json.loads(trial_json)["trial_id"]] = ref
        except Exception:  # being written right now, damaged, or another Ray's format: wait for the next snapshot
            return
        for trial in self._trials:
            ref = refs.get(trial.trial_id)
            if ref is None or self._pruned.get(trial.trial_id, -1) >= ref:
                continue
            try:
                for f in fs.get_file_info(pafs.FileSelector(trial.storage.trial_fs_path)):
                    m = _CHECKPOINT.match(Path(f.path).name)
                    if m and int(m.group(1)) < ref and f.type == pafs.FileType.Directory:
                        fs.delete_dir(f.path)
                self._pruned[trial.trial_id] = ref
            except OSError:  # a listing or delete that failed is tried again at the next snapshot
                continue
