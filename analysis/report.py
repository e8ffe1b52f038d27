"""Build the study report from a results tree (a folder or s3://...): HTML, Markdown, trials.csv and figures.

    python -m analysis.report RESULTS --out DIR [--data ROOT] [--no-test] [--wandb PROJECT]

prints progress on stderr and, at the end, the path of DIR/report.html on stdout. Writes
DIR/report.html (self-contained: figures embedded as base64 PNG), DIR/report.md, DIR/trials.csv
(one row per trial folder) and the figures as DIR/*.png.

RESULTS: one experiment (STORAGE/EXPERIMENT, e.g. results/quick) or a storage root holding
several, a local folder or where study.run's --storage wrote it (s3://BUCKET/PREFIX, gs://...,
read in place; only the checkpoints the report loads are copied here, to a temporary folder).
--data: the data set, a folder or an s3:// prefix copied once to the image cache (default: the
data_root each study.json recorded; none = the bundled sample). --no-test: stop at validation.
--wandb: also log the tables and figures as one W&B run. The report only reads results and runs
inference: the test figures come from the study's confirmation stage (study.run --confirm-seeds,
STORAGE/confirm-*), else from the selected configuration's own trials; it never trains.
Order of work: trials -> selection (mean selection score over seeds: balanced accuracy on the
stress validation) -> thresholds (best F1 on validation, the seed's Q2; headline: Youden's J on
the stress validation) -> the test split, read once (analysis.evaluate). A usage mistake prints
one `error: ...` line, exit 2.
"""
from __future__ import annotations

import posixpath
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from analysis.load import BEST_EPOCH, csv_frame, load_results
from analysis import progress
from analysis.progress import log as _log
from study import checks, cli
from study.config import BEST_METRIC, CONFIRM_PREFIX, METRIC
from study.errors import OK, UserError

if TYPE_CHECKING:
    from analysis.render import Doc




def _importance(trials, keys, scope, out):
    from analysis.curves import bar_figure
    from analysis.importance import estimate
    imp = estimate(trials, keys, scope)
    fig = None
    if imp.importance:
        fig = bar_figure(imp.importance, imp.importance_std, f"{scope}: permutation importance for {BEST_METRIC}",
                         "drop in R^2 when shuffled", out / f"importance_{scope.replace(' ', '_')}.png")
    return imp, fig


