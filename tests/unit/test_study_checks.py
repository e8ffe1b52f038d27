"""study.run's usage and data mistakes: one `error: ...` line naming the flag, field, path or class,
exit 2, and nothing starts (Ray is never initialised, no results folder is made). In-process
through `main`, with ray.init replaced by a tripwire; one row also as a real subprocess."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers.common import REPO, make_root, truncate
from study import run as run_mod
from study.tune import driver

ROWS = [
    (["--num-samples", "0"], ["--num-samples", "positive integer"]),
    (["--max-epochs", "0"], ["--max-epochs", "positive integer"]),
    (["--resolution", "0"], ["--resolution", "positive integer"]),
    (["--max-train-images", "0"], ["--max-train-images", "positive integer"]),
    (["--max-failures", "-1"], ["--max-failures"]),
    (["--cpus-per-trial", "0"], ["--cpus-per-trial"]),
    (["--set", "lr=0.5"], ["lr is searched by quick; drop --set lr or pick a question that does not search it"]),
    (["--experiment", "all", "--set", "optimizer=sgd"], ["optimizer is searched by"]),
    (["--experiment", "quick,nope"], ["--experiment 'nope': unknown", "joined by commas"]),
    (["--experiment", "baseline,quick", "--set", "lr=0.5"], ["lr is searched by quick"]),
    (["--set", "momentum=0"], ["search_spaces/quick.py", "momentum > 0"]),
    (["--set", "weight_decay=-1"], ["weight_decay", ">= 0"]),
    (["--resolution", "8"], ["resolution", ">= 16"]),
]


class RayStarted(AssertionError):
    pass


@pytest.fixture
def no_ray(monkeypatch):
    def tripwire(*a, **k):
        raise RayStarted("Ray was started before the mistake was reported")
    monkeypatch.setattr(driver.ray, "init", tripwire)


def run_main(argv, capsys) -> str:
    try:
        code = run_mod.main(argv)
    except SystemExit as e:  # argparse's way out, as on the command line
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("args,words", ROWS, ids=[" ".join(a) for a, _ in ROWS])
def test_flag_and_set_mistakes(args, words, tmp_path, capsys, no_ray):
    storage = tmp_path / "results"
    err = run_main([*args, "--storage", str(storage)], capsys)
    assert all(w in err for w in words), err
    assert not storage.exists(), "a usage error created the results folder"


def read_only_folder(tmp_path):
    if os.geteuid() == 0:  # root writes through permission bits; sysfs refuses new files even to root
        return "/sys/kernel"
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    return str(d)


@pytest.mark.parametrize("kind", ["proc", "file", "read_only", "under_a_file"])
def test_storage_is_checked_before_ray(kind, tmp_path, capsys, no_ray):
    afile = tmp_path / "a_file"
    afile.write_text("x")
    storage = {"proc": "/proc/nope", "file": str(afile), "read_only": read_only_folder(tmp_path),
               "under_a_file": str(afile / "results")}[kind]
    err = run_main(["--storage", storage], capsys)
    assert f"--storage {storage}" in err, err
    assert not os.path.exists("/proc/nope")


def test_existing_experiment_needs_resume_or_overwrite_before_ray(tmp_path, capsys, no_ray):
    (tmp_path / "quick").mkdir()
    err = run_main(["--storage", str(tmp_path)], capsys)
    assert "--resume" in err and "--overwrite" in err


def test_a_class_with_no_readable_image_stops_the_study_before_ray(tmp_path, capsys, no_ray):
    root = make_root(tmp_path / "data", n_normal=0, n_bact=4, n_virus=4)
    for i in range(5):
        truncate(root / "train" / "NORMAL" / f"IM-{i + 1:04d}-0001.jpeg")
    storage = tmp_path / "results"
    err = run_main(["--data", str(root), "--storage", str(storage)], capsys)
    assert "no readable NORMAL image" in err and "5 skipped" in err and not storage.exists(), err


def test_strict_stops_the_study_before_ray(tmp_path, capsys, no_ray):
    root = make_root(tmp_path / "data", n_normal=6, n_bact=4, n_virus=4)
    truncate(root / "train" / "NORMAL" / "IM-0099-0001.jpeg")
    err = run_main(["--data", str(root), "--strict", "--storage", str(tmp_path / "r")], capsys)
    assert "IM-0099-0001.jpeg" in err and "--strict" in err


def test_a_row_as_a_subprocess(tmp_path):
    out = subprocess.run([sys.executable, "-m", "study.run", "--num-samples", "0", "--storage", str(tmp_path / "r")],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and out.stderr.startswith("error: argument --num-samples") and out.stderr.count("\n") == 1
    assert not (tmp_path / "r").exists()
