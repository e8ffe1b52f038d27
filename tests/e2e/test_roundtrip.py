"""The laptop-to-cluster round trip on one machine: the data and the results on a local S3 server
(moto's server mode, reached through AWS_ENDPOINT_URL as any S3 is), the quick study submitted as a
Ray Job to a local Ray head exactly as cluster/README.md submits it, and the report built from the
s3:// URI, reading the tree in place. Also: --data on a cluster is required, and an s3:// --data is
downloaded once to the node's cache.

The Ray Job is the one quick study of this module (tiny size, as conftest.QUICK_TINY_ARGS); the
report tests read what it wrote.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
from pyarrow import fs as pafs

from helpers import servers
from helpers.common import QUICK_TINY_ARGS, REPO, make_root
from study.data.layout import SAMPLE_ROOT

BUCKET = "pneumonia"
DATA_URI = f"s3://{BUCKET}/data/chest_xray"
STORAGE = f"s3://{BUCKET}/study"
# cluster/README.md's Ray Jobs command, at the tests' tiny size, on a 2-CPU head without GPUs
JOB_STUDY = ["python", "-m", "study.run", *QUICK_TINY_ARGS, "--address", "auto", "--data", DATA_URI,
             "--storage", STORAGE, "--gpus-per-trial", "0", "--cpus-per-trial", "1"]


def _cli(module: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ), timeout=timeout)


def _one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A local S3 server with bucket `pneumonia` holding the bundled sample at DATA_URI; this process's
    environment points at it (so do the subprocesses and the Ray head started from here)."""
    mp = pytest.MonkeyPatch()
    with servers.s3_server(tmp_path_factory.mktemp("moto")) as env:
        try:
            for k, v in env.items():
                mp.setenv(k, v)
            # from_uri, as study.run and analysis open storage: Arrow reads AWS_ENDPOINT_URL there
            s3fs, _ = pafs.FileSystem.from_uri(f"s3://{BUCKET}?allow_bucket_creation=true")
            s3fs.create_dir(BUCKET)
            pafs.copy_files(str(SAMPLE_ROOT), DATA_URI)
            yield env
        finally:
            mp.undo()


# ---- --data on a cluster -------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["--address", "ray job"])
def test_study_on_a_cluster_needs_data(where, tmp_path):
    args = ["--experiment", "quick", "--storage", str(tmp_path)]
    env = dict(os.environ)
    if where == "--address":
        args += ["--address", "auto"]
    else:  # what Ray's job supervisor sets for a job's entrypoint
        env["RAY_JOB_CONFIG_JSON_ENV_VAR"] = json.dumps({"runtime_env": {}, "metadata": {}})
    proc = subprocess.run([sys.executable, "-m", "study.run", *args], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=300)
    _one_line_error(proc, "--data", "bundled", "s3://")
    assert not list(tmp_path.iterdir()), "nothing may run without --data"


def test_s3_data_is_downloaded_once_and_follows_changes(s3, tmp_path, monkeypatch):
    import study.data.fetch as sfetch
    from study.data.layout import find_root, summarize
    uri = f"s3://{BUCKET}/tiny/chest_xray"
    pafs.copy_files(str(make_root(tmp_path / "d")), uri)
    here = find_root(uri)
    assert here == sfetch.cache_folder(uri) and str(here).startswith(os.environ["PNEUMONIA_CACHE"])
    s = summarize(uri, resolution=32)
    assert (s["splits"]["train"]["normal"], s["splits"]["train"]["bacteria"], s["splits"]["train"]["virus"]) == (3, 2, 2)

    copies = []
    real_copy = sfetch.pafs.copy_files
    monkeypatch.setattr(sfetch.pafs, "copy_files", lambda *a, **k: copies.append(a) or real_copy(*a, **k))
    assert find_root(uri) == here and copies == [], "an unchanged data set must not be downloaded again"
    gone = next((here / "train" / "NORMAL").iterdir()).name
    s3fs, folder = pafs.FileSystem.from_uri(uri)
    s3fs.delete_file(f"{folder}/train/NORMAL/{gone}")
    assert find_root(uri) == here and len(copies) == 1, "a changed data set is downloaded again"
    assert not (here / "train" / "NORMAL" / gone).exists() and len(list((here / "train" / "NORMAL").iterdir())) == 2


def test_remote_paths_are_named_by_the_uri_the_user_gave(monkeypatch):
    """Checkpoint and trial URIs keep the tree's scheme, bucket and query (e.g. an endpoint_override)."""
    from analysis.results.tree import Tree
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    t = Tree.of("s3://bkt/study/?endpoint_override=127.0.0.1:9&scheme=http")
    assert (t.base, t.local) == ("bkt/study", False)
    assert t.name("bkt/study/quick/train_trial_x/checkpoint_000002") == \
        "s3://bkt/study/quick/train_trial_x/checkpoint_000002?endpoint_override=127.0.0.1:9&scheme=http"
    local = Tree.of("file:///tmp/some/results")
    assert local.local and local.name("/tmp/some/results/quick") == "/tmp/some/results/quick"


def test_remote_mistakes_are_one_line(s3, tmp_path):
    _one_line_error(_cli("analysis.report", f"s3://{BUCKET}/nothing-here", "--out", str(tmp_path / "o")),
                    f"s3://{BUCKET}/nothing-here", "nothing there")
    _one_line_error(_cli("analysis.report", f"s3://{BUCKET}/data", "--out", str(tmp_path / "o")),
                    "not a results tree")
    _one_line_error(_cli("analysis.report", "nosuchscheme://x/y", "--out", str(tmp_path / "o")),
                    "nosuchscheme://x/y", "cannot open it")
    _one_line_error(_cli("study.inspect", "data", f"s3://{BUCKET}/no-data"), f"s3://{BUCKET}/no-data", "nothing there")
    assert not (tmp_path / "o").exists()