def build(results_dir: str, out: Path, data: str | None, test: bool, wandb_project: str | None,
          views: tuple[str, ...] | None = None) -> Path:
    out = checks.writable_folder("--out", out)  # a file, a read-only folder or mount: one line before any work
    progress.start()
    res = load_results(results_dir)  # usage mistakes surface here, before torch and friends are imported
    _log(f"read {results_dir}")
    from analysis import card, sections
    from analysis import threshold as athreshold  # module attribute calls: tests can spy on choose_threshold
    from analysis.answers import answer
    from analysis.curves import convergence_figure
    from analysis.evaluate import Selection, run_test
    from study.engine.metrics import multiclass_metrics
    from analysis.selection import choose
    from analysis.render import Doc, to_html, to_markdown
    from study.data import SAMPLE_ROOT, find_root
    if data:
        find_root(data)  # a wrong --data is a one-line error before any work
    out.mkdir(parents=True, exist_ok=True)
    trials = res.trials()
    csv_frame(trials).to_csv(out / "trials.csv", index=False)
    _log(f"{len(res.experiments)} experiment(s), {len(trials)} trials; wrote {out / 'trials.csv'}")
    body = Doc("")
    figures, tables = [], {"trials": csv_frame(trials)}
    for exp in res.experiments:
        _log(f"{exp.name}: figures and answers ...")
        fig = convergence_figure(exp, out)
        ans = answer(res, exp, out)
        imp, imp_fig = _importance(exp.trials, exp.searched, exp.name, out)
        sections.experiment_section(body, exp, ans, imp, fig, imp_fig)
        figures += [fig, *(p for _, p in ans.figures), *([imp_fig] if imp_fig else [])]
        tables.update({f"{exp.name}: {cap}": df for cap, df in ans.tables})
    binary = [e for e in res.experiments if e.num_classes == 2 and not e.name.startswith(CONFIRM_PREFIX)]
    if len(binary) > 1:
        keys = sorted({k for e in binary for k in e.searched})
        imp, imp_fig = _importance(trials[trials["num_classes"] == 2], keys, "all binary experiments", out)
        sections.importance_section(body, imp, imp_fig)
        figures += [imp_fig] if imp_fig else []

    choice, choice3 = choose(trials, 2), choose(trials, 3)
    selected, three = (choice.row if choice else None), (choice3.row if choice3 else None)
    sections.failures_section(body, trials)
    sections.overall_section(body, trials, choice)
    root_of = lambda row: data or res.get(row["experiment"]).meta.get("data_root")  # noqa: E731
    cache: dict = {}
    selections, headline = [], None
    if selected is not None:
        _log(f"selected {selected['experiment']}: {selected['config_label']}; choosing thresholds on validation ...")
        sel, vp, f1_t, table, headline, stress_table = _thresholds("binary", selected, root_of, cache)
        pr = athreshold.pr_figure(vp.y, vp.probs, table, f1_t, out=out / "threshold_pr.png",
                                  title=f"Validation: {selected['experiment']} / {selected['label']}")
        sections.threshold_section(body, f1_t, headline, table, stress_table, pr, vp, float(selected[BEST_METRIC]))
        figures.append(pr)
        tables.update({"threshold (validation)": table, "threshold (stress validation)": stress_table})
        selections.append(replace(sel, **_models(res, choice, "binary")))
        control = _seed_recipe_control(res, trials, selected)
        if control is not None:  # the seed's own recipe, evaluated beside the winner (issue 11)
            sel = _thresholds("binary control: the seed's recipe", control.row, root_of, cache)[0]
            selections.append(replace(sel, models=tuple(control.checkpoints),
                                      models_from=f"the baseline experiment's {len(control.checkpoints)} seed(s)"))
    if three is not None:
        vp3 = athreshold.validation_predictions(three["checkpoint"], root_of(three), cache)
        sections.three_class_section(body, three, multiclass_metrics(vp3.y, vp3.probs), vp3.description)
        selections.append(Selection("3-class", three["experiment"], three["trial_id"], vp3.cfg, {}, root_of(three),
                                    **_models(res, choice3, "3class")))
    gate = None
    for task, ch in (("binary", choice), ("3-class", choice3)):
        if ch is not None:
            _log(f"{task}: ensemble selection from the study's kept models ...")
            sel, gate = _ensemble(body, trials, ch.row, task, root_of(ch.row), cache, out, views, gate)
            selections.append(sel)
    tests = []
    if selections and test:
        _log("selection fixed; the test split, once ...")
        tests = run_test(selections)
        for r in tests:
            if r.summary is not None:
                tables[f"test {r.selection.task}"] = r.summary
    if selections:
        sections.test_section(body, tests, test)
    card.section(body, tests)

    doc = Doc(f"Pneumonia CNN study report: {res.root}")
    overview(doc, res, trials, selected, headline, tests, test)
    if data:
        recorded = {e.meta.get("data_root") or str(SAMPLE_ROOT) for e in res.experiments}
        norm = lambda r: str(find_root(r).resolve()) if Path(r).is_dir() else str(r)  # noqa: E731
        if {norm(r) for r in recorded} != {norm(data)}:
            doc.note(f"--data {data} is not the data set the study recorded ({', '.join(sorted(recorded))}): "
                     f"validation and test images are re-read from {data}, so they may differ from the study's.")
    doc.blocks += body.blocks
    wandb_section(doc, res, wandb_project)
    if wandb_project:
        from analysis.wandb_log import log_report
        where = log_report(wandb_project, tables, figures, {"selected_trial": "" if selected is None else selected["trial_id"],
                                                             "threshold": headline}, out, group=res.study_id)
        doc.p(f"Logged to W&B project `{wandb_project}` as one run ({len(tables)} tables, {len(figures)} figures): `{where}`.")
        _log(f"logged to W&B: {where}")
    reproduce(doc, results_dir, out, data, test)
    _log("writing report.md and report.html ...")
    (out / "report.md").write_text(to_markdown(doc))
    html = out / "report.html"
    html.write_text(to_html(doc))
    return html


