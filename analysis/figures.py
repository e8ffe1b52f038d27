"""Convergence figures: train/validation loss and accuracy per epoch, one line per trial.

Trials ASHA stopped are drawn dashed and end in an x at their last epoch; trials stopped by
early stopping (patience) end in a filled circle. Used by analysis.report.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure  # the object API: no pyplot, no GUI backend, nothing global
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from analysis.results.load import Experiment
from study.names import EPOCH, TRAIN_ACCURACY, TRAIN_LOSS, VAL_ACCURACY, VAL_LOSS

PANELS = ((TRAIN_LOSS, "train loss"), (VAL_LOSS, "validation loss"),
          (TRAIN_ACCURACY, "train accuracy"), (VAL_ACCURACY, "validation accuracy"))


def colors(n: int) -> list:
    cmap = matplotlib.colormaps.get_cmap("tab10" if n <= 10 else "tab20" if n <= 20 else "turbo")
    return [cmap(i if n <= 20 else i / max(n - 1, 1)) for i in range(n)]


def convergence_figure(exp: Experiment, out: Path) -> Path:
    """2 x 2 panels (loss, accuracy; train, validation) for every trial of `exp` -> out PNG."""
    trials = exp.trials
    n_legend = len(trials) + bool(exp.asha) + bool(trials["early_stopped"].any())
    ncol = 1 if n_legend <= 6 else 2 if n_legend <= 16 else 3
    legend_h = 0.3 + 0.19 * -(-n_legend // ncol)  # inches below the panels
    fig = Figure(figsize=(11, 6.8 + legend_h))
    axes = fig.subplots(2, 2, sharex=True)
    for (metric, title), ax in zip(PANELS, axes.flat):
        for (_, t), color in zip(trials.iterrows(), colors(len(trials))):
            e = exp.epochs[exp.epochs["trial_id"] == t["trial_id"]]
            if not len(e) or metric not in e:
                continue
            asha = bool(t["stopped_by_asha"]) if t["stopped_by_asha"] is not None else False
            ax.plot(e[EPOCH], e[metric], color=color, lw=1.4, ls="--" if asha else "-", alpha=0.9,
                    label=t["label"] + (" (ASHA stop)" if asha else " (early stop)" if t["early_stopped"] else ""))
            if asha or t["early_stopped"]:
                ax.plot(e[EPOCH].iloc[-1], e[metric].iloc[-1], marker="x" if asha else "o", color=color, ms=8, mew=2)
        vals = exp.epochs[metric].dropna() if metric in exp.epochs else []
        if "loss" in title and len(vals) and vals.min() > 0 and vals.max() / vals.min() > 20:
            ax.set_yscale("log")  # one diverging run would flatten every other curve
            title += " (log scale)"
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if "accuracy" in title:
            ax.set_xlabel("epoch")
    ax_lim = max(exp.max_epochs, int(exp.epochs[EPOCH].max()) if len(exp.epochs) else 1)
    for ax in axes.flat:
        ax.set_xlim(0.8, ax_lim + 0.2)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    extra = []
    if exp.asha:
        extra.append(Line2D([], [], color="gray", ls="--", marker="x", label="stopped by ASHA at its last epoch"))
    if trials["early_stopped"].any():
        extra.append(Line2D([], [], color="gray", marker="o", label="stopped by early stopping"))
    fig.legend(handles + extra, labels + [h.get_label() for h in extra], loc="lower center", ncol=ncol,
               fontsize=8, frameon=False)
    fig.suptitle(f"{exp.name}: convergence of {len(trials)} trials (budget {exp.max_epochs} epochs)")
    fig.tight_layout(rect=(0, legend_h / (6.8 + legend_h), 1, 1))
    path = out / f"convergence_{exp.name}.png"
    fig.savefig(path, dpi=90)
    return path


def bar_figure(values: dict[str, float], errors: dict[str, float] | None, title: str, xlabel: str, path: Path) -> Path:
    """Horizontal bars (e.g. importance per hyperparameter), largest on top."""
    names = sorted(values, key=lambda k: values[k])
    fig = Figure(figsize=(7, 0.5 + 0.45 * len(names)))
    ax = fig.subplots()
    ax.barh(names, [values[n] for n in names], xerr=[errors[n] for n in names] if errors else None,
            color="tab:blue", alpha=0.8, capsize=3)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def heatmap_figure(table: pd.DataFrame, xlabel: str, label: str, path: Path) -> Path:
    """A rows x columns grid of values (e.g. best accuracy per optimizer and learning rate), annotated."""
    values = table.to_numpy(dtype=float)
    fig = Figure(figsize=(1.6 + 1.1 * values.shape[1], 1.2 + 0.6 * values.shape[0]))
    ax = fig.subplots()
    im = ax.imshow(values, cmap="viridis", aspect="auto")
    ax.set_xticks(range(values.shape[1]), [f"{c:g}" if isinstance(c, float) else str(c) for c in table.columns])
    ax.set_yticks(range(values.shape[0]), [str(i) for i in table.index])
    mid = np.nanmean(values)
    for (i, j), v in np.ndenumerate(values):
        if not np.isnan(v):
            ax.text(j, i, f"{v:.3f}", ha="center", va="center", fontsize=8, color="white" if v < mid else "black")
    ax.set_xlabel(xlabel)
    fig.colorbar(im, ax=ax, label=label)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path
