"""Q3.3 F - early stopping: does performance deteriorate beyond some number of epochs?

Long runs (30 epochs, 2.5x the baseline budget) with patience-based early stopping off (0) and
on (patience 3 and 6 epochs, monitoring METRIC in study/names.py, keeping the best epoch's weights),
3 seeds each. No ASHA: the question is what happens late in training, so every run must get
there. The report reads the epoch where METRIC peaks and how far it falls after. Asked, as the seed
asked it, without a learning-rate schedule (lr_schedule=none): a schedule that anneals to 0 at the
last epoch changes what "later epochs" means.
"""
from ray import tune

from study.tune.space import SearchSpace

SPACE = SearchSpace(
    name="early_stopping",
    question="Q3.3 F: does validation performance deteriorate after some epoch, and does early stopping help",
    doc=__doc__,
    fixed={"lr_schedule": "none"},
    searched={
        "early_stopping_patience": tune.grid_search([0, 3, 6]),
        "seed": tune.randint(0, 10_000),
    },
    num_samples=3,
    max_epochs=30,
    answer="early_stopping",
)