def _thresholds(task: str, row, root_of, cache):
    """-> (Selection with both thresholds, predictions, F1 threshold, its table, headline threshold, its table)."""
    from analysis import threshold as athreshold
    from analysis.evaluate import Selection
    vp = athreshold.validation_predictions(row["checkpoint"], root_of(row), cache)
    f1_t, table = athreshold.choose_threshold(vp.y, vp.probs)
    headline, stress_table = athreshold.youden_threshold(vp.y_stress, vp.probs_stress)
    sel = Selection(task, row["experiment"], row["trial_id"], vp.cfg,
                    {athreshold.F1_RULE: f1_t, athreshold.HEADLINE_RULE: headline}, root_of(row))
    return sel, vp, f1_t, table, headline, stress_table


def _ensemble(body, trials, row, task: str, root, cache, out: Path, views, gate: dict | None):
    """Caruana's ensemble selection over the tree's kept models that share `row`'s data (analysis.ensemble),
    written to OUT/ensemble-TASK.pt (the one model-file format). Binary: its headline threshold is chosen on its
    own stress-validation probabilities, and the file (with that threshold) is the gate of the 3-class
    two-stage decision. 3-class with a gate: analysis.decision picks argmax or two stages on the stress
    validation; the file holds the gate when two stages win. -> (its Selection for the test split, the gate)."""
    from analysis import decision, ensemble, sections
    from analysis import threshold as athreshold
    from analysis.evaluate import Selection
    from study.engine import checkpoint as ckpt_io
    from study.engine.device import pick_device
    from study.engine.infer import predictor_from
    rows = ensemble.library_rows(trials, row)
    lib = ensemble.library(list(rows["checkpoint"]), [f"{e} / {t}" for e, t in zip(rows["experiment"], rows["trial_id"])],
                           root, cache, views)
    ens = ensemble.select(lib)
    body_ckpt, thresholds = ens.checkpoint(), {}
    if lib.num_classes == 2:
        headline, _ = athreshold.youden_threshold(lib.y_stress, ens.probs(True))
        thresholds = {athreshold.HEADLINE_RULE: headline}
        body_ckpt["release"] = {"threshold": headline, "threshold_rule": athreshold.HEADLINE_RULE}
        gate = body_ckpt
    path = out / f"ensemble-{task.replace('-', '')}.pt"
    sections.ensemble_section(body, task, ens, thresholds, path)
    if lib.num_classes == 3 and gate is not None:
        device = pick_device()
        d = decision.compare(predictor_from(body_ckpt, device), predictor_from(gate, device, "gate"), root, cache)
        sections.decision_section(body, d)
        if d.chosen == "two-stage":
            body_ckpt = ckpt_io.ensemble(ckpt_io.members(body_ckpt), lib.views, body_ckpt["selection"], gate=gate)
    ckpt_io.save(path, body_ckpt)
    return Selection(f"{task} ensemble", "ensemble", f"{len(ens.chosen)} of {len(lib.names)} models",
                     lib.cfg, thresholds, root, models=(str(path),),
                     models_from=f"the ensemble selected above ({path.name}: {len(ens.chosen)} members, weights by picks"
                                 + ("; two-stage decision with the binary ensemble" if "gate" in body_ckpt else "") + ")",
                     views=lib.views), gate


def _seed_recipe_control(res, trials, selected):
    """The baseline experiment's configuration (the seed network and recipe) as a Choice, unless it is the selection."""
    from analysis.selection import choose
    if res.get("baseline") is None or selected["experiment"] == "baseline":
        return None
    return choose(trials[trials["experiment"] == "baseline"], 2)


def _models(res, choice, task: str) -> dict:
    """The models the test split scores for a chosen configuration: the confirmation stage's (fresh seeds,
    every one that finished) when the study ran it for this configuration, else the configuration's own
    trials. Given one experiment's folder, the study's confirmation stage is looked for beside it."""
    from analysis.load import load_experiment
    from study.config import EARLY_STOPPED, FINISHED
    from study.select import config_key
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


