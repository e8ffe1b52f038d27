"""Bootstrap intervals of the test metrics (scipy.stats.bootstrap); the metrics themselves are study.engine.metrics.

Binary: pneumonia is the positive class. Specificity = recall of the normal class.
Bootstrap: resamples the evaluation images with normal and pneumonia images resampled separately
(stratified, so every resample has both classes and AUC/recall are always defined); the statistic is
the metric averaged over the seeds' models (each seed's own predictions, seeds held fixed).
"""
from __future__ import annotations

import numpy as np
from scipy.stats import bootstrap, rankdata

N_RESAMPLES = 2000
CONFIDENCE = 0.95


def _vector_metric(name: str, y: np.ndarray, P: np.ndarray, threshold: float) -> np.ndarray:
    """`name` for P [seeds, ..., n] against y [..., n], computed along the last axis -> [seeds, ...]."""
    if name == "auc":
        pos, n1 = y == 1, y.sum(-1)
        n0 = y.shape[-1] - n1
        ranks = rankdata(P, axis=-1)  # ties get their mean rank, as in roc_auc_score
        return ((ranks * pos).sum(-1) - n1 * (n1 + 1) / 2) / (n1 * n0)
    pred = P >= threshold
    tp, fp = (pred & (y == 1)).sum(-1), (pred & (y == 0)).sum(-1)
    fn, tn = (~pred & (y == 1)).sum(-1), (~pred & (y == 0)).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        prec = np.where(tp + fp > 0, tp / (tp + fp), 0.0)  # zero_division=0, as scikit-learn is called
        rec = tp / (tp + fn)
        out = {"accuracy": (tp + tn) / y.shape[-1], "precision": prec, "recall": rec, "specificity": tn / (tn + fp),
               "f1": np.where(prec + rec > 0, 2 * prec * rec / np.where(prec + rec > 0, prec + rec, 1), 0.0)}
    return out[name]


def seed_mean_metric(name: str, y: np.ndarray, P: np.ndarray, threshold: float) -> float:
    """The metric averaged over seeds (P: [seeds, n]); the statistic the bootstrap resamples."""
    return float(np.mean(_vector_metric(name, y, P, threshold)))


def bootstrap_ci(name: str, y: np.ndarray, P: np.ndarray, threshold: float, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of seed_mean_metric over test images (stratified by class)."""
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if len(pos) < 2 or len(neg) < 2:
        return float("nan"), float("nan")

    def stat(ip, ineg, axis=-1):
        idx = np.concatenate([ip, ineg], axis=-1).astype(int)          # [batch, n]
        yy = np.concatenate([np.ones(ip.shape, int), np.zeros(ineg.shape, int)], axis=-1)
        return _vector_metric(name, yy, P[:, idx], threshold).mean(0)  # mean over seeds -> [batch]

    res = bootstrap((pos, neg), stat, n_resamples=N_RESAMPLES, batch=250, vectorized=True, paired=False,
                    confidence_level=CONFIDENCE, method="percentile", rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def describe_bootstrap(n_seeds: int) -> str:
    return (f"{CONFIDENCE:.0%} intervals: scipy.stats.bootstrap, percentile method, {N_RESAMPLES} resamples of the "
            f"test images (normal and pneumonia images resampled separately); the statistic is the metric averaged "
            f"over the {n_seeds} seed(s)' models, each on its own predictions (per-seed predictions, seeds held fixed), "
            f"so the interval covers test-set sampling, not seed-to-seed variation (that is the ± std).")
