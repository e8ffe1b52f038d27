"""The Ray Tune trainable: one plain function around study.engine.loop.fit.

Each epoch's record is reported with a checkpoint (TrainState.save: best weights, last model,
optimizer and lr schedule, config, metrics), so Ray's FailureConfig restarts a crashed trial from its
last epoch and Tuner.restore resumes an interrupted study. The prepared data arrives through
`tune.with_parameters`, i.e. from Ray's object store: trials never read JPEGs.

A trial that diverges (study.engine.divergence) reports its last record, STATUS diverged, without a
checkpoint and returns normally: it counts as finished and uses up none of FailureConfig's
retries, which are for crashes. A user error (UserError: a configuration that breaks a rule) is
not a crash either: the trial reports STATUS errored with its ERROR_MESSAGE and returns, since a
retry would fail the same way.
"""
from __future__ import annotations

import logging
import tempfile

from ray import tune

from study.config import TrainConfig
from study.data.splits import TrainData
from study.engine.checkpoint import load_resume
from study.engine.loop import TrainState, fit
from study.errors import UserError
from study.names import BEST_METRIC, DIVERGED, EPOCH, ERROR_MESSAGE, ERRORED, METRIC, STATUS


def train_trial(config: dict, data: TrainData, quiet: bool = False) -> None:
    if quiet:  # off a terminal the project's one line per trial is the log; Ray's per-checkpoint INFO lines are not
        logging.getLogger("ray.train").setLevel(logging.WARNING)
        logging.getLogger("ray.tune").setLevel(logging.WARNING)
    try:
        cfg = TrainConfig.from_overrides(config)
        resume = None
        checkpoint = tune.get_checkpoint()
        if checkpoint:
            with checkpoint.as_directory() as d:
                resume = load_resume(d)

        def report(record: dict, state: TrainState) -> None:
            if record[STATUS] == DIVERGED:  # no checkpoint of broken weights; the trial ends here
                tune.report(record)
                return
            with tempfile.TemporaryDirectory() as d:
                state.save(d)
                tune.report(record, checkpoint=tune.Checkpoint.from_directory(d))

        fit(cfg, data, report, resume=resume)
    except UserError as e:
        tune.report({EPOCH: 0, STATUS: ERRORED, ERROR_MESSAGE: f"UserError: {e}", METRIC: float("nan"),
                     BEST_METRIC: float("nan")})
