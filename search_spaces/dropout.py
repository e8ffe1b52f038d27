"""Q3.3 E - dropout probability.

A Dropout layer before the output layer of the seed network (dropout_place="dense"), with
p in {0, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75}: from none, through the usual 0.25-0.5, to heavy.
2 seeds each (random, reproducible): dropout's effect is small next to seed noise, so one seed
per p would be read as signal. No ASHA: regularisation pays late, and early stopping by rung
would favour p=0.
"""
from ray import tune

from study.tune.space import SearchSpace

SPACE = SearchSpace(
    name="dropout",
    question="Q3.3 E: the effect of the dropout probability",
    doc=__doc__,
    fixed={"dropout_place": "dense"},
    searched={
        "dropout": tune.grid_search([0.0, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75]),
        "seed": tune.randint(0, 10_000),
    },
    num_samples=2,
    max_epochs=12,
    answer="dropout",
)
