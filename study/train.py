"""Train one configuration: `train_one_epoch`, `evaluate` and `fit` are plain functions (no Ray).

    python -m study.train [--data ROOT] [--set key=value ...] --out DIR

trains one config (no --data: the bundled sample), prints one line per epoch and writes
DIR/checkpoint.pt (study/checkpoint.py: the kept epoch's weights, the last epoch's model and
optimizer for resuming, the config and every epoch's metrics) and DIR/metrics.json (the same
per-epoch records, for reading).
The Ray trainable calls the same `fit`.

Images stay uint8 on the device; each step slices a batch and converts it to float there. With an
augment level, a GPU batch is augmented on the GPU (kornia, whole batch); on the CPU each image
goes through albumentations first. JPEGs are never decoded here. Every epoch is scored on the
validation split and on the stress validation (study.augment.STRESS); METRIC (balanced accuracy
on the stress validation) picks the kept epoch and drives early stopping.
"""
from __future__ import annotations

import functools
import json
import random
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, f1_score, precision_score, recall_score,
                             roc_auc_score)
from torch import nn
from torch.utils.data import WeightedRandomSampler

from study import checkpoint as ckpt_io
from study.augment import cpu_augment, gpu_augment
from study import checks
from study.config import (BEST_EPOCH, BEST_METRIC, DIVERGED, EARLY_STOPPED, EPOCH, EPOCH_SECONDS, FINISHED, METRIC,
                          RUNNING, SKIPPED_FILE, STATUS, TRAIN_ACCURACY, TRAIN_LOSS, VAL_ACCURACY, VAL_AUC, VAL_BACC,
                          VAL_F1, VAL_LOSS, VAL_PRECISION, VAL_RECALL, VAL_SHIFT_ACCURACY, VAL_SHIFT_AUC, VAL_SHIFT_BACC,
                          TrainConfig, UserError)
from study.data import TrainData, prepare, skipped_note, targets
from study.divergence import CHECK_STEPS, WHY, diverged_record, divergence
from study.model import build_model, probabilities

EVAL_BATCH = 128  # images per forward pass in evaluate(); memory only, no effect on results


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    o, wd = cfg.optimizer, cfg.weight_decay
    if o == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, weight_decay=wd)
    if o in ("sgd_momentum", "nesterov"):
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=o == "nesterov", weight_decay=wd)
    if o == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=wd)
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


@functools.cache  # asked at every training step (through _autocast); the hardware does not change
def native_bf16(device: torch.device) -> bool:
    """Does `device` compute bf16 natively? CUDA: Ampere or newer. CPU: AVX512-BF16 or AMX; without
    them oneDNN emulates bf16 and autocast is slower than fp32. Other devices: no."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":  # torch.cpu's probes are private: absent in a future torch reads as "no"
        probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, f, lambda: False)() for f in probes)
    return False


def resolve_precision(cfg: TrainConfig, device: torch.device) -> str:
    """"fp32" or "bf16". "auto" takes bf16 where it is native: on CPU it trains 1.9x faster with the same
    validation accuracy over 5 paired seeds (bf16 - fp32: +0.0015, 95 % CI -0.0011..+0.0041; BENCHMARKS.md)."""
    if cfg.precision != "auto":
        return cfg.precision
    return "bf16" if native_bf16(device) else "fp32"


def autocast(cfg: TrainConfig, device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=resolve_precision(cfg, device) == "bf16")


def _shared_tensor(a: np.ndarray) -> torch.Tensor:
    """A zero-copy view. Arrays from Ray's object store are read-only shared memory, one copy per
    node for all its trials; nothing here writes to them, so torch's warning does not apply."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(a)


_ON_DEVICE: dict = {}  # (device, host address, shape, dtype) -> (host array, its device copy): one data set's


def on_device(arrays: list[np.ndarray], device: torch.device) -> list[torch.Tensor]:
    """The image arrays as tensors on `device`; a zero-copy view on the CPU. An accelerator's copies stay
    for the process: with Ray's reuse_actors the next trial of an experiment finds its ~300 MB (200 px)
    already on the GPU instead of copying it again. Holding the host array keeps its address from
    being reused by other data, so the key cannot match stale copies; only these arrays' copies stay."""
    if device.type == "cpu":
        return [_shared_tensor(a) for a in arrays]
    keys = [(str(device), a.__array_interface__["data"][0], a.shape, a.dtype.str) for a in arrays]
    kept = {k: _ON_DEVICE[k] if k in _ON_DEVICE else (a, _shared_tensor(a).to(device)) for k, a in zip(keys, arrays)}
    _ON_DEVICE.clear()
    _ON_DEVICE.update(kept)
    return [kept[k][1] for k in keys]


