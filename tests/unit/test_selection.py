"""Selection: configurations ranked by their mean score over seeds, the best-of-N bias, and the
selection metric being the one ASHA, the kept epoch and the report use."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.results.load import AT_BEST
from analysis.selection import choose, expected_max_normal
from study.names import BEST_METRIC, METRIC, VAL_ACCURACY, VAL_SHIFT_AUC, VAL_SHIFT_BACC


def _trials(rows):
    out = []
    for i, (aug, seed, score, plain) in enumerate(rows):
        out.append({"experiment": "generalization", "trial_id": f"t{i}", "label": f"augment={aug}, seed={seed}",
                    "config_label": f"augment={aug}", "num_classes": 2, "checkpoint": f"/ckpt/{i}",
                    BEST_METRIC: score, VAL_ACCURACY + AT_BEST: plain, VAL_SHIFT_AUC + AT_BEST: 0.9,
                    "config": {"augment": aug, "seed": seed, "lr": 0.001}})
    return pd.DataFrame(out)


def test_ranks_configurations_by_mean_over_seeds_not_best_seed_or_plain_accuracy():
    t = _trials([("none", 1, 0.95, 0.99), ("none", 2, 0.60, 0.99),      # one lucky seed, best plain accuracy
                 ("strong", 1, 0.85, 0.93), ("strong", 2, 0.84, 0.92)])  # steadier, better on average
    c = choose(t, 2)
    assert c.row["config"]["augment"] == "strong" and c.row[BEST_METRIC] == 0.85  # best seed of the best mean
    assert list(c.table["label"]) == ["augment=strong", "augment=none"]
    assert c.table.iloc[0][f"mean {BEST_METRIC}"] == pytest.approx(0.845)
    assert c.n_configs == 2 and c.seeds == 2 and c.sigma is not None
    assert "Best-of-N selection bias" in c.note()


def test_trials_without_a_model_or_score_are_not_selected():
    t = _trials([("none", 1, 0.9, 0.9), ("strong", 1, np.nan, 0.9), ("light", 1, 0.99, 0.9)])
    t.loc[2, "checkpoint"] = ""
    assert choose(t, 2).row["config"]["augment"] == "none"
    assert choose(t, 3) is None


def test_expected_max_of_normals():
    assert expected_max_normal(1) == 0.0
    assert expected_max_normal(2) == pytest.approx(1 / np.sqrt(np.pi), rel=1e-6)
    rng = np.random.default_rng(0)
    assert expected_max_normal(24) == pytest.approx(rng.standard_normal((20000, 24)).max(1).mean(), abs=0.02)


def test_one_selection_metric_everywhere():
    from study.tune.space import Asha
    from study.tune.tuner import build_scheduler
    assert METRIC == VAL_SHIFT_BACC and BEST_METRIC == "best_" + METRIC
    assert build_scheduler(Asha(2, 2), 10).metric == METRIC


def test_rank_skips_what_cannot_be_selected_and_keeps_the_best_seed_first():
    from study.tune.ranking import rank
    rows = [{"experiment": "e", "config": {"lr": 1, "seed": s}, "score": v, "checkpoint": "c"}
            for s, v in ((1, 0.7), (2, 0.9))]
    rows += [{"experiment": "e", "config": {"lr": 2, "seed": 1}, "score": 0.99, "checkpoint": "c", "status": "diverged"},
             {"experiment": "e", "config": {"lr": 3, "seed": 1}, "score": float("nan"), "checkpoint": "c"},
             {"experiment": "e", "config": {"lr": 4, "seed": 1}, "score": 0.95, "checkpoint": ""},
             {"experiment": "f", "config": {"lr": [1, 2], "seed": 1}, "score": 0.75, "checkpoint": "c"}]
    g = rank(rows)
    assert [x["experiment"] for x in g] == ["e", "f"]
    assert g[0]["mean"] == pytest.approx(0.8) and g[0]["seeds"] == 2 and g[0]["members"][0]["score"] == 0.9
    assert g[1]["std"] is None
