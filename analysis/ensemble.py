"""Ensemble selection from the models a study trained (Caruana et al. 2004, "Ensemble selection from
libraries of models": greedy forward selection with replacement), on the stress validation.

The library: every kept model of a results tree that can predict the selected configuration's
validation images (trials and confirmation models that finished, were stopped by ASHA or by early
stopping, with a checkpoint, not diverged, at the same data fields), or the checkpoints given.
Each model predicts the validation split and the stress validation once (inference only; nothing
here trains). Then, starting from the best single model by the rule below, each round adds (again, if
it is already in) the model whose addition to the running average of probabilities most improves the
rule, until no model improves it, MAX_PICKS rounds have run, or MAX_MEMBERS distinct models are in
(then only those may be added again). A member's weight is its share of the picks.

What the greedy step minimises: **balanced log-loss on the stress validation** (cross-entropy with
each class weighing the same; study.engine.metrics.balanced_log_loss). Why that and not balanced
accuracy or AUC: it is the signal the study already selects on (the stress validation, balanced
over classes, so the class prior of train does not steer it), and as a proper scoring rule it rewards
probabilities that are both well ranked and calibrated. Averaging probabilities needs both, and the
headline threshold is chosen afterwards on the ensemble's own stress probabilities. Balanced
accuracy at a fixed threshold moves in steps of one image, so greedy steps would be decided by a
handful of films (over-fitting the stress set); AUC ignores calibration and does not exist as one
number for 3 classes.

Guards against over-fitting the stress validation: the size limits (MAX_PICKS rounds, MAX_MEMBERS
distinct models, which also bound prediction time and the file's size), stopping at the first round
that does not improve the rule by MIN_GAIN, starting from the single best model, and the plain
validation split, which the selection never sees, reported beside it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.results.load import TRAIN_SECONDS
from analysis.results.tree import local_checkpoint
from analysis.thresholds import predictor_validation
from study.config import DATA_FIELDS, TrainConfig
from study.engine import checkpoint as ckpt_io
from study.engine.device import pick_device
from study.engine.infer import NO_TTA, predictor_from
from study.engine.metrics import balanced_log_loss, classification_metrics
from study.errors import UserError
from study.names import EARLY_STOPPED, FINISHED, STOPPED_BY_ASHA
from study.tune.ranking import hashable

RULE = "balanced log-loss on the stress validation"
MAX_PICKS = 10     # rounds; weights are multiples of 1/picks
MAX_MEMBERS = 5    # distinct models: members x test-time views bound predict time (BENCHMARKS.md) and file size
MIN_GAIN = 1e-4    # a round must lower the rule by at least this much (nats) to count
KEPT = (FINISHED, EARLY_STOPPED, STOPPED_BY_ASHA)  # the statuses whose kept model may join the library


@dataclass
class Library:
    """Models that predict the same validation images, with their predictions (one row per model)."""
    names: list[str]                 # how the report names each (experiment / trial)
    checkpoints: list[str]
    ckpts: list[dict]                # the loaded single-model checkpoints
    y: np.ndarray                    # validation targets
    y_stress: np.ndarray
    probs: np.ndarray                # [models, N] or [models, N, 3]
    probs_stress: np.ndarray
    cfg: TrainConfig                 # the first model's (its data fields are every model's)
    description: str = ""            # the prepared data's description
    views: tuple = NO_TTA

    @property
    def num_classes(self) -> int:
        return 2 if self.probs.ndim == 2 else self.probs.shape[-1]


def library(checkpoints: list[str], names: list[str] | None, root, cache: dict,
            views: tuple[str, ...] | None = None) -> Library:
    """Load each checkpoint (a copy of a remote one first) and predict the validation split and the stress
    validation of the first one's data fields; UserError when they cannot share them."""
    if not checkpoints:
        raise UserError("ensemble selection: no model to select from")
    device, names = pick_device(), list(names or checkpoints)
    ckpts, preds, first = [], [], None
    for path, name in zip(checkpoints, names):
        ckpt = ckpt_io.load(local_checkpoint(path))
        if "members" in ckpt:
            raise UserError(f"{path}: an ensemble; select from single models (its members' checkpoints)")
        predictor = predictor_from(ckpt, device, where=str(path)).with_views(views)
        if first is None:
            first = predictor.cfg
        elif predictor.cfg.data_key() != first.data_key() or predictor.num_classes != first.num_classes:
            raise UserError(f"{path}: trained on other data fields or classes than {checkpoints[0]} "
                            f"({predictor.cfg.data_key()} vs {first.data_key()}); an ensemble's members must predict "
                            f"the same validation images")
        preds.append(predictor_validation(predictor, root, cache))
        ckpts.append({k: ckpt[k] for k in ckpt_io.MEMBER_KEYS if k in ckpt})  # no resume state: it is not needed
    vp = preds[0]
    return Library(names, [str(c) for c in checkpoints], ckpts, vp.y, vp.y_stress, np.stack([p.probs for p in preds]),
                   np.stack([p.probs_stress for p in preds]), first, vp.description, tuple(views or NO_TTA))


