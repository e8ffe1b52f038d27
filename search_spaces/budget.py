"""Budget - how to spend the compute: input resolution x epochs, and how many cheap seeds one expensive run buys.

The default recipe (TrainConfig's) at resolution 32 / 64 / 96 / 128 / 200 px, seeds 0 and 1, read at
5 / 10 / 20 epochs. Resolution decides which images a run sees, so it is a data field: the question is
one experiment per resolution (budget_32 ... budget_200), run from one queue with
`--experiment budget`. Epochs: without a schedule a run of E epochs is the first E epochs of a longer
one with the same seed, so each budget is read off the curve (best METRIC within E epochs, its train
seconds the sum of those epochs' epoch_seconds), as optimizers.py does; lr_schedule stays none for that.
No ASHA: cost is the question, so every trial runs its budget.
The answer (analysis/answers.py `cost`) is the Pareto front of the selection score against train
seconds, and how many seeds of the cheap end fit the cost of one run at the expensive end. The stress
changes are made in one film frame (study/data/stress.py), so the score is fair across resolutions.
"""
from ray import tune

from study.tune.space import SearchSpace

RESOLUTIONS = (32, 64, 96, 128, 200)  # px
EPOCH_BUDGETS = (5, 10, 20)           # epochs read off every curve


def space(resolution: int) -> SearchSpace:
    return SearchSpace(
        name=f"budget_{resolution}",
        question=f"Budget: selection score against train cost at {resolution} px (resolution x epochs x seeds)",
        doc=__doc__,
        fixed={"resolution": resolution, "lr_schedule": "none"},
        searched={"seed": tune.grid_search([0, 1])},
        num_samples=1,
        max_epochs=max(EPOCH_BUDGETS),
        answer="cost",
        epoch_budgets=EPOCH_BUDGETS,
        varies=("resolution",),
    )


SPACES = {s.name: s for s in map(space, RESOLUTIONS)}
