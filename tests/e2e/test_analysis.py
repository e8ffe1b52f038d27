"""The analysis report, built from the real results tree of the `quick_results` fixture (a tiny real
quick study): outputs, the 17-point threshold table, the threshold chosen on validation data, the
test split read once and only after selection, rendering in headless Chromium, W&B offline logging,
and one-line CLI errors."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import analysis.thresholds as athreshold
from analysis.bootstrap import seed_mean_metric
from analysis.report import cli as report
from helpers.common import REPO
from study.data import splits as sdata
from study.data.layout import SAMPLE_ROOT, targets
from study.engine.metrics import BINARY, binary_metrics
from study.names import BEST_METRIC, VAL_ACCURACY, VAL_SHIFT_AUC

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
EXPECTED_THRESHOLDS = [round(0.10 + 0.05 * i, 2) for i in range(17)]


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def spied(quick_results, tmp_path_factory):
    """analysis.report.cli.main in-process on the real tree, with study.data.splits.prepare / load_test and the
    threshold choice wrapped to record the order of calls and the data each saw."""
    events: list[tuple[str, object]] = []
    real_prepare, real_load_test, real_choose = sdata.prepare, sdata.load_test, athreshold.choose_threshold
    real_youden = athreshold.headline_threshold

    def prepare(root, cfg, *a, **k):
        d = real_prepare(root, cfg, *a, **k)
        events.append(("prepare", d))
        return d

    def load_test(root, cfg, *a, **k):
        split, desc = real_load_test(root, cfg, *a, **k)
        events.append(("load_test", split))
        return split, desc

    def choose(y_val, probs_val):
        events.append(("choose", np.array(y_val)))
        return real_choose(y_val, probs_val)

    def youden(y_stress, probs_stress):
        events.append(("youden", np.array(y_stress)))
        return real_youden(y_stress, probs_stress)

    def no_training(*a, **k):
        raise AssertionError("the report must not train: backward() was called in its process")

    mp = pytest.MonkeyPatch()
    mp.setattr(athreshold, "headline_threshold", youden)
    mp.setattr(torch.Tensor, "backward", no_training)  # issue 14: the report only reads and runs inference
    mp.setattr(torch.autograd, "backward", no_training)
    mp.setattr(sdata, "prepare", prepare)
    mp.setattr(sdata, "load_test", load_test)
    mp.setattr(athreshold, "choose_threshold", choose)
    out = tmp_path_factory.mktemp("report") / "quick-report"
    try:
        rc = report.main([str(quick_results), "--out", str(out)])
    finally:
        mp.undo()
    return {"rc": rc, "out": out, "events": events}


@pytest.mark.slow
def test_report_files_and_one_csv_row_per_trial(spied, quick_results):
    out = spied["out"]
    assert spied["rc"] == 0
    for name in ("report.html", "report.md", "trials.csv", "convergence_quick.png", "threshold_pr.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    trial_dirs = [d for d in quick_results.iterdir() if (d / "params.json").is_file()]
    csv = pd.read_csv(out / "trials.csv")
    assert len(csv) == len(trial_dirs) == 8
    assert set(csv["trial_id"]) == {re.search(r"_([0-9a-f]{5}_\d{5})_", d.name).group(1) for d in trial_dirs}
    for col in ("experiment", "lr", "optimizer", "epochs_run", "stopped_by_asha", BEST_METRIC, VAL_ACCURACY + "_last",
                "selection_score", "checkpoint", VAL_SHIFT_AUC + "_at_best", VAL_ACCURACY + "_at_best"):
        assert col in csv.columns, col
    assert (csv["selection_score"] == csv[BEST_METRIC]).all()
    assert (csv["epochs_run"] <= csv["epoch_budget"]).all()
    md = (out / "report.md").read_text()
    for section in ("## Experiment: quick", "## Decision thresholds (chosen on validation)", "Headline threshold",
                    "compared, one seed each", "ranked by mean", "## Model card", "not for clinical use",
                    "Kermany, Zhang and Goldbaum (2018)", "Known train/test shift",
                    "## Test evaluation (once, after selection)", "Kermany et al. 2018", "Not directly comparable"):
        assert section in md, section


@pytest.mark.slow
def test_threshold_table_has_the_17_thresholds(spied):
    md = (spied["out"] / "report.md").read_text()
    part = md.split("at 17 thresholds")[1].split("![")[0]
    rows = [line for line in part.splitlines() if re.match(r"\| 0\.\d+ \|", line)]
    assert [round(float(r.split("|")[1]), 2) for r in rows] == EXPECTED_THRESHOLDS
    assert athreshold.THRESHOLDS == tuple(EXPECTED_THRESHOLDS)


def _chosen_once(events, kind):
    """-> (the labels the rule `kind` saw, the data prepared before it); the rule ran exactly once."""
    kinds = [k for k, _ in events]
    assert kinds.count(kind) == 1
    i = kinds.index(kind)
    prepared = [d for k, d in events[:i] if k == "prepare"]
    assert prepared, f"the data must be prepared before the {kind} threshold is chosen"
    return events[i][1], prepared[-1]


@pytest.mark.slow
def test_threshold_is_chosen_on_validation_labels(spied):
    y_used, prepared = _chosen_once(spied["events"], "choose")
    np.testing.assert_array_equal(y_used, targets(prepared.val.labels3, 2))  # exactly the validation labels


@pytest.mark.slow
def test_headline_threshold_is_youden_on_the_stress_validation(spied):
    """Twice: the selected model's, then the binary ensemble's (on its own stress probabilities); both see the
    stress validation's labels, both before the test split is read."""
    events = spied["events"]
    kinds = [k for k, _ in events]
    assert kinds.count("youden") == 2
    prepared = next(d for k, d in events if k == "prepare")
    for k, y_used in events:
        if k == "youden":
            np.testing.assert_array_equal(y_used, targets(prepared.stress.labels3, 2))
    assert max(i for i, k in enumerate(kinds) if k == "youden") < kinds.index("load_test")
    assert "Youden's J on the stress validation (headline)" in (spied["out"] / "report.md").read_text()


