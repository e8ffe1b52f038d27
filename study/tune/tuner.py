"""Build the Ray Tune Tuner for one experiment: scheduler, searcher, resources, storage, callbacks.

`build_tuner` and `restore_tuner` are the only places that know Ray's Tuner API; study/tune/driver.py
decides what to run, study/tune/trainable.py what one trial does. Checkpoints: every epoch's is kept by
Ray (num_to_keep=None: no experiment snapshot forced per epoch) and the superseded ones are deleted by
study.tune.callbacks.CheckpointPruner once no saved snapshot can point at them.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter, Searcher

from study.data.splits import TrainData
from study.names import METRIC, MODE
from study.storage import absolute
from study.tune.callbacks import CheckpointPruner, SchedulerState, WandbWithStatus
from study.tune.space import Asha, SearchSpace
from study.tune.trainable import train_trial

SEARCH_SEED = 0  # Ray's sampling of random domains (e.g. seeds) is reproducible too


def build_scheduler(asha: Asha | None, max_epochs: int) -> ASHAScheduler | None:
    """ASHA on METRIC (the selection score) with rungs at `grace_period * reduction_factor**k` epochs; None = FIFO."""
    if not asha:
        return None
    built = asha.built(max_epochs)
    return ASHAScheduler(time_attr="training_iteration", metric=METRIC, mode=MODE, max_t=max_epochs, **built)


def make_searcher(space: SearchSpace) -> Searcher | BasicVariantGenerator:
    """The space's own searcher (e.g. Optuna's TPE for continuous magnitudes), else Ray's grid/random
    variant generator, seeded. Tune saves a searcher's state in the experiment folder and Tuner.restore
    reloads it, so a resumed TPE search goes on from its history."""
    return space.searcher() if space.searcher else BasicVariantGenerator(random_state=SEARCH_SEED)


def wandb_callbacks(project: str | None, study_id: str, experiment: str) -> list:
    """W&B's own Ray callback: every run of one study (all experiments, the confirmation stage, the
    report's analysis run) in one group, the study id, with job_type = its experiment, so W&B's
    project view groups by study and filters by question; none without a project.
    WANDB_MODE=offline writes the runs locally (under WANDB_DIR) with no network."""
    if not project:
        return []
    return [WandbWithStatus(project=project, group=study_id, job_type=experiment, log_config=True)]


_REGISTER = threading.Lock()


def trainable(data: TrainData, resources: dict, fn: Callable | None = None, shared: dict | None = None,
              quiet: bool = False):
    """The Ray trainable: the data into the object store once. With `shared` (one dict per study, for
    experiments that run at once in threads, study.tune.driver.run_together) it is registered here, once
    per data set, and its name is what the Tuners get: Tune's registry keeps one trainable per name and
    is not thread-safe, and a Tuner given a name registers nothing. `quiet`: the trials log warnings only."""
    fn = fn or train_trial
    if shared is None:
        return tune.with_resources(tune.with_parameters(fn, data=data, quiet=quiet), resources)
    key = (id(data), tuple(sorted(resources.items())), fn, quiet)  # `shared`'s owner keeps `data` alive
    with _REGISTER:
        if key not in shared:
            shared.clear()  # the name now means this data set; an earlier one is registered again when asked for
            shared[key] = trainable(data, resources, fn, quiet=quiet)
            tune.register_trainable(shared[key].__name__, shared[key])
        return shared[key].__name__


def build_tuner(data: TrainData, param_space: dict[str, Any], *, name: str, storage: str, max_epochs: int,
                asha: Asha | None, num_samples: int, resources: dict, callbacks: list | None = None,
                max_failures: int = 2, fn: Callable | None = None, max_concurrent: int = 0,
                search_alg: Searcher | BasicVariantGenerator | None = None, reuse_actors: bool = True,
                shared: dict | None = None, quiet: bool = False) -> tune.Tuner:
    """reuse_actors: a finished or stopped trial's worker process trains the experiment's next trial (same
    resources), so the next trial pays no process start, imports or CUDA context, and finds its data
    already on the GPU (study.engine.device.on_device); fit seeds everything per trial, so it computes
    the same. shared: see `trainable`. quiet: no trial table (verbose 0) and the trials log warnings only."""
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
        trainable(data, resources, fn, shared, quiet),
        param_space=param_space,
        tune_config=tune.TuneConfig(
            scheduler=scheduler, num_samples=num_samples,
            search_alg=search_alg, max_concurrent_trials=max_concurrent or None, reuse_actors=reuse_actors),
        run_config=tune.RunConfig(
            name=name, storage_path=absolute(storage), verbose=0 if quiet else 1,
            callbacks=keep_scheduler + [CheckpointPruner()] + (callbacks or []),
            failure_config=tune.FailureConfig(max_failures=max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None)),  # see the module docstring
    )


def restore_tuner(path: str, data: TrainData, resources: dict, fn: Callable | None = None,
                  shared: dict | None = None, quiet: bool = False) -> tune.Tuner:
    """Continue an interrupted experiment: finished trials are kept as they are, unfinished ones
    continue from their last checkpoint, errored ones restart from theirs; ASHA's rungs are those
    of the last experiment checkpoint (SchedulerState)."""
    return tune.Tuner.restore(path, trainable=trainable(data, resources, fn, shared, quiet),
                              resume_unfinished=True, resume_errored=True)


def can_restore(path: str) -> bool:
    return tune.Tuner.can_restore(path)
