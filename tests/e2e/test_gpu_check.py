"""docs/gpu-check/run.sh at CPU size (SMALL=1): both stages run here and write their JSON lines, so the
script the next GPU machine runs has run once already (issue 22)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers.common import REPO

pytestmark = pytest.mark.slow


def test_both_stages_run_at_cpu_size(tmp_path):
    env = {**os.environ, "SMALL": "1", "OUT": str(tmp_path), "PY": sys.executable}
    for stage in ("a", "b"):
        p = subprocess.run(["bash", "docs/gpu-check/run.sh", stage], cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=900)
        assert p.returncode == 0, p.stderr[-2000:]
    a = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    kinds = [x["kind"] for x in a]
    assert kinds.count("step") == 4 and {"env", "profile", "packed", "exit"} <= set(kinds)
    assert a[-1] == {"stage": "A", "kind": "exit", "code": 0}
    assert all(x["images_per_s"] > 0 and x["cpu_s_per_step"] > 0 for x in a if x["kind"] == "step")
    b = {x["kind"]: x for x in map(json.loads, (tmp_path / "b.jsonl").read_text().splitlines())}
    assert b["study"]["exit_code"] == 0 and b["study"]["experiments_finished"] == 2
    assert b["study"]["train_images_per_s"] > 0 and 0 < b["study"]["asha_share_of_grid_epochs"] <= 1
    assert len(list(tmp_path.iterdir())) <= 8  # the device tool brings back at most 8 small files
