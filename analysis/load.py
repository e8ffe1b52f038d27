"""Read a results tree (written by `python -m study.run`) into pandas frames; reads files only.

    python -m analysis.load RESULTS            # RESULTS: a folder, or s3://BUCKET/PREFIX[/EXPERIMENT]

prints one line per experiment found: its trials, epochs run and best selection score.

RESULTS is one experiment (STORAGE/EXPERIMENT, holding study.json and one folder per Ray trial)
or a storage root holding several, wherever study.run's --storage put it: a local folder, or a URI
that pyarrow.fs opens (s3://, gs://, hdfs://, file://; S3 honours the AWS_* environment, e.g.
AWS_ENDPOINT_URL for another S3 server). Remote trees are read in place, one listing per
experiment and then only study.json, params.json and result.json per trial; a checkpoint is
copied to this machine only when the report loads it (analysis.tree.local_checkpoint). Per trial folder:
params.json (the full config), result.json (one JSON line per epoch: our metric names plus Ray's
training_iteration, trial_id, done...) and checkpoint_NNNNNN/checkpoint.pt (study/checkpoint.py: the kept epoch's
weights, config...).
"""
from __future__ import annotations

import json
import posixpath
import re
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from pyarrow import fs as pafs

from analysis.tree import Tree
from study.select import hashable
from study.engine.checkpoint import FILE as CHECKPOINT_FILE  # what makes a checkpoint_NNNNNN/ folder a usable checkpoint
from study.config import (BEST_EPOCH, BEST_METRIC, DIVERGED, EARLY_STOPPED, EPOCH, ERROR_MESSAGE, ERRORED, METRIC,
                          STOPPED_BY_ASHA, STUDY_FILE, TRAIN_ACCURACY, TRAIN_LOSS, VAL_ACCURACY, VAL_AUC, VAL_BACC,
                          VAL_F1, VAL_LOSS, VAL_PRECISION, VAL_RECALL, VAL_SHIFT_ACCURACY, VAL_SHIFT_AUC, VAL_SHIFT_BACC,
                          UserError, trial_budget, trial_status)
from study.engine.divergence import WHY

RAY_TRIAL_ID = "trial_id"  # Ray's key in result.json
# plain validation, then the stress validation (what selection scores)
VAL_METRICS = (VAL_ACCURACY, VAL_LOSS, VAL_AUC, VAL_PRECISION, VAL_RECALL, VAL_F1, VAL_BACC,
               VAL_SHIFT_ACCURACY, VAL_SHIFT_AUC, VAL_SHIFT_BACC)
SELECTION_SCORE = "selection_score"  # trials.csv: the exact value the study selected a trial on (its BEST_METRIC)
CURVE_METRICS = (TRAIN_LOSS, VAL_LOSS, TRAIN_ACCURACY, VAL_ACCURACY)
AT_BEST, LAST = "_at_best", "_last"  # trials columns: f"{VAL_F1}{AT_BEST}" = val F1 of the best epoch
_TRIAL_ID = re.compile(r"_([0-9a-f]{5}_\d{5})_")
_READERS = 16  # parallel reads of a remote tree (one request each)


def fmt(v) -> str:
    """A config value as the report shows it: tuples as (a, b), () for none, floats short."""
    if isinstance(v, (list, tuple)):
        return "(" + ", ".join(fmt(x) for x in v) + ")"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


@dataclass
class Experiment:
    name: str
    path: str                 # local folder or URI (s3://BUCKET/PREFIX/EXPERIMENT)
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
    root: str                 # as given: a local folder or a URI
    experiments: list[Experiment]
    unfinished: list[str] = field(default_factory=list)  # experiment folders (or URIs) without study.json

    def trials(self) -> pd.DataFrame:
        return pd.concat([e.trials for e in self.experiments], ignore_index=True)

    def get(self, name: str) -> Experiment | None:
        return next((e for e in self.experiments if e.name == name), None)

    @property
    def study_id(self) -> str | None:
        """The study's id (study.run's STORAGE/study.json, copied into each experiment's): its W&B group."""
        return next((e.meta["study_id"] for e in self.experiments if e.meta.get("study_id")), None)


