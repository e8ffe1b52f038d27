"""Shared fixtures: the bundled real sample, the real data set beside the checkout (skipped with a
reason where absent), a per-session image cache, and tiny CPU configs."""
from __future__ import annotations

import os
import shutil
import signal
import time
import uuid
from pathlib import Path

import pytest

from study.config import TrainConfig
from study.data.layout import SAMPLE_ROOT
from study.data.splits import prepare

REPO = Path(__file__).resolve().parents[1]
REAL_ROOT = Path(os.environ.get("PNEUMONIA_REAL_DATA", REPO.parent / "shared" / "data" / "chest_xray"))


SESSION_MARK = "PNEUMONIA_TEST_SESSION"  # in the environment of every process this session starts
RAY_PROGRAMS = ("raylet", "gcs_server")


def ray_processes(token: str, mark: str = SESSION_MARK) -> list[tuple[int, str]]:
    """(pid, command) of the live Ray processes (ray::..., raylet, gcs_server, Ray's Python agents)
    whose environment has mark=token: by default those started by this test session, no one else's."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
            env = (d / "environ").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        cmd = " ".join(a.decode(errors="replace") for a in argv if a)
        ray_like = cmd.startswith("ray::") or Path(cmd.split(" ")[0]).name in RAY_PROGRAMS or "/site-packages/ray/" in cmd
        if ray_like and f"{mark}={token}".encode() in env.split(b"\0"):
            found.append((int(d.name), cmd[:120]))
    return found


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


def tiny(**overrides) -> TrainConfig:
    """A config that trains in well under a second per epoch on 2 CPU cores."""
    base = dict(resolution=32, epochs=1, batch_size=32, dense_units=16)
    return TrainConfig.from_overrides({**base, **overrides})


@pytest.fixture(scope="session")
def tiny_data():
    cfg = tiny()
    return prepare(None, cfg, progress=False)


QUICK_TINY_ARGS = ["--experiment", "quick", "--resolution", "32", "--max-epochs", "3", "--set", "dense_units=16"]


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


_SAMPLE_NORMAL = sorted((SAMPLE_ROOT / "train" / "NORMAL").glob("*.jpeg"))
_SAMPLE_BACT = sorted((SAMPLE_ROOT / "train" / "PNEUMONIA").glob("*_bacteria_*.jpeg"))
_SAMPLE_VIRUS = sorted((SAMPLE_ROOT / "train" / "PNEUMONIA").glob("*_virus_*.jpeg"))


def make_root(base: Path, n_normal: int = 3, n_bact: int = 2, n_virus: int = 2,
              splits: tuple[str, ...] = ("train",)) -> Path:
    """A Kaggle-like data set of real sample images: BASE/{split}/{NORMAL,PNEUMONIA}/*.jpeg."""
    for split in splits:
        normal = base / split / "NORMAL"
        pneu = base / split / "PNEUMONIA"
        normal.mkdir(parents=True)
        pneu.mkdir(parents=True)
        for i in range(n_normal):
            shutil.copyfile(_SAMPLE_NORMAL[i], normal / f"IM-{i + 1:04d}-0001.jpeg")
        for i in range(n_bact):
            shutil.copyfile(_SAMPLE_BACT[i], pneu / f"person{i + 1}_bacteria_{i + 1}.jpeg")
        for i in range(n_virus):
            shutil.copyfile(_SAMPLE_VIRUS[i], pneu / f"person{100 + i}_virus_{i + 3}.jpeg")
    return base



@pytest.fixture
def root(tmp_path) -> Path:
    """A small Kaggle-like data set of real sample images in a tmp dir."""
    return make_root(tmp_path / "data")


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


def _truncated(p: Path) -> None:
    data = _SAMPLE_NORMAL[5].read_bytes()
    p.write_bytes(data[: len(data) // 2])


def counts(summary: dict, split: str = "train") -> tuple[int, int, int]:
    s = summary["splits"][split]
    return s["normal"], s["bacteria"], s["virus"]
