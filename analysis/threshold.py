"""Decision threshold of the selected binary model, chosen on the VALIDATION split.

The selected trial's checkpoint (model.pt: its best-validation-epoch weights) predicts the
validation images that the study used (re-prepared with the trial's own config: the same
patient-level split, since split_seed and the other data fields are in it). Precision, recall and
F1 are tabled at 0.10, 0.15, ..., 0.90 and the best-F1 threshold is kept (ties: the one nearest
0.5). The test split is never read here; analysis.evaluate applies the threshold to it later.
The seed notebook chose its threshold (0.40) on the test set, which leaks the test labels into the
model and inflates the F1 it then reports on that same test set.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import precision_recall_curve, precision_recall_fscore_support  # noqa: E402

from study import data as sdata  # noqa: E402  (module attribute calls: tests can spy on prepare/load_test)
from study.config import TrainConfig  # noqa: E402
from study.train import evaluate, load_model, pick_device  # noqa: E402

THRESHOLDS = tuple(round(0.10 + 0.05 * i, 2) for i in range(17))  # 0.10 .. 0.90


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
    metrics: dict          # study.train.evaluate's validation metrics (VAL_* names) at 0.5 / argmax
    description: str       # the prepared data's description


def validation_predictions(checkpoint: str | Path, root, cache: dict) -> ValPredictions:
    """The checkpoint's predictions on its study's validation split (never the test split)."""
    device = pick_device()
    model, cfg = load_model(checkpoint, device)
    data = prepared(root, cfg, cache)
    y = sdata.targets(data.val.labels3, cfg.num_classes)
    x = torch.from_numpy(np.ascontiguousarray(data.val.images)).to(device)
    metrics, probs = evaluate(model, None, x, torch.from_numpy(y).to(device), cfg)
    return ValPredictions(cfg, y, probs, metrics, data.description)


def threshold_table(y: np.ndarray, probs: np.ndarray) -> pd.DataFrame:
    rows = []
    for t in THRESHOLDS:
        p, r, f, _ = precision_recall_fscore_support(y, (probs >= t).astype(int), average="binary", zero_division=0)
        rows.append({"threshold": t, "precision": p, "recall": r, "f1": f,
                     "predicted positive": int((probs >= t).sum()), "accuracy": float(((probs >= t) == y).mean())})
    return pd.DataFrame(rows)


def choose_threshold(y_val: np.ndarray, probs_val: np.ndarray) -> tuple[float, pd.DataFrame]:
    """Best-F1 threshold on validation labels and predictions (ties: nearest 0.5) and the table."""
    table = threshold_table(y_val, probs_val)
    best = table[np.isclose(table["f1"], table["f1"].max())]
    chosen = float(best.loc[(best["threshold"] - 0.5).abs().idxmin(), "threshold"])
    return chosen, table


def pr_figure(y: np.ndarray, probs: np.ndarray, table: pd.DataFrame, chosen: float, out: Path, title: str) -> Path:
    """Validation precision-recall curve with the 17 thresholds marked and coloured by F1."""
    fig, ax = plt.subplots(figsize=(8, 6.6))
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
    plt.close(fig)
    return out
