"""Texts that name the metric selection and ASHA use take it from study/names.py, so they cannot drift:
the README, the space modules' docstrings, the study's summary line and the report."""
from __future__ import annotations

import re

import search_spaces
from helpers.common import REPO
from study.names import BEST_METRIC, METRIC


def test_one_metric_selects_and_ranks():
    assert BEST_METRIC == f"best_{METRIC}"
    assert "metric=METRIC" in (REPO / "study" / "tune" / "tuner.py").read_text()  # ASHA ranks on it, no other name


def test_readme_names_the_selection_metric_and_no_other():
    readme = (REPO / "README.md").read_text()
    assert f"`{METRIC}`" in readme and "passes `METRIC` itself" in readme
    for claim in re.findall(r"ASHA[^.]{0,80}?\bon (?:validation )?(accuracy|AUC|val_accuracy|val_auc)\b", readme):
        raise AssertionError(f"README says ASHA ranks on {claim}; it ranks on {METRIC}")


def test_space_docstrings_say_metric_where_they_name_what_asha_or_patience_watch():
    for name in search_spaces.NAMES:
        doc = search_spaces.load(name).doc
        for m in re.finditer(r"(ASHA on|monitoring|ranks? (?:trials )?(?:by|on)) ([^,.;:(]+)", doc):
            assert "METRIC" in m.group(2) or METRIC in m.group(2), f"search_spaces/{name}.py: {m.group(0)!r}"


ENTRY_POINTS = {"study.run": "study/run.py", "study.train": "study/train.py", "study.predict": "study/predict.py",
                "study.inspect": "study/inspect.py", "analysis.report": "analysis/report/cli.py",
                "analysis.release": "analysis/release.py", "analysis.summary": "analysis/summary.py",
                "benchmarks.throughput": "benchmarks/throughput.py", "benchmarks.cache": "benchmarks/cache.py"}


def test_every_entry_point_starts_with_its_command_and_is_a_script():
    import tomllib
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    for module, path in ENTRY_POINTS.items():
        head = "\n".join((REPO / path).read_text().split('"""')[1].splitlines()[:4])
        assert f"python -m {module}" in head, f"{path}: its docstring does not start with its command"
    targets = {v.split(":")[0] for v in scripts.values()}
    assert targets == {m.replace("analysis.report", "analysis.report.cli") for m in ENTRY_POINTS
                       if not m.startswith("benchmarks")}, scripts