def greedy(y: np.ndarray, probs: np.ndarray, max_picks: int = MAX_PICKS, max_members: int = MAX_MEMBERS,
           min_gain: float = MIN_GAIN) -> tuple[np.ndarray, list[dict]]:
    """Greedy forward selection with replacement over `probs` [models, N(, C)] against targets `y`, minimising
    balanced log-loss. -> (picks per model, one record per round). Deterministic: ties go to the lower index."""
    single = np.array([balanced_log_loss(y, p) for p in probs])
    first = int(np.argmin(single))
    counts = np.zeros(len(probs), int)
    counts[first] = 1
    total, loss = probs[first].copy(), single[first]
    trace = [{"round": 1, "added": first, "rule": float(loss)}]
    for rnd in range(2, max_picks + 1):
        allowed = np.flatnonzero(counts) if (counts > 0).sum() >= max_members else np.arange(len(probs))
        n = counts.sum()
        trial = [balanced_log_loss(y, (total + probs[m]) / (n + 1)) for m in allowed]
        best = int(np.argmin(trial))
        if loss - trial[best] < min_gain:
            break
        m = int(allowed[best])
        counts[m] += 1
        total, loss = total + probs[m], trial[best]
        trace.append({"round": rnd, "added": m, "rule": float(loss)})
    return counts, trace


@dataclass
class Ensemble:
    lib: Library
    counts: np.ndarray
    trace: list[dict]
    figures: dict = field(default_factory=dict)   # {"single best" | "ensemble": {split: metrics}}

    @property
    def chosen(self) -> list[int]:
        return [int(i) for i in np.flatnonzero(self.counts)]

    @property
    def weights(self) -> np.ndarray:
        return self.counts / self.counts.sum()

    def probs(self, stress: bool) -> np.ndarray:
        p = self.lib.probs_stress if stress else self.lib.probs
        return np.tensordot(self.weights, p, axes=1)

    def checkpoint(self) -> dict:
        """The ensemble as a model file of the one format (study.engine.checkpoint.ensemble)."""
        parts = [({**self.lib.ckpts[i], "source": self.lib.names[i]}, float(self.counts[i])) for i in self.chosen]
        selection = {"rule": RULE, "library": len(self.lib.names), "rounds": [
            {**r, "added": self.lib.names[r["added"]]} for r in self.trace], "max_picks": MAX_PICKS,
            "max_members": MAX_MEMBERS, "figures": self.figures}
        return ckpt_io.ensemble(parts, tta=self.lib.views, selection=selection)


def figures(y: np.ndarray, p: np.ndarray, num_classes: int) -> dict:
    """The figures the report and the release compare a single model and an ensemble on (0.5 / argmax)."""
    m = classification_metrics(y, p, num_classes)
    return {"accuracy": m["accuracy"], "bacc": m["bacc"], "auc": m["auc"], "balanced_log_loss": balanced_log_loss(y, p)}


def select(lib: Library) -> Ensemble:
    """Caruana's selection on the library's stress-validation probabilities, with the figures of the single
    best model (by the same rule) and of the ensemble on validation and the stress validation."""
    counts, trace = greedy(lib.y_stress, lib.probs_stress)
    ens = Ensemble(lib, counts, trace)
    best = trace[0]["added"]
    k = lib.num_classes
    ens.figures = {
        "single best": {"name": lib.names[best],
                        "validation": figures(lib.y, lib.probs[best], k),
                        "stress validation": figures(lib.y_stress, lib.probs_stress[best], k)},
        "ensemble": {"validation": figures(lib.y, ens.probs(False), k),
                     "stress validation": figures(lib.y_stress, ens.probs(True), k)}}
    return ens


