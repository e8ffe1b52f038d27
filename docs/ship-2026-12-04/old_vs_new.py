"""The shipped binary files before and after 2026-12-04 scored on today's validation split and stress validation
(5 changes in the film frame), each at its own headline threshold and at 0.5. Inference only.

    PYTHONPATH=. .venv/bin/python docs/ship-2026-12-04/old_vs_new.py OLD_BINARY models/binary.pt
"""
import sys

from analysis.thresholds import validation_predictions
from study.engine import checkpoint as ckpt_io
from study.engine.metrics import binary_metrics

DATA = "../shared/data/chest_xray"
for path in sys.argv[1:]:
    t = ckpt_io.load(path)["release"]["threshold"]
    vp = validation_predictions(path, DATA, {})
    for name, y, p in (("validation", vp.y, vp.probs), ("stress validation", vp.y_stress, vp.probs_stress)):
        for th in dict.fromkeys((t, 0.5)):
            m = binary_metrics(y, p, th)
            print(f"{path} {vp.cfg.resolution}px {name} at {th:.2f}: " + ", ".join(
                f"{k} {m[k]:.4f}" for k in ("accuracy", "recall", "specificity", "auc")))
