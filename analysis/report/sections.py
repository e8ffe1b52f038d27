"""The report's sections, as blocks of an analysis.report.render.Doc (no computation beyond formatting)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.answers import Answer, epoch
from analysis.bootstrap import describe_bootstrap
from analysis.importance import Importance
from analysis.report.render import Doc
from analysis.results.load import AT_BEST, BEST_EPOCH, LAST, Experiment
from analysis.test_eval import TestResult
from study import evidence
from study.data.layout import CLASSES
from study.names import (
    BEST_METRIC,
    DAMAGED,
    DIVERGED,
    ERROR_MESSAGE,
    ERRORED,
    METRIC,
    VAL_ACCURACY,
    VAL_AUC,
    VAL_F1,
    VAL_SHIFT_AUC,
)

# Published figures on the official Kaggle test split (624 images: 234 normal, 390 pneumonia).
SEED_NOTEBOOK = {"source": "seed notebook (published, as printed)", "accuracy": 0.9038, "precision": 0.8141,
                 "recall": 0.8060, "specificity": None, "f1": 0.8557, "auc": None, "threshold": "0.40 (chosen on test)"}
KERMANY = {"source": "Kermany et al. 2018, Cell (published)", "accuracy": 0.928, "precision": None, "recall": 0.932,
           "specificity": 0.901, "f1": None, "auc": 0.968, "threshold": "not stated"}
ANCHOR_SPLIT = "official Kaggle test/ (624 images)"
WHY_NOT_TEST = ("Thresholds are chosen on validation data, never on the test split: the seed notebook picked "
                "0.40 by looking at test-set F1, which makes the test set part of model fitting and inflates the F1 it "
                "then reports on that same test set. Here the test split is read once, after the configuration and the "
                "thresholds are fixed.")
WHY_STRESS = (f"Selection score: {METRIC}, balanced accuracy on the stress validation (the validation images under "
              "other processing, exposure, framing, detector and lossy archiving; study/data/stress.py STRESS). "
              f"{evidence.WHY_STRESS} Plain validation figures are shown beside it for every trial.")


def experiment_section(doc: Doc, exp: Experiment, ans: Answer, imp: Importance, fig: Path, imp_fig: Path | None) -> None:
    m = exp.meta
    doc.h(2, f"Experiment: {exp.name}")
    doc.p(f"**Question.** {m.get('question', '')}")
    asha = exp.asha
    doc.p(f"Searched: `{', '.join(exp.searched) or 'nothing'}`; {len(exp.trials)} trials, budget {exp.max_epochs} epochs "
          f"each; {int(exp.trials['epochs_run'].sum())}/{int(exp.trials['epoch_budget'].sum())} epochs run; scheduler: "
          + (f"ASHA (grace {asha.get('grace_period')}, reduction factor {asha.get('reduction_factor')}), "
             f"{int(exp.trials['stopped_by_asha'].fillna(False).astype(bool).sum())} trial(s) stopped by it"
             if asha else "none (every trial runs its budget)")
          + f"; early-stopped (patience): {int(exp.trials['early_stopped'].sum())}. Data: {m.get('data', '?')}.")
    if m.get("wandb"):
        doc.p(f"W&B: project `{m['wandb'].get('project')}`, group `{m['wandb'].get('group')}` (one run per trial).")
    doc.h(3, "Answer (generated from the trials)")
    doc.bullets(ans.text)
    for cap, df in ans.tables:
        doc.table(df, cap)
    doc.h(3, "Trials")
    cols = ["trial_id", *exp.searched, "status", "epochs_run", "stopped_by_asha", "early_stopped", BEST_EPOCH, BEST_METRIC,
            VAL_SHIFT_AUC + AT_BEST, VAL_ACCURACY + AT_BEST, VAL_AUC + AT_BEST, VAL_F1 + AT_BEST, VAL_ACCURACY + LAST]
    t = exp.trials[[c for c in cols if c in exp.trials]].sort_values(BEST_METRIC, ascending=False)
    if not asha:
        t = t.drop(columns=["stopped_by_asha"])
    doc.table(t, f"{exp.name}: every trial, best first ({BEST_METRIC}: the selection score at the kept epoch; "
                 f"*{AT_BEST}: stress and plain validation figures of that epoch; *{LAST}: the last epoch run)")
    doc.img(fig, f"{exp.name}: loss and accuracy per epoch, one line per trial"
            + ("; dashed lines ending in x: stopped by ASHA" if asha else ""))
    for cap, path in ans.figures:
        doc.img(path, cap)
    importance_section(doc, imp, imp_fig, level=3)
    with_doc = (m.get("doc") or "").strip()
    if with_doc:
        doc.h(3, "Search space (from its module docstring)")
        doc.pre(with_doc)


def importance_section(doc: Doc, imp: Importance, fig: Path | None, level: int = 2) -> None:
    doc.h(level, f"Which hyperparameters mattered ({imp.scope})")
    doc.p(imp.note)
    if fig is not None:
        doc.img(fig, f"{imp.scope}: permutation importance of each hyperparameter for {BEST_METRIC} (mean ± std over repeats)")
    if len(imp.marginal):
        doc.table(imp.marginal, f"{imp.scope}: {BEST_METRIC} per value of each hyperparameter")


def failures_section(doc: Doc, trials: pd.DataFrame) -> None:
    """Every errored and every diverged trial, with its error: neither is ever selected."""
    doc.h(2, "Errored and diverged trials")
    bad = trials[trials["status"].isin([ERRORED, DIVERGED])] if "status" in trials else trials.iloc[:0]
    if not len(bad):
        doc.p("None: every trial finished (ran its budget, or was stopped by ASHA or by early stopping).")
        return
    n_err, n_div = int((bad["status"] == ERRORED).sum()), int((bad["status"] == DIVERGED).sum())
    doc.p(f"{n_err} trial(s) errored (crashed after their retries, or could not run) and {n_div} diverged (a "
          f"non-finite loss or weight ended them). Neither kind has a {BEST_METRIC} here, so none is ever selected; "
          f"their epochs before the end are in the convergence figures.")
    doc.table(bad[["experiment", "trial_id", "label", "status", "epochs_run", ERROR_MESSAGE]],
              "Errored and diverged trials, with the last line of each error")


def damaged_section(doc: Doc, res) -> list[str]:
    """Trials whose result files are cut short or unreadable, and trial folders study.json counts that are not
    there: listed, never read as a shorter run or a scheduler's decision. -> one warning line per experiment."""
    rows, lines = [], []
    for e in res.experiments:
        bad = e.trials[e.trials["status"] == DAMAGED]
        rows += [{"experiment": e.name, "trial": t["trial_id"], "what": t[ERROR_MESSAGE]} for _, t in bad.iterrows()]
        rows += [{"experiment": e.name, "trial": m, "what": "missing: study.json counts it, its folder is not there"}
                 for m in e.missing]
        if len(bad) or e.missing:
            lines.append(f"warning: {e.name}: {len(bad)} damaged trial(s), {len(e.missing)} missing; they are listed in "
                         f"the report's 'Damaged or missing trials' section and never selected")
    if rows:
        doc.h(2, "Damaged or missing trials")
        doc.note("These trials' files are cut short, unreadable or gone (a killed run, a partial copy): they have no "
                 "selection score here and are never selected. Restore the files, or --resume the study to rerun them.")
        doc.table(pd.DataFrame(rows), "Damaged or missing trials")
    return lines


