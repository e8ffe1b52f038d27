"""Train one configuration: `train_one_epoch`, `evaluate` and `fit` are plain functions (no Ray).

    python -m study.train [--data ROOT] [--set key=value ...] --out DIR

trains one config (no --data: the bundled sample), prints one line per epoch and writes
DIR/metrics.json (one record per epoch), DIR/config.json and the checkpoint (DIR/model.pt: the
best-validation-epoch weights; DIR/last.pt: last epoch's model and optimizer, for resuming).
The Ray trainable calls the same `fit`.

Images stay uint8 on the device; each step slices a batch, converts it to float there (and, with
augment="light", runs albumentations on that batch on the CPU first). JPEGs are never decoded here.
"""
from __future__ import annotations

import argparse
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
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
from torch import nn

from study.augment import make_augment
from study.config import (BEST_EPOCH, BEST_METRIC, EARLY_STOPPED, EPOCH, EPOCH_SECONDS, METRIC, TRAIN_ACCURACY, TRAIN_LOSS, VAL_ACCURACY,
                          VAL_AUC, VAL_F1, VAL_LOSS, VAL_PRECISION, VAL_RECALL, TrainConfig, UserError)
from study.data import TrainData, prepare, targets
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


def make_loss(cfg: TrainConfig, labels3: np.ndarray, device: torch.device) -> nn.Module:
    t = targets(labels3, cfg.num_classes)
    counts = np.bincount(t, minlength=cfg.num_classes).astype(np.float64)
    if cfg.num_classes == 2:
        pos_weight = torch.tensor([counts[0] / max(counts[1], 1)], device=device) if cfg.class_weight == "balanced" else None
        return nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    weight = torch.tensor(counts.sum() / (3 * np.maximum(counts, 1)), dtype=torch.float32, device=device) \
        if cfg.class_weight == "balanced" else None
    return nn.CrossEntropyLoss(weight=weight)


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


def _autocast(cfg: TrainConfig, device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=resolve_precision(cfg, device) == "bf16")


def _shared_tensor(a: np.ndarray) -> torch.Tensor:
    """A zero-copy view. Arrays from Ray's object store are read-only shared memory, one copy per
    node for all its trials; nothing here writes to them, so torch's warning does not apply."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(a)


def _inputs(xb: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """uint8 [B, H, W] -> float [B, 1, H, W] in 0..1 (the seed's rescale=1/255)."""
    x = xb.unsqueeze(1).float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last) if cfg.channels_last else x


def _loss(loss_fn: nn.Module, logits: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    logits = logits.float()
    return loss_fn(logits.squeeze(1), y.float()) if num_classes == 2 else loss_fn(logits, y)


def _predict(logits: torch.Tensor, num_classes: int) -> torch.Tensor:
    return (logits.squeeze(1) > 0).long() if num_classes == 2 else logits.argmax(1)


def train_one_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: nn.Module,
                    images: np.ndarray, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, epoch: int) -> dict:
    """One pass over (x, y) in a shuffled order fixed by (seed, epoch). `images` is the CPU copy
    of `x`, used only when augmenting. Returns train loss and accuracy."""
    model.train()
    device = x.device
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch))
    augment = make_augment(cfg.augment, cfg.seed * 100_003 + epoch)
    total_loss, correct = 0.0, 0
    for start in range(0, len(order), cfg.batch_size):
        idx = order[start:start + cfg.batch_size]
        xb = torch.from_numpy(augment(images[idx.numpy()])).to(device) if augment else x[idx.to(device)]
        yb = y[idx.to(device)]
        with _autocast(cfg, device):
            logits = model(_inputs(xb, cfg))
        loss = _loss(loss_fn, logits, yb, cfg.num_classes)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(idx)
        correct += int((_predict(logits.detach(), cfg.num_classes) == yb).sum())
    return {TRAIN_LOSS: total_loss / len(order), TRAIN_ACCURACY: correct / len(order)}


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, num_classes: int, threshold: float = 0.5) -> dict:
    """Accuracy, ROC AUC, precision, recall, F1 (scikit-learn). Binary: pneumonia is positive;
    3-class: macro averages, one-vs-rest AUC. AUC is NaN when y_true holds one class only."""
    if num_classes == 2:
        pred, avg, auc_args = (probs >= threshold).astype(int), "binary", {}
    else:
        pred, avg, auc_args = probs.argmax(1), "macro", {"multi_class": "ovr", "labels": [0, 1, 2]}
    try:
        auc = float(roc_auc_score(y_true, probs, **auc_args))
    except ValueError:
        auc = float("nan")
    kw = {"average": avg, "zero_division": 0}
    return {"accuracy": float(accuracy_score(y_true, pred)), "auc": auc,
            "precision": float(precision_score(y_true, pred, **kw)), "recall": float(recall_score(y_true, pred, **kw)),
            "f1": float(f1_score(y_true, pred, **kw))}


