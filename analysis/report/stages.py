"""The report's stages, in the order of work: the experiments (curves, answers, importance), the selection
and its thresholds (on validation), the ensembles of the study's models (on the stress validation), and
the test split, read once after all of that is fixed (analysis.test_eval). Each stage adds its section to
the report (`Report.body`) and its tables and figures to what `--wandb` logs. Inference only.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from analysis import card, decision, ensemble
from analysis import thresholds as athreshold  # module attribute calls: tests can spy on choose_threshold
from analysis.answers import answer
from analysis.figures import bar_figure, convergence_figure
from analysis.importance import estimate
from analysis.log import log
from analysis.report import sections
from analysis.report.render import Doc
from analysis.results.load import TRAIN_SECONDS, Results, load_experiment
from analysis.selection import choose
from analysis.test_eval import Selection, run_test
from study.engine import checkpoint as ckpt_io
from study.engine.device import pick_device
from study.engine.infer import predictor_from
from study.engine.metrics import multiclass_metrics
from study.errors import UserError
from study.names import BEST_METRIC, CONFIRM_PREFIX, EARLY_STOPPED, FINISHED, TASK_OF_TITLE, TASK_TITLES, TASKS
from study.tune.ranking import config_key


@dataclass
class Report:
    """What the stages share: the tree, where the report goes, and what they have built so far."""
    res: Results
    out: Path
    data: str | None                   # --data, else each experiment's recorded data root
    views: tuple | None                # test-time views for the ensembles (--tta)
    trials: pd.DataFrame = None
    body: Doc = field(default_factory=lambda: Doc(""))
    figures: list = field(default_factory=list)
    tables: dict = field(default_factory=dict)
    cache: dict = field(default_factory=dict)   # prepared data per data configuration
    selections: list = field(default_factory=list)
    choice: object = None              # the binary Choice (analysis.selection), or None
    choice3: object = None
    headline: float | None = None
    tests: list = field(default_factory=list)

    def root_of(self, row) -> str | None:
        return self.data or self.res.get(row["experiment"]).meta.get("data_root")


def experiments(r: Report) -> None:
    for exp in r.res.experiments:
        log(f"{exp.name}: figures and answers ...")
        fig = convergence_figure(exp, r.out)
        ans = answer(r.res, exp, r.out)
        imp, imp_fig = _importance(exp.trials, exp.searched, exp.name, r.out)
        sections.experiment_section(r.body, exp, ans, imp, fig, imp_fig)
        r.figures += [fig, *(p for _, p in ans.figures), *([imp_fig] if imp_fig else [])]
        r.tables.update({f"{exp.name}: {cap}": df for cap, df in ans.tables})
    binary = [e for e in r.res.experiments if e.num_classes == 2 and not e.name.startswith(CONFIRM_PREFIX)]
    if len(binary) > 1:
        keys = sorted({k for e in binary for k in e.searched})
        imp, imp_fig = _importance(r.trials[r.trials["num_classes"] == 2], keys, "all binary experiments", r.out)
        sections.importance_section(r.body, imp, imp_fig)
        r.figures += [imp_fig] if imp_fig else []


def selection(r: Report) -> None:
    """The configuration with the highest mean selection score per task, its thresholds on validation, and
    the seed recipe's control."""
    r.choice, r.choice3 = choose(r.trials, 2), choose(r.trials, 3)
    for line in sections.damaged_section(r.body, r.res):
        log(line)
    sections.failures_section(r.body, r.trials)
    sections.overall_section(r.body, r.trials, r.choice)
    if r.choice is not None:
        selected = r.choice.row
        log(f"selected {selected['experiment']}: {selected['config_label']}; choosing thresholds on validation ...")
        sel, vp, f1_t, table, r.headline, stress_table = _thresholds(r, TASK_TITLES[2], selected)
        pr = athreshold.pr_figure(vp.y, vp.probs, table, f1_t, out=r.out / "threshold_pr.png",
                                  title=f"Validation: {selected['experiment']} / {selected['label']}")
        sections.threshold_section(r.body, f1_t, r.headline, table, stress_table, pr, vp, float(selected[BEST_METRIC]))
        r.figures.append(pr)
        r.tables.update({"threshold (validation)": table, "threshold (stress validation)": stress_table})
        r.selections.append(replace(sel, **_models(r.res, r.choice, TASKS[2])))
        control = _seed_recipe_control(r)
        if control is not None:  # the seed's own recipe, evaluated beside the winner (issue 11)
            sel = _thresholds(r, "binary control: the seed's recipe", control.row)[0]
            r.selections.append(replace(sel, models=tuple(control.checkpoints),
                                        models_from=f"the baseline experiment's {len(control.checkpoints)} seed(s)"))
    if r.choice3 is not None:
        three = r.choice3.row
        vp3 = athreshold.validation_predictions(three["checkpoint"], r.root_of(three), r.cache)
        sections.three_class_section(r.body, three, multiclass_metrics(vp3.y, vp3.probs), vp3.description)
        r.selections.append(Selection(TASK_TITLES[3], three["experiment"], three["trial_id"], vp3.cfg, {}, r.root_of(three),
                                      **_models(r.res, r.choice3, TASKS[3])))


