"""The test evaluation, once, after selection: the ONLY module that reads the test split. Inference only.

`run_test` gets selections that are already fixed (configuration from the mean selection score
over seeds, thresholds from validation: best F1, and the headline Youden's J on the stress
validation; analysis.thresholds), each with the checkpoints of the models to score: the study's
confirmation-stage models of that configuration (STORAGE/confirm-binary, confirm-3class: seeds
that took no part in selection) when the study ran that stage, else the configuration's own
trials. It reads the test split with study.data.splits.load_test once per data configuration (the
official test/ when the data set has one, else the patient-level hold-out carved from train) and
predicts it with every model. Nothing here trains. If there is no test split at all (load_test
raises UserError), the result carries that message instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.bootstrap import bootstrap_ci
from analysis.log import log
from analysis.results.tree import local_checkpoint
from study.config import TrainConfig
from study.data import splits as sdata  # module attribute calls: tests can spy on load_test
from study.data.layout import CLASSES, targets
from study.engine import checkpoint as ckpt_io
from study.engine.device import pick_device
from study.engine.infer import predictor_from
from study.engine.metrics import BINARY, binary_metrics, multiclass_metrics
from study.errors import UserError
from study.names import BEST_METRIC


@dataclass(frozen=True)
class Selection:
    """A configuration (and threshold) fixed on validation data before the test split is read."""
    task: str                 # study.names.TASK_TITLES: "binary" | "3-class"
    experiment: str
    trial_id: str
    cfg: TrainConfig
    thresholds: dict = field(default_factory=dict)  # binary: rule -> threshold, chosen on validation; {} for 3-class
    root: str | None = None   # data set folder (None: the bundled sample)
    models: tuple = ()        # checkpoints of the models scored on the test split
    models_from: str = ""     # where they come from, for the report
    views: tuple | None = None  # test-time views (study.data.augment.TTA_VIEWS); None: each file's own

    @property
    def headline(self) -> float | None:
        """The threshold the report leads with (analysis.thresholds.HEADLINE_RULE), None for 3-class."""
        from analysis.thresholds import HEADLINE_RULE
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
    scored: pd.DataFrame | None = None      # per model: checkpoint, seed, kept epoch, its selection score
    per_seed: pd.DataFrame | None = None    # one row per seed (and threshold, for binary)
    summary: pd.DataFrame | None = None     # one row per metric
    confusion: list | None = None           # 3-class: summed over seeds

    @property
    def official(self) -> bool:
        return self.description.startswith("official")


def _predict(sel: Selection, images: np.ndarray):
    """Every model file of sel (one model or an ensemble) on the test images; -> (models frame, test
    probabilities [models, ...], each file's decisions [models, N])."""
    device = pick_device()
    rows, probs, labels = [], [], []
    for path in sel.models:
        ckpt = ckpt_io.load(local_checkpoint(path))  # a remote tree's checkpoint is copied here first
        predictor = predictor_from(ckpt, device, where=str(path)).with_views(sel.views)
        if "members" in ckpt:
            rows.append({"checkpoint": str(path), "seed": "ensemble", "kept epoch": None, "epochs run": None,
                         BEST_METRIC: None, "members": len(predictor.members), "views": len(predictor.views)})
        else:
            rows.append({"checkpoint": str(path), "seed": predictor.cfg.seed, "kept epoch": ckpt.get("best_epoch"),
                         "epochs run": ckpt.get("epoch"), BEST_METRIC: ckpt.get("best_metric")})
        probs.append(predictor.probabilities(images))
        labels.append(predictor.labels(probs[-1]))
    return pd.DataFrame(rows), np.stack(probs), np.stack(labels)


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


def _multiclass(res: TestResult, y: np.ndarray, P: np.ndarray, L: np.ndarray) -> None:
    """Each model file's decision (argmax, or its two-stage rule: Predictor.labels) scored per model."""
    per = [multiclass_metrics(y, P[i], L[i]) for i in range(len(res.seeds))]
    rows = []
    for s, m in zip(res.seeds, per):
        rows.append({"seed": s, "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
                     **{f"precision {c}": m["precision"][c] for c in CLASSES},
                     **{f"recall {c}": m["recall"][c] for c in CLASSES}})
    res.per_seed = pd.DataFrame(rows)
    res.summary = pd.DataFrame([{"metric": c, "mean ± std": _fmt(res.per_seed[c].tolist())}
                                for c in res.per_seed.columns if c != "seed"])
    res.confusion = np.sum([m["confusion"] for m in per], axis=0).tolist()


def run_test(selections: list[Selection]) -> list[TestResult]:
    """Read the test split (once per data configuration) and score every selection's models on it."""
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
        y = targets(split.labels3, sel.cfg.num_classes)
        res.n_images = len(y)
        res.class_counts = {c: int((split.labels3 == i).sum()) for i, c in enumerate(CLASSES)}
        log(f"  {sel.task}: {len(sel.models)} model(s) ({sel.models_from}) on the test split ...")
        res.scored, P, L = _predict(sel, split.images)
        res.seeds = res.scored["seed"].tolist()
        if sel.cfg.num_classes == 2:
            _binary(res, y, P)
        else:
            _multiclass(res, y, P, L)
    return results