@pytest.mark.slow
def test_report_ensemble_section_and_file(spied):
    """The report selects an ensemble of the tree's kept models (in the process whose backward() raises), writes
    it as one model file and scores it on the test split after everything is fixed."""
    from study.engine import checkpoint as ckpt_io
    md = (spied["out"] / "report.md").read_text()
    assert "## Ensemble of the study's models (binary, chosen on the stress validation)" in md
    assert "balanced log-loss on the stress validation" in md and "### binary ensemble: ensemble /" in md
    ckpt = ckpt_io.load(spied["out"] / "ensemble-binary.pt")
    assert len(ckpt["members"]) >= 1 and abs(sum(ckpt["weights"]) - 1) < 1e-9
    assert ckpt["selection"]["rule"] == "balanced log-loss on the stress validation"
    assert md.index("## Ensemble of the study's models") < md.index("## Test evaluation")


@pytest.mark.slow
def test_every_trials_checkpoint_predicts(spied):
    """trials.csv's checkpoint column is a model folder study.predict takes as it is."""
    csv = pd.read_csv(spied["out"] / "trials.csv")
    ckpt = csv.loc[csv["selection_score"].idxmax(), "checkpoint"]
    img = next((SAMPLE_ROOT / "val" / "NORMAL").glob("*.jpeg"))
    proc = subprocess.run([sys.executable, "-m", "study.predict", "--model", ckpt, str(img), "--json"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 0.0 <= __import__("json").loads(proc.stdout.splitlines()[-1])["pneumonia"] <= 1.0


@pytest.mark.slow
def test_test_split_read_once_after_the_threshold(spied):
    events = spied["events"]
    kinds = [k for k, _ in events]
    assert kinds.count("load_test") == 1
    assert kinds.index("load_test") > max(kinds.index("choose"), kinds.index("youden"))
    test = next(d for k, d in events if k == "load_test")
    val = next(d for k, d in events if k == "prepare")
    seen = set(val.train.paths) | set(val.val.paths)
    assert not seen & set(test.paths), "test images must not be in train or validation"
    md = (spied["out"] / "report.md").read_text()
    assert "patient-level hold-out of train" in md  # the bundled sample has no test/: load_test's description


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make test installs Debian's chromium when root)")
def test_report_renders_in_headless_chromium(spied, tmp_path):
    html = spied["out"] / "report.html"
    dom = chromium("--virtual-time-budget=10000", "--dump-dom", html.as_uri(), profile=tmp_path / "p1").stdout
    n_img = dom.count("<img ")
    assert n_img >= 3
    assert f'data-images="{n_img}/{n_img}"' in dom, re.findall(r"<body[^>]*>", dom)
    assert dom.count('data-decoded="yes"') == n_img
    shot = spied["out"] / "screenshot.png"
    chromium("--hide-scrollbars", f"--screenshot={shot}", "--window-size=1200,3000", html.as_uri(), profile=tmp_path / "p2")
    from PIL import Image
    px = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert px.shape == (3000, 1200)
    assert px.std() > 20 and (px < 128).mean() > 0.01  # text, tables and figures, not a blank page


@pytest.mark.slow
def test_storage_root_and_wandb_offline(quick_results, tmp_path):
    """A storage root (holding quick/) works as RESULTS_DIR, and --wandb logs one offline run."""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path / "wb"), "WANDB_SILENT": "true"}
    (tmp_path / "wb").mkdir()
    out = tmp_path / "rep"
    proc = subprocess.run([sys.executable, "-m", "analysis.report", str(quick_results.parent), "--out", str(out),
                           "--wandb", "pneumonia-test"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == str(out / "report.html")
    steps = re.findall(r"^\[report +\d+\.\ds\] (.+)$", proc.stderr, re.M)  # each step with its time
    assert steps[0].startswith("read ") and steps[-1].startswith("writing report.md") and len(steps) >= 5, proc.stderr
    runs = list((tmp_path / "wb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, list((tmp_path / "wb").rglob("*"))[:20]
    assert list(runs[0].glob("*.wandb")), "the offline run holds its log"
    assert "pneumonia-test" in (out / "report.md").read_text()


@pytest.mark.parametrize("make", ["missing", "not_results", "damaged", "bad_flag"])
def test_cli_user_mistake_is_one_line_exit_2(tmp_path, make):
    target = tmp_path / "nope" if make == "missing" else tmp_path
    if make == "damaged":
        (tmp_path / "study.json").write_text('{"study_id": "cut short')
    extra = ["--seeds", "3"] if make == "bad_flag" else []
    proc = subprocess.run([sys.executable, "-m", "analysis.report", str(target), "--out", str(tmp_path / "o"), *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    named = "--seeds" if make == "bad_flag" else str(target)
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_bootstrap_statistic_matches_scikit_learn():
    rng = np.random.default_rng(0)
    y = (rng.random(120) < 0.6).astype(int)
    P = np.clip(0.35 * y + 0.65 * rng.random((2, 120)), 0, 1)
    for name in BINARY:
        want = np.mean([binary_metrics(y, p, 0.4)[name] for p in P])
        assert seed_mean_metric(name, y, P, 0.4) == pytest.approx(want), name


@pytest.mark.slow
def test_no_test_split_stops_at_validation(quick_results):
    """The bundled sample has no test/; with holdout_fraction=0 there is nothing to evaluate on:
    run_test says so and scores nothing."""
    import dataclasses

    from analysis.report.render import Doc, to_markdown
    from analysis.report.sections import test_section
    from analysis.results.load import load_results
    from analysis.test_eval import Selection, run_test
    from study.engine.checkpoint import load_model
    best = load_results(quick_results).trials().sort_values(BEST_METRIC).iloc[-1]
    cfg = dataclasses.replace(load_model(best["checkpoint"])[1], holdout_fraction=0.0)
    results = run_test([Selection("binary", "quick", best["trial_id"], cfg, {"fixed": 0.5}, None,
                                  models=(best["checkpoint"],))])
    assert results[0].error and "nothing to evaluate on" in results[0].error
    assert results[0].scored is None
    doc = Doc("t")
    test_section(doc, results, True)
    assert "No test split" in to_markdown(doc)
