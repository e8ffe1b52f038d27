"""Capacity - how much network and how long a schedule does the generalizing recipe need?

The default recipe (augment=medium, class_balance=weights, norm=batch) trained with:
  filters       (16,16,16,16) half / (32,32,32,32) the seed's / (64,64,64,64) double: width of the 4 conv
                blocks (the dense layer's input grows with the last block's width)
  lr_schedule   none (the seed: lr throughout) / cosine (1 warm-up epoch, then cosine to 0) / onecycle
                (torch's OneCycleLR peaking at lr): study/engine/loop.py make_schedule
  epochs        6 / 12 (the seed's budget) / 24: each trial is judged against its own budget
3 x 3 x 3 = 27 configurations, one seed each (the generalization run's seed std is the yardstick).
No ASHA: a scheduled run's early epochs run at a high learning rate and say little about where it
ends, and the epoch budget is itself a searched factor. `--max-epochs N` scales the epochs grid so
that its longest is N. With a schedule, an E-epoch run is not the start of a longer run, so the
epoch budget has to be trained for, not read off one long curve (as optimizers.py does without one).
"""
from ray import tune

from study.tune.space import SearchSpace

SPACE = SearchSpace(
    name="capacity",
    question="Capacity: how much network (width) and how long a schedule (lr schedule x epochs) the default recipe needs",
    doc=__doc__,
    searched={
        "filters": tune.grid_search([(16, 16, 16, 16), (32, 32, 32, 32), (64, 64, 64, 64)]),
        "lr_schedule": tune.grid_search(["none", "cosine", "onecycle"]),
        "epochs": tune.grid_search([6, 12, 24]),
    },
    num_samples=1,
    max_epochs=24,
    answer="factors",
)