def _parse_lines(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a killed run
            continue
    return out


def latest_checkpoint(files: set[str]) -> str | None:
    """Of a trial folder's files (paths relative to it), its newest checkpoint_NNNNNN/ holding
    CHECKPOINT_FILE (study/checkpoint.py: the kept epoch's weights), or an older format's model.pt
    (study.checkpoint.load reads both), as a relative folder name."""
    ckpts = sorted(f.split("/")[0] for f in files if f.startswith("checkpoint_") and f.count("/") == 1
                   and f.rsplit("/", 1)[1] in (CHECKPOINT_FILE, "model.pt"))
    return ckpts[-1] if ckpts else None


def label(config: dict, searched: list[str]) -> str:
    return ", ".join(f"{k}={fmt(config.get(k))}" for k in searched) or "(no searched values)"


def ray_statuses(tree: Tree, path: str, names: list[str]) -> dict[str, str]:
    """trial_id -> Ray's final status (TERMINATED, ERROR...) from the experiment's newest state file
    (`names`: the experiment folder's file names); {} when there is none. A crashed trial that a
    retry recovered is TERMINATED, whatever error.txt says."""
    states = sorted(n for n in names if n.startswith("experiment_state-") and n.endswith(".json"))
    try:
        trials = json.loads(tree.read(f"{path}/{states[-1]}"))["trial_data"] if states else []
        return {t["trial_id"]: t["status"] for t in (json.loads(s) for s, _ in trials)}
    except (ValueError, KeyError, TypeError, OSError):
        return {}


def error_line(tree: Tree, trial_dir: str) -> str:
    """The last line of the trial's error.txt (Ray's traceback): the exception and its message."""
    text = tree.read(f"{trial_dir}/error.txt").decode(errors="replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "error.txt is empty"


def _trial(exp: str, tree: Tree, d: str, files: set[str], meta: dict,
           statuses: dict | None = None) -> tuple[dict, pd.DataFrame]:
    """One trial folder `d` (a path on tree.fs) whose files (relative to it) are `files`."""
    searched = list(meta.get("searched") or [])
    config = json.loads(tree.read(f"{d}/params.json")) if "params.json" in files else {}
    records = _parse_lines(tree.read(f"{d}/result.json").decode()) if "result.json" in files else []
    m = _TRIAL_ID.search(posixpath.basename(d))
    trial_id = next((r[RAY_TRIAL_ID] for r in records if RAY_TRIAL_ID in r), m.group(1) if m else posixpath.basename(d))
    epochs = pd.DataFrame(records)
    if len(epochs) and EPOCH in epochs:
        epochs = epochs.drop_duplicates(EPOCH, keep="last").sort_values(EPOCH)  # a restarted trial repeats epochs
        keep = [c for c in (EPOCH, *CURVE_METRICS, *VAL_METRICS, BEST_METRIC, BEST_EPOCH) if c in epochs]
        epochs = epochs[list(dict.fromkeys(keep))].reset_index(drop=True)
    else:
        epochs = pd.DataFrame(columns=[EPOCH, *CURVE_METRICS])
    lab = label(config, searched)
    config_label = label(config, [k for k in searched if k != "seed"])  # the configuration its seeds repeat
    epochs.insert(0, "label", lab)
    epochs.insert(0, "trial_id", trial_id)
    epochs.insert(0, "experiment", exp)

    budget = trial_budget(config, int(meta.get("max_epochs") or 0))
    last = records[-1] if records else {}
    run = int(epochs[EPOCH].max()) if len(epochs) else 0
    early = bool(last.get(EARLY_STOPPED, False))
    error = "error.txt" in files
    ray_status = (statuses or {}).get(trial_id)
    status = trial_status(last, budget, ray_status != "TERMINATED" if ray_status else error, bool(meta.get("asha")))
    message = (error_line(tree, d) if error and status == ERRORED else last.get(ERROR_MESSAGE) if status == ERRORED
               and last.get(ERROR_MESSAGE) else f"did not finish (Ray: {ray_status})" if ray_status not in (None, "TERMINATED")
               else f"diverged at epoch {last.get(EPOCH)}: {last.get(WHY)}" if status == DIVERGED else "")
    row = {"experiment": exp, "trial_id": trial_id, "label": lab, "config_label": config_label,
           **{k: fmt(config.get(k)) for k in searched},
           "epochs_run": run, "epoch_budget": budget, "early_stopped": early,
           "stopped_by_asha": status == STOPPED_BY_ASHA if meta.get("asha") else None,
           "status": status, ERROR_MESSAGE: message or "",
           # an errored or diverged trial has no score: it is never selected
           BEST_EPOCH: last.get(BEST_EPOCH),
           BEST_METRIC: float("nan") if status in (ERRORED, DIVERGED) else last.get(BEST_METRIC, float("nan"))}
    row[SELECTION_SCORE] = row[BEST_METRIC]
    best = epochs[epochs[EPOCH] == row[BEST_EPOCH]] if len(epochs) else epochs
    for mname in VAL_METRICS:
        row[mname + AT_BEST] = float(best[mname].iloc[0]) if len(best) and mname in best else float("nan")
        row[mname + LAST] = float(epochs[mname].iloc[-1]) if len(epochs) and mname in epochs else float("nan")
    ckpt = latest_checkpoint(files)
    row.update({"num_classes": int(config.get("num_classes", 2)), "error": error, "path": tree.name(d),
                "checkpoint": tree.name(f"{d}/{ckpt}") if ckpt else "",
                "config": {k: hashable(v) for k, v in config.items()}})
    return row, epochs


def _load(tree: Tree, path: str) -> Experiment:
    """The experiment at `path` on tree.fs: one recursive listing, then its study.json and each
    trial's params.json and result.json (read in parallel: on S3 each is one request)."""
    where = tree.name(path)
    files: dict[str, set[str]] = defaultdict(set)
    for f in tree.listing(path, recursive=True):
        rel = f.path[len(path):].strip("/")
        if f.type == pafs.FileType.File and "/" in rel:
            trial, rest = rel.split("/", 1)
            files[trial].add(rest)
    try:
        meta = json.loads(tree.read(f"{path}/{STUDY_FILE}"))
    except json.JSONDecodeError as e:
        raise UserError(f"{where}/{STUDY_FILE}: not valid JSON ({e}); re-run the experiment with python -m study.run") from None
    name = meta.get("experiment") or posixpath.basename(path)
    dirs = sorted(d for d, fs in files.items() if "params.json" in fs or "result.json" in fs)
    if not dirs:
        raise UserError(f"{where}: has {STUDY_FILE} but no trial folders (params.json/result.json); "
                        f"re-run it with python -m study.run --experiment {name} --overwrite")
    top = [posixpath.basename(f.path) for f in tree.listing(path)]
    statuses = ray_statuses(tree, path, top)
    with ThreadPoolExecutor(min(_READERS, len(dirs))) as pool:
        rows, frames = zip(*pool.map(lambda d: _trial(name, tree, f"{path}/{d}", files[d], meta, statuses), dirs))
    trials = pd.DataFrame(list(rows)).sort_values("trial_id", ignore_index=True)
    epochs = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) \
        else pd.DataFrame(columns=["experiment", "trial_id", "label", EPOCH, *CURVE_METRICS])
    return Experiment(name, where, meta, trials, epochs)


def load_experiment(path: str | Path) -> Experiment:
    """One experiment folder (STORAGE/EXPERIMENT), local or a URI."""
    tree = Tree.of(path)
    return _load(tree, tree.base)


def _find(tree: Tree) -> tuple[list[str], list[str]]:
    """(experiment paths, unfinished experiment paths) on tree.fs; UserError when it is not a results tree."""
    given = tree.given
    info, study = tree.info([tree.base, f"{tree.base}/{STUDY_FILE}"])
    if info.type == pafs.FileType.NotFound:
        if tree.local:
            raise UserError(f"{given}: no such folder; pass the folder written by python -m study.run "
                            f"(STORAGE/EXPERIMENT, e.g. results/quick, or STORAGE itself)")
        raise UserError(f"{given}: nothing there; pass the --storage URI python -m study.run wrote to "
                        f"(STORAGE, e.g. s3://BUCKET/study, or STORAGE/EXPERIMENT)")
    if info.type != pafs.FileType.Directory:
        raise UserError(f"{given}: is a file; pass the folder written by python -m study.run (STORAGE/EXPERIMENT or STORAGE)")
    if study.type == pafs.FileType.File:
        try:
            is_experiment = "experiment" in json.loads(tree.read(f"{tree.base}/{STUDY_FILE}"))
        except json.JSONDecodeError as e:
            raise UserError(f"{given}/{STUDY_FILE}: not valid JSON ({e}); restore it, or re-run python -m study.run") from None
        if is_experiment:  # an experiment's study.json; a storage root's names the study (study_id) only
            return [tree.base], []
    subdirs = sorted(f.path.rstrip("/") for f in tree.listing(tree.base) if f.type == pafs.FileType.Directory)
    marked = tree.info([f"{d}/{STUDY_FILE}" for d in subdirs])
    found = [d for d, m in zip(subdirs, marked) if m.type == pafs.FileType.File]
    if not found:
        raise UserError(f"{given}: not a results tree (no {STUDY_FILE} in it or its subfolders); pass "
                        f"STORAGE/EXPERIMENT written by python -m study.run (e.g. results/quick) once it has finished")
    unfinished = [d for d, m in zip(subdirs, marked) if m.type != pafs.FileType.File and any(
        posixpath.basename(f.path).startswith("experiment_state-") for f in tree.listing(d))]
    return found, unfinished


def find_experiments(results_dir: str | Path) -> list[str]:
    """The finished experiments (folders or URIs holding study.json) in a results tree: the tree itself
    when it is one experiment, else its subfolders that are."""
    tree = Tree.of(results_dir)
    return [tree.name(p) for p in _find(tree)[0]]


def load_results(results_dir: str | Path) -> Results:
    """Every experiment under `results_dir` (a folder or a URI); UserError when it is not a results tree."""
    tree = Tree.of(results_dir)
    found, unfinished = _find(tree)
    return Results(str(results_dir), [_load(tree, p) for p in found], [tree.name(d) for d in unfinished])


def csv_frame(trials: pd.DataFrame) -> pd.DataFrame:
    """The trials.csv view: no internal columns. `selection_score` is the value the study selected on;
    `checkpoint` is the folder of the trial's kept model (`python -m study.predict --model CHECKPOINT`),
    a URI for a remote tree (analysis.tree.local_checkpoint copies it here)."""
    return trials.drop(columns=["config", "label", "config_label"], errors="ignore")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m analysis.load RESULTS (a folder or a URI such as s3://BUCKET/PREFIX)", file=sys.stderr)
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
        print(f"{posixpath.basename(d)}: no {STUDY_FILE} (unfinished or crashed), skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