def ensembles(r: Report) -> None:
    gate = None
    for task, ch in ((TASK_TITLES[2], r.choice), (TASK_TITLES[3], r.choice3)):
        if ch is not None:
            log(f"{task}: ensemble selection from the study's kept models ...")
            sel, gate = _ensemble(r, ch.row, task, gate)
            r.selections.append(sel)


def test_split(r: Report, test: bool) -> None:
    if r.selections and test:
        log("selection fixed; the test split, once ...")
        r.tests = run_test(r.selections)
        for t in r.tests:
            if t.summary is not None:
                r.tables[f"test {t.selection.task}"] = t.summary
    if r.selections:
        sections.test_section(r.body, r.tests, test)
    card.section(r.body, r.tests)


def _importance(trials, keys, scope, out):
    imp = estimate(trials, keys, scope)
    fig = None
    if imp.importance:
        fig = bar_figure(imp.importance, imp.importance_std, f"{scope}: permutation importance for {BEST_METRIC}",
                         "drop in R^2 when shuffled", out / f"importance_{scope.replace(' ', '_')}.png")
    return imp, fig


def _thresholds(r: Report, task: str, row):
    """-> (Selection with both thresholds, predictions, F1 threshold, its table, headline threshold, its table)."""
    vp = athreshold.validation_predictions(row["checkpoint"], r.root_of(row), r.cache)
    f1_t, table = athreshold.choose_threshold(vp.y, vp.probs)
    headline, stress_table = athreshold.headline_threshold(vp.y_stress, vp.probs_stress)
    sel = Selection(task, row["experiment"], row["trial_id"], vp.cfg,
                    {athreshold.F1_RULE: f1_t, athreshold.HEADLINE_RULE: headline}, r.root_of(row))
    return sel, vp, f1_t, table, headline, stress_table