def overall_section(doc: Doc, trials: pd.DataFrame, choice) -> None:
    doc.h(2, "Best configuration per experiment and overall")
    ok = trials.dropna(subset=[BEST_METRIC])
    if not len(ok):
        doc.p("No trial reported a result.")
        return
    best = ok.loc[ok.groupby("experiment")[BEST_METRIC].idxmax()]
    doc.table(best[["experiment", "trial_id", "label", "num_classes", BEST_EPOCH, BEST_METRIC, VAL_ACCURACY + AT_BEST,
                    VAL_SHIFT_AUC + AT_BEST, VAL_F1 + AT_BEST]], f"Best single trial of each experiment by {BEST_METRIC}")
    if choice is None:
        doc.p("No binary trial with a checkpoint: no threshold or binary test evaluation.")
        return
    sel = choice.row
    doc.p(f"**Selected (binary configuration with the highest mean {BEST_METRIC} over its seeds):** "
          f"{sel['experiment']}: {sel['config_label']}, mean {choice.table.iloc[0][f'mean {BEST_METRIC}']:.4f} over "
          f"{choice.seeds} seed(s). Its best seed's trial {sel['trial_id']} ({BEST_METRIC} {sel[BEST_METRIC]:.4f} at "
          f"epoch {epoch(sel[BEST_EPOCH])}) gives the checkpoint used below: `{sel['checkpoint']}`.")
    doc.p(choice.note())
    doc.table(choice.table.head(12), f"Binary configurations ranked by mean {BEST_METRIC} over seeds (top 12), with the "
              f"plain validation accuracy they would have been ranked on before")
    plain, shift = ok[VAL_ACCURACY + AT_BEST], ok[BEST_METRIC]
    both = pd.concat([plain, shift], axis=1).dropna()
    if len(both) >= 4 and both.nunique().min() > 1:
        rho = both.corr(method="spearman").iloc[0, 1]
        doc.p(f"Over {len(both)} trials, plain validation accuracy and the selection score ({BEST_METRIC}) rank trials "
              f"with Spearman {rho:+.2f}: " + ("they largely agree here." if rho > 0.8 else
                                               "they disagree: selecting on plain accuracy would pick other trials."))


