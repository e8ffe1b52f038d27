"""Read a results tree (written by `python -m study.run`) into pandas frames; reads files only.

RESULTS is one experiment (STORAGE/EXPERIMENT, holding study.json and one folder per Ray trial)
or a storage root holding several, wherever study.run's --storage put it: a local folder, or a URI
that pyarrow.fs opens (s3://, gs://, hdfs://, file://; S3 honours the AWS_* environment, e.g.
AWS_ENDPOINT_URL for another S3 server). Remote trees are read in place, one listing per
experiment and then only study.json, params.json and result.json per trial; a checkpoint is
copied to this machine only when the report loads it (analysis.results.tree.local_checkpoint). Per trial folder:
params.json (the full config), result.json (one JSON line per epoch: our metric names plus Ray's
training_iteration, trial_id, done...) and checkpoint_NNNNNN/checkpoint.pt (study/engine/checkpoint.py: the kept epoch's
weights, config...).
"""
from __future__ import annotations

import json
import posixpath
import re
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from pyarrow import fs as pafs

from analysis.results.tree import Tree
from study.engine.checkpoint import FILE as CHECKPOINT_FILE
from study.errors import UserError
from study.names import (BEST_EPOCH, BEST_METRIC, DAMAGED, DIVERGED, EARLY_STOPPED, EPOCH, EPOCH_SECONDS, ERROR_MESSAGE, ERRORED, STOPPED_BY_ASHA, STUDY_FILE, TRAIN_ACCURACY, TRAIN_LOSS, VAL_ACCURACY, VAL_KEYS, VAL_LOSS,
                         diverged_why, trial_budget, trial_status)
from study.tune.ranking import hashable

RAY_TRIAL_ID = "trial_id"  # Ray's key in result.json
TRAIN_SECONDS = "train_seconds"  # a trial's epoch_seconds summed: its wall seconds on its machine and threads
# plain validation, then the stress validation (what selection scores)
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
    missing: list = field(default_factory=list)  # trial folders study.json counts that are not there

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


def _parse_lines(text: str) -> tuple[list[dict], str | None]:
    """result.json's records, and what is damaged in it (a line cut short by a killed run, a line that is not
    a record), or None. Damage is reported, never read as a shorter run."""
    out, bad = [], []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            bad.append(i)
            continue
        if isinstance(rec, dict):
            out.append(rec)
        else:
            bad.append(i)
    return out, (f"result.json line(s) {', '.join(map(str, bad[:3]))} cut short or not a record" if bad else None)


def _json_object(tree: Tree, path: str) -> tuple[dict, str | None]:
    try:
        v = json.loads(tree.read(path))
    except (ValueError, UnicodeDecodeError):
        return {}, f"{posixpath.basename(path)} is not JSON"
    return (v, None) if isinstance(v, dict) else ({}, f"{posixpath.basename(path)} is not a JSON object")


