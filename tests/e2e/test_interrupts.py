"""Stopping a study from outside (issue 20, items 2, 9, 10): SIGTERM ends study.run within seconds with one
line and exit 130, at any point of a trial's checkpoint cycle; `--resume` afterwards always finishes;
a resume with other settings is refused naming each changed flag; off a terminal the log is the
project's lines (and Ray's warnings), not Ray's tables and per-checkpoint lines."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.common import REPO

pytestmark = pytest.mark.slow
ARGS = ["-m", "study.run", "--experiment", "quick", "--resolution", "32", "--max-epochs", "4", "--set", "dense_units=16"]


def _progress(log: Path) -> tuple[bool, int]:
    """(the study has started its trials, how many trials this run has finished), from the driver's own lines."""
    text = log.read_text() if log.exists() else ""
    return "study " in text, text.count("[quick] trial ")


def _start(storage: Path, log: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *ARGS, "--storage", str(storage), *extra], cwd=REPO,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture(scope="module")
def interrupted_study(tmp_path_factory):
    """The quick study stopped by SIGTERM three times, each time resumed, at three points of the trials'
    checkpoint cycles: 2 s after Ray started them (inside the first epochs), after this run's first
    finished trial, and after its third; the fourth run finishes it."""
    tmp = tmp_path_factory.mktemp("sigterm")
    storage, runs = tmp / "r", []
    for i, (delay, finished) in enumerate(((2.0, 0), (0.0, 1), (0.0, 3))):
        log = tmp / f"run{i}.log"
        proc = _start(storage, log, *(["--resume"] if i else []))
        t_end = time.monotonic() + 600
        while proc.poll() is None and time.monotonic() < t_end:
            started, done = _progress(log)
            if started and done >= finished:
                break
            time.sleep(0.05)
        time.sleep(delay)
        assert proc.poll() is None, f"run {i} ended before it could be stopped: {log.read_text()[-2000:]}"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        runs.append({"code": code, "seconds": time.monotonic() - t0, "log": log.read_text()})
    log = tmp / "final.log"
    proc = _start(storage, log, "--resume")
    runs.append({"code": proc.wait(timeout=900), "log": log.read_text()})
    return {"storage": storage, "runs": runs}


def test_sigterm_ends_the_study_with_one_line_and_exit_130(interrupted_study):
    for r in interrupted_study["runs"][:-1]:
        assert r["code"] == 130, r["log"][-3000:]
        assert r["seconds"] < 30
        assert "interrupted (SIGTERM): pass --resume to continue from the last saved state" in r["log"]
        assert "Traceback" not in r["log"] and "SIGTERM received" not in r["log"], r["log"][-3000:]


def test_resume_after_sigterm_always_finishes(interrupted_study):
    final = interrupted_study["runs"][-1]
    assert final["code"] == 0, final["log"][-3000:]
    meta = json.loads((interrupted_study["storage"] / "quick" / "study.json").read_text())
    s = meta["summary"]
    assert s["trials"] == 8 and s["errors"] == 0 and s["statuses"]["finished"] + s["stopped_by_asha"] == 8
    for trial in (interrupted_study["storage"] / "quick").glob("train_trial_*"):
        kept = sorted(trial.glob("checkpoint_*"))
        assert kept and (kept[-1] / "checkpoint.pt").is_file()  # pruned, but the latest is always there


def test_off_a_terminal_the_log_is_the_projects_lines(interrupted_study):
    logs = [r["log"] for r in interrupted_study["runs"]]
    assert "[quick] trial" in "".join(logs) and "quick: 8 trials" in logs[-1]
    for log in logs:
        for noise in ("Checkpoint successfully created", "Configuration for experiment", "Trial status", "╭"):
            assert noise not in log, noise
        assert len(log.splitlines()) < 30, log


@pytest.mark.parametrize("extra,words", [
    (["--resolution", "48"], ["--resolution 48 (started with 32)"]),
    (["--set", "dense_units=8"], ["--set dense_units 8 (started with 16)"]),
    (["--max-epochs", "3"], ["--max-epochs 3 (started with 4)"]),
])
def test_resume_with_other_settings_is_refused_naming_each_flag(interrupted_study, extra, words):
    storage = interrupted_study["storage"]
    before = (storage / "quick" / "study.json").read_text()
    argv = [a for a in ARGS if a not in ("--resolution", "32", "--max-epochs", "4", "--set", "dense_units=16")]
    base = {"--resolution": "32", "--max-epochs": "4", "--set": "dense_units=16"}
    flags = {k: v for k, v in base.items() if k not in extra}
    cmd = [sys.executable, *argv, *[x for kv in flags.items() for x in kv], *extra, "--storage", str(storage), "--resume"]
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stderr[-2000:]
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --resume of quick with other settings") and all(
        w in err[0] for w in words), err
    assert (storage / "quick" / "study.json").read_text() == before  # nothing rewritten