@torch.no_grad()
def evaluate(model: nn.Module, loss_fn: nn.Module | None, x: torch.Tensor, y: torch.Tensor,
             cfg: TrainConfig) -> tuple[dict, np.ndarray]:
    """-> ({val_loss, val_accuracy, val_auc, val_precision, val_recall, val_f1}, probabilities)."""
    model.eval()
    chunks = []
    for start in range(0, len(x), EVAL_BATCH):
        with _autocast(cfg, x.device):
            chunks.append(model(_inputs(x[start:start + EVAL_BATCH], cfg)).float())
    logits = torch.cat(chunks)
    loss = _loss(loss_fn, logits, y, cfg.num_classes).item() if loss_fn is not None else float("nan")
    probs = probabilities(logits, cfg.num_classes).cpu().numpy()
    m = classification_metrics(y.cpu().numpy(), probs, cfg.num_classes)
    return {VAL_LOSS: loss, VAL_ACCURACY: m["accuracy"], VAL_AUC: m["auc"], VAL_PRECISION: m["precision"],
            VAL_RECALL: m["recall"], VAL_F1: m["f1"]}, probs


# ---- checkpoints -------------------------------------------------------------------------------
@dataclass
class TrainState:
    """Everything needed to report an epoch and to resume after it."""
    cfg: TrainConfig
    model: nn.Module
    optimizer: torch.optim.Optimizer
    epoch: int
    records: list[dict]
    best_state: dict
    best_epoch: int
    best_metric: float
    bad_epochs: int
    precision: str  # what cfg.precision resolved to on this device (state.json; "auto" is not a result)

    def save(self, out: str | Path) -> None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        torch.save(self.best_state, out / "model.pt")
        torch.save({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}, out / "last.pt")
        (out / "config.json").write_text(json.dumps(self.cfg.to_dict(), indent=1))
        (out / "metrics.json").write_text(json.dumps(self.records, indent=1))
        (out / "state.json").write_text(json.dumps({"epoch": self.epoch, "best_epoch": self.best_epoch,
                                                    "best_metric": self.best_metric, "bad_epochs": self.bad_epochs,
                                                    "precision": self.precision}))


def load_resume(ckpt_dir: str | Path) -> dict:
    """A checkpoint written by TrainState.save, as plain data for fit(resume=...)."""
    d = Path(ckpt_dir)
    last = torch.load(d / "last.pt", map_location="cpu", weights_only=True)
    return {**json.loads((d / "state.json").read_text()), "records": json.loads((d / "metrics.json").read_text()),
            "best_state": torch.load(d / "model.pt", map_location="cpu", weights_only=True), **last}


def load_model(model_dir: str | Path, device: torch.device | None = None) -> tuple[nn.Module, TrainConfig]:
    """The best-epoch model and its config from a checkpoint folder (weights_only: no pickled code)."""
    d = Path(model_dir)
    if not (d / "model.pt").is_file() or not (d / "config.json").is_file():
        raise UserError(f"{d}: not a model folder; expected model.pt and config.json (from python -m study.train --out)")
    cfg = TrainConfig.from_overrides(json.loads((d / "config.json").read_text()))
    model = build_model(cfg)
    model.load_state_dict(torch.load(d / "model.pt", map_location="cpu", weights_only=True))
    return model.to(device or torch.device("cpu")).eval(), cfg