def _ensemble(r: Report, row, task: str, gate: dict | None):
    """Caruana's ensemble selection over the tree's kept models that share `row`'s data (analysis.ensemble),
    written to OUT/ensemble-TASK.pt (the one model-file format). Binary: its headline threshold is chosen on its
    own stress-validation probabilities, and the file (with that threshold) is the gate of the 3-class
    two-stage decision. 3-class with a gate: analysis.decision picks argmax or two stages on the stress
    validation; the file holds the gate when two stages win. -> (its Selection for the test split, the gate)."""
    root = r.root_of(row)
    rows = ensemble.library_rows(r.trials, row)
    lib = ensemble.library(list(rows["checkpoint"]), [f"{e} / {t}" for e, t in zip(rows["experiment"], rows["trial_id"])],
                           root, r.cache, r.views)
    ens = ensemble.select(lib)
    body_ckpt, thresholds = ens.checkpoint(), {}
    if lib.num_classes == 2:
        headline, _ = athreshold.headline_threshold(lib.y_stress, ens.probs(True))
        thresholds = {athreshold.HEADLINE_RULE: headline}
        body_ckpt["release"] = {"threshold": headline, "threshold_rule": athreshold.HEADLINE_RULE}
        gate = body_ckpt
    path = r.out / f"ensemble-{TASK_OF_TITLE[task]}.pt"
    sections.ensemble_section(r.body, task, ens, thresholds, path)
    if len(lib.names) > 1:  # ensemble size against cost, from the same library and predictions
        curve = ensemble.size_curve(lib, list(rows[TRAIN_SECONDS]), athreshold.prepared(root, lib.cfg, r.cache).val.images)
        fig = ensemble.size_figure(curve, f"Ensemble size against cost ({task})",
                                   r.out / f"ensemble_size_{TASK_OF_TITLE[task]}.png")
        r.tables[f"ensemble size {task}"] = curve
        sections.ensemble_size_section(r.body, task, curve, fig)
    if lib.num_classes == 3 and gate is not None:
        device = pick_device()
        d = decision.compare(predictor_from(body_ckpt, device), predictor_from(gate, device, "gate"), root, r.cache)
        sections.decision_section(r.body, d)
        if d.chosen == "two-stage":
            body_ckpt = ckpt_io.ensemble(ckpt_io.members(body_ckpt), lib.views, body_ckpt["selection"], gate=gate)
    ckpt_io.save(path, body_ckpt)
    return Selection(f"{task} ensemble", "ensemble", f"{len(ens.chosen)} of {len(lib.names)} models",
                     lib.cfg, thresholds, root, models=(str(path),),
                     models_from=f"the ensemble selected above ({path.name}: {len(ens.chosen)} members, weights by picks"
                                 + ("; two-stage decision with the binary ensemble" if "gate" in body_ckpt else "") + ")",
                     views=lib.views), gate


def _seed_recipe_control(r: Report):
    """The baseline experiment's configuration (the seed network and recipe) as a Choice, unless it is the selection."""
    if r.res.get("baseline") is None or r.choice.row["experiment"] == "baseline":
        return None
    return choose(r.trials[r.trials["experiment"] == "baseline"], 2)


def _models(res, choice, task: str) -> dict:
    """The models the test split scores for a chosen configuration: the confirmation stage's (fresh seeds,
    every one that finished) when the study ran it for this configuration, else the configuration's own
    trials. Given one experiment's folder, the study's confirmation stage is looked for beside it."""
    conf = res.get(CONFIRM_PREFIX + task)
    if conf is None:
        where = res.get(choice.row["experiment"]).path.rstrip("/")
        try:
            conf = load_experiment(posixpath.join(posixpath.dirname(where), CONFIRM_PREFIX + task))
        except (UserError, OSError):
            conf = None
    why = "no confirmation stage in this study"
    if conf is not None:
        ok = conf.trials[conf.trials["status"].isin([FINISHED, EARLY_STOPPED]) & (conf.trials["checkpoint"] != "")]
        if len(ok) and {config_key(c) for c in ok["config"]} == {config_key(choice.row["config"])}:
            seeds = sorted(int(c["seed"]) for c in ok["config"])
            return {"models": tuple(ok["checkpoint"]),
                    "models_from": f"the confirmation stage ({conf.name}): the configuration retrained with seeds "
                                   f"{', '.join(map(str, seeds))}, which took no part in selection"}
        why = (f"the confirmation stage ({conf.name}) retrained another configuration" if len(ok)
               else f"the confirmation stage ({conf.name}) has no finished trial")
    n = len(choice.checkpoints)
    return {"models": tuple(choice.checkpoints),
            "models_from": f"the configuration's own {n} trial(s) ({why}: these are the seeds selection saw, so the "
                           f"figures are optimistic)"}
