"""Q3.1 B - add two layers: which pair of added layers helps the seed network?

Pairs of the one-layer candidates (study/model.py gives each layer's rationale):
  (conv, conv)        two more blocks: 200 px -> 4 px map, dense layer 30x smaller
  (conv, batchnorm)   deeper and normalised
  (conv, dense)       deeper features and a deeper classifier
  (conv, dropout)     deeper, and regularise the remaining dense weights
  (batchnorm, dropout) stabilise early, regularise late, same depth
plus () as the control. Grid: 6 configs x 2 seeds. ASHA: grace 4 epochs, reduction factor 2.
Batch norm after every convolution is part of the default recipe (norm=batch); here it is one
of the candidate layers, so this space keeps norm=none and compares it as a layer, on the default
recipe's augmentation and class balance.
"""
from ray import tune

from study.tune.space import Asha, SearchSpace

SPACE = SearchSpace(
    name="add_two_layers",
    question="Q3.1 B: which two added layers improve accuracy",
    doc=__doc__,
    fixed={"norm": "none"},  # batch norm is a candidate layer here, so not already everywhere
    searched={
        "extra_layers": tune.grid_search([(), ("conv", "conv"), ("conv", "batchnorm"), ("conv", "dense"),
                                          ("conv", "dropout"), ("batchnorm", "dropout")]),
        "seed": tune.randint(0, 10_000),
    },
    num_samples=2,
    max_epochs=12,
    asha=Asha(grace_period=4, reduction_factor=2),
    answer="compare",
)
