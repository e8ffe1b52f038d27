"""Build the Ray Tune Tuner for one experiment: scheduler, resources, storage, callbacks.

`build_tuner` and `restore_tuner` are the only places that know Ray's Tuner API; study/run.py
decides what to run, study/trainable.py what one trial does.
"""
from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

from ray import tune
from ray.air.integrations.wandb import WandbLoggerCallback
from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter, Searcher

from study.config import ASHA_METRIC, ERROR_MESSAGE, MODE, STATUS
from study.engine.divergence import WHY
from study.data import TrainData
from study.storage import absolute
from study.trainable import train_trial

SEARCH_SEED = 0  # Ray's sampling of random domains (e.g. seeds) is reproducible too


def build_scheduler(asha: dict | None, max_epochs: int) -> ASHAScheduler | None:
    """ASHA on ASHA_METRIC with rungs at `grace_period * reduction_factor**k` epochs; None = FIFO."""
    if not asha:
        return None
    return ASHAScheduler(time_attr="training_iteration", metric=ASHA_METRIC, mode=MODE, max_t=max_epochs,
                         grace_period=min(asha["grace_period"], max_epochs), reduction_factor=asha["reduction_factor"])


def make_searcher(space) -> Searcher | BasicVariantGenerator:
    """The space's own searcher (its module's `searcher()`, e.g. Optuna's TPE for continuous magnitudes),
    else Ray's grid/random variant generator, seeded. Tune saves a searcher's state in the experiment
    folder and restore_tuner's Tuner.restore reloads it, so a resumed TPE search goes on from its history."""
    make = getattr(space, "searcher", None)
    return make() if make else BasicVariantGenerator(random_state=SEARCH_SEED)


class SchedulerState(tune.Callback):
    """Keeps the trial scheduler's state (ASHA's rungs) with every experiment checkpoint and puts it
    back on Tuner.restore. Ray 2.x saves the searcher's and the callbacks' state there but not the
    scheduler's, so a resumed study would judge its trials against empty rungs. The state goes
    through the scheduler's own save/restore; this callback and the TuneConfig share the one
    scheduler object in tuner.pkl (one pickle), so restoring the callback restores the scheduler."""

    def __init__(self, scheduler: TrialScheduler):
        self.scheduler = scheduler

    def get_state(self) -> dict:
        with tempfile.TemporaryDirectory() as d:
            self.scheduler.save(f"{d}/scheduler.pkl")
            return {"scheduler": Path(d, "scheduler.pkl").read_bytes()}

    def set_state(self, state: dict) -> None:
        with tempfile.TemporaryDirectory() as d:
            Path(d, "scheduler.pkl").write_bytes(state["scheduler"])
            self.scheduler.restore(f"{d}/scheduler.pkl")


class WandbWithStatus(WandbLoggerCallback):
    """W&B's Ray callback, with each run's STATUS (running, finished, early_stopped, diverged,
    errored) and its reason in the run's config, where W&B keeps strings (its log takes numbers)."""
    AUTO_CONFIG_KEYS = [*WandbLoggerCallback.AUTO_CONFIG_KEYS, STATUS, WHY, ERROR_MESSAGE]


def wandb_callbacks(project: str | None, study_id: str, experiment: str) -> list:
    """W&B's own Ray callback: every run of one study (all experiments, the confirmation stage, the
    report's analysis run) in one group, the study id, with job_type = its experiment, so W&B's
    project view groups by study and filters by question; none without a project.
    WANDB_MODE=offline writes the runs locally (under WANDB_DIR) with no network."""
    if not project:
        return []
    return [WandbWithStatus(project=project, group=study_id, job_type=experiment, log_config=True)]


_REGISTER = threading.Lock()


def _trainable(data: TrainData, resources: dict, trainable: Callable | None = None, shared: dict | None = None):
    """The Ray trainable: the data into the object store once. With `shared` (one dict per study, for
    experiments that run at once in threads, study.run.run_together) it is registered here, once per
    data set, and its name is what the Tuners get: Tune's registry keeps one trainable per name and
    is not thread-safe, and a Tuner given a name registers nothing."""
    fn = trainable or train_trial
    if shared is None:
        return tune.with_resources(tune.with_parameters(fn, data=data), resources)
    key = (id(data), tuple(sorted(resources.items())), fn)  # `shared`'s owner keeps `data` alive
    with _REGISTER:
        if key not in shared:
            shared.clear()  # the name now means this data set; an earlier one is registered again when asked for
            shared[key] = _trainable(data, resources, fn)
            tune.register_trainable(shared[key].__name__, shared[key])
        return shared[key].__name__


def build_tuner(data: TrainData, param_space: dict[str, Any], *, name: str, storage: str, max_epochs: int,
                asha: dict | None, num_samples: int, resources: dict, callbacks: list | None = None,
                max_failures: int = 2, trainable: Callable | None = None, max_concurrent: int = 0,
                search_alg: Searcher | BasicVariantGenerator | None = None, reuse_actors: bool = True,
                shared: dict | None = None, verbose: int = 1) -> tune.Tuner:
    """reuse_actors: a finished or stopped trial's worker process trains the experiment's next trial (same
    resources), so the next trial pays no process start, imports or CUDA context, and finds its data
    already on the GPU (study.train.on_device); fit seeds everything per trial, so it computes the same.
    shared: see _trainable (experiments running at once). verbose: Ray's trial table (1) or nothing (0)."""
    scheduler = build_scheduler(asha, max_epochs)
    keep_scheduler = [SchedulerState(scheduler)] if scheduler else []  # first: callback states are saved by position
    search_alg = search_alg or BasicVariantGenerator(random_state=SEARCH_SEED)
    if isinstance(search_alg, ConcurrencyLimiter):  # the space's own cap; --max-concurrent may only lower it
        if max_concurrent and max_concurrent < search_alg.max_concurrent:
            search_alg.max_concurrent = max_concurrent
        max_concurrent = 0
    elif isinstance(search_alg, BasicVariantGenerator):  # Tune ignores max_concurrent_trials for a generator passed in
        search_alg.max_concurrent, max_concurrent = max_concurrent, 0
    return tune.Tuner(
        _trainable(data, resources, trainable, shared),
        param_space=param_space,
        tune_config=tune.TuneConfig(
            scheduler=scheduler, num_samples=num_samples,
            search_alg=search_alg, max_concurrent_trials=max_concurrent or None, reuse_actors=reuse_actors),
        run_config=tune.RunConfig(
            name=name, storage_path=absolute(storage), callbacks=keep_scheduler + (callbacks or []), verbose=verbose,
            failure_config=tune.FailureConfig(max_failures=max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1)),  # the latest holds the best weights too
    )


def restore_tuner(path: str, data: TrainData, resources: dict, trainable: Callable | None = None,
                  shared: dict | None = None) -> tune.Tuner:
    """Continue an interrupted experiment: finished trials are kept as they are, unfinished ones
    continue from their last checkpoint, errored ones restart from theirs; ASHA's rungs are those
    of the last experiment checkpoint (SchedulerState)."""
    return tune.Tuner.restore(path, trainable=_trainable(data, resources, trainable, shared),
                              resume_unfinished=True, resume_errored=True)


def can_restore(path: str) -> bool:
    return tune.Tuner.can_restore(path)