def library_rows(trials: pd.DataFrame, row: pd.Series) -> pd.DataFrame:
    """The trials frame's kept models that can join `row`'s ensemble: finished, stopped by ASHA or by
    early stopping (never diverged or errored), with a checkpoint, of its classes and data fields."""
    want = tuple(hashable(row["config"].get(f)) for f in DATA_FIELDS)
    ok = trials["status"].isin(KEPT) & (trials["checkpoint"] != "") & (trials["num_classes"] == row["num_classes"])
    same = trials["config"].map(lambda c: tuple(hashable(c.get(f)) for f in DATA_FIELDS) == want)
    return trials[ok & same]


SIZES = (1, 2, 4, 8, 16)  # library sizes of the ensemble-size curve
FILMS = 624               # predict seconds are given per this many films (the official test split's size)


def sub_library(lib: Library, idx: list[int]) -> Library:
    """The models `idx` of `lib`, with their predictions (nothing is predicted again)."""
    pick = lambda xs: [xs[i] for i in idx]
    return Library(pick(lib.names), pick(lib.checkpoints), pick(lib.ckpts), lib.y, lib.y_stress, lib.probs[idx],
                   lib.probs_stress[idx], lib.cfg, lib.description, lib.views)


def predict_seconds(ens: Ensemble, images: np.ndarray, films: int = FILMS) -> float:
    """Seconds for the selected ensemble to predict `films` of `images`' films (repeated to that count), on this
    machine's threads: the median of 3 timed passes after a warm-up (decoding and start-up not included)."""
    predictor = predictor_from(ens.checkpoint(), pick_device(), where="ensemble")
    batch = np.resize(images, (films, *images.shape[1:]))
    predictor.probabilities(batch[:64])
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        predictor.probabilities(batch)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def size_curve(lib: Library, train_seconds: list[float], images: np.ndarray, sizes=SIZES) -> pd.DataFrame:
    """Ensemble size against cost: for each size n <= len(lib), the library cut into disjoint blocks of n models in
    its order, each block selected as `select` does; per block its stress-validation figures, plain validation
    accuracy, the block's train seconds (the members' own, summed) and the selected ensemble's predict seconds."""
    rows = []
    for n in (n for n in sizes if n <= len(lib.names)):
        for block in range(len(lib.names) // n):
            idx = list(range(block * n, (block + 1) * n))
            ens = select(sub_library(lib, idx))
            f = ens.figures["ensemble"]
            rows.append({"library": n, "block": block, "chosen": len(ens.chosen),
                         "stress bacc": f["stress validation"]["bacc"], "stress auc": f["stress validation"]["auc"],
                         "stress balanced_log_loss": f["stress validation"]["balanced_log_loss"],
                         "val accuracy": f["validation"]["accuracy"],
                         TRAIN_SECONDS: float(sum(train_seconds[i] for i in idx)),
                         f"predict_seconds_{FILMS}": predict_seconds(ens, images)})
    return pd.DataFrame(rows)


def size_summary(curve: pd.DataFrame) -> pd.DataFrame:
    """size_curve's rows as one row per library size: the mean (and range) over its blocks."""
    return curve.groupby("library").agg(
        libraries=("block", "size"), chosen=("chosen", "median"), stress_bacc=("stress bacc", "mean"),
        stress_bacc_min=("stress bacc", "min"), stress_bacc_max=("stress bacc", "max"),
        stress_auc=("stress auc", "mean"), val_accuracy=("val accuracy", "mean"),
        train_seconds=(TRAIN_SECONDS, "mean"), predict_seconds=(f"predict_seconds_{FILMS}", "median")).reset_index()


def size_figure(curve: pd.DataFrame, title: str, out: Path) -> Path:
    """Stress balanced accuracy (at 0.5 / argmax) of each block against its train seconds, with the per-size means."""
    from matplotlib.figure import Figure
    summary = size_summary(curve)
    fig = Figure(figsize=(7.5, 4.2))
    ax = fig.subplots()
    ax.scatter(curve[TRAIN_SECONDS], curve["stress bacc"], s=14, alpha=0.5, label="each library")
    ax.plot(summary["train_seconds"], summary["stress_bacc"], "o-", color="black", label="mean per library size")
    for _, r in summary.iterrows():
        ax.annotate(f"{int(r['library'])} (predict {r['predict_seconds']:.1f} s)", (r["train_seconds"], r["stress_bacc"]),
                    textcoords="offset points", xytext=(4, -12), fontsize=8)
    if len(summary) > 1:
        ax.set_xscale("log")
    ax.set_xlabel("train seconds of the library (the members' own, summed)")
    ax.set_ylabel("stress-validation balanced accuracy")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return out
