"""The recipe levers of issue 19: the learning-rate schedule (its rate at every step, and resume), label
smoothing, and the outcome rule when a space searches the epoch budget."""
from __future__ import annotations

import argparse
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from helpers.common import tiny
from study.engine.loop import SmoothedBCE, fit, make_loss, make_schedule, steps_per_epoch
from study.errors import UserError
from study.names import EARLY_STOPPED, EPOCH, ERRORED, FINISHED, STATUS, STOPPED_BY_ASHA, trial_budget, trial_status


def _rates(cfg, n_train: int) -> list[float]:
    """The learning rate each optimizer step of a run uses, read off a real optimizer as fit steps it."""
    opt = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = make_schedule(cfg, opt, n_train)
    out = []
    for _ in range(cfg.epochs * steps_per_epoch(cfg, n_train)):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        if sched is not None:
            sched.step()
    return out


def test_no_schedule_keeps_lr():
    cfg = tiny(epochs=3, lr=3e-3)
    assert set(_rates(cfg, 100)) == {3e-3}


def test_cosine_warms_up_linearly_then_anneals_by_the_cosine():
    cfg = tiny(epochs=4, lr=1e-2, lr_schedule="cosine", warmup_epochs=1.0, batch_size=10)
    spe = steps_per_epoch(cfg, 95)  # 10 steps per epoch, the last one short
    assert spe == 10
    total, warm = 4 * spe, spe
    want = [1e-2 * (1 / warm + (1 - 1 / warm) * k / warm) for k in range(warm)]
    want += [1e-2 * (1 + math.cos(math.pi * (k - warm) / (total - warm))) / 2 for k in range(warm, total)]
    np.testing.assert_allclose(_rates(cfg, 95), want, rtol=1e-9, atol=1e-12)


def test_cosine_without_warmup_and_the_rule_that_warmup_leaves_steps():
    r = _rates(tiny(epochs=2, lr=1e-2, lr_schedule="cosine", warmup_epochs=0, batch_size=10), 50)
    assert r[0] == pytest.approx(1e-2) and all(a >= b for a, b in zip(r, r[1:]))
    with pytest.raises(UserError, match="warmup_epochs < epochs"):
        tiny(epochs=2, lr_schedule="cosine", warmup_epochs=2)


def test_onecycle_rises_to_lr_then_falls_far_below():
    cfg = tiny(epochs=5, lr=1e-2, lr_schedule="onecycle", batch_size=10)
    r = _rates(cfg, 100)
    peak = int(np.argmax(r))
    assert r[peak] == pytest.approx(1e-2) and abs(peak - 0.3 * len(r)) <= 2
    assert r[0] == pytest.approx(1e-2 / 25) and r[-1] < 1e-2 / 1000
    assert all(a <= b for a, b in zip(r[:peak], r[1:peak + 1])) and all(a >= b for a, b in zip(r[peak:], r[peak + 1:]))


@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
def test_fit_steps_the_schedule_and_resume_repeats_it(schedule, tiny_data, tmp_path):
    """fit uses the schedule step by step (the last rate is the schedule's), and a run resumed from its
    epoch-2 checkpoint ends with exactly the uninterrupted run's records and weights."""
    from study.engine.checkpoint import load_resume
    cfg = tiny(epochs=3, lr_schedule=schedule)
    whole = fit(cfg, tiny_data)
    want = _rates(cfg, len(tiny_data.train.labels3))
    assert whole.optimizer.param_groups[0]["lr"] != cfg.lr and want[-1] != cfg.lr
    fit(cfg, tiny_data, on_epoch=lambda r, s: s.save(tmp_path) if r[EPOCH] == 2 else None)
    resumed = fit(cfg, tiny_data, resume=load_resume(tmp_path))
    strip = lambda rs: [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in rs]
    assert strip(resumed.records) == strip(whole.records)
    for k, v in whole.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k


def test_label_smoothing_binary_is_bce_on_smoothed_targets():
    logits, y = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([1.0, 0.0, 1.0])
    pw = torch.tensor([0.5])
    got = SmoothedBCE(pw, 0.2)(logits, y)
    want = nn.BCEWithLogitsLoss(pos_weight=pw)(logits, torch.tensor([0.9, 0.1, 0.9]))
    assert torch.allclose(got, want)
    assert torch.allclose(SmoothedBCE(None, 0.0)(logits, y), nn.BCEWithLogitsLoss()(logits, y))


