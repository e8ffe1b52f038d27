"""docs/gpu-check/run.sh at CPU size (SMALL=1): the preflight and both stages run here in one command and write
their JSON lines, so the script the next GPU machine runs has run once already (issues 22 and 25)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers.common import REPO

pytestmark = pytest.mark.slow


def test_one_call_runs_preflight_and_both_stages_at_cpu_size(tmp_path):
    env = {**os.environ, "SMALL": "1", "OUT": str(tmp_path), "PY": sys.executable}
    p = subprocess.run(["bash", "docs/gpu-check/run.sh", "all"], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]
    pre = json.loads((tmp_path / "preflight.jsonl").read_text())
    assert pre["ok"] and set(pre["found"]) == {"torch", "kornia", "kornia_rs", "ray", "albumentations", "pydantic"}
    a = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    kinds = [x["kind"] for x in a]
    assert kinds.count("step") == 4 and {"env", "syncs", "profile", "packed", "exit"} <= set(kinds)
    assert a[-1] == {"stage": "A", "kind": "exit", "code": 0}
    assert all(x["images_per_s"] > 0 and x["cpu_s_per_step"] > 0 for x in a if x["kind"] == "step")
    assert all(x["images_per_s_total"] > 0 for x in a if x["kind"] == "packed" and "skipped" not in x)
    b = {x["kind"]: x for x in map(json.loads, (tmp_path / "b.jsonl").read_text().splitlines())}
    assert b["study"]["exit_code"] == 0 and b["study"]["experiments_finished"] == 2
    assert b["study"]["n_train"] > 0 and b["study"]["images_trained"] == b["study"]["epochs_run"] * b["study"]["n_train"]
    assert b["study"]["train_images_per_s"] > 0 and 0 < b["study"]["asha_share_of_grid_epochs"] <= 1
    head = b["headline"]
    assert head["single_trial_images_per_s_batch32"] > 0 and head["study_wall_s"] > 0 and head["projected_wall_s"] is None
    assert '"kind": "headline"' in p.stdout  # each stage prints its lines: the call's output tail shows the figures
    assert len(list(tmp_path.iterdir())) <= 8  # the device tool brings back at most 8 small files