def layout(x: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """float [B, 1, H, W] in the memory format the model trains in."""
    return x.contiguous(memory_format=torch.channels_last) if cfg.channels_last else x


def inputs(xb: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """uint8 [B, H, W] -> float [B, 1, H, W] in 0..1 (the seed's rescale=1/255), in the model's layout."""
    return layout(xb.unsqueeze(1).float().div_(255.0), cfg)


def forward(model: nn.Module, x: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """The one forward pass of training, evaluation, prediction and the benchmark: float inputs
    (`inputs`) -> float32 logits, under the run's precision."""
    with autocast(cfg, x.device):
        return model(x).float()


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


def loss_value(loss_fn: nn.Module, logits: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    return loss_fn(logits.squeeze(1), y.float()) if num_classes == 2 else loss_fn(logits, y)


def predicted(logits: torch.Tensor, num_classes: int) -> torch.Tensor:
    return (logits.squeeze(1) > 0).long() if num_classes == 2 else logits.argmax(1)


def augment_backend(device: torch.device) -> str:
    """kornia on the whole batch where the batch lives on a GPU; albumentations per image on the CPU."""
    return "kornia" if device.type == "cuda" else "albumentations"


def train_one_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: nn.Module,
                    images: np.ndarray, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, epoch: int,
                    schedule=None) -> dict:
    """One pass over (x, y) in an order fixed by (seed, epoch) (`epoch_order`). `images` is the CPU
    copy of `x`, read only by the CPU augmentation; `schedule` (make_schedule) steps after every
    optimizer step. Returns train loss and accuracy."""
    model.train()
    device = x.device
    seed = cfg.seed * 100_003 + epoch
    torch.manual_seed(seed)  # dropout and kornia draw from here: a resumed run repeats an epoch exactly
    order = epoch_order(cfg, y.cpu().numpy(), epoch)
    on_gpu = augment_backend(device) == "kornia"
    cpu_aug = None if on_gpu else cpu_augment(cfg.augment, cfg.augment_strength, cfg.resolution, seed)
    gpu_aug = gpu_augment(cfg.augment, cfg.augment_strength, cfg.resolution) if on_gpu else None
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    for step, start in enumerate(range(0, len(order), cfg.batch_size)):
        if step and step % CHECK_STEPS == 0 and not torch.isfinite(total_loss):
            break  # diverged: the loss stays non-finite; fit() ends the run
        idx = order[start:start + cfg.batch_size]
        if cpu_aug:
            xb = inputs(torch.from_numpy(cpu_aug(images[idx.numpy()])).to(device), cfg)
        else:
            xb = inputs(x[idx.to(device)], cfg)
            if gpu_aug:
                xb = layout(gpu_aug(xb), cfg)
        yb = y[idx.to(device)]
        loss, logits = train_step(model, optimizer, loss_fn, xb, yb, cfg)
        if schedule is not None:
            schedule.step()
        total_loss += loss * len(idx)
        correct += (predicted(logits, cfg.num_classes) == yb).sum()
    return {TRAIN_LOSS: total_loss.item() / len(order), TRAIN_ACCURACY: correct.item() / len(order)}


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, num_classes: int, threshold: float = 0.5) -> dict:
    """Accuracy, balanced accuracy, ROC AUC, precision, recall, F1 (scikit-learn). Binary: pneumonia is
    positive; 3-class: macro averages, one-vs-rest AUC. AUC is NaN when y_true holds one class only."""
    if num_classes == 2:
        pred, avg, auc_args = (probs >= threshold).astype(int), "binary", {}
    else:
        pred, avg, auc_args = probs.argmax(1), "macro", {"multi_class": "ovr", "labels": [0, 1, 2]}
    try:
        auc = float(roc_auc_score(y_true, probs, **auc_args))
    except ValueError:
        auc = float("nan")
    kw = {"average": avg, "zero_division": 0}
    with warnings.catch_warnings():  # one class in y_true: balanced accuracy is that class's recall, say so quietly
        warnings.simplefilter("ignore", UserWarning)
        bacc = float(balanced_accuracy_score(y_true, pred))
    return {"accuracy": float(accuracy_score(y_true, pred)), "bacc": bacc, "auc": auc,
            "precision": float(precision_score(y_true, pred, **kw)), "recall": float(recall_score(y_true, pred, **kw)),
            "f1": float(f1_score(y_true, pred, **kw))}


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """uint8 [N, H, W] on the model's device -> float32 logits [N, 1 or 3], EVAL_BATCH images at a time."""
    model.eval()
    chunks = [forward(model, inputs(x[s:s + EVAL_BATCH], cfg), cfg) for s in range(0, len(x), EVAL_BATCH)]
    return torch.cat(chunks) if chunks else torch.zeros((0, 1 if cfg.num_classes == 2 else cfg.num_classes))


def evaluate(model: nn.Module, loss_fn: nn.Module | None, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig,
             stress: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[dict, np.ndarray]:
    """-> (validation metrics, probabilities of x). With `stress` (the stress validation images and
    targets, TrainData.stress) also VAL_SHIFT_ACCURACY / _AUC / _BACC, scored at 0.5 (argmax)."""
    logits = predict_logits(model, x, cfg)
    loss = loss_value(loss_fn, logits, y, cfg.num_classes).item() if loss_fn is not None else float("nan")
    probs = probabilities(logits, cfg.num_classes).cpu().numpy()
    m = classification_metrics(y.cpu().numpy(), probs, cfg.num_classes)
    out = {VAL_LOSS: loss, VAL_ACCURACY: m["accuracy"], VAL_AUC: m["auc"], VAL_PRECISION: m["precision"],
           VAL_RECALL: m["recall"], VAL_F1: m["f1"], VAL_BACC: m["bacc"]}
    if stress is not None:
        xs, ys = stress
        ps = probabilities(predict_logits(model, xs, cfg), cfg.num_classes).cpu().numpy()
        s = classification_metrics(ys.cpu().numpy(), ps, cfg.num_classes)
        out.update({VAL_SHIFT_ACCURACY: s["accuracy"], VAL_SHIFT_AUC: s["auc"], VAL_SHIFT_BACC: s["bacc"]})
    return out, probs


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
        """The one checkpoint dict (study/checkpoint.py lists its keys)."""
        return {"config": self.cfg.to_dict(), "model": self.best_state, "last_model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.schedule.state_dict() if self.schedule is not None else None, "epoch": self.epoch, "best_epoch": self.best_epoch,
                "best_metric": self.best_metric, "bad_epochs": self.bad_epochs, "precision": self.precision,
                "records": self.records, "rng": torch.get_rng_state()}

    def save(self, out: str | Path) -> Path:
        """OUT/checkpoint.pt (study.checkpoint.save)."""
        return ckpt_io.save(out, self.checkpoint())


# ---- the whole run -------------------------------------------------------------------------------
def fit(cfg: TrainConfig, data: TrainData, on_epoch: Callable[[dict, TrainState], None] | None = None,
        resume: dict | None = None, device: torch.device | None = None) -> TrainState:
    """Train `cfg` on `data` for cfg.epochs (fewer with early stopping), keeping the weights of the
    best METRIC epoch. `on_epoch(record, state)` runs after every epoch (the Ray trainable
    reports and checkpoints there). `resume`: a load_resume() dict to continue from."""
    if data.data_key != cfg.data_key():
        raise UserError(f"config data fields {cfg.data_key()} differ from the prepared data's {data.data_key}")
    device = device or pick_device()
    seed_everything(cfg.seed)
    model = build_model(cfg).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(cfg, model.parameters())
    schedule = make_schedule(cfg, optimizer, len(data.train.labels3))
    loss_fn = make_loss(cfg, data.train.labels3, device)
    x_train, x_val, x_stress = on_device([data.train.images, data.val.images, data.stress.images], device)
    y_train = torch.from_numpy(targets(data.train.labels3, cfg.num_classes)).to(device)
    y_val = torch.from_numpy(targets(data.val.labels3, cfg.num_classes)).to(device)
    stress = (x_stress, torch.from_numpy(targets(data.stress.labels3, cfg.num_classes)).to(device))

    state = TrainState(cfg, model, optimizer, schedule, 0, [], {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                       0, float("-inf"), 0, resolve_precision(cfg, device))
    if resume:
        model.load_state_dict(resume["last_model"])
        optimizer.load_state_dict(resume["optimizer"])
        if schedule is not None:
            schedule.load_state_dict(resume["scheduler"])
        state.epoch, state.records, state.best_state = resume["epoch"], resume["records"], resume["model"]
        state.best_epoch, state.best_metric, state.bad_epochs = resume["best_epoch"], resume["best_metric"], resume["bad_epochs"]
        if "rng" in resume:
            torch.set_rng_state(resume["rng"])

    for epoch in range(state.epoch + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        rec = {EPOCH: epoch, **train_one_epoch(model, optimizer, loss_fn, data.train.images, x_train, y_train, cfg, epoch,
                                                  schedule)}
        why = divergence(model, rec[TRAIN_LOSS])
        if why:  # the run ends here; the best weights stay those of a finite epoch
            state.epoch, rec = epoch, diverged_record(epoch, rec, why, state.best_epoch, time.perf_counter() - t0)
            state.records.append(rec)
            if on_epoch:
                on_epoch(rec, state)
            break
        rec.update(evaluate(model, loss_fn, x_val, y_val, cfg, stress)[0])
        if rec[METRIC] > state.best_metric:
            state.best_metric, state.best_epoch, state.bad_epochs = rec[METRIC], epoch, 0
            state.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
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


def format_record(r: dict) -> str:
    if r.get(STATUS) == DIVERGED:
        return f"epoch {r[EPOCH]:3d}  diverged: {r[WHY]}  {r[EPOCH_SECONDS]:.1f}s"
    return (f"epoch {r[EPOCH]:3d}  train loss {r[TRAIN_LOSS]:.4f} acc {r[TRAIN_ACCURACY]:.4f}  "
            f"val loss {r[VAL_LOSS]:.4f} acc {r[VAL_ACCURACY]:.4f} auc {r[VAL_AUC]:.4f}  "
            f"stress bacc {r[VAL_SHIFT_BACC]:.4f} auc {r[VAL_SHIFT_AUC]:.4f}  {r[EPOCH_SECONDS]:.1f}s"
            + ("  (early stop)" if r[EARLY_STOPPED] else ""))


def main(argv: list[str] | None = None) -> int:
    ap = checks.Parser(prog="python -m study.train", description="Train one configuration.")
    ap.add_argument("--data", default=None, help="data set folder (default: the bundled sample)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a TrainConfig field, e.g. --set lr=0.01 --set filters=[16,32,64,64]")
    ap.add_argument("--out", required=True, help="output folder for checkpoint.pt and metrics.json")
    ap.add_argument("--strict", action="store_true", help="an unreadable or misnamed image is an error, not a skip")
    args = ap.parse_args(argv)
    try:
        cfg = TrainConfig.from_strings(args.set)
        out = checks.writable_folder("--out", args.out)
        data = prepare(args.data, cfg, strict=args.strict)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    device = pick_device()
    print(data.description, f"| device {device}, {resolve_precision(cfg, device)}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / SKIPPED_FILE).write_text(json.dumps(data.skipped, indent=1))
    if data.skipped:
        print(skipped_note(len(data.skipped), out / SKIPPED_FILE), flush=True)

    def on_epoch(rec: dict, state: TrainState) -> None:
        print(format_record(rec), flush=True)
        if rec[STATUS] != DIVERGED:  # keep the records, never the broken weights
            state.save(out)
        (out / "metrics.json").write_text(json.dumps(state.records, indent=1))

    state = fit(cfg, data, on_epoch, device=device)
    if (last := state.records[-1])[STATUS] == DIVERGED:
        ckpt_io.path_of(out).unlink(missing_ok=True)  # no model to predict with
        print(f"diverged at epoch {last[EPOCH]} ({last[WHY]}) with lr={cfg.lr:g}, {cfg.optimizer}: "
              f"stopped, no model kept; {out}/metrics.json has the epochs. Try a smaller lr.", file=sys.stderr)
        return 1
    print(f"best {METRIC} {state.best_metric:.4f} at epoch {state.best_epoch}; wrote {out}/checkpoint.pt, metrics.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