def threshold_section(doc: Doc, f1_t: float, headline: float, table: pd.DataFrame, stress_table: pd.DataFrame,
                      fig: Path, vp, recorded: float) -> None:
    doc.h(2, "Decision thresholds (chosen on validation)")
    doc.note(WHY_NOT_TEST)
    doc.p(f"Validation data: {vp.description}. The selected checkpoint re-evaluated: {METRIC} "
          f"{vp.metrics[METRIC]:.4f} (the study recorded {recorded:.4f}"
          + ("; they match" if abs(vp.metrics[METRIC] - recorded) < 1e-6 else
             "; they differ: is --data the data set the study ran on? (bf16 on a GPU can also shift a prediction)")
          + f"), plain validation accuracy {vp.metrics[VAL_ACCURACY]:.4f} at 0.5. Always predicting pneumonia would "
          f"score accuracy {vp.y.mean():.4f} on the plain validation split.")
    row = lambda t, col, tab: tab.loc[tab["threshold"] == t, col].iloc[0]
    coarse = " With so few validation images many thresholds tie and the choice is coarse." if len(vp.y) < 200 else ""
    doc.p(f"**Q2 answer: best F1 at {f1_t:.2f}** on the plain validation split (F1 {row(f1_t, 'f1', table):.4f}; ties go "
          f"to the threshold nearest 0.5).{coarse}")
    doc.p(f"**Headline threshold: {headline:.2f}**, the best Youden's J (sensitivity + specificity - 1) on the stress "
          f"validation (J {row(headline, 'youden_j', stress_table):.4f}, sensitivity "
          f"{row(headline, 'recall', stress_table):.4f}, specificity {row(headline, 'specificity', stress_table):.4f}). "
          f"J does not depend on the share of pneumonia, which differs between train "
          f"({evidence.pct(evidence.PNEUMONIA_SHARE_TRAIN)}) and the official test split "
          f"({evidence.pct(evidence.PNEUMONIA_SHARE_TEST)}); F1 ignores true negatives and on a pneumonia-heavy split "
          f"drifts to thresholds that give away specificity. The test section reports both, and 0.5.")
    doc.table(table, "Plain validation: precision, recall, specificity, F1, Youden's J at 17 thresholds (0.10 ... 0.90)")
    doc.table(stress_table, "Stress validation: the same at 17 thresholds (the headline threshold is chosen here)")
    doc.img(fig, "Validation precision-recall curve; the 17 thresholds coloured and labelled by F1; red ring: best F1")


def three_class_section(doc: Doc, row: pd.Series, val: dict, desc: str) -> None:
    doc.h(2, "Three classes: normal / bacterial / viral (validation)")
    doc.p(f"Best 3-class trial: {row['experiment']} / {row['trial_id']}: {row['label']} ({BEST_METRIC} "
          f"{row[BEST_METRIC]:.4f}). Its checkpoint on the validation split ({desc}): accuracy {val['accuracy']:.4f}, "
          f"macro-F1 {val['macro_f1']:.4f}.")
    doc.table(pd.DataFrame({"class": CLASSES, "precision": [val["precision"][c] for c in CLASSES],
                            "recall": [val["recall"][c] for c in CLASSES], "images": [val["support"][c] for c in CLASSES]}),
              "Per-class precision and recall (validation)")
    doc.table(confusion_frame(val["confusion"]), "Confusion matrix (validation; rows: true class, columns: predicted)")


