"""Build the study report from a results tree (a folder or s3://...): HTML, Markdown, trials.csv and figures.

The command line is `python -m analysis.report` (analysis/report/cli.py). `build` reads the tree, then
runs the stages of analysis/report/stages.py in the order of work: trials -> selection (mean selection
score over seeds: balanced accuracy on the stress validation) -> thresholds (best F1 on validation, the
seed's Q2; headline: Youden's J on the stress validation) -> ensembles of the study's models -> the
test split, read once (analysis.test_eval); then writes DIR/report.html (self-contained: figures
embedded as base64 PNG), DIR/report.md, DIR/trials.csv (one row per trial folder) and the figures as
DIR/*.png. The report only reads results and runs inference; it never trains.
"""
from __future__ import annotations

import posixpath
from pathlib import Path

from analysis.log import log, start
from analysis.report.render import Doc, to_html, to_markdown
from analysis.results.load import BEST_EPOCH, csv_frame, load_results
from study import checks
from study.data.layout import SAMPLE_ROOT, find_root
from study.names import BEST_METRIC, METRIC


def build(results_dir: str, out: Path, data: str | None, test: bool, wandb_project: str | None,
          views: tuple[str, ...] | None = None) -> Path:
    out = checks.writable_folder("--out", out)  # a file, a read-only folder or mount: one line before any work
    start()
    res = load_results(results_dir)  # usage mistakes surface here, before torch and friends are imported
    log(f"read {results_dir}")
    from analysis.report import stages  # torch and friends: after the usage checks above
    if data:
        find_root(data)  # a wrong --data is a one-line error before any work
    out.mkdir(parents=True, exist_ok=True)
    r = stages.Report(res, out, data, views)
    r.trials = res.trials()
    csv_frame(r.trials).to_csv(out / "trials.csv", index=False)
    r.tables["trials"] = csv_frame(r.trials)
    log(f"{len(res.experiments)} experiment(s), {len(r.trials)} trials; wrote {out / 'trials.csv'}")
    stages.experiments(r)
    stages.selection(r)
    stages.ensembles(r)
    stages.test_split(r, test)
    doc = Doc(f"Pneumonia CNN study report: {res.root}")
    overview(doc, r, test)
    data_note(doc, res, data)
    doc.blocks += r.body.blocks
    wandb_section(doc, res, wandb_project)
    if wandb_project:
        from analysis.report.wandb import log_report
        selected = r.choice.row if r.choice else None
        where = log_report(wandb_project, r.tables, r.figures, {"selected_trial": "" if selected is None else
                                                               selected["trial_id"], "threshold": r.headline},
                           out, group=res.study_id)
        doc.p(f"Logged to W&B project `{wandb_project}` as one run ({len(r.tables)} tables, {len(r.figures)} figures): "
              f"`{where}`.")
        log(f"logged to W&B: {where}")
    reproduce(doc, results_dir, out, data, test)
    log("writing report.md and report.html ...")
    (out / "report.md").write_text(to_markdown(doc))
    html = out / "report.html"
    html.write_text(to_html(doc))
    return html


def data_note(doc, res, data: str | None) -> None:
    if not data:
        return
    recorded = {e.meta.get("data_root") or str(SAMPLE_ROOT) for e in res.experiments}
    norm = lambda r: str(find_root(r).resolve()) if Path(r).is_dir() else str(r)
    if {norm(r) for r in recorded} != {norm(data)}:
        doc.note(f"--data {data} is not the data set the study recorded ({', '.join(sorted(recorded))}): "
                 f"validation and test images are re-read from {data}, so they may differ from the study's.")


def overview(doc: Doc, rep, test: bool) -> None:
    res, selected, headline, tests = rep.res, rep.choice.row if rep.choice else None, rep.headline, rep.tests
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
        from analysis.report.sections import WHY_STRESS
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