# ---- the quick study as a Ray Job, results on S3 ---------------------------------------------------
@pytest.fixture(scope="module")
def job(s3, tmp_path_factory):
    """`ray job submit --working-dir . -- python -m study.run ...` against a local head whose node has
    its own image cache (the report below runs as on another machine). The CLI, like the head, runs
    without token authentication (RAY_AUTH_MODE may be `token` in this process after a ray.init)."""
    head_cache = tmp_path_factory.mktemp("head-cache")
    ray_cli = str(servers.VENV_BIN / "ray")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    with servers.ray_head({**s3, "PNEUMONIA_CACHE": str(head_cache)}) as address:
        t0 = time.time()
        submit = subprocess.run([ray_cli, "job", "submit", "--address", address, "--working-dir", ".", "--", *JOB_STUDY],
                                cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
        seconds = time.time() - t0
        output = submit.stdout + submit.stderr
        m = re.search(r"Job '([\w-]+)' submitted successfully", output)
        status = subprocess.run([ray_cli, "job", "status", "--address", address, m.group(1)], env=env,
                                capture_output=True, text=True, timeout=120) if m else None
    print(f"ray job: {seconds:.0f} s")
    return {"submit": submit, "output": output, "job_id": m and m.group(1),
            "status": status and status.stdout + status.stderr, "head_cache": head_cache, "seconds": seconds}


def _read_json(uri: str) -> dict:
    filesystem, path = pafs.FileSystem.from_uri(uri)
    with filesystem.open_input_stream(path) as f:
        return json.loads(f.read())


@pytest.mark.slow
def test_ray_job_runs_the_quick_study(job):
    assert job["submit"].returncode == 0 and job["job_id"], job["output"][-5000:]
    assert f"Job '{job['job_id']}' succeeded" in job["status"], job["status"]
    assert "quick: 8 trials (0 errored, 0 diverged)" in job["output"]  # the driver's summary, streamed by `ray job submit`
    assert "confirm-binary: 3 trials (0 errored, 0 diverged)" in job["output"]  # --data given: the confirmation stage ran
    meta = _read_json(f"{STORAGE}/quick/study.json")
    assert meta["summary"]["trials"] == 8 and meta["summary"]["errors"] == 0
    assert meta["data_root"] == DATA_URI


@pytest.mark.slow
def test_job_downloaded_its_data_to_the_node_cache(job):
    copy = job["head_cache"] / "data" / "s3" / BUCKET / "data" / "chest_xray"
    assert (copy / ".fetched").is_file()
    want = sorted(p.relative_to(SAMPLE_ROOT) for p in SAMPLE_ROOT.rglob("*") if p.is_file())
    assert sorted(p.relative_to(copy) for p in copy.rglob("*") if p.is_file() and p.name != ".fetched") == want


@pytest.mark.slow
def test_report_reads_the_s3_results_in_place(job, tmp_path, monkeypatch):
    """`python -m analysis.report s3://.../quick` (in this process, to see what it copies): the tree is
    read in place; the only copies are the checkpoints it loads and the data set (once per machine)."""
    import study.data.fetch as sfetch
    from analysis.report import cli as report
    copies = []
    real_copy = sfetch.pafs.copy_files
    monkeypatch.setattr(sfetch.pafs, "copy_files", lambda src, *a, **k: copies.append(src) or real_copy(src, *a, **k))

    def no_training(*a, **k):
        raise AssertionError("the report must not train")
    monkeypatch.setattr(torch.Tensor, "backward", no_training)  # training is forbidden in the report's process
    monkeypatch.setattr(torch.autograd, "backward", no_training)
    out = tmp_path / "report"
    assert report.main([f"{STORAGE}/quick", "--out", str(out)]) == 0
    csv = pd.read_csv(out / "trials.csv")
    assert len(csv) == 8 and csv["checkpoint"].str.startswith(f"{STORAGE}/quick/train_trial_").all()
    md = (out / "report.md").read_text()
    for section in (f"# Pneumonia CNN study report: {STORAGE}/quick", "## Experiment: quick",
                    "## Decision thresholds (chosen on validation)", "## Test evaluation (once, after selection)"):
        assert section in md, section
    loaded = [c for c in copies if c != f"{BUCKET}/data/chest_xray"]
    assert len(copies) - len(loaded) <= 1, copies
    # each kept model once: the selected trial's (thresholds), every trial's and confirmation model's (the
    # ensemble's library), the confirmation stage's 3 seeds (test); never a whole folder of the tree
    trials = [c for c in loaded if c.startswith(f"{BUCKET}/study/quick/")]
    confirmed = [c for c in loaded if c.startswith(f"{BUCKET}/study/confirm-binary/")]
    assert len(trials) == len(set(trials)) == 8 and {f"s3://{c}" for c in trials} == set(csv["checkpoint"]), copies
    assert len(confirmed) == len(set(confirmed)) == 3 and len(loaded) == 11, copies
    assert "the confirmation stage (confirm-binary)" in md


@pytest.mark.slow
def test_report_cli_on_the_s3_storage_root(job, tmp_path):
    out = tmp_path / "root-report"
    proc = _cli("analysis.report", STORAGE, "--out", str(out), "--no-test")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == str(out / "report.html")
    assert "Test evaluation skipped (--no-test)." in (out / "report.md").read_text()
    listing = _cli("analysis.summary", STORAGE)
    assert listing.returncode == 0 and "\nquick: 8 trials" in "\n" + listing.stdout, listing.stderr[-2000:]
    assert f"({STORAGE}/quick)" in listing.stdout
