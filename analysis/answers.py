"""A short answer to each experiment's question, computed from its trials (text, tables, figures).

Every difference is set against the seed spread: the baseline experiment's seed-to-seed standard
deviation of the selection score (BEST_METRIC) when the tree has it, else the pooled within-configuration
std of this experiment's repeated seeds, else none (and the text says so). One validation image is
the resolution of any accuracy: 1 / n_val.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

import search_spaces
from analysis import budget
from analysis.figures import heatmap_figure
from analysis.results.load import AT_BEST, BEST_EPOCH, TRAIN_SECONDS, Experiment, Results, fmt
from study.config import SEED_RECIPE, TrainConfig
from study.errors import UserError
from study.names import BEST_METRIC, EPOCH, METRIC, TRAIN_ACCURACY, VAL_ACCURACY, VAL_LOSS, VAL_PRECISION, VAL_RECALL


@dataclass
class Answer:
    text: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    figures: list[tuple[str, Path]] = field(default_factory=list)


def seed_spread(res: Results, exp: Experiment) -> tuple[float | None, str]:
    """The larger of the baseline's seed-to-seed std and this experiment's pooled within-configuration std,
    floored at one validation image (a zero std from seeds that all predict one class is no yardstick)."""
    found = []
    base = res.get("baseline")
    if base is not None and base.trials[BEST_METRIC].notna().sum() >= 2:
        v = base.trials[BEST_METRIC].dropna()
        found.append((float(v.std(ddof=1)), f"the baseline's seed-to-seed std over {len(v)} seeds"))
    if "seed" in exp.searched:
        other = [k for k in exp.searched if k != "seed"]
        groups = exp.trials.groupby(other)[BEST_METRIC] if other else [(0, exp.trials[BEST_METRIC])]
        ss = dof = 0.0
        for _, g in groups:
            g = g.dropna()
            if len(g) >= 2:
                ss, dof = ss + g.var(ddof=1) * (len(g) - 1), dof + len(g) - 1
        if dof:
            found.append((float(np.sqrt(ss / dof)),
                          f"the pooled std over seeds of the same configuration here ({dof:.0f} d.o.f.)"))
    if not found:
        return None, "none in this tree (run the baseline experiment, whose seed-to-seed std is the yardstick)"
    listed = "; ".join(f"{o}: {v:.4f}" for v, o in found)
    noise = max(v for v, _ in found)
    n_val = int(exp.meta.get("n_val") or 0)
    if n_val and noise < 1.0 / n_val:
        return 1.0 / n_val, f"one validation image (1/{n_val}), as the estimates are below it ({listed})"
    return noise, f"the larger of: {listed}" if len(found) > 1 else listed


def epoch(v) -> str:
    return "?" if v is None or v != v else str(int(v))


def verdict(d: float, noise: float | None, n_val: int) -> str:
    one = 1.0 / n_val if n_val else 0.0
    img = f"; less than one validation image (1/{n_val} = {one:.3f})" if n_val and abs(d) < one - 1e-9 else ""
    if noise is None:
        return f"no seed-spread estimate to judge it against{img}"
    if abs(d) <= noise + 1e-9:
        return f"within the seed spread (std {noise:.3f}), so not distinguishable from noise{img}"
    if abs(d) <= 2 * noise + 1e-9:
        return f"between one and two seed-spread stds ({noise:.3f}): weak evidence{img}"
    return f"more than twice the seed spread (std {noise:.3f})"


def _generic(exp: Experiment, noise, noise_src) -> str:
    t = exp.trials.dropna(subset=[BEST_METRIC])
    if not len(t):
        return "No trial reported a result."
    b = t.loc[t[BEST_METRIC].idxmax()]
    v = t[BEST_METRIC]
    ties = int((v == v.max()).sum())
    text = (f"Best trial: {b['label']} with best {METRIC} {b[BEST_METRIC]:.4f} (epoch {epoch(b[BEST_EPOCH])})"
            + (f"; {ties} trials tie at that value, so the grid does not single one out" if ties > 1 else "")
            + f". Over {len(t)} trials best {METRIC} ranges {v.min():.4f}-{v.max():.4f} (median {v.median():.4f}, "
            f"std {v.std(ddof=1) if len(v) > 1 else 0:.4f}). Seed spread: "
            + (f"{noise:.4f}, {noise_src}." if noise is not None else f"{noise_src}.")
            + f" Validation set: {exp.meta.get('n_val', '?')} images.")
    if exp.num_classes == 2:  # a kept epoch that calls every image pneumonia (or none) has learned nothing yet
        const = ((t[VAL_RECALL + AT_BEST] == 1) & np.isclose(t[VAL_PRECISION + AT_BEST], t[VAL_ACCURACY + AT_BEST])) \
            | (t[VAL_RECALL + AT_BEST] == 0)
        if const.any():
            text += (f" {int(const.sum())} of {len(t)} trials keep an epoch that gives every validation image the same "
                     f"class (accuracy = that class's share): they have not learned to separate the classes yet.")
    return text


def compare_to_reference(exp: Experiment, keys: list[str], noise, a: Answer) -> None:
    """Group trials by `keys`; compare each group's mean score with the seed's settings (the seed network, and the
    seed's training recipe for recipe fields, whatever TrainConfig's defaults now are)."""
    ref = tuple(fmt(SEED_RECIPE[k] if k in SEED_RECIPE else getattr(TrainConfig(), k)) for k in keys)
    t = exp.trials.dropna(subset=[BEST_METRIC])
    g = t.groupby(keys)[BEST_METRIC].agg(trials="count", mean="mean", std="std", max="max").reset_index()
    if exp.asha:
        g["ASHA stopped"] = t.groupby(keys)["stopped_by_asha"].sum().to_numpy().astype(int)
    g = g.sort_values("mean", ascending=False, ignore_index=True)
    is_ref = g[keys].apply(tuple, axis=1) == ref
    n_val = int(exp.meta.get("n_val") or 0)
    best = g.iloc[0]
    name = lambda r: ", ".join(f"{k}={r[k]}" for k in keys)
    if is_ref.any():
        r0 = g[is_ref].iloc[0]
        g["vs seed network"] = g["mean"] - r0["mean"]
        a.text.append(f"Control (the seed network, {name(r0)}): mean best {METRIC} {r0['mean']:.4f} over "
                      f"{int(r0['trials'])} trial(s).")
        for _, r in g[~is_ref].iterrows():
            d = r["mean"] - r0["mean"]
            a.text.append(f"{name(r)}: {r['mean']:.4f} ({d:+.4f} vs control; {verdict(d, noise, n_val)}).")
        helped = [name(r) for _, r in g[~is_ref].iterrows() if noise is not None and r["mean"] - r0["mean"] > noise + 1e-9]
        a.text.append("Changes that beat the control by more than the seed spread: " + ", ".join(helped) + "."
                      if helped else "No change beats the control by more than the seed spread"
                      + (" (no spread estimate)." if noise is None else "."))
    else:
        a.text.append(f"Best group: {name(best)}, mean best {METRIC} {best['mean']:.4f} (the seed network's "
                      f"settings are not in this grid, so there is no control).")
    if exp.asha:
        a.text.append(f"ASHA-stopped trials count with the best {METRIC} they reached before being stopped.")
    a.tables.append((f"Mean best {METRIC} per configuration (over repeats)", g))


def recipe_extra(exp: Experiment, keys: list[str], a: Answer) -> None:
    """Per factor of a grid (recipe, capacity...): mean selection score and mean plain validation accuracy of
    each value over the other factors, and how differently the two rank the configurations (plain accuracy is
    what selection used to reward)."""
    t = exp.trials.dropna(subset=[BEST_METRIC])
    plain = VAL_ACCURACY + AT_BEST
    for k in keys:
        g = t.groupby(k).agg(trials=(BEST_METRIC, "size"), **{f"mean {BEST_METRIC}": (BEST_METRIC, "mean"),
                                                              f"mean plain {VAL_ACCURACY}": (plain, "mean")})
        g = g.sort_values(f"mean {BEST_METRIC}", ascending=False).reset_index()
        a.tables.append((f"{k}: mean over every other factor and seed", g))
        a.text.append(f"{k}: best on average {g.iloc[0][k]} ({g.iloc[0][f'mean {BEST_METRIC}']:.4f}), worst "
                      f"{g.iloc[-1][k]} ({g.iloc[-1][f'mean {BEST_METRIC}']:.4f}); by plain validation accuracy the best "
                      f"would be {g.loc[g[f'mean plain {VAL_ACCURACY}'].idxmax(), k]}.")
    by = t.groupby(keys).agg(score=(BEST_METRIC, "mean"), plain=(plain, "mean")).dropna()
    if len(by) >= 4 and by.nunique().min() > 1:
        rho, _ = spearmanr(by["score"], by["plain"])
        a.text.append(f"Across the {len(by)} recipes, plain validation accuracy and the selection score rank recipes with "
                      f"Spearman {rho:+.2f}" + (": plain accuracy would pick differently." if rho < 0.8 else "."))


def dropout_extra(exp: Experiment, a: Answer) -> None:
    t = exp.trials.dropna(subset=[BEST_METRIC])
    p = t["config"].map(lambda c: c.get("dropout")).astype(float)
    if p.nunique() > 2 and t[BEST_METRIC].nunique() > 1:
        rho, pv = spearmanr(p, t[BEST_METRIC])
        a.text.append(f"Trend: Spearman correlation of dropout p with best {METRIC} is {rho:+.2f} (p-value {pv:.2f}"
                      f"{', no monotone trend' if pv > 0.05 else ''}).")
    last = exp.epochs.sort_values(EPOCH).groupby("trial_id").tail(1).set_index("trial_id")
    gap = (last[TRAIN_ACCURACY] - last[VAL_ACCURACY]).reindex(t["trial_id"]).to_numpy()
    by_p = pd.Series(gap, index=p.to_numpy()).groupby(level=0).mean()
    a.text.append("Train minus validation accuracy at the last epoch (over-fitting gap) by p: "
                  + ", ".join(f"{k:g}: {v:+.3f}" for k, v in by_p.items()) + ".")


def _within(exp: Experiment, budgets: list[int]) -> pd.DataFrame:
    rows = []
    for _, t in exp.trials.iterrows():
        e = exp.epochs[exp.epochs["trial_id"] == t["trial_id"]]
        row = {"trial": t["label"]}
        for b in budgets:  # undefined when the trial stopped before b epochs
            row[f"best in first {b}"] = e.loc[e[EPOCH] <= b, METRIC].max() if t["epochs_run"] >= b else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def optimizers(exp: Experiment, noise, a: Answer, out: Path) -> None:
    t = exp.trials.dropna(subset=[BEST_METRIC]).copy()
    t["lr_value"] = t["config"].map(lambda c: float(c["lr"]))
    piv = t.pivot_table(index="optimizer", columns="lr_value", values=BEST_METRIC, aggfunc="mean")
    best = t.loc[t[BEST_METRIC].idxmax()]
    per = t.loc[t.groupby("optimizer")[BEST_METRIC].idxmax()].sort_values(BEST_METRIC, ascending=False)
    if t[BEST_METRIC].nunique() == 1:
        a.text.append(f"Every optimizer and learning rate reaches the same best {METRIC} ({best[BEST_METRIC]:.4f}): "
                      f"this grid shows no winner.")
    else:
        a.text.append(f"Best: {best['optimizer']} at lr {best['lr_value']:g} (best {METRIC} {best[BEST_METRIC]:.4f}).")
    a.text.append("Each optimizer at its best learning rate: " + ", ".join(
        f"{r['optimizer']} {r[BEST_METRIC]:.4f} (lr {r['lr_value']:g})" for _, r in per.iterrows()) + ".")
    if len(per) > 1:
        d = per[BEST_METRIC].iloc[0] - per[BEST_METRIC].iloc[1]
        a.text.append(f"Best vs runner-up optimizer: {d:+.4f}, {verdict(d, noise, int(exp.meta.get('n_val') or 0))}.")
    lr_range = (piv.max(axis=1) - piv.min(axis=1)).max()
    between = per[BEST_METRIC].max() - per[BEST_METRIC].min()
    a.text.append(f"Learning rate vs optimizer: within one optimizer best {METRIC} varies by up to {lr_range:.4f} "
                  f"across learning rates, against {between:.4f} between optimizers at their best rates.")
    a.tables.append((f"Best {METRIC} per optimizer (rows) and learning rate (columns)", piv.reset_index()))
    m = exp.max_epochs
    budgets = ([b for b in exp.meta.get("epoch_budgets") or [] if b <= m]  # the study's E, within what ran
               or sorted({max(1, round(m / 3)), max(1, round(2 * m / 3)), m}))
    w = _within(exp, budgets)
    a.tables.append((f"Best {METRIC} within the first E epochs (blank: the trial stopped before E)", w))
    for b in budgets:
        col = w[f"best in first {b}"]
        if col.notna().any():
            i, n_tie = col.idxmax(), int((col == col.max()).sum())
            a.text.append(f"Within the first {b} epoch(s): best {w.loc[i, 'trial']} ({col[i]:.4f}"
                          + (f", tied with {n_tie - 1} other(s)" if n_tie > 1 else "")
                          + f"; {col.notna().sum()} trials ran that long).")
    for b0, b1 in zip(budgets, budgets[1:]):
        both = w[[f"best in first {b0}", f"best in first {b1}"]].dropna()
        if len(both):
            gain = (both.iloc[:, 1] - both.iloc[:, 0]).mean()
            a.text.append(f"From {b0} to {b1} epochs, the trials that ran {b1} gain {gain:+.4f} on average.")
    path = heatmap_figure(piv, "learning rate", f"best {METRIC}", out / f"optimizer_lr_{exp.name}.png")
    a.figures.append((f"{exp.name}: best {METRIC} by optimizer and learning rate", path))


def early_stopping(exp: Experiment, noise, a: Answer) -> None:
    rows = []
    for _, t in exp.trials.iterrows():
        e = exp.epochs[exp.epochs["trial_id"] == t["trial_id"]].sort_values(EPOCH)
        if not len(e):
            continue
        pk = e.loc[e[METRIC].idxmax()]
        lo = e.loc[e[VAL_LOSS].idxmin()]
        rows.append({"trial": t["label"], "patience": t["config"].get("early_stopping_patience", 0),
                     "epochs run": int(e[EPOCH].max()), "peak epoch": int(pk[EPOCH]), f"peak {METRIC}": pk[METRIC],
                     f"last {METRIC}": e[METRIC].iloc[-1], "drop after peak": pk[METRIC] - e[METRIC].iloc[-1],
                     "min val loss epoch": int(lo[EPOCH]), "min val loss": lo[VAL_LOSS],
                     "val loss rise": e[VAL_LOSS].iloc[-1] - lo[VAL_LOSS]})
    df = pd.DataFrame(rows)
    if not len(df):
        return
    off = df[df["patience"] == 0] if (df["patience"] == 0).any() else df
    n_val = int(exp.meta.get("n_val") or 0)
    drop = off["drop after peak"].mean()
    a.text.append(f"Without early stopping ({len(off)} runs of {exp.max_epochs} epochs): {METRIC} peaks at epoch "
                  f"{off['peak epoch'].median():.0f} (median; runs: {', '.join(str(x) for x in off['peak epoch'])}) and ends "
                  f"{drop:.4f} below its peak on average at the last epoch: {verdict(drop, noise, n_val)}. Validation loss "
                  f"bottoms at epoch {off['min val loss epoch'].median():.0f} (median) and rises "
                  f"{off['val loss rise'].mean():.4f} by the end"
                  + (" (more than 5% above its minimum: over-fitting sets in there)."
                     if off["val loss rise"].mean() > 0.05 * off["min val loss"].mean()
                     else " (within 5% of its minimum: flat)."))
    for p, g in df[df["patience"] > 0].groupby("patience"):
        d = g[f"peak {METRIC}"].mean() - off[f"peak {METRIC}"].mean()
        a.text.append(f"Patience {p}: stops after {g['epochs run'].mean():.1f} epochs on average (of {exp.max_epochs}); "
                      f"its kept best {METRIC} {g[f'peak {METRIC}'].mean():.4f} vs {off[f'peak {METRIC}'].mean():.4f} without "
                      f"({d:+.4f}, {verdict(d, noise, n_val)}); it saves the epochs, while keeping the best epoch's "
                      f"weights already guards against the late drop.")
    a.tables.append(("Peak epoch and deterioration after it, per trial", df))


def seed_spread_answer(exp: Experiment, noise, a: Answer, out: Path) -> None:
    v = exp.trials[BEST_METRIC].dropna()
    a.text.append(f"Best {METRIC} over {len(v)} seeds: {v.mean():.4f} ± {v.std(ddof=1) if len(v) > 1 else 0:.4f} "
                  f"(min {v.min():.4f}, max {v.max():.4f}); differences elsewhere smaller than this std are noise.")


def _keys(exp: Experiment) -> list[str]:
    return [k for k in exp.searched if k != "seed"]


def compare_answer(exp: Experiment, noise, a: Answer, out: Path) -> None:
    compare_to_reference(exp, _keys(exp), noise, a)


def factors_answer(exp: Experiment, noise, a: Answer, out: Path) -> None:
    """A grid of several factors: the comparison with the seed's settings, then each factor's mean over the others."""
    compare_to_reference(exp, _keys(exp), noise, a)
    if len(_keys(exp)) >= 2:
        recipe_extra(exp, _keys(exp), a)


def dropout_answer(exp: Experiment, noise, a: Answer, out: Path) -> None:
    compare_to_reference(exp, _keys(exp), noise, a)
    dropout_extra(exp, a)


def cost_answer(res: Results, exp: Experiment, noise, a: Answer, out: Path) -> None:
    """One budget experiment: its epoch budgets; the family's last experiment in the tree adds the front over all."""
    rows = budget.budget_rows(exp)
    if len(rows):
        a.tables.append((f"{exp.name}: best {METRIC} within E epochs and its train seconds", rows))
    family = [e for e in res.experiments if answer_name(e) == "cost"]
    if exp is not family[-1]:
        return
    df = budget.configurations(family)
    if not len(df):
        return
    cheap, dear, n = budget.seeds_for_one(df)
    best = df.loc[df[METRIC].idxmax()]
    front = df[df["on front"]]
    a.text.append(f"Pareto front of {METRIC} against train seconds ({len(df)} configurations): " + ", ".join(
        f"{r.resolution} px x {r.epochs} ep {getattr(r, METRIC):.4f} in {r.train_seconds:.0f} s" for r in
        front.itertuples()) + ".")
    a.text.append(f"Best mean score: {best['resolution']:.0f} px x {best['epochs']:.0f} epochs, {best[METRIC]:.4f} "
                  f"(seed std {best[f'{METRIC} std']:.4f}) in {best[TRAIN_SECONDS]:.0f} s. {n} runs of the cheapest point of "
                  f"the front ({cheap['resolution']:.0f} px x {cheap['epochs']:.0f} ep, {cheap[TRAIN_SECONDS]:.0f} s) fit "
                  f"the train seconds of one run at {dear['resolution']:.0f} px x {dear['epochs']:.0f} ep "
                  f"({dear[TRAIN_SECONDS]:.0f} s).")
    a.tables.append(("Budget: every resolution x epochs, means over seeds", df))
    a.figures.append(("Selection score against train cost (the budget question)",
                      budget.front_figure(df, out / "budget_front.png")))


