"""The study's last stage and the round trip around it: the confirmation stage retrains the selected
configuration with fresh seeds, the report scores those models (and trains nothing), a second run
of the same command resumes and exits 0, progress is one line per trial off a terminal, and every
run of one study carries one study id (its W&B group)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from helpers.common import QUICK_TINY_ARGS, REPO
from study.data.layout import SAMPLE_ROOT
from study.names import CONFIRM_PREFIX, METRIC, STUDY_FILE

pytestmark = pytest.mark.slow


def _run(*args):
    return subprocess.run([sys.executable, "-m", "study.run", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=900)


@pytest.fixture(scope="module")
def study(quick_results):
    """The session's quick study (tests/conftest.py: --data given, so the confirmation stage ran with 2
    seeds), and the same command run again with --resume, as `make study` does the second time."""
    storage = quick_results.parent
    args = [*QUICK_TINY_ARGS, "--data", str(SAMPLE_ROOT), "--confirm-seeds", "2", "--storage", str(storage)]
    again = _run(*args, "--resume")
    first = type("First", (), {"stdout": (quick_results / "run-stdout.txt").read_text()})
    return {"storage": storage, "first": first, "again": again}


def test_confirmation_stage_retrains_the_selected_configuration(study):
    storage = study["storage"]
    meta = json.loads((storage / f"{CONFIRM_PREFIX}binary" / STUDY_FILE).read_text())
    json.loads((storage / "quick" / STUDY_FILE).read_text())
    assert meta["searched"] == ["seed"] and meta["confirms"]["experiment"] == "quick"
    trials = [d for d in (storage / f"{CONFIRM_PREFIX}binary").iterdir() if (d / "params.json").is_file()]
    seeds = sorted(json.loads((d / "params.json").read_text())["seed"] for d in trials)
    assert seeds == [0, 1] and all(list(d.glob("checkpoint_*/checkpoint.pt")) for d in trials)
    from study.tune.ranking import config_key, rank
    rows = []
    for d in (storage / "quick").iterdir():
        if (d / "result.json").is_file():
            last = [json.loads(line) for line in (d / "result.json").read_text().splitlines() if line.strip()][-1]
            rows.append({"experiment": "quick", "config": json.loads((d / "params.json").read_text()),
                         "score": last["best_" + METRIC], "checkpoint": "x", "status": last.get("status")})
    best = rank(rows)[0]["members"][0]["config"]  # the highest mean selection score over its seeds
    assert all(config_key(json.loads((d / "params.json").read_text())) == config_key(best) for d in trials)
    assert not (storage / f"{CONFIRM_PREFIX}3class").exists()  # quick has no 3-class trial to confirm


def test_one_study_id_everywhere(study):
    storage = study["storage"]
    sid = json.loads((storage / STUDY_FILE).read_text())["study_id"]
    assert len(sid) == 32 and f"study {sid}" in study["first"].stdout and f"study {sid}" in study["again"].stdout
    for exp in ("quick", f"{CONFIRM_PREFIX}binary"):
        assert json.loads((storage / exp / STUDY_FILE).read_text())["study_id"] == sid


def test_progress_is_one_line_per_trial_off_a_terminal(study):
    lines = [line for line in study["first"].stdout.splitlines() if line.startswith("[quick] trial ")]
    assert len(lines) == 8 and lines[-1].split(") ")[1].startswith("8/8 done")
    assert all("val_shift_bacc" in line and "elapsed" in line for line in lines)
    assert sum(line.startswith(f"[{CONFIRM_PREFIX}binary] trial ") for line in study["first"].stdout.splitlines()) == 2


def test_running_the_same_study_again_resumes_and_exits_0(study):
    again = study["again"]
    assert again.returncode == 0, again.stderr[-2000:]
    assert "quick: resuming from" in again.stdout and "[quick] trial" not in again.stdout  # nothing ran again
    assert f"{CONFIRM_PREFIX}binary: resuming from" in again.stdout and f"[{CONFIRM_PREFIX}binary] trial" not in again.stdout
    assert "quick: 8 trials (0 errored, 0 diverged)" in again.stdout


def test_report_scores_the_confirmed_models_and_trains_nothing(study, tmp_path, monkeypatch):
    from analysis.report import cli as report

    def no_training(*a, **k):
        raise AssertionError("the report must not train")

    monkeypatch.setattr(torch.Tensor, "backward", no_training)
    monkeypatch.setattr(torch.autograd, "backward", no_training)
    assert report.main([str(study["storage"]), "--out", str(tmp_path / "r")]) == 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert "the confirmation stage (confirm-binary): the configuration retrained with seeds 0, 1" in md
    # given one experiment's folder, the report finds its study's confirmation stage beside it
    assert report.main([str(study["storage"] / "quick"), "--out", str(tmp_path / "q")]) == 0
    assert "the confirmation stage (confirm-binary)" in (tmp_path / "q" / "report.md").read_text()
