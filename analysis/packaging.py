"""Packaging trained models as a shipped model file (the command line is analysis/release.py).

`release` packages one model file as it is, or ensemble-selects several on the stress validation
(analysis.ensemble); chooses the test-time views (kept only if they help there) and, for 3 classes with
a gate, the decision (analysis.decision); scores validation and the stress validation (never a test
split); and writes an inference-only model file with its `release` entry and OUT's folder's
MODEL_CARD.md. Paths in the entry are written relative to the repository or the data root.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from analysis import card, decision, ensemble
from analysis import thresholds as athreshold
from analysis.results.tree import local_checkpoint
from study.data.augment import TTA_VIEWS
from study.data.layout import find_root
from study.engine import checkpoint as ckpt_io
from study.engine.device import pick_device
from study.engine.infer import NO_TTA, Predictor, parse_views, predictor_from
from study.engine.metrics import balanced_log_loss, binary_metrics, multiclass_metrics
from study.errors import UserError

REPO = Path(__file__).resolve().parents[1]
# forward passes per image (members x views, plus a gate's) a release may ship: predicting 624 films of 1-2 kpx
# took 21 s at 3 and 72 s at 15 on 2 cores (BENCHMARKS.md "Prediction time"), so 25 stays near 113 s, under
# the 120 s the shipped models are held to
MAX_FORWARDS = 25


def relative_text(text: str, data_root: Path | None) -> str:
    """`text` with this machine's absolute paths written relative: the data root as its folder name, the
    repository as a relative path (committed text names no machine's paths)."""
    if data_root is not None:
        text = text.replace(str(data_root), data_root.name)
    return text.replace(str(REPO) + os.sep, "").replace(str(REPO), ".")


def _binary_figures(y, p, t: float) -> dict:
    m = binary_metrics(y, p, t)
    return {k: round(float(v), 4) for k, v in m.items() if k in ("accuracy", "recall", "specificity", "precision",
                                                                  "f1", "auc")}


def _rounded(m: dict) -> dict:
    return {"accuracy": round(m["accuracy"], 4), "macro_f1": round(m["macro_f1"], 4),
            "macro_recall": round(m["macro_recall"], 4), "recall": {k: round(v, 4) for k, v in m["recall"].items()},
            "images": m["support"]}


def _multiclass_figures(y, p, pred) -> dict:
    return _rounded(multiclass_metrics(y, p, pred))


def choose_views(predictor: Predictor, data, cache: dict, tta: str, gate: Predictor | None = None) -> tuple[Predictor, dict]:
    """--tta: `auto` keeps every declared view only if it lowers balanced log-loss on the stress validation, and
    only where members x views (plus the gate's forwards) stays within MAX_FORWARDS."""
    extra = gate.forwards if gate is not None else 0
    if tta != "auto":
        views = parse_views(tta)
        if len(predictor.members) * len(views) + extra > MAX_FORWARDS:
            raise UserError(f"--tta {tta}: {len(predictor.members)} member(s) x {len(views)} view(s) + {extra} gate "
                            f"forwards is over MAX_FORWARDS={MAX_FORWARDS} (analysis/packaging.py); pass fewer views")
        return predictor.with_views(views), {"views": list(views), "rule": "chosen by --tta"}
    plain = athreshold.predictor_validation(predictor.with_views(NO_TTA), data, cache)
    without = balanced_log_loss(plain.y_stress, plain.probs_stress)
    rule = "kept only if it lowers balanced log-loss on the stress validation"
    if len(predictor.members) * len(TTA_VIEWS) + extra > MAX_FORWARDS:
        why = (f"{rule}; not tried: {len(predictor.members)} members x {len(TTA_VIEWS)} views + {extra} gate "
               f"forwards is over MAX_FORWARDS={MAX_FORWARDS}")
        return predictor.with_views(NO_TTA), {"views": ["identity"], "rule": why,
                                              "stress balanced log-loss without": round(without, 4)}
    viewed = athreshold.predictor_validation(predictor.with_views(tuple(TTA_VIEWS)), data, cache)
    with_ = balanced_log_loss(viewed.y_stress, viewed.probs_stress)
    keep = with_ < without
    return (predictor.with_views(tuple(TTA_VIEWS) if keep else NO_TTA),
            {"views": list(TTA_VIEWS) if keep else ["identity"], "rule": rule,
             "stress balanced log-loss without": round(without, 4), "with all views": round(with_, 4)})


def load_gate(gate_path: str) -> tuple[Predictor, dict]:
    """--gate: a released binary model file -> (its predictor, its checkpoint dict)."""
    gate_ckpt = ckpt_io.load(local_checkpoint(gate_path))
    gate = predictor_from(gate_ckpt, pick_device(), where=gate_path)
    if gate.num_classes != 2 or gate.threshold is None:
        raise UserError(f"--gate {gate_path}: expected a released binary model file (analysis.release output)")
    return gate, gate_ckpt


def two_stage(predictor: Predictor, gate: Predictor, gate_path: str, data, cache: dict) -> tuple[Predictor, dict]:
    """analysis.decision's rule with `gate_path`'s released binary model; -> (the chosen predictor, the comparison)."""
    d = decision.compare(predictor, gate, data, cache)
    rounded = {n: {s: _rounded(m) for s, m in f.items()} for n, f in d.figures.items()}
    return d.predictor, {"decision": d.chosen, "rule": decision.RULE, "gate": relative_text(str(gate_path), None),
                         "gate_threshold": gate.threshold, "gate_stress_specificity": round(d.gate_specificity, 4),
                         "compared": rounded}


def release(checkpoints: list[str], data: str | None, out: Path, command: str, tta: str = "auto",
            gate: str | None = None) -> dict:
    cache: dict = {}
    root = find_root(data) if data else None
    if len(checkpoints) > 1:
        lib = ensemble.library(checkpoints, [relative_text(str(c), root) for c in checkpoints], data, cache)
        ckpt = ensemble.select(lib).checkpoint()
    else:
        ckpt = ckpt_io.load(local_checkpoint(checkpoints[0]))
    predictor = predictor_from(ckpt, pick_device(), where=str(checkpoints[0]))
    gate_model, gate_ckpt, decision = None, None, None
    if gate is not None:
        if predictor.num_classes != 3:
            raise UserError(f"--gate {gate}: a gate is for a 3-class model; {checkpoints[0]} is binary")
        gate_model, gate_ckpt = load_gate(gate)
    predictor, views = choose_views(predictor, data, cache, tta, gate_model)
    if gate_model is not None:
        predictor, decision = two_stage(predictor, gate_model, gate, data, cache)
    vp = athreshold.predictor_validation(predictor, data, cache)
    info = {"data": relative_text(vp.description, root), "trained_with": relative_text(command, root),
            "released": time.strftime("%Y-%m-%d"), "precision": ckpt_io.members(ckpt)[0][0].get("precision"),
            "members": [{"source": relative_text(m.get("source") or str(checkpoints[0]), root), "weight": round(w, 4),
                         "kept_epoch": m.get("best_epoch"), "epochs_run": m.get("epoch"), "seed": m["config"].get("seed")}
                        for m, w in ckpt_io.members(ckpt)], "tta": views}
    if predictor.num_classes == 2:
        f1_t, _ = athreshold.choose_threshold(vp.y, vp.probs)
        headline, _ = athreshold.headline_threshold(vp.y_stress, vp.probs_stress)
        info.update({"threshold": headline, "threshold_rule": athreshold.HEADLINE_RULE, "f1_threshold": f1_t,
                     "validation": {f"at {t:.2f}": _binary_figures(vp.y, vp.probs, t) for t in dict.fromkeys((0.5, headline))},
                     "stress_validation": {f"at {t:.2f}": _binary_figures(vp.y_stress, vp.probs_stress, t)
                                           for t in dict.fromkeys((0.5, headline))}})
    else:
        info.update({"validation": _multiclass_figures(vp.y, vp.probs, predictor.labels(vp.probs)),
                     "stress_validation": _multiclass_figures(vp.y_stress, vp.probs_stress, predictor.labels(vp.probs_stress))})
        if decision is not None:
            info["decision"] = decision
    body = ckpt_io.ensemble(ckpt_io.members(ckpt), tta=predictor.views, selection=ckpt.get("selection"),
                            gate=gate_ckpt if predictor.gate is not None else None) if "members" in ckpt or \
        predictor.gate is not None else {**ckpt, "tta": [v for v in predictor.views if v != "identity"]}
    ckpt_io.save(out, {**body, "release": info}, inference_only=True)
    releases = {p.name: ckpt_io.load(p).get("release") for p in sorted(out.parent.glob("*.pt"))}
    (out.parent / "MODEL_CARD.md").write_text(card.shipped_markdown({k: v for k, v in releases.items() if v}))
    return info
