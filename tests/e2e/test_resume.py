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

import numpy as np
import pytest

from helpers.asha_driver import SCORES  # the driver's trials, one score each
from helpers.common import REPO

pytestmark = pytest.mark.slow
DRIVER = [sys.executable, str(REPO / "tests" / "helpers" / "asha_driver.py")]


def newest(pattern: str) -> str | None:
    """The newest session's file: names carry the session's start time (the final sync gives all the
    files one mtime)."""
    found = sorted(glob.glob(pattern))
    return found[-1] if found else None


def saved_state(exp: Path) -> tuple[dict[float, dict], dict | None]:
    """The driver's last saved state: {score: {"status", "start_time", "trial_id"}} from the newest
    experiment state, and ASHA's first rung {trial_id: score} from the newest scheduler state (None
    without one). Ray saves both in one experiment checkpoint."""
    state, callbacks = newest(f"{exp}/experiment_state-*.json"), newest(f"{exp}/callback-states-*.pkl")
    if not state:
        return {}, None
    try:
        trials = json.loads(Path(state).read_text())["trial_data"]
        saved = pickle.loads(Path(callbacks).read_bytes()) if callbacks else None
    except (ValueError, EOFError, pickle.UnpicklingError, OSError):  # caught mid-write
        return {}, None
    out = {}
    for t, m in trials:
        t, m = json.loads(t), json.loads(m)
        out[t["config"]["score"]] = {"status": t["status"], "trial_id": t["trial_id"],
                                     "start_time": None if m["start_time"] in (None, "None") else float(m["start_time"])}
    if saved is None:
        return out, None
    asha = pickle.loads(saved[0]["scheduler"])
    return out, dict(next(recorded for milestone, recorded in asha["_brackets"][0]._rungs if milestone == 1))


def epochs_by_score(exp: Path) -> dict[float, list[int]]:
    out = {}
    for d in exp.iterdir():
        if d.is_dir() and (d / "params.json").is_file():
            lines = [json.loads(x) for x in (d / "result.json").read_text().splitlines() if x.strip()] \
                if (d / "result.json").is_file() else []
            out[json.loads((d / "params.json").read_text())["score"]] = [x["epoch"] for x in lines]
    return out


def test_resume_keeps_ashas_rungs_and_reruns_nothing(tmp_path):
    exp = tmp_path / "asha"
    proc = subprocess.Popen([*DRIVER, str(tmp_path), "fresh"], cwd=REPO, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None:
            trials, rung = saved_state(exp)
            if sum(t["status"] == "TERMINATED" for t in trials.values()) >= 2 and (rung is None or len(rung) >= 2):
                break  # two trials done and their results in the first rung, saved together
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    trials, rung = saved_state(exp)  # what the killed driver left: the resume starts from this
    done_before = {s for s, t in trials.items() if t["status"] == "TERMINATED"}
    assert len(done_before) >= 2, f"the kill came too late or never: {trials}"
    before = epochs_by_score(exp)
    # one trial at a time: the searcher makes a trial only when the last one ends, so the killed
    # driver's state lists the trials made so far; the others never started either
    never_started = set(SCORES) - {s for s, t in trials.items() if t["start_time"] is not None}
    assert never_started, "the study finished before the kill"

    out = subprocess.run([*DRIVER, str(tmp_path), "resume"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    after = epochs_by_score(exp)
    assert sorted(after) == sorted(SCORES), "a trial was lost or duplicated"
    assert after[0.9] == [1, 2, 3], "the best trial did not run its budget"
    for score, epochs in after.items():
        assert len(epochs) == len(set(epochs)), f"trial {score} repeated epochs {epochs}: it ran again"
        if score in done_before:
            assert epochs == before[score], f"finished trial {score} ran again: {before[score]} -> {epochs}"

    # ASHA's first rung as the resumed driver left it: the killed driver's results first, in their
    # order, then each later one; replay ASHA's rule (stop below the median of the results recorded
    # before: reduction factor 2) for every trial that had not started before the kill.
    assert rung is not None and len(rung) >= 2, "no scheduler state was saved with the experiment checkpoint"
    final_trials, final = saved_state(exp)
    assert list(final.items())[:len(rung)] == list(rung.items()), f"the first rung lost its history: {rung} -> {final}"
    by_id = {t["trial_id"]: s for s, t in final_trials.items()}
    earlier = list(rung.values())
    for trial_id, score in list(final.items())[len(rung):]:
        cutoff = float(np.nanpercentile(earlier, 50))
        if by_id[trial_id] in never_started:
            assert (after[score] == [1]) == (score < cutoff), (
                f"trial {score}, started after the resume, ran epochs {after[score]}; against the first rung "
                f"{earlier} (cutoff {cutoff}) ASHA {'stops' if score < cutoff else 'keeps'} it at epoch 1")
        earlier.append(score)
    assert set(never_started) <= {by_id[i] for i in final}, "a trial that started after the resume skipped the rung"


def test_tpe_search_resumes_its_history(tmp_path):
    """--resume of the Optuna/TPE space (search_spaces/tune_recipe.py) continues the searcher Tune saved
    with the experiment: after a driver kill the resumed study proposes new points. A searcher started
    afresh would propose its points_to_evaluate again: the default recipe, a duplicate of trial 1."""
    from study.config import TrainConfig
    storage = tmp_path / "results"
    # 10 trials of 2 epochs: a reused worker starts the next trial at once, so fewer or shorter ones
    # could all finish between the poll that sees two and the kill
    args = ["--experiment", "tune_recipe", "--resolution", "32", "--max-epochs", "2", "--num-samples", "10",
            "--max-concurrent", "1", "--set", "dense_units=16", "--storage", str(storage)]
    log = tmp_path / "run.log"
    # Tune writes the experiment state (and the trials' result.json) in a staging folder and copies it to the
    # storage at most every 10 s by default: on CI all ten trials finished inside one such window. A period of
    # 0 s copies it on every pass of Tune's loop, so what a SIGKILL leaves in the storage is current.
    env = {**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "study.run", *args], cwd=REPO, start_new_session=True,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    exp = storage / "tune_recipe"
    # finished trials as the driver's own progress lines count them (printed and flushed per trial)
    finished = lambda: log.read_text().count("[tune_recipe] trial ")
    deadline = time.time() + 600
    while time.time() < deadline and finished() < 2 and proc.poll() is None:
        time.sleep(0.1)
    seen = time.time()
    # let Tune write the experiment checkpoint that follows the second result (it holds the searcher)
    states = lambda: [p.stat().st_mtime for p in exp.glob("experiment_state*.json")]
    while time.time() < seen + 20 and not any(m >= seen for m in states()) and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, f"the study ended before it could be killed: {log.read_text()[-2000:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = finished()
    assert 2 <= before < 10, f"{before} trials finished before the kill"
    out = subprocess.run([sys.executable, "-m", "study.run", *args, "--resume"], cwd=REPO, capture_output=True,
                         text=True, timeout=900, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    keys = ("augment_strength", "lr", "weight_decay")
    params = [json.loads((d / "params.json").read_text()) for d in sorted(exp.glob("train_trial_*"))
              if (d / "params.json").is_file()]  # the kill may leave a started trial's folder empty
    points = [tuple(round(p[k], 12) for k in keys) for p in params]
    assert len(points) == 10, points
    d = TrainConfig()
    start = (d.augment_strength, d.lr, max(d.weight_decay, 1e-6))
    assert points.count(tuple(round(v, 12) for v in start)) == 1, "the resumed searcher started afresh"
    assert len(set(points)) == 10, points