def latest_checkpoint(files: set[str]) -> str | None:
    """Of a trial folder's files (paths relative to it), its newest checkpoint_NNNNNN/ holding
    CHECKPOINT_FILE (study/engine/checkpoint.py: the kept epoch's weights), or an older format's model.pt
    (study.engine.checkpoint.load reads both), as a relative folder name."""
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
    config, bad_config = _json_object(tree, f"{d}/params.json") if "params.json" in files else ({}, "no params.json")
    records, bad_records = (_parse_lines(tree.read(f"{d}/result.json").decode(errors="replace")) if "result.json" in files
                            else ([], "no result.json"))
    damage = bad_config or bad_records
    m = _TRIAL_ID.search(posixpath.basename(d))
    trial_id = next((r[RAY_TRIAL_ID] for r in records if RAY_TRIAL_ID in r), m.group(1) if m else posixpath.basename(d))
    epochs = pd.DataFrame(records)
    if len(epochs) and EPOCH in epochs:
        epochs = epochs.drop_duplicates(EPOCH, keep="last").sort_values(EPOCH)  # a restarted trial repeats epochs
        keep = [c for c in (EPOCH, *CURVE_METRICS, *VAL_KEYS, BEST_METRIC, BEST_EPOCH, EPOCH_SECONDS) if c in epochs]
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
    status = DAMAGED if damage else trial_status(last, budget, ray_status != "TERMINATED" if ray_status else error,
                                                 bool(meta.get("asha")))
    message = (error_line(tree, d) if error and status == ERRORED else last.get(ERROR_MESSAGE) if status == ERRORED
               and last.get(ERROR_MESSAGE) else f"did not finish (Ray: {ray_status})" if ray_status not in (None, "TERMINATED")
               else diverged_why(last) if status == DIVERGED else f"damaged: {damage}" if damage else "")
    row = {"experiment": exp, "trial_id": trial_id, "label": lab, "config_label": config_label,
           **{k: fmt(config.get(k)) for k in searched},
           "epochs_run": run, "epoch_budget": budget, "early_stopped": early,
           TRAIN_SECONDS: float(epochs[EPOCH_SECONDS].sum()) if EPOCH_SECONDS in epochs else float("nan"),
           "stopped_by_asha": status == STOPPED_BY_ASHA if meta.get("asha") else None,
           "status": status, ERROR_MESSAGE: message or "",
           # an errored or diverged trial has no score: it is never selected
           BEST_EPOCH: last.get(BEST_EPOCH),
           BEST_METRIC: float("nan") if status in (ERRORED, DIVERGED, DAMAGED) else last.get(BEST_METRIC, float("nan"))}
    row[SELECTION_SCORE] = row[BEST_METRIC]
    best = epochs[epochs[EPOCH] == row[BEST_EPOCH]] if len(epochs) else epochs
    for mname in VAL_KEYS:
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
    meta = study_meta(tree, path)
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
    summary = meta.get("summary") or {}
    expected, counted = summary.get("trial_names"), summary.get("trials")
    if isinstance(expected, list):  # study.json names its trials (since 2026-12-01)
        missing = sorted(set(map(str, expected)) - {posixpath.basename(d) for d in dirs})
    elif isinstance(counted, int) and counted > len(dirs):  # older ones count them
        missing = [f"{counted - len(dirs)} unnamed trial folder(s)"]
    else:
        missing = []
    return Experiment(name, where, meta, trials, epochs, missing)


def study_meta(tree: Tree, path: str) -> dict:
    """An experiment's study.json, checked for the shape the report reads; a UserError naming the file."""
    where = f"{tree.name(path)}/{STUDY_FILE}"
    try:
        meta = json.loads(tree.read(f"{path}/{STUDY_FILE}"))
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{where}: not valid JSON ({str(e)[:80]}); re-run the experiment with python -m study.run") from None
    shape = {"searched": list, "asha": dict, "summary": dict, "base_config": dict, "experiment": str, "max_epochs": int}
    bad = [k for k, t in shape.items() if isinstance(meta, dict) and meta.get(k) is not None
           and not isinstance(meta[k], t)]
    if not isinstance(meta, dict) or bad:
        raise UserError(f"{where}: not a study.json written by python -m study.run "
                        f"({'not a JSON object' if not isinstance(meta, dict) else 'bad field(s) ' + ', '.join(bad)}); "
                        f"restore it or re-run the experiment")
    return meta


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
            top = json.loads(tree.read(f"{tree.base}/{STUDY_FILE}"))
            is_experiment = isinstance(top, dict) and "experiment" in top
        except ValueError as e:
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


def load_results(results_dir: str | Path) -> Results:
    """Every experiment under `results_dir` (a folder or a URI); UserError when it is not a results tree."""
    tree = Tree.of(results_dir)
    found, unfinished = _find(tree)
    return Results(str(results_dir), [_load(tree, p) for p in found], [tree.name(d) for d in unfinished])


def csv_frame(trials: pd.DataFrame) -> pd.DataFrame:
    """The trials.csv view: no internal columns. `selection_score` is the value the study selected on;
    `checkpoint` is the folder of the trial's kept model (`python -m study.predict --model CHECKPOINT`),
    a URI for a remote tree (analysis.results.tree.local_checkpoint copies it here)."""
    return trials.drop(columns=["config", "label", "config_label"], errors="ignore")
