"""Imports run with the layers (issue 28): data -> model -> engine -> tune -> run; nothing imports `analysis`
but `analysis` itself; inside `study/` only the top, study/run.py, imports `search_spaces` (which imports
study.tune.space): the experiments are resolved at the top and handed down, so the packages make no cycle."""
from __future__ import annotations

import ast

from helpers.common import REPO


def _imports(path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
    return out


def test_study_does_not_import_analysis_and_only_its_top_imports_search_spaces():
    bad = []
    for f in sorted((REPO / "study").rglob("*.py")):
        names = _imports(f)
        rel = f.relative_to(REPO).as_posix()
        if any(n == "analysis" or n.startswith("analysis.") for n in names):
            bad.append(f"{rel} imports analysis")
        if rel != "study/run.py" and any(n == "search_spaces" or n.startswith("search_spaces.") for n in names):
            bad.append(f"{rel} imports search_spaces")
    assert not bad, bad


def test_the_engine_inference_does_not_import_the_training_loop():
    for f in ("study/engine/infer.py", "study/predict.py"):
        assert "study.engine.loop" not in _imports(REPO / f), f
    for f in sorted((REPO / "analysis").rglob("*.py")):
        assert "study.engine.loop" not in _imports(f), f.relative_to(REPO)


def test_config_sits_below_the_data_layer():
    """study/config.py imports nothing from study.data (study.data.splits imports the config): one direction."""
    assert not any(n.startswith("study.data") for n in _imports(REPO / "study" / "config.py"))
    assert "study.levels" in _imports(REPO / "study" / "config.py")
