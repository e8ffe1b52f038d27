"""The budget answer: configurations over seeds, the Pareto front, and runs of the cheap end per expensive run."""
import pandas as pd

from analysis import budget
from analysis.results.load import TRAIN_SECONDS, Experiment
from study.names import EPOCH, EPOCH_SECONDS, METRIC, VAL_ACCURACY, VAL_SHIFT_AUC


def _exp(resolution: int, scores: dict[int, list[float]], seconds: float) -> Experiment:
    """A budget experiment whose seed s scores scores[s][e - 1] at epoch e, each epoch `seconds` long."""
    trials, epochs = [], []
    for seed, curve in scores.items():
        trials.append({"trial_id": f"t{seed}", "config": {"seed": seed}})
        epochs += [{"trial_id": f"t{seed}", EPOCH: e, METRIC: v, VAL_SHIFT_AUC: v, VAL_ACCURACY: v,
                    EPOCH_SECONDS: seconds} for e, v in enumerate(curve, 1)]
    meta = {"base_config": {"resolution": resolution}, "epoch_budgets": [1, 2], "max_epochs": 2}
    return Experiment(f"budget_{resolution}", "", meta, pd.DataFrame(trials), pd.DataFrame(epochs))


def test_front_keeps_only_configurations_better_than_every_cheaper_one():
    exps = [_exp(32, {0: [0.80, 0.90], 1: [0.82, 0.88]}, 1.0), _exp(64, {0: [0.85, 0.95], 1: [0.87, 0.93]}, 4.0),
            _exp(200, {0: [0.70, 0.89], 1: [0.72, 0.91]}, 20.0)]
    df = budget.configurations(exps)
    row = df.set_index(["resolution", "epochs"])
    assert row.loc[(64, 2), METRIC] == 0.94 and row.loc[(64, 2), TRAIN_SECONDS] == 8.0
    assert row.loc[(32, 1), "on front"] and row.loc[(32, 2), "on front"] and row.loc[(64, 2), "on front"]
    assert not row.loc[(200, 2), "on front"] and not row.loc[(200, 1), "on front"]
    cheap, dear, n = budget.seeds_for_one(df)
    assert (cheap["resolution"], cheap["epochs"], dear["resolution"], dear["epochs"], n) == (32, 1, 200, 2, 40)


def test_best_within_a_budget_ignores_later_epochs():
    rows = budget.budget_rows(_exp(64, {0: [0.9, 0.5]}, 3.0))
    assert rows[METRIC].tolist() == [0.9, 0.9] and rows["kept epoch"].tolist() == [1, 1]
    assert rows[TRAIN_SECONDS].tolist() == [3.0, 6.0]