def confusion_frame(cm) -> pd.DataFrame:
    return pd.DataFrame([[f"true {c}", *row] for c, row in zip(CLASSES, cm)], columns=["", *[f"pred {c}" for c in CLASSES]])


def test_section(doc: Doc, results: list[TestResult], test: bool) -> None:
    doc.h(2, "Test evaluation (once, after selection)")
    if not test:
        doc.p("Skipped (--no-test): the report stops at validation.")
        return
    for r in results:
        sel = r.selection
        doc.h(3, f"{sel.task}: {sel.experiment} / {sel.trial_id}")
        if r.error:
            doc.note(f"No test split: {r.error}. The report stops at validation for this model.")
            continue
        doc.p(f"Test split: **{r.description}**, {r.n_images} images ("
              + ", ".join(f"{c} {n}" for c, n in r.class_counts.items())
              + (f"; always predicting pneumonia scores accuracy {1 - r.class_counts['normal'] / r.n_images:.4f}"
                 if sel.cfg.num_classes == 2 else "") + "). Read once, after the configuration"
              + (" and the thresholds (" + ", ".join(f"{v:.2f}: {k}" for k, v in sel.thresholds.items())
                 + ") were" if sel.thresholds else " was")
              + f" fixed. Models scored: {sel.models_from}; each keeps its best epoch by {METRIC}, and each predicts "
              f"the test images (inference only: the report trains nothing).")
        doc.table(r.scored, "The models scored on the test split (their own selection score on validation)")
        if sel.cfg.num_classes == 2:
            doc.table(r.summary, f"Test metrics over {len(r.seeds)} model(s): mean ± std (models) and 95% bootstrap interval")
            doc.p(describe_bootstrap(len(r.seeds)))
            doc.table(r.per_seed, "Per seed: metrics and confusion counts (tn, fp, fn, tp) at each threshold")
            anchors_section(doc, r)
        else:
            doc.table(r.summary, f"Test metrics over {len(r.seeds)} model(s) (mean ± std)")
            doc.table(r.per_seed, "Per model")
            doc.table(confusion_frame(r.confusion), f"Confusion matrix summed over {len(r.seeds)} model(s) (rows: true)")


def _mean_ci(r: TestResult, metric: str, t: float) -> str:
    row = r.summary[r.summary["metric"] == metric].iloc[0]
    return f"{row[f'at {t:.2f}: mean ± std']} {row[f'at {t:.2f}: 95% CI']}"


def anchors_section(doc: Doc, r: TestResult) -> None:
    doc.h(3, "Side by side with the published anchors")
    keys = ("accuracy", "precision", "recall", "specificity", "f1", "auc")
    rows = [{"source": a["source"], "test split": ANCHOR_SPLIT, **{k: a[k] for k in keys}, "threshold": a["threshold"]}
            for a in (SEED_NOTEBOOK, KERMANY)]
    ts = r.selection.at()
    rule = {v: k for k, v in r.selection.thresholds.items()}
    for t in ts:
        rows.append({"source": f"this study, {len(r.seeds)} seed(s) (mean ± std [95% CI])", "test split": r.description,
                     **{k: _mean_ci(r, k, t) for k in keys},
                     "threshold": f"{t:.2f}" + (f" ({rule[t]})" if t in rule else "")})
    doc.table(pd.DataFrame(rows), "Test-set figures (recall = sensitivity)")
    doc.p("The seed notebook's printed precision 0.8141 and recall 0.8060 imply F1 0.8100, not the 0.8557 it reports; "
          "both are quoted as printed. Its threshold was chosen on the test set (see the threshold section).")
    if r.official:
        doc.p("Our figures are on the same official test split as the anchors, with the threshold chosen on validation; "
              "the anchors' test numbers were obtained with test-set choices, ours were not.")
    else:
        doc.note(f"Not directly comparable: the anchors are on the official Kaggle test split; ours are on {r.description}, "
                 f"a different and much smaller set of {r.n_images} images.")


