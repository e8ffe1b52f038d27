"""Inference: the one forward pass, evaluation on validation and the stress validation, and a model
file as a predictor (one model or an ensemble, with optional test-time views).

Nothing here trains: `study.predict`, the report, the release and the ensemble selection import this
module, never the training loop. A model file (study/engine/checkpoint.py) holds one model or an ensemble;
`load_predictor` turns either into a `Predictor`, whose probabilities are the weighted mean of its
members' probabilities over its test-time views (study/data/augment.py TTA_VIEWS). A two-stage 3-class
file also holds a binary gate: normal against pneumonia is the gate's decision at its headline
threshold, bacterial against viral the 3-class members' among the films the gate calls pneumonia.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from study.config import TrainConfig
from study.data.augment import TTA_VIEWS, tta_views
from study.engine import checkpoint as ckpt_io
from study.engine.device import autocast, eval_batch, pick_device
from study.engine.divergence import non_finite_weights
from study.engine.metrics import classification_metrics
from study.errors import UserError
from study.model import probabilities
from study.names import (
    VAL_ACCURACY,
    VAL_AUC,
    VAL_BACC,
    VAL_F1,
    VAL_LOSS,
    VAL_PRECISION,
    VAL_RECALL,
    VAL_SHIFT_ACCURACY,
    VAL_SHIFT_AUC,
    VAL_SHIFT_BACC,
)

NO_TTA = ("identity",)


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


def predicted(logits: torch.Tensor, num_classes: int) -> torch.Tensor:
    return (logits.squeeze(1) > 0).long() if num_classes == 2 else logits.argmax(1)


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """uint8 [N, H, W] on the model's device -> float32 logits [N, 1 or 3], eval_batch(device) images at a time."""
    model.eval()
    b = eval_batch(x.device)
    chunks = [forward(model, inputs(x[s:s + b], cfg), cfg) for s in range(0, len(x), b)]
    return torch.cat(chunks) if chunks else torch.zeros((0, 1 if cfg.num_classes == 2 else cfg.num_classes))


