"""The training loop: `train_step`, `train_one_epoch` and `fit` are plain functions (no Ray, no CLI).

`fit(cfg, data)` trains one configuration and keeps the weights of its best METRIC epoch; the Ray
trainable (study/tune/trainable.py) and `python -m study.train` call it. Images stay uint8 on the device;
each step slices a batch and converts it to float there. With an augment level, a GPU batch is
augmented on the GPU (kornia, whole batch); on the CPU each image goes through albumentations first.
JPEGs are never decoded here. Every epoch is scored on the validation split and on the stress
validation (study.data.stress.STRESS) by study.engine.infer.evaluate; METRIC (balanced accuracy on the
stress validation) picks the kept epoch and drives early stopping. The learning-rate schedule
(make_schedule) steps after every optimizer step; its state is in the checkpoint, so a resumed run
repeats the uninterrupted one.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import WeightedRandomSampler

from study.config import TrainConfig
from study.data.augment import cpu_augment, gpu_augment
from study.data.layout import targets
from study.data.splits import TrainData
from study.engine import checkpoint as ckpt_io
from study.engine.device import on_device, pick_device, resolve_precision, seed_everything, tune_backend
from study.engine.divergence import diverged_record, divergence, exploded
from study.engine.infer import evaluate, forward, inputs, layout, loss_value, predicted
from study.errors import UserError
from study.model import build_model
from study.names import (
    BEST_EPOCH,
    BEST_METRIC,
    EARLY_STOPPED,
    EPOCH,
    EPOCH_SECONDS,
    FINISHED,
    METRIC,
    RUNNING,
    STATUS,
    TRAIN_ACCURACY,
    TRAIN_LOSS,
    VAL_LOSS,
)


def make_optimizer(cfg: TrainConfig, params, device: torch.device | None = None) -> torch.optim.Optimizer:
    """The optimizer by name. Adam on CUDA is fused (one kernel for the whole update, and its step counters
    stay on the device, so a step reads nothing back); elsewhere torch's default implementation, which
    gives the CPU the same numbers as before (tests/helpers/pinned_epochs.json)."""
    o, wd = cfg.optimizer, cfg.weight_decay
    if o == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, weight_decay=wd)
    if o in ("sgd_momentum", "nesterov"):
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=o == "nesterov", weight_decay=wd)
    if o == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=wd,
                                **({"fused": True} if device is not None and device.type == "cuda" else {}))
    # Keras' RMSprop decay (rho) is 0.9 where torch's alpha defaults to 0.99; follow the seed's Keras.
    return torch.optim.RMSprop(params, lr=cfg.lr, alpha=0.9, weight_decay=wd)


class SmoothedBCE(nn.BCEWithLogitsLoss):
    """BCE with logits on targets smoothed towards 0.5: y -> y (1 - eps) + eps / 2, the binary form of
    cross-entropy's label smoothing (eps / classes to every class)."""

    def __init__(self, pos_weight: torch.Tensor | None, eps: float):
        super().__init__(pos_weight=pos_weight)
        self.eps = eps

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return super().forward(logits, y * (1.0 - self.eps) + 0.5 * self.eps if self.eps else y)


def make_loss(cfg: TrainConfig, labels3: np.ndarray, device: torch.device) -> nn.Module:
    """BCE (binary) or cross-entropy (3-class); class_balance="weights" weighs classes by inverse frequency;
    label_smoothing eps spreads eps of every target evenly over the classes."""
    t = targets(labels3, cfg.num_classes)
    counts = np.bincount(t, minlength=cfg.num_classes).astype(np.float64)
    weighted = cfg.class_balance == "weights"
    if cfg.num_classes == 2:
        pos_weight = torch.tensor([counts[0] / max(counts[1], 1)], device=device) if weighted else None
        return SmoothedBCE(pos_weight, cfg.label_smoothing)
    weight = torch.tensor(counts.sum() / (3 * np.maximum(counts, 1)), dtype=torch.float32, device=device) \
        if weighted else None
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing)


