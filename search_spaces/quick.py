"""Quick - the profile behind `make study`: a real, small study on the bundled sample.

The bundled sample (361 real Kermany et al. train X-rays of 270 patients: ~290 to train on
after the patient-level val and hold-out carve) at 64 px, batch 16, four optimizers x two
learning rates for up to 15 epochs, ASHA (grace 3, factor 2). On so few images the seed network
needs ~100 steps to leave the "always pneumonia" plateau (74 % of the sample), hence batch 16
and 15 epochs. It takes a few minutes on 2 CPU cores and produces real convergence curves, a
best configuration and a threshold table. Its numbers say little about pneumonia (200-odd training images, 64 px):
they show the pipeline works. The real questions are the other modules, run on the full data.
"""
from ray import tune

from study.tune.space import Asha, SearchSpace

SPACE = SearchSpace(
    name="quick",
    question="Quick check: optimizer x learning rate on the bundled sample at 64 px",
    doc=__doc__,
    fixed={"resolution": 64, "batch_size": 16},
    searched={
        "optimizer": tune.grid_search(["sgd_momentum", "nesterov", "adam", "rmsprop"]),
        "lr": tune.grid_search([1e-3, 1e-2]),
    },
    num_samples=1,
    max_epochs=15,
    asha=Asha(grace_period=3, reduction_factor=2),
    answer="compare",
)
