"""Q3.1 A - add one layer: which single added layer helps the seed network?

Candidates (the rationale of each is in study/model.py, where the layer is declared):
  conv       a 5th conv block: more receptive field, and 3.4x fewer dense weights (13->7 px map)
  dense      a second hidden dense layer: a deeper classifier on the same features
  batchnorm  normalise the first block's activations: X-ray exposure varies between machines
  dropout    dropout (p=0.5) after Flatten, where 96 % of the weights are
plus () - the unchanged seed network - as the control, all on the same seed.
Grid: 5 configs x 2 seeds (random, reproducible). ASHA: grace 4 epochs, reduction factor 2.
Batch norm after every convolution is part of the default recipe (norm=batch); here it is one
of the candidate layers, so this space keeps norm=none and compares it as a layer, on the default
recipe's augmentation and class balance.
"""
from ray import tune

from study.tune.space import Asha, SearchSpace

SPACE = SearchSpace(
    name="add_one_layer",
    question="Q3.1 A: which one added layer improves accuracy",
    doc=__doc__,
    fixed={"norm": "none"},  # batch norm is a candidate layer here, so not already everywhere
    searched={
        "extra_layers": tune.grid_search([(), ("conv",), ("dense",), ("batchnorm",), ("dropout",)]),
        "seed": tune.randint(0, 10_000),
    },
    num_samples=2,
    max_epochs=12,
    asha=Asha(grace_period=4, reduction_factor=2),
    answer="compare",
)
