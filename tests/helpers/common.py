"""What the tests share (public names; the fixtures are tests/conftest.py's): the repository, the real data
set's place, tiny CPU configs, small Kaggle-like data sets of real sample images, Ray processes of this
test session."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from study.config import TrainConfig
from study.data.layout import SAMPLE_ROOT

REPO = Path(__file__).resolve().parents[2]
REAL_ROOT = Path(os.environ.get("PNEUMONIA_REAL_DATA", REPO.parent / "shared" / "data" / "chest_xray"))
SESSION_MARK = "PNEUMONIA_TEST_SESSION"  # in the environment of every process this session starts
RAY_PROGRAMS = ("raylet", "gcs_server")
QUICK_TINY_ARGS = ["--experiment", "quick", "--resolution", "32", "--max-epochs", "3", "--set", "dense_units=16"]
SAMPLE_NORMAL = sorted((SAMPLE_ROOT / "train" / "NORMAL").glob("*.jpeg"))
SAMPLE_BACT = sorted((SAMPLE_ROOT / "train" / "PNEUMONIA").glob("*_bacteria_*.jpeg"))
SAMPLE_VIRUS = sorted((SAMPLE_ROOT / "train" / "PNEUMONIA").glob("*_virus_*.jpeg"))


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


def tiny(**overrides) -> TrainConfig:
    """A config that trains in well under a second per epoch on 2 CPU cores."""
    base = dict(resolution=32, epochs=1, batch_size=32, dense_units=16)
    return TrainConfig.from_overrides({**base, **overrides})


def make_root(base: Path, n_normal: int = 3, n_bact: int = 2, n_virus: int = 2,
              splits: tuple[str, ...] = ("train",)) -> Path:
    """A Kaggle-like data set of real sample images: BASE/{split}/{NORMAL,PNEUMONIA}/*.jpeg."""
    for split in splits:
        normal = base / split / "NORMAL"
        pneu = base / split / "PNEUMONIA"
        normal.mkdir(parents=True)
        pneu.mkdir(parents=True)
        for i in range(n_normal):
            shutil.copyfile(SAMPLE_NORMAL[i], normal / f"IM-{i + 1:04d}-0001.jpeg")
        for i in range(n_bact):
            shutil.copyfile(SAMPLE_BACT[i], pneu / f"person{i + 1}_bacteria_{i + 1}.jpeg")
        for i in range(n_virus):
            shutil.copyfile(SAMPLE_VIRUS[i], pneu / f"person{100 + i}_virus_{i + 3}.jpeg")
    return base


def truncate(p: Path) -> None:
    data = SAMPLE_NORMAL[5].read_bytes()
    p.write_bytes(data[: len(data) // 2])


def counts(summary: dict, split: str = "train") -> tuple[int, int, int]:
    s = summary["splits"][split]
    return s["normal"], s["bacteria"], s["virus"]
