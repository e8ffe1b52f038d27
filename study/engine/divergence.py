"""When a run has diverged, and what its last record says.

A run diverges when its training loss or any weight or buffer stops being finite, or when its training
or validation loss explodes past MAX_LOSS while staying finite (too large a learning rate, most often:
with batch norm a run can reach a train loss of 1e20 with finite weights and every score at chance).
`study.engine.loop.fit` checks after every epoch's training (train loss, weights) and after its
validation (validation loss). The run then stops with one last record whose STATUS is DIVERGED:
no validation figures (the model is broken), METRIC and BEST_METRIC NaN so that no scheduler,
searcher or selection ranks it, and no checkpoint of its weights.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from study.names import BEST_EPOCH, BEST_METRIC, DIVERGED, EARLY_STOPPED, EPOCH, EPOCH_SECONDS, STATUS, VAL_KEYS, WHY

# Nats per image. A model at chance scores ln 2 = 0.69 (binary) or ln 3 = 1.10 (3 classes), a badly
# over-fitted one a few nats on validation; 50 nats means the true class gets e^-50 ~ 2e-22 of the
# probability on average: no run that is still learning gets there.
MAX_LOSS = 50.0


def divergence(model: nn.Module, train_loss: float) -> str | None:
    """Why a run diverged after an epoch's training (its loss non-finite or above MAX_LOSS, or a non-finite
    weight or buffer), or None."""
    if not np.isfinite(train_loss) or train_loss > MAX_LOSS:
        return f"train loss {train_loss:.4g}" + (f" > {MAX_LOSS:g} (exploding)" if np.isfinite(train_loss) else "")
    tensors = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
    if bool(torch.stack([torch.isfinite(v).all() for v in tensors.values()]).all()):
        return None
    return "non-finite weights in " + next(k for k, v in tensors.items() if not torch.isfinite(v).all())


def exploded(val_loss: float) -> str | None:
    """Why a run diverged at its validation (the loss above MAX_LOSS, or not finite), or None."""
    if np.isfinite(val_loss) and val_loss <= MAX_LOSS:
        return None
    return f"validation loss {val_loss:.4g}" + (f" > {MAX_LOSS:g} (exploding)" if np.isfinite(val_loss) else "")


def diverged_record(epoch: int, train: dict, why: str, best_epoch: int, seconds: float) -> dict:
    """The last record of a diverged run (its train loss and accuracy, the reason, NaN elsewhere)."""
    nan = float("nan")
    return {EPOCH: epoch, **train, **dict.fromkeys(VAL_KEYS, nan), BEST_METRIC: nan, BEST_EPOCH: best_epoch,
            EARLY_STOPPED: False, EPOCH_SECONDS: seconds, STATUS: DIVERGED, WHY: why}


def non_finite_weights(state_dict: dict) -> str | None:
    """The first tensor of a saved model that holds NaN or inf, or None (study.predict refuses those)."""
    return next((k for k, v in state_dict.items() if torch.is_tensor(v) and v.is_floating_point()
                 and not torch.isfinite(v).all()), None)
