"""The Ray Tune trainable: one plain function around study.train.fit.

Each epoch's record is reported with a checkpoint (TrainState.save: best weights, last model and
optimizer, config, metrics), so Ray's FailureConfig restarts a crashed trial from its last epoch
and Tuner.restore resumes an interrupted study. The prepared data arrives through
`tune.with_parameters`, i.e. from Ray's object store: trials never read JPEGs.
"""
from __future__ import annotations

import tempfile

from ray import tune

from study.config import TrainConfig
from study.data import TrainData
from study.train import TrainState, fit, load_resume


def train_trial(config: dict, data: TrainData) -> None:
    cfg = TrainConfig.from_overrides(config)
    resume = None
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as d:
            resume = load_resume(d)

    def report(record: dict, state: TrainState) -> None:
        with tempfile.TemporaryDirectory() as d:
            state.save(d)
            tune.report(record, checkpoint=tune.Checkpoint.from_directory(d))

    fit(cfg, data, report, resume=resume)
