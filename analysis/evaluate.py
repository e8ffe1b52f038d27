"""The test evaluation, once, after selection: the ONLY module that reads the test split.

`run_test` gets selections that are already fixed (configuration from the mean selection score
over seeds, thresholds from validation: best F1, and the headline Youden's J on the stress
validation; analysis.threshold), reads the test split with study.data.load_test once per data
configuration (the official test/ when the data set has one, else the patient-level hold-out
carved from train), retrains each selected configuration from scratch over N seeds
(study.train.fit on study.data.prepare: train and validation only, keeping the best validation
epoch as the study does) and evaluates every seed's model on the test images. If there is no
test split at all (load_test raises UserError), the result carries that message instead.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from analysis.metrics import BINARY, binary_metrics, bootstrap_ci, multiclass_metrics
from analysis.threshold import prepared
from study import data as sdata  # module attribute calls: tests can spy on load_test/prepare
from study.config import TrainConfig, UserError
from study.data import CLASSES
from study.train import evaluate, fit, pick_device


@dataclass(frozen=True)
class Selection:
    """A configuration (and threshold) fixed on validation data before the test split is read."""
    task: str                 # "binary" | "3-class"
    experiment: str
    trial_id: str
    cfg: TrainConfig
    thresholds: dict = field(default_factory=dict)  # binary: rule -> threshold, chosen on validation; {} for 3-class
    root: str | None = None   # data set folder (None: the bundled sample)

    @property
    def headline(self) -> float | None:
        """The threshold the report leads with (analysis.threshold.HEADLINE_RULE), None for 3-class."""
        from analysis.threshold import HEADLINE_RULE
        return self.thresholds.get(HEADLINE_RULE)

    def at(self) -> list[float]:
        """The thresholds test figures are given at: 0.5 and every chosen one, each once, in that order."""
        return list(dict.fromkeys([0.5, *self.thresholds.values()])) if self.cfg.num_classes == 2 else []


@dataclass
class TestResult:
    selection: Selection
    description: str = ""     # load_test's description of the split
    error: str | None = None  # set when there is no test split
    n_images: int = 0
    class_counts: dict = field(default_factory=dict)
    seeds: list[int] = field(default_factory=list)
    retrain: pd.DataFrame | None = None     # seed, best validation accuracy, best epoch
    per_seed: pd.DataFrame | None = None    # one row per seed (and threshold, for binary)
    summary: pd.DataFrame | None = None     # one row per metric
    confusion: list | None = None           # 3-class: summed over seeds

    @property
    def official(self) -> bool:
        return self.description.startswith("official")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _retrain(sel: Selection, n_seeds: int, cache: dict, x_test: torch.Tensor, y_test: np.ndarray):
    """Fit sel.cfg with seeds 0..n-1 on train/validation; -> (retrain frame, test probabilities [seeds, ...])."""
    device = pick_device()
    data = prepared(sel.root, sel.cfg, cache)
    rows, probs = [], []
    for seed in range(n_seeds):
        cfg = dataclasses.replace(sel.cfg, seed=seed)
        _log(f"  retraining {sel.experiment}/{sel.trial_id} with seed {seed} ({cfg.epochs} epochs) ...")
        state = fit(cfg, data, device=device)
        state.model.load_state_dict(state.best_state)  # the best validation epoch, as the study keeps
        _, p = evaluate(state.model, None, x_test.to(device), torch.from_numpy(y_test).to(device), cfg)
        rows.append({"seed": seed, "best validation accuracy": state.best_metric, "best epoch": state.best_epoch,
                     "epochs run": state.epoch})
        probs.append(p)
    return pd.DataFrame(rows), np.stack(probs)


def _fmt(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f} (one seed)"
    return f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}"


def _binary(res: TestResult, y: np.ndarray, P: np.ndarray) -> None:
    thresholds = res.selection.at()
    rows = [{"seed": s, "threshold": t, **binary_metrics(y, P[i], t)} for i, s in enumerate(res.seeds) for t in thresholds]
    res.per_seed = pd.DataFrame(rows)
    summary = []
    for m in BINARY:
        row = {"metric": m}
        for t in thresholds:
            vals = res.per_seed.loc[res.per_seed["threshold"] == t, m].tolist()
            lo, hi = bootstrap_ci(m, y, P, t)
            row[f"at {t:.2f}: mean ± std"] = _fmt(vals)
            row[f"at {t:.2f}: 95% CI"] = f"[{lo:.4f}, {hi:.4f}]"
        summary.append(row)
    res.summary = pd.DataFrame(summary)


def _multiclass(res: TestResult, y: np.ndarray, P: np.ndarray) -> None:
    per = [multiclass_metrics(y, P[i]) for i in range(len(res.seeds))]
    rows = []
    for s, m in zip(res.seeds, per):
        rows.append({"seed": s, "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
                     **{f"precision {c}": m["precision"][c] for c in CLASSES},
                     **{f"recall {c}": m["recall"][c] for c in CLASSES}})
    res.per_seed = pd.DataFrame(rows)
    res.summary = pd.DataFrame([{"metric": c, "mean ± std": _fmt(res.per_seed[c].tolist())}
                                for c in res.per_seed.columns if c != "seed"])
    res.confusion = np.sum([m["confusion"] for m in per], axis=0).tolist()


def run_test(selections: list[Selection], n_seeds: int, cache: dict) -> list[TestResult]:
    """Read the test split (once per data configuration), retrain every selection over n_seeds, evaluate."""
    selections = list(selections)  # fixed from here on
    tests: dict = {}
    results = []
    for sel in selections:
        key = (str(sel.root), sel.cfg.data_key())
        if key not in tests:
            try:
                tests[key] = sdata.load_test(sel.root, sel.cfg)
            except UserError as e:
                tests[key] = e
        res = TestResult(sel)
        results.append(res)
        if isinstance(tests[key], UserError):
            res.error = str(tests[key])
            continue
        split, res.description = tests[key]
        y = sdata.targets(split.labels3, sel.cfg.num_classes)
        res.n_images = len(y)
        res.class_counts = {c: int((split.labels3 == i).sum()) for i, c in enumerate(CLASSES)}
        res.seeds = list(range(n_seeds))
        x = torch.from_numpy(np.ascontiguousarray(split.images))
        res.retrain, P = _retrain(sel, n_seeds, cache, x, y)
        (_binary if sel.cfg.num_classes == 2 else _multiclass)(res, y, P)
    return results
