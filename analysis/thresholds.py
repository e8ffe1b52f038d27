"""Decision thresholds of the selected binary model, chosen on VALIDATION data only.

The selected trial's checkpoint (checkpoint.pt: its kept epoch's weights; copied here first when the
results are remote, analysis.results.tree.local_checkpoint) predicts the validation
images that the study used and the stress validation built from them (re-prepared with the
trial's own config: the same patient-level split, since split_seed and the other data fields are
in it). At 0.10, 0.15, ..., 0.90:
  - the seed's Q2 answer: the best-F1 threshold on the validation split (ties: nearest 0.5);
  - the headline threshold: Youden's J (sensitivity + specificity - 1, i.e. balanced accuracy) on
    the stress validation (ties: nearest 0.5). J does not depend on the class prior, so the choice
    does not move when the share of pneumonia does (study/evidence.py: PNEUMONIA_SHARE_TRAIN and _TEST),
    and the stress images make it a choice for films that look different from train's. F1 counts
    true negatives nowhere: on a 74 %-pneumonia validation split it favours low thresholds that
    give away specificity, the test split's weak point.
The test split is never read here; analysis.test_eval applies the thresholds to it later.
The seed notebook chose its threshold (0.40) on the test set, which leaks the test labels into the
model and inflates the F1 it then reports on that same test set.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # the object API: no pyplot, no GUI backend, nothing global
from sklearn.metrics import precision_recall_curve, precision_recall_fscore_support

from analysis.results.tree import local_checkpoint
from study.config import TrainConfig
from study.data import splits as sdata  # module attribute calls: tests can spy on prepare
from study.data.layout import targets
from study.engine.device import pick_device
from study.engine.infer import Predictor, load_predictor, scores

THRESHOLDS = tuple(round(0.10 + 0.05 * i, 2) for i in range(17))  # 0.10 .. 0.90
F1_RULE = "best F1 on validation (Q2)"
HEADLINE_RULE = "Youden's J on the stress validation (headline)"


def prepared(root, cfg: TrainConfig, cache: dict) -> sdata.TrainData:
    """Train and validation images for cfg's data fields, prepared once per data key."""
    key = (str(root), cfg.data_key())
    if key not in cache:
        cache[key] = sdata.prepare(root, cfg, progress=False)
    return cache[key]


@dataclass
class ValPredictions:
    cfg: TrainConfig
    y: np.ndarray          # binary targets (2 classes) or class indices (3 classes)
    probs: np.ndarray      # [N] pneumonia probability or [N, 3]
    metrics: dict          # study.engine.infer.evaluate's validation metrics (VAL_* names) at 0.5 / argmax
    description: str       # the prepared data's description
    y_stress: np.ndarray   # the stress validation (study.data.stress.STRESS): targets ...
    probs_stress: np.ndarray  # ... and predictions


def validation_predictions(checkpoint: str | Path, root, cache: dict, views: tuple[str, ...] | None = None) -> ValPredictions:
    """A model file's (one model or an ensemble; `views`: its test-time views, None for the file's own)
    predictions on its study's validation split and stress validation (never the test split)."""
    predictor = load_predictor(local_checkpoint(checkpoint), pick_device()).with_views(views)  # remote: copied first
    return predictor_validation(predictor, root, cache)


def predictor_validation(predictor: Predictor, root, cache: dict) -> ValPredictions:
    """`predictor`'s predictions on the validation split and stress validation of its members' data fields."""
    cfg = predictor.cfg
    data = prepared(root, cfg, cache)
    y = targets(data.val.labels3, cfg.num_classes)
    ys = targets(data.stress.labels3, cfg.num_classes)
    probs, probs_stress = predictor.probabilities(data.val.images), predictor.probabilities(data.stress.images)
    metrics = scores(y, probs, cfg.num_classes, (ys, probs_stress))
    return ValPredictions(cfg, y, probs, metrics, data.description, ys, probs_stress)


def threshold_table(y: np.ndarray, probs: np.ndarray) -> pd.DataFrame:
    rows = []
    for t in THRESHOLDS:
        pred = (probs >= t).astype(int)
        p, r, f, _ = precision_recall_fscore_support(y, pred, average="binary", zero_division=0)
        spec = float(((pred == 0) & (y == 0)).sum() / max((y == 0).sum(), 1))
        rows.append({"threshold": t, "precision": p, "recall": r, "specificity": spec, "f1": f, "youden_j": r + spec - 1,
                     "predicted positive": int(pred.sum()), "accuracy": float((pred == y).mean())})
    return pd.DataFrame(rows)


def _best(table: pd.DataFrame, column: str) -> float:
    best = table[np.isclose(table[column], table[column].max())]
    return float(best.loc[(best["threshold"] - 0.5).abs().idxmin(), "threshold"])


def choose_threshold(y_val: np.ndarray, probs_val: np.ndarray) -> tuple[float, pd.DataFrame]:
    """The seed's Q2 answer: best-F1 threshold on validation (ties: nearest 0.5), and the table."""
    table = threshold_table(y_val, probs_val)
    return _best(table, "f1"), table


def headline_threshold(y_stress: np.ndarray, probs_stress: np.ndarray) -> tuple[float, pd.DataFrame]:
    """The headline threshold (HEADLINE_RULE), the one place it is chosen for the report, its ensembles and the
    release: best Youden's J on the stress validation (ties: nearest 0.5), and the table. Why Youden's J and not
    a fixed stress sensitivity: its specificity moves least between seeds (RESULTS.md section 1.3)."""
    table = threshold_table(y_stress, probs_stress)
    return _best(table, "youden_j"), table


def pr_figure(y: np.ndarray, probs: np.ndarray, table: pd.DataFrame, chosen: float, out: Path, title: str) -> Path:
    """Validation precision-recall curve with the 17 thresholds marked and coloured by F1."""
    fig = Figure(figsize=(8, 6.6))
    ax = fig.subplots()
    if len(np.unique(y)) == 2:
        prec, rec, _ = precision_recall_curve(y, probs)
        ax.plot(rec, prec, color="gray", lw=1.2, label="precision-recall curve (all thresholds)")
    sc = ax.scatter(table["recall"], table["precision"], c=table["f1"], cmap="viridis", s=45, zorder=3,
                    edgecolor="black", lw=0.5, label="thresholds 0.10 ... 0.90 (labelled; colour: F1)")
    points = table.groupby([table["recall"].round(4), table["precision"].round(4)], sort=False)
    for i, ((r, p), g) in enumerate(points):  # thresholds that give the same point share one label
        ts = g["threshold"]
        name = f"{ts.min():.2f}" if len(g) == 1 else f"{ts.min():.2f}-{ts.max():.2f}"
        ax.annotate(name, (r, p), textcoords="offset points", fontsize=7.5, xytext=(-7, 6 - 14 * (i % 2)), ha="right")
    c = table[table["threshold"] == chosen].iloc[0]
    ax.scatter([c["recall"]], [c["precision"]], s=260, facecolor="none", edgecolor="red", lw=2, zorder=4,
               label=f"chosen on validation: {chosen:.2f} (F1 {c['f1']:.3f})")
    fig.colorbar(sc, ax=ax, label="F1 at the threshold")
    ax.set_xlabel("recall (sensitivity)")
    ax.set_ylabel("precision")
    lo_r, lo_p = table["recall"].min(), table["precision"].min()  # zoom on the thresholds' points
    ax.set_xlim(max(-0.02, lo_r - 0.15), 1.02)
    ax.set_ylim(max(-0.02, lo_p - 0.1), 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.11), ncol=2, fontsize=8, frameon=False)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    return out
