"""Texts that name the metric selection and ASHA use take it from study/config.py, so they cannot drift:
the README, the space modules' docstrings, the study's summary line and the report."""
from __future__ import annotations

import re
from pathlib import Path

import search_spaces
from study.names import ASHA_METRIC, BEST_METRIC, METRIC

REPO = Path(__file__).resolve().parents[1]


def test_one_metric_selects_and_ranks():
    assert ASHA_METRIC == METRIC and BEST_METRIC == f"best_{METRIC}"


def test_readme_names_the_selection_metric_and_no_other():
    readme = (REPO / "README.md").read_text()
    assert f"`{METRIC}`" in readme and "ASHA_METRIC" in readme
    for claim in re.findall(r"ASHA[^.]{0,80}?\bon (?:validation )?(accuracy|AUC|val_accuracy|val_auc)\b", readme):
        raise AssertionError(f"README says ASHA ranks on {claim}; it ranks on {METRIC}")


def test_space_docstrings_say_metric_where_they_name_what_asha_or_patience_watch():
    for name in search_spaces.NAMES:
        doc = search_spaces.load(name).__doc__
        for m in re.finditer(r"(ASHA on|monitoring|ranks? (?:trials )?(?:by|on)) ([^,.;:(]+)", doc):
            assert "METRIC" in m.group(2) or METRIC in m.group(2), f"search_spaces/{name}.py: {m.group(0)!r}"