def test_label_smoothing_reaches_both_losses_and_changes_training(tiny_data):
    labels = tiny_data.train.labels3
    ce = make_loss(tiny(num_classes=3, label_smoothing=0.1), labels, torch.device("cpu"))
    assert isinstance(ce, nn.CrossEntropyLoss) and ce.label_smoothing == 0.1
    assert make_loss(tiny(label_smoothing=0.1), labels, torch.device("cpu")).eps == 0.1
    plain, smooth = fit(tiny(epochs=1), tiny_data), fit(tiny(epochs=1, label_smoothing=0.2), tiny_data)
    assert plain.records[0]["train_loss"] != smooth.records[0]["train_loss"]
    with pytest.raises(UserError, match="label_smoothing"):
        tiny(label_smoothing=0.5)


# ---- the outcome rule with the epoch budget searched ---------------------------------------------------
def test_a_trial_is_judged_against_its_own_budget():
    """A 6-epoch trial that ran 6 epochs finished, whatever the experiment's longest budget; without ASHA a
    short trial is never 'stopped by ASHA'."""
    assert trial_budget({"epochs": 6}, 24) == 6 and trial_budget({}, 24) == 24
    done6 = {EPOCH: 6, STATUS: FINISHED}
    assert trial_status(done6, trial_budget({"epochs": 6}, 24), False, asha=False) == FINISHED
    short = {EPOCH: 4, STATUS: "running"}
    assert trial_status(short, 6, False, asha=False) == ERRORED
    assert trial_status(short, 6, False, asha=True) == STOPPED_BY_ASHA
    assert trial_status({EPOCH: 4, EARLY_STOPPED: True}, 6, False, asha=False) == EARLY_STOPPED


def test_study_summary_and_progress_line_use_each_trials_budget(capsys):
    from study.tune.callbacks import TrialProgress
    from study.tune.outcome import summarize, trial_rows
    results = [SimpleNamespace(metrics={EPOCH: e, STATUS: FINISHED, "best_val_shift_bacc": 0.8}, error=None,
                               config={"epochs": e, "filters": (16,) * 4}, path=f"/x/trial_{e}", checkpoint=None)
               for e in (6, 12, 24)]
    out = summarize("capacity", trial_rows("capacity", results, 24, asha=False), ["epochs", "filters"], "/x")
    assert out["statuses"][FINISHED] == 3 and out["errors"] == 0 and out["stopped_by_asha"] == 0
    assert out["epochs_run"] == out["epochs_budget"] == 42
    capsys.readouterr()
    progress = TrialProgress("capacity", 24, asha=False)
    progress.on_trial_complete(0, [], SimpleNamespace(trial_id="t1", config={"epochs": 6},
                                                      last_result={EPOCH: 6, STATUS: FINISHED, "training_iteration": 6}))
    progress.on_trial_complete(0, [], SimpleNamespace(trial_id="t2", config={"epochs": 12},
                                                      last_result={EPOCH: 5, STATUS: "running", "training_iteration": 5}))
    lines = capsys.readouterr().out.splitlines()
    assert "t1 finished (6 epochs" in lines[0] and "t2 errored" in lines[1] and "ASHA" not in "".join(lines)


def test_max_epochs_scales_a_searched_epochs_grid():
    import search_spaces
    from study.tune.plan import plan
    args = argparse.Namespace(set=[], max_epochs=8, resolution=None, max_train_images=None, num_samples=None)
    p = plan(search_spaces.load("capacity"), args)
    assert p.base.epochs == 8 and p.param_space["epochs"] == {"grid_search": [2, 4, 8]}
    p = plan(search_spaces.load("capacity"), argparse.Namespace(set=[], max_epochs=None, resolution=None,
                                                                 max_train_images=None, num_samples=None))
    assert p.base.epochs == 24 and p.param_space["epochs"] == {"grid_search": [6, 12, 24]}
