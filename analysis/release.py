"""Package a trained checkpoint as a shipped model: weights, config, headline threshold, validation figures.

    python -m analysis.release CHECKPOINT --data ROOT --out models/binary.pt --command "the command that trained it"

reads CHECKPOINT (study/checkpoint.py; e.g. the folder `python -m study.train --out DIR` wrote),
scores it on its own validation split and stress validation (re-prepared from ROOT with the
checkpoint's data fields; never a test split), chooses the binary headline threshold there as the
report does (analysis.threshold: Youden's J on the stress validation; the Q2 best-F1 threshold is
recorded too), and writes OUT: an inference-only checkpoint whose `release` entry holds the
threshold, its rule, the validation figures, the data description, the training command and the
date; and rewrites OUT's folder's MODEL_CARD.md from every shipped model's release entry there.
`python -m study.predict` loads models/binary.pt and models/three_class.pt by default. Prints the
release entry as JSON. Scores and chooses only: it never trains.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from analysis import card
from analysis import threshold as athreshold
from analysis.metrics import binary_metrics, multiclass_metrics
from study import checkpoint as ckpt_io
from study import checks
from study.config import UserError


def _binary_figures(y, p, t: float) -> dict:
    m = binary_metrics(y, p, t)
    return {k: round(float(v), 4) for k, v in m.items() if k in ("accuracy", "recall", "specificity", "precision",
                                                                  "f1", "auc")}


def _multiclass_figures(y, p) -> dict:
    m = multiclass_metrics(y, p)
    return {"accuracy": round(m["accuracy"], 4), "macro_f1": round(m["macro_f1"], 4),
            "recall": {k: round(v, 4) for k, v in m["recall"].items()}, "images": m["support"]}


def release(checkpoint: str, data: str | None, out: Path, command: str) -> dict:
    ckpt = ckpt_io.load(checkpoint)
    vp = athreshold.validation_predictions(checkpoint, data, {})
    info = {"data": vp.description, "trained_with": command, "released": time.strftime("%Y-%m-%d"),
            "kept_epoch": ckpt.get("best_epoch"), "epochs_run": ckpt.get("epoch"), "precision": ckpt.get("precision")}
    if vp.cfg.num_classes == 2:
        f1_t, _ = athreshold.choose_threshold(vp.y, vp.probs)
        headline, _ = athreshold.youden_threshold(vp.y_stress, vp.probs_stress)
        info.update({"threshold": headline, "threshold_rule": athreshold.HEADLINE_RULE, "f1_threshold": f1_t,
                     "validation": {f"at {t:.2f}": _binary_figures(vp.y, vp.probs, t) for t in dict.fromkeys((0.5, headline))},
                     "stress_validation": {f"at {t:.2f}": _binary_figures(vp.y_stress, vp.probs_stress, t)
                                           for t in dict.fromkeys((0.5, headline))}})
    else:
        info.update({"validation": _multiclass_figures(vp.y, vp.probs),
                     "stress_validation": _multiclass_figures(vp.y_stress, vp.probs_stress)})
    ckpt_io.save(out, {**ckpt, "release": info}, inference_only=True)
    releases = {p.name: ckpt_io.load(p).get("release") for p in sorted(out.parent.glob("*.pt"))}
    (out.parent / "MODEL_CARD.md").write_text(card.shipped_markdown({k: v for k, v in releases.items() if v}))
    return info


def main(argv: list[str] | None = None) -> int:
    ap = checks.Parser(prog="python -m analysis.release", description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint", help="a checkpoint (checkpoint.pt or its folder)")
    ap.add_argument("--data", default=None, help="the data set it was trained on (default: the bundled sample)")
    ap.add_argument("--out", required=True, type=Path, help="the shipped model file to write, e.g. models/binary.pt")
    ap.add_argument("--command", required=True, help="the command that trained the checkpoint (kept in the model)")
    args = ap.parse_args(argv)
    try:
        info = release(args.checkpoint, args.data, args.out, args.command)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