def steps_per_epoch(cfg: TrainConfig, n_train: int) -> int:
    """Optimizer steps in one epoch: every image once (or n_train sampler draws), batch_size at a time."""
    return max(1, -(-n_train // cfg.batch_size))


def make_schedule(cfg: TrainConfig, optimizer: torch.optim.Optimizer, n_train: int):
    """The learning-rate schedule, stepped after every optimizer step (torch.optim.lr_scheduler), or None.
    cosine: LinearLR from lr/W to lr over the W = warmup_epochs * steps_per_epoch first steps (none when
    W < 1), then CosineAnnealingLR from lr to 0 at the run's last step; onecycle: OneCycleLR over the run
    (max_lr = lr; torch's defaults: 30 % rising from lr/25, then cosine to lr/25e4, beta1/momentum cycled)."""
    total = cfg.epochs * steps_per_epoch(cfg, n_train)
    sched = torch.optim.lr_scheduler
    if cfg.lr_schedule == "onecycle":
        return sched.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total)
    if cfg.lr_schedule != "cosine":
        return None
    warm = min(int(round(cfg.warmup_epochs * steps_per_epoch(cfg, n_train))), total - 1)
    cosine = sched.CosineAnnealingLR(optimizer, T_max=total - warm)
    if warm < 1:
        return cosine
    with warnings.catch_warnings():  # SequentialLR steps its first scheduler once at construction: intended
        warnings.simplefilter("ignore", UserWarning)
        linear = sched.LinearLR(optimizer, start_factor=1.0 / warm, end_factor=1.0, total_iters=warm)
        return sched.SequentialLR(optimizer, [linear, cosine], milestones=[warm])


def epoch_order(cfg: TrainConfig, y: np.ndarray, epoch: int) -> torch.Tensor:
    """The training indices of one epoch, fixed by (seed, epoch): a permutation of all images, or with
    class_balance="sampler" len(y) draws with replacement in which every class is equally likely."""
    g = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
    if cfg.class_balance != "sampler":
        return torch.randperm(len(y), generator=g)
    counts = np.bincount(y)
    weights = torch.from_numpy(1.0 / counts[y])
    return torch.tensor(list(WeightedRandomSampler(weights, len(y), replacement=True, generator=g)))


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: nn.Module, x: torch.Tensor,
               y: torch.Tensor, cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The one training step (fit, bench): forward, loss, backward, optimizer step on a float batch.
    -> (loss, logits), both detached and left on the device (no host sync here)."""
    logits = forward(model, x, cfg)
    loss = loss_value(loss_fn, logits, y, cfg.num_classes)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach(), logits.detach()


def augment_backend(device: torch.device) -> str:
    """kornia on the whole batch where the batch lives on a GPU; albumentations per image on the CPU."""
    return "kornia" if device.type == "cuda" else "albumentations"


def train_one_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: nn.Module,
                    images: np.ndarray, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, epoch: int,
                    schedule=None, labels: np.ndarray | None = None) -> dict:
    """One pass over (x, y) in an order fixed by (seed, epoch) (`epoch_order`). `images` is the CPU
    copy of `x`, read only by the CPU augmentation; `labels` the host copy of `y` (default: read from
    y once); `schedule` (make_schedule) steps after every optimizer step. Returns train loss and accuracy.

    Nothing in the step loop reads the device from the host (tests/unit/test_host_reads.py): the epoch's
    order goes to the device once, batches are sliced there, the kornia pipeline draws its parameters
    there, and loss and accuracy are summed there and read once, after the last step. So the host
    queues steps ahead of an accelerator. A non-finite loss is found at the epoch's end (fit), which
    costs at most the rest of that epoch."""
    model.train()
    device = x.device
    seed = cfg.seed * 100_003 + epoch
    torch.manual_seed(seed)  # dropout and kornia draw from here (all devices): a resumed run repeats an epoch exactly
    order_host = epoch_order(cfg, y.cpu().numpy() if labels is None else labels, epoch)
    on_gpu = augment_backend(device) == "kornia"
    cpu_aug = None if on_gpu else cpu_augment(cfg.augment, cfg.augment_strength, cfg.resolution, seed)
    gpu_aug = gpu_augment(cfg.augment, cfg.augment_strength, cfg.resolution, device) if on_gpu else None
    order = order_host if cpu_aug else order_host.to(device)
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    for start in range(0, len(order), cfg.batch_size):
        idx = order[start:start + cfg.batch_size]
        if cpu_aug:  # the CPU path: the batch is on the host anyway
            xb = inputs(torch.from_numpy(cpu_aug(images[idx.numpy()])), cfg)
        else:
            xb = inputs(x[idx], cfg)
            if gpu_aug:
                xb = layout(gpu_aug(xb), cfg)
        yb = y[idx]
        loss, logits = train_step(model, optimizer, loss_fn, xb, yb, cfg)
        if schedule is not None:
            schedule.step()
        total_loss += loss * len(idx)
        correct += (predicted(logits, cfg.num_classes) == yb).sum()
    return {TRAIN_LOSS: total_loss.item() / len(order), TRAIN_ACCURACY: correct.item() / len(order)}


# ---- checkpoints -------------------------------------------------------------------------------
@dataclass
class TrainState:
    """Everything needed to report an epoch and to resume after it."""
    cfg: TrainConfig
    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: object  # torch.optim.lr_scheduler.LRScheduler, or None (lr_schedule="none")
    epoch: int
    records: list[dict]
    best_state: dict
    best_epoch: int
    best_metric: float
    bad_epochs: int
    precision: str  # what cfg.precision resolved to on this device ("auto" is not a result)

    def checkpoint(self) -> dict:
        """The one checkpoint dict (study/engine/checkpoint.py lists its keys)."""
        return {"config": self.cfg.to_dict(), "model": self.best_state, "last_model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.schedule.state_dict() if self.schedule is not None else None, "epoch": self.epoch,
                "best_epoch": self.best_epoch,
                "best_metric": self.best_metric, "bad_epochs": self.bad_epochs, "precision": self.precision,
                "records": self.records, "rng": torch.get_rng_state()}

    def restore(self, resume: dict) -> None:
        """Continue from a load_resume() checkpoint: weights, optimizer, schedule, records, RNG."""
        self.model.load_state_dict(resume["last_model"])
        self.optimizer.load_state_dict(resume["optimizer"])
        if self.schedule is not None:
            self.schedule.load_state_dict(resume["scheduler"])
        self.epoch, self.records, self.best_state = resume["epoch"], resume["records"], resume["model"]
        self.best_epoch, self.best_metric, self.bad_epochs = resume["best_epoch"], resume["best_metric"], resume["bad_epochs"]
        if "rng" in resume:
            torch.set_rng_state(resume["rng"])

    def save(self, out: str | Path) -> Path:
        """OUT/checkpoint.pt (study.engine.checkpoint.save)."""
        return ckpt_io.save(out, self.checkpoint())


def weights_of(model: nn.Module) -> dict:
    """A copy of the model's weights and buffers on the host (the kept epoch's, in the checkpoint)."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