def ensemble_section(doc: Doc, task: str, ens, thresholds: dict, path: Path) -> None:
    """The ensemble the report selected from the study's kept models: its members and weights, and the single
    best model against the ensemble on validation and the stress validation (the test split comes later)."""
    from analysis.ensemble import MAX_MEMBERS, MAX_PICKS, MIN_GAIN, RULE, figures
    lib = ens.lib
    doc.h(2, f"Ensemble of the study's models ({task}, chosen on the stress validation)")
    doc.p(f"Library: {len(lib.names)} kept model(s) of this tree that predict the selected configuration's validation "
          f"images ({lib.description}). Greedy forward selection with replacement (Caruana et al. 2004) on **{RULE}**, "
          f"from the single best model; at most {MAX_PICKS} rounds and {MAX_MEMBERS} distinct models, and a round counts "
          f"only if it lowers the rule by {MIN_GAIN:g}. It ran {len(ens.trace)} round(s) and kept {len(ens.chosen)} "
          f"model(s); test-time views: {', '.join(lib.views)}. Written to `{path}` (one model file: "
          f"`python -m study.predict --model {path.name} ...`, `python -m analysis.release {path.name} ...`).")
    own = [{"member": lib.names[i], "picks": int(ens.counts[i]), "weight": float(ens.weights[i]),
            **{f"own stress {k}": v for k, v in figures(lib.y_stress, lib.probs_stress[i], lib.num_classes).items()}}
           for i in ens.chosen]
    doc.table(pd.DataFrame(own), "Members, their weights (share of the picks) and their own stress-validation figures")
    rows = []
    for who in ("single best", "ensemble"):
        for split in ("validation", "stress validation"):
            name = ens.figures[who].get("name", f"{len(ens.chosen)} members")
            rows.append({"model": f"{who} ({name})", "data": split, **ens.figures[who][split]})
    doc.table(pd.DataFrame(rows), "Single best model (by the same rule) against the ensemble, at 0.5 / argmax; the "
              "plain validation split took no part in the selection")
    if thresholds:
        (rule, t), = thresholds.items()
        doc.p(f"The ensemble's headline threshold: **{t:.2f}** ({rule}, on the ensemble's own stress-validation "
              f"probabilities). The test section scores it once, with everything above fixed.")


def ensemble_size_section(doc: Doc, task: str, curve: pd.DataFrame, fig: Path) -> None:
    """analysis.ensemble.size_curve: the same selection from libraries of 1, 2, 4, ... of the models above."""
    from analysis.ensemble import FILMS, size_summary
    summary = size_summary(curve)
    doc.h(3, f"Ensemble size against cost ({task})")
    doc.p(f"The library above cut into disjoint blocks of 1, 2, 4, 8 and 16 models (as many blocks as fit, in the "
          f"library's order), each block selected by the same rule. Train seconds: the block's members' own, summed "
          f"(their epoch_seconds, on the machine and threads they ran with); predict seconds: the selected ensemble "
          f"over {FILMS} validation films (repeated to that count) on this machine, inference only.")
    doc.img(fig, "Stress-validation balanced accuracy of each block against its train seconds")
    doc.table(summary, "Per library size: the mean over its blocks (min and max of the stress balanced accuracy)")
    if len(summary) > 1:
        a, b = summary.iloc[0], summary.iloc[-1]
        doc.p(f"From {int(a['library'])} to {int(b['library'])} models: stress balanced accuracy "
              f"{a['stress_bacc']:.4f} -> {b['stress_bacc']:.4f} for {b['train_seconds'] / a['train_seconds']:.0f}x the "
              f"train seconds and {b['predict_seconds'] / max(a['predict_seconds'], 1e-9):.1f}x the predict seconds.")


def decision_section(doc: Doc, d) -> None:
    """The 3-class decision (analysis.decision): argmax against two stages, per-class recall on both splits."""
    from analysis.decision import RULE
    doc.h(2, "Three classes: which decision knows a normal film (validation and stress validation)")
    doc.p(f"Two decisions of the 3-class ensemble: its argmax, and two stages (the binary ensemble decides normal vs "
          f"pneumonia at its headline threshold, the 3-class ensemble bacterial vs viral among the films it calls "
          f"pneumonia). Chosen: **{d.chosen}** ({RULE}; the binary ensemble's stress specificity is "
          f"{d.gate_specificity:.4f}). The test section scores the chosen one.")
    rows = [{"decision": name, "data": split.replace("_", " "), "accuracy": m["accuracy"], "macro recall": m["macro_recall"],
             **{f"recall {c}": m["recall"][c] for c in CLASSES}} for name, f in d.figures.items() for split, m in f.items()]
    doc.table(pd.DataFrame(rows), "Per-class recall of both decisions on validation and the stress validation")
