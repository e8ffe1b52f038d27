"""Read a results tree (written by `python -m study.run`) into pandas frames; reads files only.

    python -m analysis.load RESULTS_DIR

prints one line per experiment found: its trials, epochs run and best validation accuracy.

RESULTS_DIR is one experiment folder (STORAGE/EXPERIMENT, holding study.json and one folder per
Ray trial) or a storage root holding several. Per trial folder: params.json (the full config),
result.json (one JSON line per epoch: our metric names plus Ray's training_iteration, trial_id,
done...) and checkpoint_NNNNNN/ (model.pt: the best-epoch weights, config.json...).
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from study.config import (BEST_EPOCH, BEST_METRIC, DIVERGED, EARLY_STOPPED, EPOCH, ERROR_MESSAGE, ERRORED, METRIC,
                          STOPPED_BY_ASHA, STUDY_FILE, TRAIN_ACCURACY, TRAIN_LOSS, VAL_ACCURACY, VAL_AUC, VAL_F1, VAL_LOSS,
                          VAL_PRECISION, VAL_RECALL, UserError, trial_status)
from study.divergence import WHY

RAY_ITERATION = "training_iteration"  # Ray's keys in result.json
RAY_TRIAL_ID = "trial_id"
VAL_METRICS = (VAL_ACCURACY, VAL_LOSS, VAL_AUC, VAL_PRECISION, VAL_RECALL, VAL_F1)
CURVE_METRICS = (TRAIN_LOSS, VAL_LOSS, TRAIN_ACCURACY, VAL_ACCURACY)
AT_BEST, LAST = "_at_best", "_last"  # trials columns: f"{VAL_F1}{AT_BEST}" = val F1 of the best epoch
_TRIAL_ID = re.compile(r"_([0-9a-f]{5}_\d{5})_")


def fmt(v) -> str:
    """A config value as the report shows it: tuples as (a, b), () for none, floats short."""
    if isinstance(v, (list, tuple)):
        return "(" + ", ".join(fmt(x) for x in v) + ")"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def hashable(v):
    return tuple(hashable(x) for x in v) if isinstance(v, list) else v


@dataclass
class Experiment:
    name: str
    path: Path
    meta: dict                # study.json
    trials: pd.DataFrame      # one row per trial folder (see _trial_row)
    epochs: pd.DataFrame      # one row per trial and epoch: experiment, trial_id, label, EPOCH, metrics

    @property
    def searched(self) -> list[str]:
        return list(self.meta.get("searched") or [])

    @property
    def asha(self) -> dict | None:
        return self.meta.get("asha")

    @property
    def max_epochs(self) -> int:
        return int(self.meta.get("max_epochs") or self.meta.get("base_config", {}).get("epochs", 0))

    @property
    def num_classes(self) -> int:
        return int(self.meta.get("base_config", {}).get("num_classes", 2))


@dataclass
class Results:
    root: Path
    experiments: list[Experiment]
    unfinished: list[Path] = field(default_factory=list)  # experiment folders without study.json

    def trials(self) -> pd.DataFrame:
        return pd.concat([e.trials for e in self.experiments], ignore_index=True)

    def get(self, name: str) -> Experiment | None:
        return next((e for e in self.experiments if e.name == name), None)


def _read_lines(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a killed run
            continue
    return out


def latest_checkpoint(trial_dir: Path) -> Path | None:
    """The trial's newest checkpoint_NNNNNN/ (its model.pt holds the best epoch's weights)."""
    ckpts = sorted(p for p in trial_dir.glob("checkpoint_*") if (p / "model.pt").is_file())
    return ckpts[-1] if ckpts else None


def label(config: dict, searched: list[str]) -> str:
    return ", ".join(f"{k}={fmt(config.get(k))}" for k in searched) or "(no searched values)"


def ray_statuses(exp_dir: Path) -> dict[str, str]:
    """trial_id -> Ray's final status (TERMINATED, ERROR...) from the newest experiment state file;
    {} when there is none. A crashed trial that a retry recovered is TERMINATED, whatever error.txt says."""
    states = sorted(exp_dir.glob("experiment_state-*.json"), key=lambda p: p.stat().st_mtime)
    try:
        trials = json.loads(states[-1].read_text())["trial_data"] if states else []
        return {t["trial_id"]: t["status"] for t in (json.loads(s) for s, _ in trials)}
    except (ValueError, KeyError, TypeError, OSError):
        return {}


def error_line(trial_dir: Path) -> str:
    """The last line of the trial's error.txt (Ray's traceback): the exception and its message."""
    lines = [l.strip() for l in (trial_dir / "error.txt").read_text(errors="replace").splitlines() if l.strip()]
    return lines[-1] if lines else "error.txt is empty"


def _trial(exp: str, d: Path, meta: dict, statuses: dict | None = None) -> tuple[dict, pd.DataFrame]:
    searched = list(meta.get("searched") or [])
    config = json.loads((d / "params.json").read_text()) if (d / "params.json").is_file() else {}
    records = _read_lines(d / "result.json")
    m = _TRIAL_ID.search(d.name)
    trial_id = next((r[RAY_TRIAL_ID] for r in records if RAY_TRIAL_ID in r), m.group(1) if m else d.name)
    epochs = pd.DataFrame(records)
    if len(epochs) and EPOCH in epochs:
        epochs = epochs.drop_duplicates(EPOCH, keep="last").sort_values(EPOCH)  # a restarted trial repeats epochs
        keep = [c for c in (EPOCH, *CURVE_METRICS, *VAL_METRICS, BEST_METRIC, BEST_EPOCH) if c in epochs]
        epochs = epochs[list(dict.fromkeys(keep))].reset_index(drop=True)
    else:
        epochs = pd.DataFrame(columns=[EPOCH, *CURVE_METRICS])
    lab = label(config, searched)
    epochs.insert(0, "label", lab)
    epochs.insert(0, "trial_id", trial_id)
    epochs.insert(0, "experiment", exp)

    budget = int(config.get("epochs") or meta.get("max_epochs") or 0)
    last = records[-1] if records else {}
    run = int(epochs[EPOCH].max()) if len(epochs) else 0
    early = bool(last.get(EARLY_STOPPED, False))
    error = (d / "error.txt").is_file()
    ray_status = (statuses or {}).get(trial_id)
    status = trial_status(last, budget, ray_status != "TERMINATED" if ray_status else error, bool(meta.get("asha")))
    message = (error_line(d) if error and status == ERRORED else last.get(ERROR_MESSAGE) if status == ERRORED
               and last.get(ERROR_MESSAGE) else f"did not finish (Ray: {ray_status})" if ray_status not in (None, "TERMINATED")
               else f"diverged at epoch {last.get(EPOCH)}: {last.get(WHY)}" if status == DIVERGED else "")
    row = {"experiment": exp, "trial_id": trial_id, "label": lab,
           **{k: fmt(config.get(k)) for k in searched},
           "epochs_run": run, "epoch_budget": budget, "early_stopped": early,
           "stopped_by_asha": status == STOPPED_BY_ASHA if meta.get("asha") else None,
           "status": status, ERROR_MESSAGE: message or "",
           # an errored or diverged trial has no score: it is never selected
           BEST_EPOCH: last.get(BEST_EPOCH),
           BEST_METRIC: float("nan") if status in (ERRORED, DIVERGED) else last.get(BEST_METRIC, float("nan"))}
    best = epochs[epochs[EPOCH] == row[BEST_EPOCH]] if len(epochs) else epochs
    for mname in VAL_METRICS:
        row[mname + AT_BEST] = float(best[mname].iloc[0]) if len(best) and mname in best else float("nan")
        row[mname + LAST] = float(epochs[mname].iloc[-1]) if len(epochs) and mname in epochs else float("nan")
    ckpt = latest_checkpoint(d)
    row.update({"num_classes": int(config.get("num_classes", 2)), "error": error, "path": str(d),
                "checkpoint": str(ckpt) if ckpt else "", "config": {k: hashable(v) for k, v in config.items()}})
    return row, epochs


def load_experiment(path: Path) -> Experiment:
    try:
        meta = json.loads((path / STUDY_FILE).read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path / STUDY_FILE}: not valid JSON ({e}); re-run the experiment with python -m study.run") from None
    name = meta.get("experiment") or path.name
    dirs = sorted(d for d in path.iterdir() if d.is_dir() and ((d / "params.json").is_file() or (d / "result.json").is_file()))
    if not dirs:
        raise UserError(f"{path}: has {STUDY_FILE} but no trial folders (params.json/result.json); "
                        f"re-run it with python -m study.run --experiment {name} --overwrite")
    statuses = ray_statuses(path)
    rows, frames = zip(*(_trial(name, d, meta, statuses) for d in dirs))
    trials = pd.DataFrame(list(rows)).sort_values("trial_id", ignore_index=True)
    epochs = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) \
        else pd.DataFrame(columns=["experiment", "trial_id", "label", EPOCH, *CURVE_METRICS])
    return Experiment(name, path, meta, trials, epochs)


def find_experiments(results_dir: str | Path) -> list[Path]:
    root = Path(results_dir).expanduser()
    if "://" in str(results_dir):
        raise UserError(f"{results_dir}: remote storage; copy it first (e.g. aws s3 sync {results_dir} results) "
                        f"and pass the local folder")
    if not root.is_dir():
        raise UserError(f"{root}: no such folder; pass the folder written by python -m study.run "
                        f"(STORAGE/EXPERIMENT, e.g. results/quick, or STORAGE itself)")
    if (root / STUDY_FILE).is_file():
        return [root]
    found = sorted(d for d in root.iterdir() if d.is_dir() and (d / STUDY_FILE).is_file())
    if not found:
        raise UserError(f"{root}: not a results tree (no {STUDY_FILE} in it or its subfolders); pass "
                        f"STORAGE/EXPERIMENT written by python -m study.run (e.g. results/quick) once it has finished")
    return found


def load_results(results_dir: str | Path) -> Results:
    """Every experiment under `results_dir`; UserError when it is not a results tree."""
    found = find_experiments(results_dir)
    root = Path(results_dir).expanduser()
    unfinished = [] if found == [root] else sorted(
        d for d in root.iterdir() if d.is_dir() and not (d / STUDY_FILE).is_file() and any(d.glob("experiment_state-*.json")))
    return Results(root, [load_experiment(p) for p in found], unfinished)


def csv_frame(trials: pd.DataFrame) -> pd.DataFrame:
    """The trials.csv view: no internal columns."""
    return trials.drop(columns=["config", "checkpoint", "label"], errors="ignore")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m analysis.load RESULTS_DIR", file=sys.stderr)
        return 2
    try:
        res = load_results(args[0])
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for e in res.experiments:
        t = e.trials
        print(f"{e.name}: {len(t)} trials, {int(t['epochs_run'].sum())}/{int(t['epoch_budget'].sum())} epochs, "
              f"best {METRIC} {t[BEST_METRIC].max():.4f} ({e.path})")
    for d in res.unfinished:
        print(f"{d.name}: no {STUDY_FILE} (unfinished or crashed), skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
