"""Screen chest X-ray images with a trained model: the shipped one, or your own.

    python -m study.predict IMAGE...                      # the shipped binary model (models/binary.pt)
    python -m study.predict --three-class IMAGE...        # the shipped 3-class model
    python -m study.predict --model PATH IMAGE... [--json] [--threshold T]

prints, after one line saying the model is for research and teaching and not for clinical use,
one line per readable image in the order given: its path, a tab, the pneumonia probability, the
decision threshold and the label (`pneumonia=0.9731 threshold=0.45 label=pneumonia`); for a
3-class model the three class probabilities and the argmax (`normal=0.0102 bacteria=0.9011
virus=0.0887 label=bacteria`). With --json, only JSON, one object per line:
{"path", "pneumonia", "threshold", "label"} or {"path", "normal", "bacteria", "virus", "label"}.

The threshold is the model's headline threshold (a shipped model carries the one its study chose
on validation: Youden's J on the stress validation; models/MODEL_CARD.md), 0.5 for a model that
carries none, or --threshold. PATH is a checkpoint (study/checkpoint.py): a checkpoint.pt, the
folder `python -m study.train --out DIR` wrote, or a trial's checkpoint from a study (trials.csv's
`checkpoint` column). Images go through the training pipeline exactly: the data layer's decoder
(study.cache.decode: 8-bit grayscale, square resize to the model's resolution), uint8 -> /255,
one channel, the model's precision and memory format. Accepted files: .jpeg, .jpg or .png names
that decode.

A file that cannot be predicted (missing, empty, not an image, truncated...) gets one line on
stderr, `predict: PATH: reason (skipped)`, and the others are still predicted. A model whose
weights are not finite (its run diverged) is refused; every --json line is valid JSON (a
non-finite probability is never printed: that file is skipped with its reason).
Exit status: 0 all predicted, 1 some file(s) skipped, 2 a usage mistake (e.g. PATH is not a
checkpoint), with a one-line `error: ...` on stderr.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from study import checkpoint as ckpt_io
from study import checks
from study.cache import IMAGE_SUFFIXES, BadImage, decode
from study.config import TrainConfig, UserError
from study.data import CLASSES
from study.divergence import non_finite_weights
from study.model import probabilities
from study.checkpoint import model_from
from study.train import EVAL_BATCH, pick_device, predict_logits

MODELS = Path(__file__).resolve().parents[1] / "models"  # the shipped models (models/MODEL_CARD.md)
SHIPPED = {2: MODELS / "binary.pt", 3: MODELS / "three_class.pt"}
NOT_CLINICAL = ("# research and teaching model, not for clinical use: not a medical device "
                "(models/MODEL_CARD.md)")


def load(path: str | Path, device: torch.device | None = None) -> tuple[nn.Module, TrainConfig, float | None]:
    """(model in eval mode, its config, its headline threshold or None) from a checkpoint; UserError if
    unusable, or if its weights are not finite (its training diverged)."""
    ckpt = ckpt_io.load(path)
    bad = non_finite_weights(ckpt["model"])
    if bad:
        raise UserError(f"{path}: the model's weights are not finite (NaN or inf in {bad}): its training "
                        f"diverged; retrain it with a smaller lr")
    model, cfg = model_from(ckpt, device or pick_device(), where=str(path))
    return model, cfg, (ckpt.get("release") or {}).get("threshold")


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


def as_record(path: str, prob, threshold: float = 0.5) -> dict:
    if np.ndim(prob) == 0:
        return {"path": path, "pneumonia": float(prob), "threshold": threshold,
                "label": "pneumonia" if prob >= threshold else "normal"}
    return {"path": path, **{c: float(p) for c, p in zip(CLASSES, prob)}, "label": CLASSES[int(np.argmax(prob))]}


def format_record(rec: dict) -> str:
    fields = " ".join(f"{k}={v:.4f}" if isinstance(v, float) and k != "threshold" else f"{k}={v}"
                      for k, v in rec.items() if k != "path")
    return f"{rec['path']}\t{fields}"


def main(argv: list[str] | None = None) -> int:
    ap = checks.Parser(prog="python -m study.predict", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, metavar="PATH",
                    help="a checkpoint (checkpoint.pt or its folder); default: the shipped binary model")
    ap.add_argument("--three-class", action="store_true", help="the shipped 3-class model (normal/bacteria/virus)")
    ap.add_argument("--threshold", type=float, default=None, help="binary decision threshold (default: the model's)")
    ap.add_argument("images", nargs="+", metavar="IMAGE", help="image files (.jpeg, .jpg, .png)")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    args = ap.parse_args(argv)
    if args.model and args.three_class:
        ap.error("--three-class picks a shipped model; drop it when --model is given")
    if args.threshold is not None and not 0.0 < args.threshold < 1.0:
        ap.error(f"--threshold {args.threshold}: expected 0 < T < 1")
    path = args.model or SHIPPED[3 if args.three_class else 2]
    if not args.model and not path.is_file():
        print(f"error: {path}: the shipped model is not here (it lives in the repository's models/ folder; install "
              f"from a checkout with pip install -e ., or pass --model CHECKPOINT)", file=sys.stderr)
        return 2
    try:
        model, cfg, threshold = load(path)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    threshold = args.threshold if args.threshold is not None else (threshold or 0.5)
    if not args.json:
        print(NOT_CLINICAL, flush=True)

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
            rec = as_record(path, prob, threshold)
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
