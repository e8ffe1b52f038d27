"""Shared fixtures: the bundled real sample, the real data set beside the checkout (skipped with a
reason where absent), a per-session image cache, and tiny CPU configs."""
from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from helpers.common import QUICK_TINY_ARGS, REAL_ROOT, REPO, SESSION_MARK, make_root, ray_processes, tiny
from study.data.layout import SAMPLE_ROOT
from study.data.splits import prepare


@pytest.fixture(scope="session", autouse=True)
def _no_ray_process_left_behind():
    """Fails the session when a Ray process it started is still alive once it ends (after a grace
    period for Ray's own shutdown), and ends those processes, by pid."""
    token = uuid.uuid4().hex
    os.environ[SESSION_MARK] = token
    yield
    deadline = time.time() + 30
    while (left := ray_processes(token)) and time.time() < deadline:
        time.sleep(1)
    for pid, _ in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, f"the test session left {len(left)} Ray process(es) behind: {left}"


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory):
    """Every test session decodes into its own cache, so tests never see a stale user cache."""
    d = tmp_path_factory.mktemp("cache")
    old = os.environ.get("PNEUMONIA_CACHE")
    os.environ["PNEUMONIA_CACHE"] = str(d)
    yield d
    if old is None:
        os.environ.pop("PNEUMONIA_CACHE", None)
    else:
        os.environ["PNEUMONIA_CACHE"] = old


@pytest.fixture(scope="session")
def sample_root() -> Path:
    return SAMPLE_ROOT


@pytest.fixture(scope="session")
def real_root() -> Path:
    if not (REAL_ROOT / "train").is_dir():
        pytest.skip(f"real data set not found at {REAL_ROOT} (set PNEUMONIA_REAL_DATA to run real-data tests)")
    return REAL_ROOT


@pytest.fixture(scope="session")
def tiny_data():
    cfg = tiny()
    return prepare(None, cfg, progress=False)


@pytest.fixture(scope="session")
def quick_results(tmp_path_factory, _cache_dir) -> Path:
    """A real results tree: the `quick` study at a tiny size (32 px, 3 epochs), run once per session
    through the same CLI as `make study`, with --data given (the bundled sample) so that the
    confirmation stage runs too (2 seeds: STORAGE/confirm-binary). Returns STORAGE/quick."""
    import subprocess
    import sys
    storage = tmp_path_factory.mktemp("results")
    env = {**os.environ, "PNEUMONIA_CACHE": str(_cache_dir)}
    proc = subprocess.run([sys.executable, "-m", "study.run", *QUICK_TINY_ARGS, "--data", str(SAMPLE_ROOT),
                           "--confirm-seeds", "2", "--storage", str(storage)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (storage / "quick" / "run-stdout.txt").write_text(proc.stdout)
    return storage / "quick"





@pytest.fixture
def root(tmp_path) -> Path:
    """A small Kaggle-like data set of real sample images in a tmp dir."""
    return make_root(tmp_path / "data")


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"
