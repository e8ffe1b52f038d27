"""Build the study report from a results tree on disk: HTML, Markdown, trials.csv and figures.

    python -m analysis.report RESULTS_DIR --out DIR [--data ROOT] [--seeds N] [--wandb PROJECT]

prints progress on stderr and, at the end, the path of DIR/report.html on stdout. Writes
DIR/report.html (self-contained: figures embedded as base64 PNG), DIR/report.md, DIR/trials.csv
(one row per trial folder) and the figures as DIR/*.png.

RESULTS_DIR: one experiment folder (STORAGE/EXPERIMENT, e.g. results/quick) or a storage root
holding several. --data: the data set (default: the data_root each study.json recorded; none =
the bundled sample). --seeds: retrainings of the selected configuration for the test evaluation
(default 3; 0 stops at validation). --wandb: also log the tables and figures as one W&B run.
Order of work: trials -> selection (validation accuracy) -> threshold (validation F1) -> the
test split, read once (analysis.evaluate). A usage mistake prints one `error: ...` line, exit 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from analysis.load import BEST_EPOCH, csv_frame, load_results
from study.config import BEST_METRIC, METRIC, UserError

if TYPE_CHECKING:
    from analysis.render import Doc


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _best(trials, num_classes: int):
    t = trials[(trials["num_classes"] == num_classes) & (trials["checkpoint"] != "") & trials[BEST_METRIC].notna()]
    return t.loc[t[BEST_METRIC].idxmax()] if len(t) else None


def _importance(trials, keys, scope, out):
    from analysis.curves import bar_figure
    from analysis.importance import estimate
    imp = estimate(trials, keys, scope)
    fig = None
    if imp.importance:
        fig = bar_figure(imp.importance, imp.importance_std, f"{scope}: permutation importance for {BEST_METRIC}",
                         "drop in R^2 when shuffled", out / f"importance_{scope.replace(' ', '_')}.png")
    return imp, fig


def build(results_dir: str, out: Path, data: str | None, seeds: int, wandb_project: str | None) -> Path:
    if seeds < 0:
        raise UserError(f"--seeds {seeds}: expected 0 (stop at validation) or more")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: is a file; pass a folder for the report (it is created if missing)")
    res = load_results(results_dir)  # usage mistakes surface here, before torch and friends are imported
    from analysis import sections
    from analysis import threshold as athreshold  # module attribute calls: tests can spy on choose_threshold
    from analysis.answers import answer
    from analysis.curves import convergence_figure
    from analysis.evaluate import Selection, run_test
    from analysis.metrics import multiclass_metrics
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
        fig = convergence_figure(exp, out)
        ans = answer(res, exp, out)
        imp, imp_fig = _importance(exp.trials, exp.searched, exp.name, out)
        sections.experiment_section(body, exp, ans, imp, fig, imp_fig)
        figures += [fig, *(p for _, p in ans.figures), *([imp_fig] if imp_fig else [])]
        tables.update({f"{exp.name}: {cap}": df for cap, df in ans.tables})
    binary = [e for e in res.experiments if e.num_classes == 2]
    if len(binary) > 1:
        keys = sorted({k for e in binary for k in e.searched})
        imp, imp_fig = _importance(trials[trials["num_classes"] == 2], keys, "all binary experiments", out)
        sections.importance_section(body, imp, imp_fig)
        figures += [imp_fig] if imp_fig else []

    selected, three = _best(trials, 2), _best(trials, 3)
    sections.failures_section(body, trials)
    sections.overall_section(body, trials, selected)
    root_of = lambda row: data or res.get(row["experiment"]).meta.get("data_root")  # noqa: E731
    cache: dict = {}
    selections, chosen = [], None
    if selected is not None:
        _log(f"selected {selected['experiment']}/{selected['trial_id']}; choosing the threshold on validation ...")
        vp = athreshold.validation_predictions(selected["checkpoint"], root_of(selected), cache)
        chosen, table = athreshold.choose_threshold(vp.y, vp.probs)
        pr = athreshold.pr_figure(vp.y, vp.probs, table, chosen, out=out / "threshold_pr.png",
                                  title=f"Validation: {selected['experiment']} / {selected['label']}")
        sections.threshold_section(body, chosen, table, pr, vp, float(selected[BEST_METRIC]))
        figures.append(pr)
        tables["threshold (validation)"] = table
        selections.append(Selection("binary", selected["experiment"], selected["trial_id"], vp.cfg, chosen,
                                    root_of(selected)))
    if three is not None:
        vp3 = athreshold.validation_predictions(three["checkpoint"], root_of(three), cache)
        sections.three_class_section(body, three, multiclass_metrics(vp3.y, vp3.probs), vp3.description)
        selections.append(Selection("3-class", three["experiment"], three["trial_id"], vp3.cfg, None, root_of(three)))
    tests = []
    if selections and seeds:
        _log(f"selection fixed; test evaluation over {seeds} seed(s) ...")
        tests = run_test(selections, seeds, cache)
        for r in tests:
            if r.summary is not None:
                tables[f"test {r.selection.task}"] = r.summary
    if selections:
        sections.test_section(body, tests, seeds)

    doc = Doc(f"Pneumonia CNN study report: {res.root}")
    overview(doc, res, trials, selected, chosen, tests, seeds)
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
                                                             "threshold": chosen, "seeds": seeds}, out)
        doc.p(f"Logged to W&B project `{wandb_project}` as one run ({len(tables)} tables, {len(figures)} figures): `{where}`.")
        _log(f"logged to W&B: {where}")
    reproduce(doc, results_dir, out, data, seeds)
    (out / "report.md").write_text(to_markdown(doc))
    html = out / "report.html"
    html.write_text(to_html(doc))
    return html


def overview(doc: Doc, res, trials, selected, chosen, tests, seeds) -> None:
    doc.h(2, "Overview")
    items = [f"{e.name}: {len(e.trials)} trials, {e.meta.get('question', '')}" for e in res.experiments]
    doc.bullets(items + [f"{d.name}: skipped, no study.json (unfinished or crashed; continue it with "
                         f"`python -m study.run --experiment {d.name} --storage {d.parent} --resume`)"
                         for d in res.unfinished])
    if selected is not None:
        doc.p(f"Selected configuration (highest {BEST_METRIC} over all binary trials): **{selected['label']}** "
              f"({selected['experiment']} / {selected['trial_id']}, {selected[BEST_METRIC]:.4f} at epoch "
              f"{int(selected[BEST_EPOCH])}); threshold **{chosen:.2f}**, chosen on validation F1.")
    for r in tests:
        if r.error:
            doc.p(f"{r.selection.task} test evaluation: no test split ({r.error}).")
        elif r.selection.cfg.num_classes == 2:
            acc = r.summary[r.summary["metric"] == "accuracy"].iloc[0]
            t = r.selection.threshold
            doc.p(f"Test ({r.description}, {r.n_images} images, {len(r.seeds)} retrained seed(s)): accuracy "
                  f"{acc['at 0.50: mean ± std']} at 0.50"
                  + (f", {acc[f'at {t:.2f}: mean ± std']} at {t:.2f}" if t != 0.5 else "")
                  + ".")
        else:
            m = r.summary.set_index("metric")["mean ± std"]
            doc.p(f"3-class test ({r.n_images} images, {len(r.seeds)} seed(s)): accuracy {m['accuracy']}, "
                  f"macro-F1 {m['macro_f1']}.")
    if seeds == 0:
        doc.p("Test evaluation skipped (--seeds 0).")
    doc.p(f"Every number above the test section is on validation data ({METRIC}); the test split is read only in "
          f"the test section, once, after the selection and the threshold were fixed.")


def wandb_section(doc: Doc, res, project) -> None:
    logged = [(e.name, e.meta["wandb"]) for e in res.experiments if e.meta.get("wandb")]
    if logged or project:
        doc.h(2, "Weights & Biases")
        doc.bullets([f"{name}: project `{w.get('project')}`, group `{w.get('group')}` (one W&B run per trial)"
                     for name, w in logged])


def reproduce(doc: Doc, results_dir, out, data, seeds) -> None:
    doc.h(2, "Reproduce")
    doc.pre(f"python -m analysis.report {results_dir} --out {out}" + (f" --data {data}" if data else "") + f" --seeds {seeds}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.report", description=__doc__.split("\n")[0])
    ap.add_argument("results", metavar="RESULTS_DIR", help="STORAGE/EXPERIMENT (e.g. results/quick) or STORAGE")
    ap.add_argument("--out", required=True, type=Path, help="folder for report.html, report.md, trials.csv, figures")
    ap.add_argument("--data", default=None, help="data set folder (default: the one study.json recorded)")
    ap.add_argument("--seeds", type=int, default=3, help="retrainings for the test evaluation (default 3; 0: none)")
    ap.add_argument("--wandb", default=None, metavar="PROJECT", help="log tables and figures to this W&B project")
    args = ap.parse_args(argv)
    try:
        path = build(args.results, args.out, args.data, args.seeds, args.wandb)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