def loss_value(loss_fn: nn.Module, logits: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    return loss_fn(logits.squeeze(1), y.float()) if num_classes == 2 else loss_fn(logits, y)


def scores(y: np.ndarray, probs: np.ndarray, num_classes: int, stress: tuple[np.ndarray, np.ndarray] | None = None,
           loss: float = float("nan")) -> dict:
    """The epoch record's validation metrics (VAL_* keys) at 0.5 (argmax) from probabilities; with `stress`
    (its targets and probabilities) VAL_SHIFT_ACCURACY / _AUC / _BACC too."""
    m = classification_metrics(y, probs, num_classes)
    out = {VAL_LOSS: loss, VAL_ACCURACY: m["accuracy"], VAL_AUC: m["auc"], VAL_PRECISION: m["precision"],
           VAL_RECALL: m["recall"], VAL_F1: m["f1"], VAL_BACC: m["bacc"]}
    if stress is not None:
        s = classification_metrics(stress[0], stress[1], num_classes)
        out.update({VAL_SHIFT_ACCURACY: s["accuracy"], VAL_SHIFT_AUC: s["auc"], VAL_SHIFT_BACC: s["bacc"]})
    return out


def evaluate(model: nn.Module, loss_fn: nn.Module | None, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig,
             y_stress: torch.Tensor | None = None) -> tuple[dict, np.ndarray, np.ndarray | None]:
    """-> (validation metrics, probabilities of the validation images, of the stress images or None). `x`: the
    validation images, followed, when `y_stress` is given, by the stress validation's (TrainData.eval_images):
    one pass of forward passes for both, and the metrics hold VAL_SHIFT_ACCURACY / _AUC / _BACC too, scored at
    0.5 (argmax)."""
    logits = predict_logits(model, x, cfg)
    n = len(y)
    loss = loss_value(loss_fn, logits[:n], y, cfg.num_classes).item() if loss_fn is not None else float("nan")
    probs = probabilities(logits, cfg.num_classes).cpu().numpy()
    shifted = (y_stress.cpu().numpy(), probs[n:]) if y_stress is not None else None
    return scores(y.cpu().numpy(), probs[:n], cfg.num_classes, shifted, loss), probs[:n], \
        (probs[n:] if y_stress is not None else None)


# ---- a model file as a predictor -----------------------------------------------------------------------
@dataclass
class Member:
    model: nn.Module
    cfg: TrainConfig
    weight: float
    source: str = ""          # where the member came from (a trial, a checkpoint path)


@dataclass
class Predictor:
    """One model or a weighted ensemble, over test-time views; optionally a binary gate (two-stage 3-class)."""
    members: list[Member]
    views: tuple[str, ...] = NO_TTA
    threshold: float | None = None        # binary: the file's headline threshold (its release), else None
    gate: "Predictor | None" = None       # 3-class two-stage: the binary model that decides normal vs pneumonia
    info: dict = field(default_factory=dict)  # the file's release entry, if any

    @property
    def cfg(self) -> TrainConfig:
        return self.members[0].cfg

    @property
    def num_classes(self) -> int:
        return self.cfg.num_classes

    @property
    def resolution(self) -> int:
        return self.cfg.resolution

    @property
    def forwards(self) -> int:
        """Forward passes per image: members x views (x the gate's): what prediction time scales with."""
        return len(self.members) * len(self.views) + (self.gate.forwards if self.gate else 0)

    def with_views(self, views: tuple[str, ...] | None) -> "Predictor":
        """The same models over other test-time views (None: keep the file's)."""
        return self if views is None else replace(self, views=tuple(views))

    @torch.no_grad()
    def member_probabilities(self, images: np.ndarray) -> np.ndarray:
        """uint8 [N, R, R] -> [members, N] (binary) or [members, N, 3]: each member's probabilities,
        averaged over the views."""
        device = next(self.members[0].model.parameters()).device
        n = len(images)
        x = torch.from_numpy(np.ascontiguousarray(tta_views(images, self.views))).to(device)
        out = []
        for m in self.members:
            p = probabilities(predict_logits(m.model, x, m.cfg), m.cfg.num_classes).cpu().numpy()
            out.append(p.reshape(len(self.views), n, *p.shape[1:]).mean(0))
        return np.stack(out)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """uint8 [N, R, R] -> [N] pneumonia probabilities or [N, 3] class probabilities (the weighted mean
        of the members'; two-stage: normal = 1 - the gate's pneumonia probability, and the rest split
        between bacteria and virus as the 3-class members split it)."""
        w = np.array([m.weight for m in self.members])
        p = np.tensordot(w / w.sum(), self.member_probabilities(images), axes=1)
        if self.gate is None:
            return p
        g = self.gate.probabilities(images)
        kind = p[:, 1:] / np.clip(p[:, 1:].sum(1, keepdims=True), 1e-12, None)
        return np.column_stack([1.0 - g, g[:, None] * kind])

    def labels(self, probs: np.ndarray) -> np.ndarray:
        """The decision: binary at the headline threshold (0.5 without one); 3-class by argmax; two-stage:
        normal when the gate's pneumonia probability is below its threshold, else bacteria or virus."""
        if probs.ndim == 1:
            return (probs >= (self.threshold or 0.5)).astype(int)
        if self.gate is None:
            return probs.argmax(1)
        t = self.gate.threshold or 0.5
        return np.where(1.0 - probs[:, 0] < t, 0, 1 + probs[:, 1:].argmax(1))


def check_views(views) -> tuple[str, ...]:
    """A tuple of declared test-time views with "identity" first; UserError naming an unknown one."""
    views = tuple(dict.fromkeys(views))
    unknown = [v for v in views if v not in TTA_VIEWS]
    if unknown or not views:
        raise UserError(f"test-time views {list(unknown) or '(none)'}: expected some of {', '.join(TTA_VIEWS)}")
    return ("identity",) + tuple(v for v in views if v != "identity")


def parse_views(text: str | None) -> tuple[str, ...] | None:
    """A --tta value: None (a model file's own views), "none", "all", or view names joined by commas."""
    if text is None:
        return None
    if text == "none":
        return NO_TTA
    return check_views(tuple(TTA_VIEWS) if text == "all" else tuple(v.strip() for v in text.split(",") if v.strip()))


def predictor_from(ckpt: dict, device: torch.device | None = None, where: str = "checkpoint") -> Predictor:
    """A loaded model file (study.engine.checkpoint.load: one model or an ensemble) as a Predictor on `device`;
    UserError if a member's weights are not finite (its training diverged) or do not fit its config."""
    device = device or pick_device()
    members = []
    for i, (m, w) in enumerate(ckpt_io.members(ckpt)):
        name = where if len(ckpt_io.members(ckpt)) == 1 else f"{where} (member {i + 1}: {m.get('source', '?')})"
        bad = non_finite_weights(m["model"])
        if bad:
            raise UserError(f"{name}: the model's weights are not finite (NaN or inf in {bad}): its training "
                            f"diverged; retrain it with a smaller lr")
        model, cfg = ckpt_io.model_from(m, device, where=name)
        members.append(Member(model, cfg, float(w), str(m.get("source") or where)))
    release = ckpt.get("release") or {}
    gate = predictor_from(ckpt["gate"], device, f"{where} (gate)") if ckpt.get("gate") else None
    return Predictor(members, check_views(ckpt.get("tta") or NO_TTA), release.get("threshold"), gate, release)


def load_predictor(path: str | Path, device: torch.device | None = None) -> Predictor:
    """The model file at `path` (a checkpoint.pt, its folder, or an ensemble file) as a Predictor."""
    return predictor_from(ckpt_io.load(path), device, str(path))
