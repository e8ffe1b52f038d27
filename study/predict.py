"""Screen chest X-ray images with a trained model: the shipped one, or your own.

    python -m study.predict IMAGE...                      # the shipped binary model (models/binary.pt)
    python -m study.predict --three-class IMAGE...        # the shipped 3-class model
    python -m study.predict --model PATH IMAGE... [--json] [--threshold T] [--tta VIEWS]

prints, after one line saying the model is for research and teaching and not for clinical use,
one line per readable image in the order given: its path, a tab, the pneumonia probability, the
decision threshold and the label (`pneumonia=0.9731 threshold=0.45 label=pneumonia`); for a
3-class model the three class probabilities and its decision (`normal=0.0102 bacteria=0.9011
virus=0.0887 label=bacteria`: the argmax, or for a two-stage file normal when its binary gate's
pneumonia probability is below the gate's threshold). With --json, only JSON, one object per line:
{"path", "pneumonia", "threshold", "label"} or {"path", "normal", "bacteria", "virus", "label"}.

The threshold is the model's headline threshold (a shipped model carries the one its study chose
on validation: Youden's J on the stress validation; models/MODEL_CARD.md), 0.5 for a model that
carries none, or --threshold (binary models only). PATH is a model file (study/engine/checkpoint.py):
a checkpoint.pt, the folder `python -m study.train --out DIR` wrote, a trial's checkpoint from a
study (trials.csv's `checkpoint` column), or an ensemble file (the report's ensemble-*.pt, a
release); an ensemble predicts the weighted mean of its members' probabilities. --tta averages
over test-time views (study/data/augment.py TTA_VIEWS); by default a file's own (a release keeps them
only where the stress validation said they help). Images go through the training pipeline
exactly: the data layer's decoder (study.data.cache.decode: 8-bit grayscale, square resize to the
model's resolution), uint8 -> /255, one channel, the model's precision and memory format.
Accepted files: .jpeg, .jpg or .png names that decode.

A file that cannot be predicted (missing, empty, not an image, truncated...) gets one line on
stderr, `predict: PATH: reason (skipped)`, and the others are still predicted. A model whose
weights are not finite (its run diverged) is refused; every --json line is valid JSON (a
non-finite probability is never printed: that file is skipped with its reason).
Exit status: 0 all predicted, 1 some file(s) skipped, 2 a usage mistake (e.g. PATH is not a
checkpoint, a flag that does not apply to the model), with a one-line `error: ...` on stderr.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from study import cli
from study.data.augment import TTA_VIEWS
from study.data.cache import IMAGE_SUFFIXES, BadImage, decode
from study.data.layout import CLASSES
from study.engine.infer import Predictor, load_predictor, parse_views
from study.errors import OK, PARTIAL, UserError

MODELS = Path(__file__).resolve().parents[1] / "models"  # the shipped models (models/MODEL_CARD.md)
SHIPPED = {2: MODELS / "binary.pt", 3: MODELS / "three_class.pt"}
NOT_CLINICAL = ("# research and teaching model, not for clinical use: not a medical device "
                "(models/MODEL_CARD.md)")

EVAL_BATCH = 128  # files decoded at a time (the forward passes batch by study.engine.device's eval_batch)


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


def as_record(path: str, prob, label: int, threshold: float | None) -> dict:
    """One output line's fields: binary {path, pneumonia, threshold, label}, 3-class {path, normal, bacteria,
    virus, label}; `label` is the predictor's decision (Predictor.labels)."""
    if np.ndim(prob) == 0:
        return {"path": path, "pneumonia": float(prob), "threshold": threshold,
                "label": "pneumonia" if label else "normal"}
    return {"path": path, **{c: float(p) for c, p in zip(CLASSES, prob)}, "label": CLASSES[int(label)]}


def format_record(rec: dict) -> str:
    fields = " ".join(f"{k}={v:.4f}" if isinstance(v, float) and k != "threshold" else f"{k}={v}"
                      for k, v in rec.items() if k != "path")
    return f"{rec['path']}\t{fields}"


def predict_files(predictor: Predictor, paths: list[str], as_json: bool) -> int:
    """Print one line per readable image, in order; -> how many were skipped (with a line on stderr each)."""
    failed = 0
    # Chunks of EVAL_BATCH keep memory flat for long file lists; output order is input order.
    for start in range(0, len(paths), EVAL_BATCH):
        kept, arrays = [], []
        for path in paths[start:start + EVAL_BATCH]:
            try:
                arrays.append(read_image(path, predictor.resolution))
                kept.append(path)
            except BadImage as e:
                failed += 1
                print(f"predict: {path}: {e} (skipped)", file=sys.stderr, flush=True)
        if not arrays:
            continue
        probs = predictor.probabilities(np.stack(arrays))
        labels = predictor.labels(probs)
        for path, prob, label in zip(kept, probs, labels):
            if not np.isfinite(np.asarray(prob)).all():
                failed += 1
                print(f"predict: {path}: the model gives a non-finite probability (skipped)", file=sys.stderr, flush=True)
                continue
            rec = as_record(path, prob, label, predictor.threshold or 0.5)
            print(json.dumps(rec, allow_nan=False) if as_json else format_record(rec), flush=True)
    return failed


@cli.command
def main(argv: list[str] | None = None) -> int:
    ap = cli.Parser(prog="python -m study.predict", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, metavar="PATH",
                    help="a model file: a checkpoint (checkpoint.pt or its folder) or an ensemble; default: the shipped "
                    "binary model")
    ap.add_argument("--three-class", action="store_true", help="the shipped 3-class model (normal/bacteria/virus)")
    ap.add_argument("--threshold", type=float, default=None, help="binary decision threshold (default: the model's)")
    ap.add_argument("--tta", default=None, metavar="VIEWS", help="test-time views: none, all, or names from "
                    f"{', '.join(TTA_VIEWS)} joined by commas (default: the model file's own)")
    ap.add_argument("images", nargs="+", metavar="IMAGE", help="image files (.jpeg, .jpg, .png)")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    args = ap.parse_args(argv)
    if args.model and args.three_class:
        ap.error("--three-class picks a shipped model; drop it when --model is given")
    if args.threshold is not None and not 0.0 < args.threshold < 1.0:
        ap.error(f"--threshold {args.threshold}: expected 0 < T < 1")
    if args.threshold is not None and args.three_class:
        ap.error("--threshold is the binary model's decision threshold; the 3-class model decides by its own rule "
                 "(models/MODEL_CARD.md): drop --threshold or --three-class")
    path = args.model or SHIPPED[3 if args.three_class else 2]
    if not args.model and not path.is_file():
        raise UserError(f"{path}: the shipped model is not here (it lives in the repository's models/ folder; install "
                        f"from a checkout with pip install -e ., or pass --model CHECKPOINT)")
    views = parse_views(args.tta)
    predictor = load_predictor(path)
    if args.threshold is not None and predictor.num_classes != 2:
        ap.error(f"--threshold applies to a binary model; {path} is a 3-class model: drop --threshold")
    predictor = predictor.with_views(views)
    if args.threshold is not None:
        predictor.threshold = args.threshold
    if not args.json:
        print(NOT_CLINICAL, flush=True)
    failed = predict_files(predictor, args.images, args.json)
    if failed:
        print(f"predict: {failed} of {len(args.images)} file(s) skipped", file=sys.stderr)
    return PARTIAL if failed else OK


if __name__ == "__main__":
    sys.exit(main())
