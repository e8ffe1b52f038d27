"""--resume restores the scheduler: after a killed driver, ASHA still judges trials against the rungs
it recorded before the kill, and no finished trial runs again (tests/helpers/asha_driver.py)."""
from __future__ import annotations

import glob
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow
DRIVER = [sys.executable, str(REPO / "tests" / "helpers" / "asha_driver.py")]


def newest(pattern: str) -> str | None:
    found = sorted(glob.glob(pattern), key=os.path.getmtime)
    return found[-1] if found else None


def snapshot(exp: Path) -> tuple[int, int | None]:
    """(trials TERMINATED in the newest experiment state, results recorded in ASHA's first rung in the
    newest scheduler state, None without one) as the driver last saved them to storage."""
    state, callbacks = newest(f"{exp}/experiment_state-*.json"), newest(f"{exp}/callback-states-*.pkl")
    if not state:
        return 0, 0
    try:
        trials = json.loads(Path(state).read_text())["trial_data"]
        saved = pickle.loads(Path(callbacks).read_bytes()) if callbacks else None
    except (ValueError, EOFError, pickle.UnpicklingError, OSError):  # caught mid-write
        return 0, 0
    terminated = sum(json.loads(t)["status"] == "TERMINATED" for t, _ in trials)
    if saved is None:
        return terminated, None
    asha = pickle.loads(saved[0]["scheduler"])
    first_rung = next(recorded for milestone, recorded in asha["_brackets"][0]._rungs if milestone == 1)
    return terminated, len(first_rung)


def epochs_by_score(exp: Path) -> dict[float, list[int]]:
    out = {}
    for d in exp.iterdir():
        if d.is_dir() and (d / "params.json").is_file():
            lines = [json.loads(l) for l in (d / "result.json").read_text().splitlines() if l.strip()] \
                if (d / "result.json").is_file() else []
            out[json.loads((d / "params.json").read_text())["score"]] = [l["epoch"] for l in lines]
    return out


def test_resume_keeps_ashas_rungs_and_reruns_nothing(tmp_path):
    exp = tmp_path / "asha"
    proc = subprocess.Popen([*DRIVER, str(tmp_path), "fresh"], cwd=REPO, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None:
            terminated, rung = snapshot(exp)
            if terminated >= 2 and (rung is None or rung >= 2):  # two results in the first rung, saved with the trials
                break
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert terminated >= 2, f"the kill came too late or never ({terminated} trials, {rung} in rung 1)"
    before = epochs_by_score(exp)
    assert len([s for s, e in before.items() if e]) < 8, "the study finished before the kill"

    out = subprocess.run([*DRIVER, str(tmp_path), "resume"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    after = epochs_by_score(exp)
    assert sorted(after) == sorted([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]), "a trial was lost or duplicated"
    assert after[0.9] == [1, 2, 3], "the best trial did not run its budget"
    for score, epochs in after.items():
        assert len(epochs) == len(set(epochs)), f"trial {score} repeated epochs {epochs}: it ran again"
        if before.get(score) and before[score][-1] in (1, 3):  # stopped or finished before the kill
            assert epochs == before[score], f"finished trial {score} ran again: {before[score]} -> {epochs}"
    started_after = [s for s in after if not before.get(s)]
    assert started_after, "no trial started after the resume"
    for score in started_after:
        assert after[score] == [1], (f"trial {score} started after the resume ran {after[score]}: ASHA forgot its "
                                     f"first rung (it must stop every trial worse than all before it at epoch 1)")
