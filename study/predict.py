"""Predict chest X-ray images with a trained model.

    python -m study.predict --model DIR IMAGE... [--json]

prints one line per readable image, in the order given: its path, a tab, and the pneumonia
probability (`pneumonia=0.9731`); for a 3-class model the three class probabilities
(`normal=0.0102 bacteria=0.9011 virus=0.0887`, summing to 1). With --json, one JSON object per
line instead: {"path": ..., "pneumonia": p} or {"path": ..., "normal": p0, "bacteria": p1, "virus": p2}.

DIR is a folder written by `python -m study.train --out DIR` (its model.pt: the best-validation
epoch). Images go through the training pipeline exactly: the data layer's decoder
(study.cache.decode: 8-bit grayscale, square resize to the model's resolution), uint8 -> /255,
one channel, the model's precision and memory format. Accepted files are those the data layer
accepts: .jpeg, .jpg or .png names that decode.

A file that cannot be predicted (missing, empty, not an image, truncated...) gets one line on
stderr, `predict: PATH: reason (skipped)`, and the others are still predicted. A model whose
weights are not finite (its run diverged) is refused; every --json line is valid JSON (a
non-finite probability is never printed: that file is skipped with its reason).
Exit status: 0 all predicted, 1 some file(s) skipped, 2 a usage mistake (e.g. DIR is not a
model folder), with a one-line `error: ...` on stderr.
"""
from __future__ import annotations

import argparse
import json
import pickle
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from study.cache import IMAGE_SUFFIXES, BadImage, decode
from study.config import TrainConfig, UserError
from study.data import CLASSES
from study.divergence import non_finite_weights
from study.model import probabilities
from study.train import EVAL_BATCH, load_model, pick_device, predict_logits


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one `error: ...` line (exit 2), like every other mistake."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"error: {message} (usage: {self.format_usage().strip()[len('usage: '):]})\n")


def load(model_dir: str | Path, device: torch.device | None = None) -> tuple[nn.Module, TrainConfig]:
    """The model of a `study.train --out` folder, laid out as in training; UserError if unusable."""
    device = device or pick_device()
    try:
        model, cfg = load_model(model_dir, device)
    except UserError:
        raise
    except (OSError, RuntimeError, ValueError, KeyError, EOFError, pickle.UnpicklingError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{model_dir}: cannot load the model ({type(e).__name__}: {reason})") from None
    bad = non_finite_weights(model.state_dict())
    if bad:
        raise UserError(f"{model_dir}: the model's weights are not finite (NaN or inf in {bad}): its training "
                        f"diverged; retrain it with a smaller lr")
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)  # as fit() trains and evaluates it
    return model, cfg


def read_image(path: str | Path, resolution: int) -> np.ndarray:
    """uint8 [R, R], decoded exactly as the training cache decodes; BadImage with the reason."""
    p = Path(path)
    if not p.exists():
        raise BadImage("no such file")
    if p.is_dir():
        raise BadImage("is a folder, not an image file")
    if p.suffix.lower() not in IMAGE_SUFFIXES:
        raise BadImage(f"not an image file name (expected {', '.join(IMAGE_SUFFIXES)})")
    try:
        return decode(p, resolution)[0]
    except BadImage:
        raise
    except Exception as e:  # a decoder failure decode() does not classify: still one file, still skipped
        raise BadImage(f"unreadable image: {type(e).__name__}: {e}") from None


@torch.no_grad()
def predict_arrays(model: nn.Module, cfg: TrainConfig, images: np.ndarray) -> np.ndarray:
    """uint8 [N, R, R] -> [N] pneumonia probabilities (binary) or [N, 3] class probabilities,
    computed as study.train.evaluate computes them."""
    device = next(model.parameters()).device
    logits = predict_logits(model, torch.from_numpy(np.ascontiguousarray(images)).to(device), cfg)
    return probabilities(logits, cfg.num_classes).cpu().numpy()


def as_record(path: str, prob) -> dict:
    if np.ndim(prob) == 0:
        return {"path": path, "pneumonia": float(prob)}
    return {"path": path, **{c: float(p) for c, p in zip(CLASSES, prob)}}


def format_record(rec: dict) -> str:
    probs = " ".join(f"{k}={v:.4f}" for k, v in rec.items() if k != "path")
    return f"{rec['path']}\t{probs}"


def main(argv: list[str] | None = None) -> int:
    ap = _Parser(prog="python -m study.predict", description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, metavar="DIR", help="folder written by python -m study.train --out DIR")
    ap.add_argument("images", nargs="+", metavar="IMAGE", help="image files (.jpeg, .jpg, .png)")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    args = ap.parse_args(argv)
    try:
        model, cfg = load(args.model)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    failed = 0
    # Chunks of EVAL_BATCH keep memory flat for long file lists; output order is input order.
    for start in range(0, len(args.images), EVAL_BATCH):
        paths, arrays = [], []
        for path in args.images[start:start + EVAL_BATCH]:
            try:
                arrays.append(read_image(path, cfg.resolution))
                paths.append(path)
            except BadImage as e:
                failed += 1
                print(f"predict: {path}: {e} (skipped)", file=sys.stderr, flush=True)
        if not arrays:
            continue
        probs = predict_arrays(model, cfg, np.stack(arrays))
        for path, prob in zip(paths, probs):
            rec = as_record(path, prob)
            if not np.isfinite(np.asarray(prob)).all():
                failed += 1
                print(f"predict: {path}: the model gives a non-finite probability (skipped)", file=sys.stderr, flush=True)
                continue
            print(json.dumps(rec, allow_nan=False) if args.json else format_record(rec), flush=True)
    if failed:
        print(f"predict: {failed} of {len(args.images)} file(s) skipped", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