def overview(doc: Doc, res, trials, selected, headline, tests, test: bool) -> None:
    doc.h(2, "Overview")
    items = [f"{e.name}: {len(e.trials)} trials, {e.meta.get('question', '')}" for e in res.experiments]
    doc.bullets(items + [f"{posixpath.basename(d)}: skipped, no study.json (unfinished or crashed; continue it with "
                         f"`python -m study.run --experiment {posixpath.basename(d)} --storage {posixpath.dirname(d)} --resume`)"
                         for d in res.unfinished])
    if selected is not None:
        doc.p(f"Selected configuration (highest mean {BEST_METRIC} over its seeds, among all binary trials): "
              f"**{selected['experiment']}: {selected['config_label']}** (its best seed {selected['trial_id']}: "
              f"{selected[BEST_METRIC]:.4f} at epoch {int(selected[BEST_EPOCH])}); headline threshold **{headline:.2f}** "
              f"(Youden's J on the stress validation).")
        from analysis.sections import WHY_STRESS
        doc.note(WHY_STRESS)
    for r in tests:
        if r.error:
            doc.p(f"{r.selection.task} test evaluation: no test split ({r.error}).")
        elif r.selection.cfg.num_classes == 2:
            acc = r.summary[r.summary["metric"] == "accuracy"].iloc[0]
            doc.p(f"{r.selection.task} test ({r.description}, {r.n_images} images, {len(r.seeds)} model(s)): "
                  "accuracy " + ", ".join(f"{acc[f'at {t:.2f}: mean ± std']} at {t:.2f}" for t in r.selection.at())
                  + f" (headline threshold {r.selection.headline:.2f}).")
        else:
            m = r.summary.set_index("metric")["mean ± std"]
            doc.p(f"3-class test ({r.n_images} images, {len(r.seeds)} model(s)): accuracy {m['accuracy']}, "
                  f"macro-F1 {m['macro_f1']}.")
    if not test:
        doc.p("Test evaluation skipped (--no-test).")
    doc.p(f"Every number above the test section is on validation data ({METRIC}); the test split is read only in "
          f"the test section, once, after the selection and the threshold were fixed.")


def wandb_section(doc: Doc, res, project) -> None:
    logged = [(e.name, e.meta["wandb"]) for e in res.experiments if e.meta.get("wandb")]
    if logged or project:
        doc.h(2, "Weights & Biases")
        doc.p(f"Every run of this study is in the W&B group `{res.study_id}` (the study id in STORAGE/study.json): one "
              f"run per trial with job_type = its experiment, and this report's analysis run. In the project's runs "
              f"table, group by Group and then by Job Type to compare the questions side by side.")
        doc.bullets([f"{name}: project `{w.get('project')}`, group `{w.get('group')}`, job_type "
                     f"`{w.get('job_type', name)}` (one W&B run per trial)" for name, w in logged])


def reproduce(doc: Doc, results_dir, out, data, test: bool) -> None:
    doc.h(2, "Reproduce")
    doc.pre(f"python -m analysis.report {results_dir} --out {out}" + (f" --data {data}" if data else "")
            + ("" if test else " --no-test"))


@cli.command
def main(argv: list[str] | None = None) -> int:
    ap = cli.Parser(prog="python -m analysis.report", description=__doc__.split("\n")[0])
    ap.add_argument("results", metavar="RESULTS", help="STORAGE/EXPERIMENT (e.g. results/quick) or STORAGE; a folder "
                    "or a URI (s3://BUCKET/PREFIX, gs://...)")
    ap.add_argument("--out", required=True, type=Path, help="folder for report.html, report.md, trials.csv, figures")
    ap.add_argument("--data", default=None, help="data set folder or s3:// prefix (default: the one study.json recorded)")
    ap.add_argument("--no-test", dest="test", action="store_false", help="stop at validation: do not read the test split")
    ap.add_argument("--wandb", default=None, metavar="PROJECT", help="log tables and figures to this W&B project")
    ap.add_argument("--tta", default="none", metavar="VIEWS", help="test-time views for the ensembles: none (default), "
                    "all, or names of study/augment.py TTA_VIEWS joined by commas")
    args = ap.parse_args(argv)
    from study.engine.infer import parse_views
    print(build(args.results, args.out, args.data, args.test, args.wandb, parse_views(args.tta)))
    return OK


if __name__ == "__main__":
    sys.exit(main())
