"""The Ray Tune study: trainable alone, ASHA, crash restart, resume, W&B offline, multi-node, CLI.

Sizes are tiny (32 px, the bundled sample, a few epochs) so CI on 2 cores affords them."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray
from ray import tune

from helpers.common import QUICK_TINY_ARGS, REPO, ray_processes, tiny
from study.data.splits import prepare
from study.names import BEST_METRIC, EPOCH, METRIC, SKIPPED_FILE, TRAIN_LOSS, VAL_AUC, VAL_LOSS
from study.tune.space import Asha
from study.tune.tuner import build_tuner

pytestmark = pytest.mark.slow


def result_lines(trial_dir: Path) -> list[dict]:
    f = trial_dir / "result.json"
    return [json.loads(x) for x in f.read_text().splitlines() if x.strip()] if f.exists() else []


def trial_dirs(exp: Path) -> list[Path]:
    """Trial folders with a params.json (a killed driver can leave the folder of a trial it was starting
    empty; on --resume Tune makes that trial again in a new folder)."""
    return sorted(p for p in exp.iterdir() if p.is_dir() and p.name.startswith("train_trial")
                  and (p / "params.json").is_file())


@pytest.fixture
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False)
    yield
    ray.shutdown()


# ---- the trainable alone -----------------------------------------------------------------------
class FakeTune:
    """Stands in for ray.tune inside study.tune.trainable: records reports, hands out a checkpoint."""
    Checkpoint = tune.Checkpoint

    def __init__(self, start=None):
        self.reports, self.start = [], start

    def get_checkpoint(self):
        return self.start

    def report(self, metrics, checkpoint=None):
        with checkpoint.as_directory() as d:
            files = sorted(os.listdir(d))
        self.reports.append((metrics, files))


def test_trainable_reports_every_epoch_with_a_checkpoint(monkeypatch, tiny_data, tmp_path):
    import study.tune.trainable as trainable
    fake = FakeTune()
    monkeypatch.setattr(trainable, "tune", fake)
    trainable.train_trial(tiny(epochs=2).to_dict(), tiny_data)
    assert [m["epoch"] for m, _ in fake.reports] == [1, 2]
    assert fake.reports[-1][1] == ["checkpoint.pt"]  # one file per checkpoint (study/engine/checkpoint.py)
    assert METRIC in fake.reports[0][0] and BEST_METRIC in fake.reports[0][0]


def test_trainable_continues_from_its_checkpoint(monkeypatch, tiny_data, tmp_path):
    import study.tune.trainable as trainable
    from study.engine.loop import fit
    fit(tiny(epochs=3), tiny_data, on_epoch=lambda r, s: s.save(tmp_path) if r["epoch"] == 2 else None)
    fake = FakeTune(start=tune.Checkpoint.from_directory(str(tmp_path)))
    monkeypatch.setattr(trainable, "tune", fake)
    trainable.train_trial(tiny(epochs=3).to_dict(), tiny_data)
    assert [m["epoch"] for m, _ in fake.reports] == [3]


# ---- ASHA ----------------------------------------------------------------------------------------
def test_asha_stops_weak_trials(local_ray, tmp_path):
    """One trial at a time makes ASHA's decisions deterministic (training is); balanced class
    weights keep the tiny sample off the 'always pneumonia' plateau so the trials differ."""
    cfg = tiny(epochs=6, batch_size=16, class_balance="weights")
    data = prepare(None, cfg, progress=False)
    space = {**cfg.to_dict(), "lr": tune.grid_search([1e-4, 1e-3, 3e-3, 1e-2, 0.1, 1.0])}
    results = build_tuner(data, space, name="asha", storage=str(tmp_path), max_epochs=6, num_samples=1,
                          asha=Asha(1, 2), resources={"cpu": 1}, max_concurrent=1).fit()
    epochs = sorted(r.metrics["training_iteration"] for r in results)
    assert not results.errors
    assert epochs[0] < 6, f"ASHA stopped nothing: {epochs}"
    assert epochs[-1] == 6, f"ASHA stopped everything: {epochs}"


def test_a_reused_worker_trains_each_trial_as_a_fresh_one_does(local_ray, tmp_path):
    """reuse_actors: one worker process trains the three trials one after another (two slots are free:
    one process also shows --max-concurrent 1 holds for a grid space), and every trial's per-epoch
    numbers are identical to those of the same trial in a fresh worker."""
    cfg = tiny(epochs=2, augment="light", dropout=0.3)  # augmentation and dropout draw random numbers
    data = prepare(None, cfg, progress=False)
    space = {**cfg.to_dict(), "seed": tune.grid_search([0, 1, 2])}
    runs = {}
    for reuse in (True, False):
        results = build_tuner(data, space, name=f"reuse-{reuse}", storage=str(tmp_path), max_epochs=2, asha=None,
                              num_samples=1, resources={"cpu": 1}, max_concurrent=1, reuse_actors=reuse).fit()
        assert not results.errors
        runs[reuse] = {r.config["seed"]: result_lines(Path(r.path)) for r in results}
    pids = lambda run: {line["pid"] for lines in run.values() for line in lines}
    assert len(pids(runs[True])) == 1 and len(pids(runs[False])) == 3
    keys = (EPOCH, TRAIN_LOSS, METRIC, VAL_LOSS, VAL_AUC)
    for seed, lines in runs[True].items():
        assert [[line[k] for k in keys] for line in lines] == [[line[k] for k in keys] for line in runs[False][seed]]


# ---- fault tolerance ----------------------------------------------------------------------------
def make_crash_once(marker: Path):
    """A trainable whose first attempt dies (os._exit: the worker process is gone) after epoch 2."""
    def crash_once(config, data, quiet=False):
        import study.tune.trainable as trainable
        if not marker.exists():
            real_report = trainable.tune.report

            def report(metrics, checkpoint=None):
                real_report(metrics, checkpoint=checkpoint)
                if metrics["epoch"] == 2:
                    marker.write_text(str(os.getpid()))
                    time.sleep(1.0)  # let the driver register epoch 2's result and checkpoint
                    os._exit(1)
            trainable.tune.report = report
        trainable.train_trial(config, data)
    return crash_once


def test_crashed_trial_restarts_from_its_checkpoint(local_ray, tmp_path):
    cfg = tiny(epochs=4)
    data = prepare(None, cfg, progress=False)
    marker = tmp_path / "crashed"
    results = build_tuner(data, cfg.to_dict(), name="crash", storage=str(tmp_path), max_epochs=4, asha=None,
                          num_samples=1, resources={"cpu": 1}, max_failures=1, fn=make_crash_once(marker)).fit()
    assert marker.exists(), "the first attempt did not crash"
    assert not results.errors
    r = results[0]
    assert r.metrics["training_iteration"] == 4
    epochs = [line["epoch"] for line in result_lines(Path(r.path))]
    assert sorted(set(epochs)) == [1, 2, 3, 4] and epochs.count(1) == 1, f"restarted from scratch: {epochs}"
    from study.engine.checkpoint import load
    with r.checkpoint.as_directory() as d:
        assert [m["epoch"] for m in load(d)["records"]] == [1, 2, 3, 4]


def _run_cli(args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "study.run", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, **kw)


def test_killed_driver_resumes_without_rerunning_finished_trials(tmp_path):
    storage = tmp_path / "results"
    args = [*QUICK_TINY_ARGS[:-4], "--max-epochs", "4", "--set", "dense_units=16", "--resolution", "32",
            "--max-concurrent", "1", "--storage", str(storage)]
    # the experiment state copied to the storage on every pass of Tune's loop (default: every 10 s or more),
    # so what the SIGKILL leaves there is current (tests/e2e/test_resume.py says why)
    env = {"TUNE_GLOBAL_CHECKPOINT_S": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "study.run", *args], cwd=REPO, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **env})
    exp = storage / "quick"
    deadline = time.time() + 600
    finished_before: dict[str, int] = {}
    while time.time() < deadline:
        done = {d.name: len(result_lines(d)) for d in (trial_dirs(exp) if exp.exists() else [])
                if result_lines(d) and result_lines(d)[-1]["training_iteration"] >= 4
                or any(x.get("done") for x in result_lines(d))}
        if len(done) >= 2:
            finished_before = done
            break
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert finished_before, "no trial finished before the kill"
    total = len(trial_dirs(exp))
    assert total < 8 or any(len(result_lines(d)) < 4 for d in trial_dirs(exp)), "study finished before the kill"

    out = _run_cli([*args, "--resume"], env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    dirs = trial_dirs(exp)
    assert len(dirs) == 8, "a trial was lost or duplicated"
    for d in dirs:
        lines = result_lines(d)
        if d.name in finished_before:
            assert len(lines) == finished_before[d.name], f"finished trial {d.name} ran again"
        assert max(x["training_iteration"] for x in lines) <= 4
    meta = json.loads((exp / "study.json").read_text())
    assert meta["summary"]["trials"] == 8 and meta["summary"]["errors"] == 0


def test_experiments_run_together_stop_on_ctrl_c_and_resume(tmp_path):
    """Two experiments on one data set run from one queue: with one trial at a time each
    (--max-concurrent 1) and two slots, baseline (second in the list) trains while quick is still
    running; one after the other, baseline would start only once quick had finished. Ctrl-C ends
    the study at once with exit 130 and no Ray process left; --resume finishes both."""
    storage, log = tmp_path / "results", tmp_path / "stderr.txt"
    # 8 epochs: long enough that both experiments are still running when each has 2 result lines (at 4, a CI
    # machine once saw the whole study end before the poll below saw baseline's lines)
    args = ["--experiment", "quick,baseline", "--resolution", "32", "--max-epochs", "8", "--set", "dense_units=16",
            "--max-concurrent", "1", "--storage", str(storage)]
    token = f"together-{os.getpid()}-{time.time_ns()}"
    with open(log, "w") as err:  # a file, not a pipe: Ray's log lines would fill a pipe nobody reads yet
        proc = subprocess.Popen([sys.executable, "-m", "study.run", *args], cwd=REPO, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, "PNEUMONIA_TEST_RUN": token})
    lines = lambda e: [x for d in trial_dirs(storage / e) for x in result_lines(d)] if (storage / e).exists() else []
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and not (len(lines("quick")) >= 2 and len(lines("baseline")) >= 2):
        time.sleep(0.2)
    quick_finished = (storage / "quick" / "study.json").exists()  # written when an experiment ends
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130, log.read_text()[-3000:]
    assert "interrupted (SIGINT): pass --resume" in log.read_text()
    assert lines("baseline") and not quick_finished, "baseline did not train while quick ran"
    while ray_processes(token, "PNEUMONIA_TEST_RUN") and time.time() < deadline:
        time.sleep(0.5)
    assert not ray_processes(token, "PNEUMONIA_TEST_RUN"), "Ctrl-C left Ray processes behind"

    out = _run_cli([*args, "--resume"], timeout=900)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "running 2 experiments at once: quick, baseline" in out.stdout
    for name, trials in (("quick", 8), ("baseline", 5)):
        summary = json.loads((storage / name / "study.json").read_text())["summary"]
        assert summary["trials"] == len(trial_dirs(storage / name)) == trials and summary["errors"] == 0, name
    # one line per trial the resume finished, named by its experiment. Which experiment still had trials left is
    # timing: quick's study.json is written when tuner.fit returns, so its last trial may have ended just before
    # Ctrl-C (CI saw that once on a loaded machine); the one that had not ended is baseline's or quick's.
    assert out.stdout.count("[quick] trial ") + out.stdout.count("[baseline] trial ") >= 1
    assert all(x.split("]")[0] in ("[quick", "[baseline") for x in out.stdout.splitlines() if " trial " in x
               and x.startswith("[")), out.stdout


# ---- the CLI, W&B ------------------------------------------------------------------------------
def test_quick_study_cli_summary(quick_results):
    meta = json.loads((quick_results / "study.json").read_text())
    s = meta["summary"]
    assert s["trials"] == 8 and s["errors"] == 0 and 0 < s["epochs_run"] <= s["epochs_budget"] == 8 * 3
    assert set(s["best_config"]) == {"optimizer", "lr"}
    stdout = (quick_results / "run-stdout.txt").read_text()
    assert f"quick: 8 trials (0 errored, 0 diverged), {s['epochs_run']}/24 epochs run" in stdout
    assert json.loads((quick_results / SKIPPED_FILE).read_text()) == [] and meta["skipped_files"] == 0
    for d in trial_dirs(quick_results):
        assert list(d.glob("checkpoint_*/checkpoint.pt")), f"{d.name} has no checkpoint"


def test_wandb_offline_logs_every_trial(tmp_path):
    """...and leaves no Ray process behind (W&B's logging actors used to outlive the CLI)."""
    wandb_dir = tmp_path / "wandb_home"
    wandb_dir.mkdir()
    token = f"wandb-{os.getpid()}-{time.time_ns()}"  # marks the processes of this one run
    out = _run_cli([*QUICK_TINY_ARGS[:-4], "--resolution", "32", "--max-epochs", "1", "--set", "dense_units=16",
                    "--storage", str(tmp_path / "r"), "--wandb-project", "pneumonia-test"],
                   env={"WANDB_MODE": "offline", "WANDB_DIR": str(wandb_dir), "WANDB_SILENT": "true",
                        "PNEUMONIA_TEST_RUN": token}, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    deadline = time.time() + 3
    while ray_processes(token, "PNEUMONIA_TEST_RUN") and time.time() < deadline:
        time.sleep(0.5)
    left = ray_processes(token, "PNEUMONIA_TEST_RUN")
    assert not left, f"the W&B study left Ray processes behind: {left}"
    runs = list(wandb_dir.rglob("offline-run-*"))
    assert len(runs) == 8, f"expected one offline W&B run per trial, found {runs}"
    meta = json.loads((tmp_path / "r" / "quick" / "study.json").read_text())
    sid = json.loads((tmp_path / "r" / "study.json").read_text())["study_id"]
    assert meta["wandb"] == {"project": "pneumonia-test", "group": sid, "job_type": "quick"} and meta["study_id"] == sid
    for run in runs:  # every trial's W&B run is in the study's group, with its experiment as job_type
        log = next(run.glob("*.wandb")).read_bytes()
        assert sid.encode() in log and b"quick" in log, run


def test_cli_user_errors_are_one_line(tmp_path):
    for args, needle in [(["--experiment", "nope"], "nope"), (["--set", "lrr=1"], "lrr"),
                         (["--data", str(tmp_path / "missing")], "missing")]:
        out = _run_cli([*args, "--storage", str(tmp_path)], timeout=300)
        assert out.returncode == 2 and out.stderr.startswith("error: ") and needle in out.stderr, out.stderr[-2000:]
        assert "Traceback" not in out.stderr


# ---- multi-node ----------------------------------------------------------------------------------
def make_where(log: Path):
    def where(config, data, quiet=False):
        import study.tune.trainable as trainable
        ctx = ray.get_runtime_context()
        with open(log, "a") as f:
            f.write(json.dumps({"node": ctx.get_node_id(), "gpus": ctx.get_accelerator_ids().get("GPU", [])}) + "\n")
        trainable.train_trial(config, data)
    return where


def test_trials_spread_over_nodes_with_fractional_gpus(tmp_path):
    """A head without GPUs and two worker nodes that declare one GPU each (Ray's own multi-node
    test cluster on this machine); 0.5 GPU per trial must put trials on both workers, <= 2 each."""
    from ray.cluster_utils import Cluster
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    workers = [cluster.add_node(num_cpus=2, num_gpus=1) for _ in range(2)]
    try:
        ray.init(address=cluster.address)
        cluster.wait_for_nodes()
        cfg = tiny(epochs=2)
        data = prepare(None, cfg, progress=False)
        log = tmp_path / "where.jsonl"
        space = {**cfg.to_dict(), "seed": tune.grid_search([0, 1, 2, 3])}
        results = build_tuner(data, space, name="multi", storage=str(tmp_path), max_epochs=2, asha=None, num_samples=1,
                              resources={"cpu": 0.5, "gpu": 0.5}, fn=make_where(log)).fit()
        assert not results.errors
        rows = [json.loads(x) for x in log.read_text().splitlines()]
        nodes = {r["node"] for r in rows}
        assert nodes <= {w.node_id for w in workers}, "a trial ran on the GPU-less head"
        assert len(nodes) == 2, f"trials did not spread over both worker nodes: {rows}"
        assert all(len(r["gpus"]) == 1 for r in rows), "a trial got no GPU assignment"
    finally:
        ray.shutdown()
        cluster.shutdown()
