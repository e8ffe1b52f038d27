"""Tune the recipe's continuous magnitudes: augmentation strength, learning rate, weight decay.

generalization.py compares named recipes on a grid; this experiment takes TrainConfig's default
recipe (the level, class balance and normalisation it settled on) and tunes how hard to augment
and how to optimise it, where a grid would be coarse and wasteful:
  augment_strength  0.25 .. 2 (linear)    multiplies the level's magnitudes (study/data/augment.py)
  lr                1e-4 .. 3e-3 (log)    Adam's learning rate
  weight_decay      1e-6 .. 1e-3 (log)    L2 per step
Search: Optuna's TPE through Ray Tune's OptunaSearch, seeded, with the current default recipe
evaluated first (points_to_evaluate; weight decay at the domain's floor, 1e-6, for the default's 0),
behind a ConcurrencyLimiter of 4: TPE proposes from what has finished, and with 16 trials in
flight it would propose nearly blind (close to random search). Its state is saved in the
experiment folder, so `--resume` continues the same TPE history. ASHA on METRIC (study/names.py):
grace 5 epochs, reduction factor 3 (TPE's bad proposals are the ones worth stopping early).
24 trials of up to 20 epochs.
"""
from ray import tune
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from study.config import TrainConfig
from study.names import METRIC, MODE
from study.tune.space import Asha, SearchSpace

MAX_CONCURRENT = 4
SEARCH_SEED = 0


def searcher():
    d = TrainConfig()
    start = {"augment_strength": d.augment_strength, "lr": d.lr, "weight_decay": max(d.weight_decay, 1e-6)}
    tpe = OptunaSearch(metric=METRIC, mode=MODE, seed=SEARCH_SEED, points_to_evaluate=[start])
    return ConcurrencyLimiter(tpe, max_concurrent=MAX_CONCURRENT)


SPACE = SearchSpace(
    name="tune_recipe",
    question="Tuning the default recipe: augmentation strength, learning rate and weight decay (TPE)",
    doc=__doc__,
    searched={
        "augment_strength": tune.uniform(0.25, 2.0),
        "lr": tune.loguniform(1e-4, 3e-3),
        "weight_decay": tune.loguniform(1e-6, 1e-3),
    },
    num_samples=24,
    max_epochs=20,
    asha=Asha(grace_period=5, reduction_factor=3),
    answer="compare",
    searcher=searcher,
)