# ---- the whole run -------------------------------------------------------------------------------
def fit(cfg: TrainConfig, data: TrainData, on_epoch: Callable[[dict, TrainState], None] | None = None,
        resume: dict | None = None, device: torch.device | None = None) -> TrainState:
    """Train `cfg` on `data` for cfg.epochs (fewer with early stopping), keeping the weights of the
    best METRIC epoch. `on_epoch(record, state)` runs after every epoch (the Ray trainable
    reports and checkpoints there). `resume`: a load_resume() dict to continue from."""
    if data.data_key != cfg.data_key():
        raise UserError(f"config data fields {cfg.data_key()} differ from the prepared data's {data.data_key}")
    device = device or pick_device()
    tune_backend(device)
    seed_everything(cfg.seed)
    model = build_model(cfg).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(cfg, model.parameters(), device)
    schedule = make_schedule(cfg, optimizer, len(data.train.labels3))
    loss_fn = make_loss(cfg, data.train.labels3, device)
    # validation and the stress validation as one tensor: one pass of evaluation per epoch
    x_train, x_eval = on_device([data.train.images, data.eval_images], device)
    labels = targets(data.train.labels3, cfg.num_classes)
    y_train = torch.from_numpy(labels).to(device)
    y_val = torch.from_numpy(targets(data.val.labels3, cfg.num_classes)).to(device)
    y_stress = torch.from_numpy(targets(data.stress.labels3, cfg.num_classes)).to(device)

    state = TrainState(cfg, model, optimizer, schedule, 0, [], weights_of(model), 0, float("-inf"), 0,
                       resolve_precision(cfg, device))
    if resume:
        state.restore(resume)

    for epoch in range(state.epoch + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        rec = {EPOCH: epoch, **train_one_epoch(model, optimizer, loss_fn, data.train.images, x_train, y_train, cfg, epoch,
                                                  schedule, labels)}
        why = divergence(model, rec[TRAIN_LOSS])
        if not why:
            scored = evaluate(model, loss_fn, x_eval, y_val, cfg, y_stress)[0]
            why = exploded(scored[VAL_LOSS])
        if why:  # the run ends here; the best weights stay those of a finite epoch
            state.epoch, rec = epoch, diverged_record(epoch, rec, why, state.best_epoch, time.perf_counter() - t0)
            state.records.append(rec)
            if on_epoch:
                on_epoch(rec, state)
            break
        rec.update(scored)
        if rec[METRIC] > state.best_metric:
            state.best_metric, state.best_epoch, state.bad_epochs = rec[METRIC], epoch, 0
            state.best_state = weights_of(model)
        else:
            state.bad_epochs += 1
        stop = 0 < cfg.early_stopping_patience <= state.bad_epochs
        rec.update({BEST_METRIC: state.best_metric, BEST_EPOCH: state.best_epoch, EARLY_STOPPED: stop,
                    EPOCH_SECONDS: time.perf_counter() - t0,
                    STATUS: EARLY_STOPPED if stop else FINISHED if epoch == cfg.epochs else RUNNING})
        state.epoch = epoch
        state.records.append(rec)
        if on_epoch:
            on_epoch(rec, state)
        if stop:
            break
    return state
