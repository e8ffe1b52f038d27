"""A study where one trial crashes and one diverges: the crash is retried and then counted as
errored (exit 1, listed with its last error line in the summary, study.json and the report), the
divergence ends its trial once, as "diverged", without a retry, and is never selected; W&B gets
each run's status."""
from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest

from helpers.common import QUICK_TINY_ARGS
from study import run as run_mod
from study.names import BEST_METRIC, DIVERGED, ERRORED, STATUS
from study.tune import tuner as tuner_mod

pytestmark = pytest.mark.slow
CRASH = ("rmsprop", 0.01)      # this trial raises every time
DIVERGE = ("adam", 0.01)       # this one trains at lr=1e6 without batch norm instead


def make_flaky(log: Path):
    def flaky(config, data, quiet=False):
        import study.tune.trainable as trainable
        key = (config["optimizer"], config["lr"])
        with open(log, "a") as f:
            f.write(json.dumps(key) + "\n")
        if key == CRASH:
            raise RuntimeError("injected crash for the test")
        trainable.train_trial({**config, "lr": 1e6, "norm": "none"} if key == DIVERGE else config, data)
    return flaky


@pytest.fixture(scope="module")
def failing_study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("failing")
    log, wandb_dir = tmp / "attempts.jsonl", tmp / "wandb_home"
    wandb_dir.mkdir()
    mp = pytest.MonkeyPatch()
    mp.setattr(tuner_mod, "train_trial", make_flaky(log))
    for k, v in {"WANDB_MODE": "offline", "WANDB_DIR": str(wandb_dir), "WANDB_SILENT": "true"}.items():
        mp.setenv(k, v)
    args = [*QUICK_TINY_ARGS[:-4], "--resolution", "32", "--max-epochs", "2", "--set", "dense_units=16",
            "--max-failures", "1", "--storage", str(tmp / "r"), "--wandb-project", "pneumonia-test"]
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            code = run_mod.main(args)
    finally:
        mp.undo()
    return {"code": code, "stdout": buf.getvalue(), "exp": tmp / "r" / "quick", "log": log, "wandb": wandb_dir}


def test_errored_trial_fails_the_study_and_is_listed(failing_study):
    assert failing_study["code"] == 1
    out = failing_study["stdout"]
    assert "quick: 8 trials (1 errored, 1 diverged)" in out, out[-2000:]
    errored = [x for x in out.splitlines() if x.startswith("  errored: ")]
    assert len(errored) == 1 and errored[0].endswith("RuntimeError: injected crash for the test"), errored
    s = json.loads((failing_study["exp"] / "study.json").read_text())["summary"]
    assert s["errors"] == 1 and s["diverged"] == 1 and s["statuses"][ERRORED] == 1 and s["statuses"][DIVERGED] == 1
    assert s["errored_trials"][0]["error"] == "RuntimeError: injected crash for the test"
    assert "lr=0.01" in s["errored_trials"][0]["trial"] and "rmsprop" in s["errored_trials"][0]["trial"]
    assert s["stopped_by_asha"] + s["statuses"]["finished"] + s["stopped_by_patience"] == 6, "errors counted as ASHA stops"


def test_crashes_are_retried_divergence_is_not(failing_study):
    attempts = [tuple(json.loads(x)) for x in failing_study["log"].read_text().splitlines()]
    assert attempts.count(CRASH) == 2, "a crash gets max_failures=1 retry"
    assert attempts.count(DIVERGE) == 1, "a diverged trial was retried"


def test_diverged_trial_has_its_status_and_is_never_selected(failing_study):
    s = json.loads((failing_study["exp"] / "study.json").read_text())["summary"]
    assert "diverged at epoch 1: train loss nan" in s["diverged_trials"][0]["why"]
    assert (s["best_config"]["optimizer"], s["best_config"]["lr"]) not in (CRASH, DIVERGE)
    d = next(p for p in failing_study["exp"].iterdir() if p.name == s["diverged_trials"][0]["trial"])
    last = [json.loads(x) for x in (d / "result.json").read_text().splitlines() if x.strip()][-1]
    assert last[STATUS] == DIVERGED and last["epoch"] == 1

    from analysis.results.load import load_experiment
    trials = load_experiment(failing_study["exp"]).trials
    row = trials[trials["status"] == DIVERGED].iloc[0]
    assert row[BEST_METRIC] != row[BEST_METRIC], "a diverged trial must have no score to select"
    assert set(trials["status"]) <= {"finished", "stopped_by_asha", "early_stopped", DIVERGED, ERRORED}
    assert trials[trials["status"] == ERRORED]["error_message"].iloc[0] == "RuntimeError: injected crash for the test"


def test_report_lists_errored_and_diverged_trials(failing_study, tmp_path):
    from analysis.report.build import build
    build(str(failing_study["exp"]), tmp_path / "report", None, 0, None)
    md = (tmp_path / "report" / "report.md").read_text()
    section = md[md.index("## Errored and diverged trials"):]
    section = section[:section.index("\n## ", 5)]
    assert "RuntimeError: injected crash for the test" in section and "diverged at epoch 1" in section
    assert "1 trial(s) errored" in section and "1 diverged" in section


def test_wandb_runs_carry_the_status(failing_study):
    s = json.loads((failing_study["exp"] / "study.json").read_text())["summary"]
    diverged_id = re.search(r"_([0-9a-f]{5}_\d{5})_", s["diverged_trials"][0]["trial"]).group(1)  # Ray's trial id
    runs = {p.name.split("-")[-1]: p for p in failing_study["wandb"].rglob("offline-run-*")}
    assert len(runs) == 8, f"one W&B run per trial expected: {sorted(runs)}"
    run = runs[diverged_id]
    blob = b"".join(f.read_bytes() for f in run.glob("*.wandb"))
    assert b'"diverged"' in blob and b"status" in blob, "the diverged status did not reach W&B"