# The answer a search space names (study.tune.space.SearchSpace.answer, in study.json as "answer").
ANSWERS = {"seed_spread": seed_spread_answer, "confirmation": seed_spread_answer, "compare": compare_answer,
           "factors": factors_answer, "dropout": dropout_answer,
           "optimizers": optimizers,
           "early_stopping": lambda exp, noise, a, out: early_stopping(exp, noise, a)}
NEEDS_TREE = {"cost": cost_answer}  # answers that read the other experiments of the tree too


def answer_name(exp: Experiment) -> str:
    """The experiment's answer: the one its study.json records; a tree from before that was recorded takes
    the answer its search space names today (a space no longer known: the plain comparison)."""
    if exp.meta.get("answer") in ANSWERS or exp.meta.get("answer") in NEEDS_TREE:
        return exp.meta["answer"]
    try:
        return search_spaces.load(exp.name).answer
    except UserError:
        return "seed_spread" if not _keys(exp) else "compare"


def answer(res: Results, exp: Experiment, out: Path) -> Answer:
    noise, src = seed_spread(res, exp)
    a = Answer([_generic(exp, noise, src)])
    if not exp.trials[BEST_METRIC].notna().any():
        return a
    name = answer_name(exp)
    if not _keys(exp) and name != "seed_spread" and name not in NEEDS_TREE:
        name = "seed_spread"  # nothing but seeds searched
    if name in NEEDS_TREE:
        NEEDS_TREE[name](res, exp, noise, a, out)
    else:
        ANSWERS[name](exp, noise, a, out)
    return a
