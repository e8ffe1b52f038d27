"""The 3-class decision: the 3-class model's own argmax, or two stages (a binary model decides normal vs
pneumonia at its headline threshold; the 3-class model names bacterial vs viral among the films the
binary model calls pneumonia). On the official test split the 3-class model's normal recall (0.761)
fell well below the binary model's specificity (0.872): normal-vs-viral is where the shift shows.

The rule, on the stress validation (the study's selection signal): among the decisions whose normal
recall is at least the binary model's specificity there (at its threshold), the higher macro recall
(balanced accuracy over the three classes); if neither reaches that specificity, the higher macro
recall. Per-class recall on validation and the stress validation is reported for both. Inference only.
"""
from __future__ import annotations

from dataclasses import dataclass

from analysis.thresholds import predictor_validation
from study.engine.infer import Predictor
from study.engine.metrics import binary_metrics, multiclass_metrics

RULE = ("higher macro recall on the stress validation, among the decisions whose normal recall there is at least "
        "the binary model's stress specificity")
SPLITS = ("validation", "stress_validation")


@dataclass
class Decision:
    chosen: str                 # "argmax" | "two-stage"
    predictor: Predictor        # the chosen decision as a predictor (two-stage: with the gate)
    figures: dict               # decision -> split -> multiclass_metrics
    gate_specificity: float     # the binary model's specificity on the stress validation at its threshold


def two_stage(three: Predictor, gate: Predictor) -> Predictor:
    return Predictor(three.members, three.views, None, gate, three.info)


def compare(three: Predictor, gate: Predictor, root, cache: dict) -> Decision:
    gv = predictor_validation(gate, root, cache)
    spec = binary_metrics(gv.y_stress, gv.probs_stress, gate.threshold or 0.5)["specificity"]
    staged = two_stage(three, gate)
    figures = {}
    for name, p in (("argmax", three), ("two-stage", staged)):
        v = predictor_validation(p, root, cache)
        figures[name] = {"validation": multiclass_metrics(v.y, v.probs, p.labels(v.probs)),
                         "stress_validation": multiclass_metrics(v.y_stress, v.probs_stress, p.labels(v.probs_stress))}
    ok = [n for n in figures if figures[n]["stress_validation"]["recall"]["normal"] >= spec] or list(figures)
    chosen = max(ok, key=lambda n: figures[n]["stress_validation"]["macro_recall"])
    return Decision(chosen, staged if chosen == "two-stage" else three, figures, spec)
