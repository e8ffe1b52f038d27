"""The model card: what the selected models are for, what they were trained on, how well they did and where
they fail. One text, used by the report (a section) and by models/MODEL_CARD.md (the shipped models)."""
from __future__ import annotations

from study import evidence

INTENDED_USE = ("Research and teaching: comparing network and training choices on a public data set, and "
                "demonstrating a hyperparameter study. **Not a medical device and not for clinical use**: it has "
                "not been validated prospectively, on other hospitals' films, on adults, or against radiologists.")
DATA = ("Kermany, Zhang and Goldbaum (2018), \"Labeled Optical Coherence Tomography (OCT) and Chest X-Ray Images "
        "for Classification\", Mendeley Data v2, doi:10.17632/rscbjbr9sj.2, CC BY 4.0 (the Kaggle \"Chest X-Ray "
        "Images (Pneumonia)\" release): anterior-posterior chest films of children aged 1 to 5 from one centre, "
        "Guangzhou Women and Children's Medical Center; labels (normal, bacterial, viral pneumonia) from the data "
        "set's graders. Train: 1341 normal, 2530 bacterial, 1345 viral films. Images are reduced to 8-bit "
        "grayscale squares (aspect ratio not kept).")
SHIFT = (f"The official test split differs from train: {evidence.PRIOR}. A model fitted to train's look calls many "
         f"normal test films pneumonia (the team measured test specificity {evidence.PLAIN_MODEL_TEST_SPECIFICITY} for a "
         f"model that scored {evidence.PLAIN_MODEL_VAL_ACCURACY} on validation carved from train). Selection here scores "
         "balanced accuracy on a stress validation (the validation films under other processing, exposure, framing "
         "and detector) to favour models that hold up under such shifts; that is a proxy, not a guarantee.")
LIMITATIONS = (
    "One centre, one age group, one data set: performance elsewhere is unknown and likely lower.",
    "Labels come from the data set's graders and are not all confirmed; some films are mislabelled.",
    "The class prior of the data (about 3 pneumonia : 1 normal) is not that of a screening population; "
    "predictive values at another prevalence differ from those here.",
    "Bacterial versus viral pneumonia is hard from a film alone; the 3-class model confuses them often.",
    "Figures on validation and on a hold-out carved from train overstate what to expect on other films.",
)


def lines(figures: list[str]) -> list[tuple[str, str]]:
    """(heading, text) pairs; `figures`: one line per metric statement (with its confidence interval)."""
    return [("Intended use", INTENDED_USE), ("Data", DATA), ("Known train/test shift", SHIFT),
            ("Metrics", " ".join(figures) if figures else "No test evaluation in this report."),
            ("Limitations", " ".join(f"({i + 1}) {t}" for i, t in enumerate(LIMITATIONS)))]


def test_figures(results) -> list[str]:
    """One sentence per evaluated model: its test figures at the headline threshold, mean ± std and 95 % CI."""
    out = []
    for r in results:
        if r.error or r.summary is None:
            continue
        if r.selection.cfg.num_classes == 2:
            t = r.selection.headline if r.selection.headline is not None else 0.5
            s = r.summary.set_index("metric")
            parts = [f"{m} {s.loc[m, f'at {t:.2f}: mean ± std']} {s.loc[m, f'at {t:.2f}: 95% CI']}"
                     for m in ("accuracy", "recall", "specificity", "auc")]
            out.append(f"{r.selection.task} ({r.description}, {r.n_images} images, {len(r.seeds)} model(s), threshold "
                       f"{t:.2f}): " + "; ".join(parts) + ".")
        else:
            s = r.summary.set_index("metric")["mean ± std"]
            out.append(f"{r.selection.task} ({r.n_images} images): accuracy {s['accuracy']}, macro-F1 {s['macro_f1']}, "
                       f"normal recall {s['recall normal']}.")
    return out


def section(doc, results) -> None:
    doc.h(2, "Model card")
    for heading, text in lines(test_figures(results)):
        doc.p(f"**{heading}.** {text}")


def shipped_markdown(releases: dict[str, dict]) -> str:
    """models/MODEL_CARD.md from the shipped models' release entries (name -> release dict)."""
    out = ["# Model card: the shipped pneumonia models", "",
           "Written by `python -m analysis.release` from the models' own release entries; do not edit by hand.", ""]
    figures = []
    for name, r in releases.items():
        val, stress = r.get("validation", {}), r.get("stress_validation", {})
        if "threshold" in r:
            t = f"at {r['threshold']:.2f}"
            fig = lambda d: ", ".join(f"{k} {v:.4f}" for k, v in d.get(t, {}).items())
            figures.append(f"`{name}` (binary; headline threshold {r['threshold']:.2f}, {r['threshold_rule']}; best-F1 "
                           f"threshold on validation {r['f1_threshold']:.2f}): validation {fig(val)}; stress validation "
                           f"{fig(stress)}.")
        else:
            d = r.get("decision") or {}
            how = (f"two-stage: the binary gate ({d.get('gate')}) decides normal vs pneumonia at {d.get('gate_threshold')}, "
                   f"the 3-class model bacterial vs viral among the films it calls pneumonia" if d.get("decision") == "two-stage"
                   else "the 3-class model's argmax")
            figures.append(f"`{name}` (3-class; decision: {how}): validation accuracy {val.get('accuracy')}, macro-F1 "
                           f"{val.get('macro_f1')}, recall {val.get('recall')}; stress validation accuracy "
                           f"{stress.get('accuracy')}, recall {stress.get('recall')}.")
    for heading, text in lines(figures):
        out += [f"## {heading}", "", text, ""]
    out += ["The figures above are on the validation split carved from train (and its stress copy), not on the "
            "official test split, which the team measures separately; expect lower figures on other films.", ""]
    out += ["## How each model was made", ""]
    for name, r in releases.items():
        members = r.get("members") or [{"source": name, "weight": 1.0, "kept_epoch": r.get("kept_epoch"),
                                        "epochs_run": r.get("epochs_run")}]
        tta = (r.get("tta") or {}).get("views") or ["identity"]
        out += [f"### {name}", "", f"- data: {r.get('data')}", f"- trained with: `{r.get('trained_with')}`",
                f"- precision {r.get('precision')}, released {r.get('released')}; test-time views: {', '.join(tta)}",
                f"- {len(members)} member(s), weight and kept epoch of its run:"]
        out += [f"  - `{m.get('source')}`: weight {m.get('weight')}, kept epoch {m.get('kept_epoch')} of "
                f"{m.get('epochs_run')}" for m in members]
        decision = r.get("decision")
        if decision:
            out += [f"- 3-class decision: {decision['decision']} ({decision['rule']}; the gate's stress specificity "
                    f"{decision['gate_stress_specificity']}); stress-validation figures of both: "
                    + "; ".join(f"{k}: accuracy {v['stress_validation']['accuracy']}, macro recall "
                                f"{v['stress_validation']['macro_recall']}, recall {v['stress_validation']['recall']}"
                                for k, v in decision["compared"].items())]
        out.append("")
    return "\n".join(out)
