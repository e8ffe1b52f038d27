"""benchmarks.throughput at a tiny size: both pipelines run on the bundled sample and report positive rates."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from benchmarks import throughput as bench
from helpers.common import REPO
from study.config import TrainConfig
from study.engine.device import resolve_precision

KEYS = {"images_per_s", "device", "resolution", "precision", "channels_last", "batch_size", "threads", "seconds"}
COMPARE_KEYS = {"imagefolder_images_per_s", "imagefolder_seconds", "imagefolder_workers", "ratio",
                "imagefolder_same_settings_images_per_s", "data_path_ratio"}


def _positive(r: dict, keys) -> None:
    for k in keys:
        assert isinstance(r[k], (int, float)) and r[k] > 0, (k, r[k])


def test_bench_compare_json(capsys):
    assert bench.main(["--resolution", "32", "--batches", "2", "--warmup", "1", "--compare", "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    r = json.loads(out[0])
    assert KEYS | COMPARE_KEYS <= set(r)
    assert r["resolution"] == 32 and r["batch_size"] == 32 and r["channels_last"] is True
    assert r["precision"] == resolve_precision(TrainConfig(), torch.device("cpu"))  # auto, resolved
    _positive(r, ["images_per_s", "seconds", "threads"] + sorted(COMPARE_KEYS))
    assert r["ratio"] == pytest.approx(r["images_per_s"] / r["imagefolder_images_per_s"], rel=0.02)
    assert r["data_path_ratio"] == pytest.approx(r["images_per_s"] / r["imagefolder_same_settings_images_per_s"],
                                                 rel=0.02)


def test_plain_baseline_is_fp32_nchw(monkeypatch):
    """--compare's plain loop runs fp32 NCHW whatever this run uses; the second loop uses this run's settings."""
    seen = []
    monkeypatch.setattr(bench, "time_imagefolder_path",
                        lambda cfg, *a: seen.append((cfg.precision, cfg.channels_last)) or 1.0)
    bench.bench(None, resolution=32, batches=1, warmup=0, precision="bf16", compare=True)
    assert seen == [("fp32", False), ("bf16", True)]


@pytest.mark.parametrize("args", [["--precision", "bf16"], ["--no-channels-last", "--batch-size", "8", "--threads", "1"]])
def test_bench_options(args):
    r = bench.bench(None, resolution=32, batches=2, warmup=1, precision=args[1] if args[0] == "--precision" else "fp32",
                    channels_last="--no-channels-last" not in args,
                    batch_size=8 if "--batch-size" in args else None, threads=1 if "--threads" in args else None)
    _positive(r, ["images_per_s", "seconds"])
    assert "ratio" not in r


def test_bench_text_and_entry_point():
    """`python -m benchmarks.throughput` as a user runs it: one human line."""
    p = subprocess.run([sys.executable, "-m", "benchmarks.throughput", "--resolution", "32", "--batches", "1", "--warmup", "0",
                        "--compare", "--workers", "0"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    line, = p.stdout.strip().splitlines()
    assert "images/s training at 32px" in line and "ratio" in line and "data path alone" in line


def test_bench_user_error_is_one_line(capsys):
    assert bench.main(["--batches", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
