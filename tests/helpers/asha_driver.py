"""A study driver for tests/e2e/test_resume.py: trials that report a fixed score, scheduled by ASHA
through study.tune.tuner, one at a time so ASHA's decisions are fixed. Killed and restarted by the test.

    python tests/helpers/asha_driver.py STORAGE fresh|resume

Trial k reports SCORES[k] every epoch (grace 1 epoch, reduction factor 2, 3 epochs): with ASHA's
rung history intact the first trial runs 3 epochs and every later one, worse than all before it,
is stopped at the first rung (epoch 1). A scheduler that forgot its rungs lets the first trial
after a restart run on.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
# the project's modules are imported after the sys.path line above

import ray
from ray import tune

from study.names import BEST_METRIC, EPOCH, FINISHED, METRIC, RUNNING, STATUS
from study.tune.space import Asha
from study.tune.tuner import build_tuner, restore_tuner

SCORES = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]
EPOCHS = 3
SECONDS_PER_EPOCH = 1.0


def scored(config: dict, data, quiet: bool = False) -> None:
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as d:
            start = int(Path(d, "epoch").read_text())
    for epoch in range(start + 1, EPOCHS + 1):
        time.sleep(SECONDS_PER_EPOCH)
        with tempfile.TemporaryDirectory() as d:
            Path(d, "epoch").write_text(str(epoch))
            tune.report({EPOCH: epoch, METRIC: config["score"], BEST_METRIC: config["score"],
                         STATUS: FINISHED if epoch == EPOCHS else RUNNING}, checkpoint=tune.Checkpoint.from_directory(d))


def main(storage: str, mode: str) -> int:
    ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False)
    try:
        resources = {"cpu": 1, "gpu": 0}
        if mode == "resume":
            tuner = restore_tuner(f"{storage}/asha", None, resources, fn=scored)
        else:
            tuner = build_tuner(None, {"score": tune.grid_search(SCORES)}, name="asha", storage=storage,
                                max_epochs=EPOCHS, asha=Asha(1, 2), num_samples=1,
                                resources=resources, fn=scored, max_concurrent=1)
        tuner.fit()
    finally:
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
