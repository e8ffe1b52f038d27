"""Q3.2 - training algorithms, learning rate and epochs.

SGD, SGD+momentum (0.9), SGD+Nesterov (0.9), Adam and RMSprop (Keras' rho 0.9), each over one
log-scale learning-rate grid 1e-4 .. 1e-1 (7 points, half-decades), so every algorithm meets
the rates that suit it and the ones that break it: 35 trials. ASHA (grace 3 epochs, factor 3)
stops the diverging and crawling ones early, which is where it saves most.
Epochs: without a schedule, a run of E epochs is exactly the first E epochs of a longer run
with the same seed (training is deterministic), so the effect of the epoch budget is read off
each trial's curve at E = 5, 10, 20 (best METRIC within the first E epochs)
rather than paid for three times. That holds only without a learning-rate schedule, so this question
keeps the seed's (lr_schedule=none) whatever TrainConfig's default is.
"""
from ray import tune

from study.tune.space import Asha, SearchSpace

SPACE = SearchSpace(
    name="optimizers",
    question="Q3.2: which optimizer and learning rate, and how the number of epochs matters",
    doc=__doc__,
    fixed={"lr_schedule": "none"},  # the seed's question, asked without a schedule (see above)
    searched={
        "optimizer": tune.grid_search(["sgd", "sgd_momentum", "nesterov", "adam", "rmsprop"]),
        "lr": tune.grid_search([1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]),
    },
    num_samples=1,
    max_epochs=20,
    asha=Asha(grace_period=3, reduction_factor=3),
    answer="optimizers",
    epoch_budgets=(5, 10, 20),
)
