"""Smoke test of the cache benchmark (benchmarks/cache.py) on the bundled sample; the real
figures come from `python -m benchmarks.cache ../shared/data/chest_xray` (see its docstring)."""
from __future__ import annotations

import json

from benchmarks.cache import bench, main, report
from study.data.layout import SAMPLE_ROOT, scan_split


def test_bench_on_sample(tmp_path):
    r = bench(None, resolution=32, repeats=2, tmp_dir=str(tmp_path))
    assert r["images"] == len(scan_split(SAMPLE_ROOT, "train")[0]) and r["unreadable"] == 0
    for k in ("build", "load", "load_evicted"):
        assert len(r["seconds"][k]) == 2 and all(t > 0 for t in r["seconds"][k])
        assert r["images_per_second"][k] > 0
    # (median_seconds are rounded to 0.1 ms; the speedup is computed before rounding)
    assert abs(r["speedup"] - r["median_seconds"]["build"] / r["median_seconds"]["load"]) <= 0.05 * r["speedup"] + 0.1
    assert r["meets_requirement"] == (r["speedup"] >= 20)
    assert list(tmp_path.iterdir()) == []  # throwaway cache dirs removed
    text = report(r)
    assert "build, cold" in text and "load, warm" in text and "speedup" in text


def test_bench_cli_json_and_errors(tmp_path, capsys):
    rc = main(["--json", "--repeats", "1", "--resolution", "32", "--tmp-dir", str(tmp_path)])
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    r = json.loads(out[0])
    assert rc == (0 if r["meets_requirement"] else 1)
    assert main([str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert main(["--repeats", "0"]) == 2
