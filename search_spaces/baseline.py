"""Q1 - the seed network and optimizer, over several seeds.

Question: how accurate is the seed's Q1 CNN (4 x Conv3x3-32 + Dense 128, Adam 1e-3, batch 32)
on this data, and how much does that number move from one seed to the next? Every other
experiment's difference has to be larger than this spread to mean anything.
Grid: seed in 0..4 (5 runs). No ASHA: the trials are the same config, so none is "weak".
The seed's own training recipe is pinned (no augmentation, no class balancing, no batch norm),
so this stays the Q1 control whatever recipe TrainConfig's defaults carry.
"""
from ray import tune

from study.config import SEED_RECIPE
from study.tune.space import SearchSpace

SPACE = SearchSpace(
    name="baseline",
    question="Q1: accuracy of the seed network, and its seed-to-seed spread",
    doc=__doc__,
    fixed=dict(SEED_RECIPE),
    searched={"seed": tune.grid_search([0, 1, 2, 3, 4])},
    num_samples=1,
    max_epochs=12,
    answer="seed_spread",
)
