"""When a run has diverged, and what its last record says.

A run diverges when its training loss or any weight or buffer stops being finite (too large a
learning rate, most often). `study.train.fit` checks after every epoch, and `train_one_epoch`
ends an epoch early, within CHECK_STEPS steps of a non-finite loss. The run then stops with one
last record whose STATUS is DIVERGED: no validation (the model is broken), METRIC and BEST_METRIC
NaN so that no scheduler, searcher or selection ranks it, and no checkpoint of its weights.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from study.config import (BEST_EPOCH, BEST_METRIC, DIVERGED, EARLY_STOPPED, EPOCH, EPOCH_SECONDS, STATUS, VAL_ACCURACY,
                          VAL_AUC, VAL_BACC, VAL_F1, VAL_LOSS, VAL_PRECISION, VAL_RECALL, VAL_SHIFT_ACCURACY, VAL_SHIFT_AUC,
                          VAL_SHIFT_BACC)

CHECK_STEPS = 32  # a non-finite loss ends the epoch within this many steps (one host sync each time)
WHY = "diverged_because"  # the diverged record's reason, e.g. "train loss nan"
VAL_KEYS = (VAL_LOSS, VAL_ACCURACY, VAL_AUC, VAL_PRECISION, VAL_RECALL, VAL_F1, VAL_BACC, VAL_SHIFT_ACCURACY,
            VAL_SHIFT_AUC, VAL_SHIFT_BACC)


def divergence(model: nn.Module, train_loss: float) -> str | None:
    """Why a run diverged (a non-finite training loss, or a non-finite weight or buffer), or None."""
    if not np.isfinite(train_loss):
        return f"train loss {train_loss}"
    tensors = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
    if bool(torch.stack([torch.isfinite(v).all() for v in tensors.values()]).all()):
        return None
    return "non-finite weights in " + next(k for k, v in tensors.items() if not torch.isfinite(v).all())


def diverged_record(epoch: int, train: dict, why: str, best_epoch: int, seconds: float) -> dict:
    """The last record of a diverged run (its train loss and accuracy, the reason, NaN elsewhere)."""
    nan = float("nan")
    return {EPOCH: epoch, **train, **dict.fromkeys(VAL_KEYS, nan), BEST_METRIC: nan, BEST_EPOCH: best_epoch,
            EARLY_STOPPED: False, EPOCH_SECONDS: seconds, STATUS: DIVERGED, WHY: why}


def non_finite_weights(state_dict: dict) -> str | None:
    """The first tensor of a saved model that holds NaN or inf, or None (study.predict refuses those)."""
    return next((k for k, v in state_dict.items() if torch.is_tensor(v) and v.is_floating_point()
                 and not torch.isfinite(v).all()), None)
