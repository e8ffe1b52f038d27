"""Names defined once: metric keys, a run's and a trial's statuses, the files a run and a study write, and
the one rule for a trial's outcome. The trainable reports these keys, the tuner optimises METRIC, the
analysis reads them: a typo is an ImportError, not a silent empty plot.
"""
from __future__ import annotations

from typing import Any, Mapping

TRAIN_LOSS = "train_loss"
TRAIN_ACCURACY = "train_accuracy"
VAL_LOSS = "val_loss"
VAL_ACCURACY = "val_accuracy"
VAL_AUC = "val_auc"
VAL_PRECISION = "val_precision"
VAL_RECALL = "val_recall"
VAL_F1 = "val_f1"
VAL_BACC = "val_bacc"                    # balanced accuracy (mean recall over classes) on validation
# The stress validation: every validation image under each acquisition-style change of
# study.data.stress.STRESS (other processing, exposure, framing, detector), fixed and seeded.
VAL_SHIFT_ACCURACY = "val_shift_accuracy"
VAL_SHIFT_AUC = "val_shift_auc"
VAL_SHIFT_BACC = "val_shift_bacc"        # balanced accuracy on the stress validation: the selection score
EPOCH = "epoch"
EPOCH_SECONDS = "epoch_seconds"
BEST_EPOCH = "best_epoch"        # epoch whose weights a run keeps
EARLY_STOPPED = "early_stopped"  # patience ran out at this epoch
# ---- files ----
STUDY_FILE = "study.json"        # per experiment: written by study.run when it ends (read by analysis); STORAGE/: the study id
SETTINGS_FILE = "settings.json"  # per experiment: the settings it was started with, written first (a --resume must match)
LOCK_FILE = ".study.lock"        # STORAGE/: the study.run that holds this storage (pid, host, start, heartbeat)
CONFIRM_PREFIX = "confirm-"      # the confirmation stage's experiments (study/tune/confirm.py); never selected from
METRICS_FILE = "metrics.json"    # beside a study.train checkpoint: every epoch's record
SKIPPED_FILE = "skipped_files.json"  # beside a run's or an experiment's results: every file left out, with its reason
# ---- statuses ----
# A run's status: every per-epoch record carries it (Ray's trial results and W&B with it).
STATUS = "status"
RUNNING, FINISHED, DIVERGED, ERRORED = "running", "finished", "diverged", "errored"
# EARLY_STOPPED ("early_stopped") is a status too. DIVERGED: a non-finite loss or weight ended the
# run (never checkpointed as a best model, never selected, not retried); ERRORED: the trial could
# not run (its ERROR_MESSAGE says why). A study adds STOPPED_BY_ASHA for trials its scheduler stopped.
STOPPED_BY_ASHA = "stopped_by_asha"
DAMAGED = "damaged"  # the analysis's word for a trial whose result files are cut short or unreadable: never selected
ERROR_MESSAGE = "error_message"
DONE_STATUSES = (FINISHED, STOPPED_BY_ASHA, EARLY_STOPPED, DIVERGED)  # a study exits 0 when every trial ends in one


def trial_budget(config: Mapping[str, Any], default: int) -> int:
    """A trial's epoch budget: its own config's `epochs` (a space may search it), else `default`."""
    return int(config.get("epochs") or default)


def trial_status(last: Mapping[str, Any], budget: int, crashed: bool, asha: bool) -> str:
    """One trial's outcome in a study, from its last record: ERRORED (it crashed, or reported ERRORED),
    DIVERGED, EARLY_STOPPED, FINISHED (ran its epoch budget) or STOPPED_BY_ASHA (fewer epochs under
    ASHA); a trial that stopped short with no scheduler to stop it did not finish: ERRORED."""
    if crashed or last.get(STATUS) == ERRORED:
        return ERRORED
    if last.get(STATUS) == DIVERGED:
        return DIVERGED
    if last.get(EARLY_STOPPED):
        return EARLY_STOPPED
    if int(last.get(EPOCH) or 0) >= budget:
        return FINISHED
    return STOPPED_BY_ASHA if asha else ERRORED
# What selects: the epoch a run keeps, early-stopping patience, ASHA's ranking and the report's
# choice of configuration all use METRIC. Why balanced accuracy on the stress validation and not
# plain validation accuracy: study/evidence.py WHY_STRESS.
METRIC = VAL_SHIFT_BACC
BEST_METRIC = "best_" + METRIC  # best METRIC so far in a run (the weights a run keeps)
MODE = "max"



# ---- the record keys of a run's epochs ----
WHY = "diverged_because"  # a diverged record's reason, e.g. "train loss nan"
VAL_KEYS = (VAL_LOSS, VAL_ACCURACY, VAL_AUC, VAL_PRECISION, VAL_RECALL, VAL_F1, VAL_BACC, VAL_SHIFT_ACCURACY,
            VAL_SHIFT_AUC, VAL_SHIFT_BACC)  # every validation figure an epoch records (plain, then stress)


def diverged_why(last: Mapping[str, Any]) -> str:
    """How a diverged trial is described everywhere (the study's summary, the report)."""
    return f"diverged at epoch {last.get(EPOCH)}: {last.get(WHY)}"


# A task, by its number of classes: its name in folder and file names (STORAGE/confirm-3class,
# ensemble-3class.pt) and its title in prose and tables.
TASKS = {2: "binary", 3: "3class"}
TASK_TITLES = {2: "binary", 3: "3-class"}
TASK_OF_TITLE = {TASK_TITLES[k]: v for k, v in TASKS.items()}