# ---- the whole run -------------------------------------------------------------------------------
def fit(cfg: TrainConfig, data: TrainData, on_epoch: Callable[[dict, TrainState], None] | None = None,
        resume: dict | None = None, device: torch.device | None = None) -> TrainState:
    """Train `cfg` on `data` for cfg.epochs (fewer with early stopping), keeping the weights of the
    best validation epoch. `on_epoch(record, state)` runs after every epoch (the Ray trainable
    reports and checkpoints there). `resume`: a load_resume() dict to continue from."""
    if data.data_key != cfg.data_key():
        raise UserError(f"config data fields {cfg.data_key()} differ from the prepared data's {data.data_key}")
    device = device or pick_device()
    seed_everything(cfg.seed)
    model = build_model(cfg).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(cfg, model.parameters())
    loss_fn = make_loss(cfg, data.train.labels3, device)
    x_train = _shared_tensor(data.train.images).to(device)
    y_train = torch.from_numpy(targets(data.train.labels3, cfg.num_classes)).to(device)
    x_val = _shared_tensor(data.val.images).to(device)
    y_val = torch.from_numpy(targets(data.val.labels3, cfg.num_classes)).to(device)

    state = TrainState(cfg, model, optimizer, 0, [], {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                       0, float("-inf"), 0, resolve_precision(cfg, device))
    if resume:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        state.epoch, state.records, state.best_state = resume["epoch"], resume["records"], resume["best_state"]
        state.best_epoch, state.best_metric, state.bad_epochs = resume["best_epoch"], resume["best_metric"], resume["bad_epochs"]

    for epoch in range(state.epoch + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        rec = {EPOCH: epoch, **train_one_epoch(model, optimizer, loss_fn, data.train.images, x_train, y_train, cfg, epoch)}
        rec.update(evaluate(model, loss_fn, x_val, y_val, cfg)[0])
        if rec[METRIC] > state.best_metric:
            state.best_metric, state.best_epoch, state.bad_epochs = rec[METRIC], epoch, 0
            state.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            state.bad_epochs += 1
        stop = 0 < cfg.early_stopping_patience <= state.bad_epochs
        rec.update({BEST_METRIC: state.best_metric, BEST_EPOCH: state.best_epoch, EARLY_STOPPED: stop,
                    EPOCH_SECONDS: time.perf_counter() - t0})
        state.epoch = epoch
        state.records.append(rec)
        if on_epoch:
            on_epoch(rec, state)
        if stop:
            break
    return state


def format_record(r: dict) -> str:
    return (f"epoch {r[EPOCH]:3d}  train loss {r[TRAIN_LOSS]:.4f} acc {r[TRAIN_ACCURACY]:.4f}  "
            f"val loss {r[VAL_LOSS]:.4f} acc {r[VAL_ACCURACY]:.4f} auc {r[VAL_AUC]:.4f}  {r[EPOCH_SECONDS]:.1f}s"
            + ("  (early stop)" if r[EARLY_STOPPED] else ""))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m study.train", description="Train one configuration.")
    ap.add_argument("--data", default=None, help="data set folder (default: the bundled sample)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a TrainConfig field, e.g. --set lr=0.01 --set filters=[16,32,64,64]")
    ap.add_argument("--out", required=True, help="output folder for metrics.json, config.json, model.pt")
    args = ap.parse_args(argv)
    try:
        cfg = TrainConfig.from_strings(args.set)
        data = prepare(args.data, cfg)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    device = pick_device()
    print(data.description, f"| device {device}, {resolve_precision(cfg, device)}", flush=True)
    out = Path(args.out)

    def on_epoch(rec: dict, state: TrainState) -> None:
        print(format_record(rec), flush=True)
        state.save(out)

    state = fit(cfg, data, on_epoch, device=device)
    print(f"best {METRIC} {state.best_metric:.4f} at epoch {state.best_epoch}; wrote {out}/metrics.json, model.pt, config.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
