"""The GPU check's parts that need no GPU (issue 25): `run.sh --dry-run` adds up what one device call carries
against 64 MiB and packs the data to fit; the data pack's setup repeats a subset to the full train count under
new patient ids; the summary counts the images of an experiment cut off at the deadline and projects the wall
time."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from helpers.common import REPO
from study.data.layout import scan_split

SAMPLE = REPO / "study" / "sample" / "chest_xray"


def _dry_run(tmp_path: Path, sw_bytes: int) -> subprocess.CompletedProcess:
    sw = tmp_path / "sw"
    sw.mkdir(exist_ok=True)
    with open(sw / "wheels.bin", "wb") as f:  # a stand-in for .gpu/sw of a known size
        f.truncate(sw_bytes)
    env = {**os.environ, "PY": sys.executable, "GPU_SW": str(sw), "GPU_CHECK": str(tmp_path / "check"),
           "SOURCE_DATA": str(SAMPLE)}
    return subprocess.run(["bash", "docs/gpu-check/run.sh", "--dry-run"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def test_dry_run_shows_one_call_under_64_mib(tmp_path):
    p = _dry_run(tmp_path, 33 * 2**20)
    assert p.returncode == 0, p.stderr
    lines = {x.split()[0]: x for x in p.stdout.splitlines()}
    assert {"working", str(tmp_path / "sw"), str(tmp_path / "check"), "one"} <= set(lines), p.stdout
    assert "of 64 MiB: fits" in lines["one"]
    assert (tmp_path / "check" / "chest_xray.zip").is_file() and (tmp_path / "check" / "setup.sh").is_file()


def test_dry_run_fails_when_the_wheels_leave_no_room(tmp_path):
    p = _dry_run(tmp_path, 70 * 2**20)
    assert p.returncode == 1 and "no room for the data" in p.stderr


def test_a_packed_subset_is_repeated_to_the_full_train_count(tmp_path):
    sys.path.insert(0, str(REPO / "docs" / "gpu-check"))
    try:
        import pack_data
    finally:
        sys.path.pop(0)
    pack = pack_data.main(str(SAMPLE), tmp_path / "check", mib=0.6)
    assert pack["subset_repeated"] and 0 < pack["train_files_packed"] < pack["train_files_full"]
    data = tmp_path / "data"
    p = subprocess.run(["bash", "-c", f"source {tmp_path / 'check' / 'setup.sh'} && echo $DATA"], capture_output=True,
                       text=True, env={**os.environ, "GPU_CHECK_DATA": str(data)}, timeout=120)
    assert p.returncode == 0 and p.stdout.strip().endswith(str(data)), p.stderr
    items, skipped = scan_split(data, "train")
    original, _ = scan_split(SAMPLE, "train")
    assert len(items) == pack["train_files_full"] == len(original) and not skipped
    assert {i.label3 for i in items} == {i.label3 for i in original}  # every class of the sample survives the subset
    number = lambda patient: int(re.search(r"\d+", patient).group())
    copies = {i.patient for i in items if number(i.patient) >= 100000}  # the repeats' own patient ids
    assert copies and len(copies) + len({i.patient for i in original}) >= len({i.patient for i in items})
    assert not copies & {i.patient for i in original}
    assert json.loads((data / "PACK.json").read_text())["note"].startswith("a patient-level subset")


def _trial(exp: Path, name: str, epochs: int) -> None:
    d = exp / name
    d.mkdir(parents=True)
    (d / "params.json").write_text("{}")
    (d / "result.json").write_text("".join(json.dumps({"epoch": e}) + "\n" for e in range(1, epochs + 1)))


def test_summary_counts_a_cut_off_experiment_and_projects_the_wall_time(tmp_path):
    store, out = tmp_path / "store", tmp_path / "out"
    out.mkdir()
    grid = lambda n: {"searched": {"seed": {"grid_search": list(range(n))}}, "num_samples": 1, "base_config": {"epochs": 4}}
    (store / "done").mkdir(parents=True)
    (store / "done" / "settings.json").write_text(json.dumps(grid(4)))  # 16 grid epochs, ASHA ran 8
    (store / "done" / "study.json").write_text(json.dumps({"asha": True, "summary": {"trials": 4}, "wall_seconds": 50}))
    for i, e in enumerate((4, 2, 1, 1)):
        _trial(store / "done", f"train_trial_{i}", e)
    (store / "cut").mkdir()
    (store / "cut" / "settings.json").write_text(json.dumps(grid(2)))  # 8 grid epochs, 2 run, no study.json yet
    _trial(store / "cut", "train_trial_0", 2)
    log = tmp_path / "driver.log"
    log.write_text("chest_xray: train 1000 images / 500 patients, val (split) 100 / 50 (+5x stressed), 200px\n")
    p = subprocess.run([sys.executable, "docs/gpu-check/summary.py", str(store), str(out), "124", "0", "100",
                        str(log)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    b = {x["kind"]: x for x in map(json.loads, (out / "b.jsonl").read_text().splitlines()) if x["kind"] != "experiment"}
    s = b["study"]
    assert s["images_trained"] == 10 * 1000 and s["train_images_per_s"] == 100.0 and s["experiments_finished"] == 1
    assert s["asha_share_of_grid_epochs"] == 0.5
    assert s["projected_wall_s"] == round(100 * (10 + (8 * 0.5 - 2)) / 10, 1)  # the cut one's 2 epochs left
    assert b["headline"]["study_wall_s"] is None and b["headline"]["epochs_done"] == "10/24"
