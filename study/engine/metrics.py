"""Classification metrics (scikit-learn), defined once: the epoch records, the report, the release and the
ensemble selection all call these.

Binary: pneumonia is the positive class, specificity is the recall of the normal class. 3-class:
macro averages, one-vs-rest AUC; balanced accuracy is the mean of the per-class recalls.
"""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
    roc_auc_score,
)

from study.data.layout import CLASSES

BINARY = ("accuracy", "precision", "recall", "specificity", "f1", "auc")


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, num_classes: int, threshold: float = 0.5) -> dict:
    """Accuracy, balanced accuracy, ROC AUC, precision, recall, F1. Binary at `threshold`; 3-class by argmax.
    AUC is NaN when y_true holds one class only."""
    if num_classes == 2:
        pred, avg, auc_args = (probs >= threshold).astype(int), "binary", {}
    else:
        pred, avg, auc_args = probs.argmax(1), "macro", {"multi_class": "ovr", "labels": [0, 1, 2]}
    try:
        auc = float(roc_auc_score(y_true, probs, **auc_args))
    except ValueError:
        auc = float("nan")
    kw = {"average": avg, "zero_division": 0}
    with warnings.catch_warnings():  # one class in y_true: balanced accuracy is that class's recall, say so quietly
        warnings.simplefilter("ignore", UserWarning)
        bacc = float(balanced_accuracy_score(y_true, pred))
    return {"accuracy": float(accuracy_score(y_true, pred)), "bacc": bacc, "auc": auc,
            "precision": float(precision_score(y_true, pred, **kw)), "recall": float(recall_score(y_true, pred, **kw)),
            "f1": float(f1_score(y_true, pred, **kw))}


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    """Accuracy, precision, recall, specificity, F1, ROC AUC and the confusion counts at `threshold`."""
    m = classification_metrics(y, p, 2, threshold)
    tn, fp, fn, tp = confusion_matrix(y, (p >= threshold).astype(int), labels=[0, 1]).ravel()
    m["specificity"] = float(tn / (tn + fp)) if tn + fp else float("nan")
    return {**{k: m[k] for k in BINARY}, "tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)}


def multiclass_metrics(y: np.ndarray, probs: np.ndarray, pred: np.ndarray | None = None) -> dict:
    """3-class: accuracy, macro-F1, macro recall (balanced accuracy), per-class precision/recall and the
    confusion matrix (rows: true), of `pred` (a decision rule's labels; default: the argmax of probs)."""
    pred = probs.argmax(1) if pred is None else pred
    labels = list(range(len(CLASSES)))
    prec, rec, f1, support = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    return {"accuracy": float((pred == y).mean()), "macro_f1": float(f1.mean()), "macro_recall": float(rec.mean()),
            "precision": dict(zip(CLASSES, prec.tolist())), "recall": dict(zip(CLASSES, rec.tolist())),
            "support": dict(zip(CLASSES, support.tolist())),
            "confusion": confusion_matrix(y, pred, labels=labels).tolist()}


def balanced_log_loss(y: np.ndarray, probs: np.ndarray) -> float:
    """Cross-entropy with every class weighted equally (each image weighs 1 / (classes x its class's count)):
    a proper scoring rule that, like balanced accuracy, does not move with the class prior. `probs`: [N]
    pneumonia probabilities or [N, classes]."""
    p = np.column_stack([1.0 - probs, probs]) if probs.ndim == 1 else probs
    labels = np.arange(p.shape[1])
    counts = np.bincount(y, minlength=p.shape[1]).astype(float)
    w = 1.0 / (counts[y] * (counts > 0).sum())
    # float64 and rows summed to 1 again after the clip: float32 softmax rows miss 1 by up to ~1e-7, which
    # sklearn warns about; the clip (1e-7) bounds one image's loss at ~16 nats
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1.0)
    return float(log_loss(y, p / p.sum(axis=1, keepdims=True), sample_weight=w, labels=labels))
