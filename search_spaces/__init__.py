"""Search spaces: one module per question of the study, each defining `SPACE = SearchSpace(...)`
(study/tune/space.py: the question, the fixed and searched TrainConfig fields, samples, epoch budget,
ASHA, searcher and the name of the analysis that answers it); its docstring gives the grid and why.
"""
from __future__ import annotations

import importlib

from study.errors import UserError
from study.tune.space import SearchSpace

QUESTIONS = ("generalization", "baseline", "add_one_layer", "add_two_layers", "depth_kernels", "optimizers",
             "dropout", "early_stopping", "three_class", "tune_recipe", "capacity")
NAMES = QUESTIONS + ("quick",)


def expand(name: str) -> list[str]:
    """`all` -> every question in order; `a,b` -> [a, b] (run together); a single name -> [name]."""
    if name == "all":
        return list(QUESTIONS)
    names = list(dict.fromkeys(n.strip() for n in name.split(",")))
    for n in names:
        if n not in NAMES:
            raise UserError(f"--experiment {n!r}: unknown; choose one of {', '.join(NAMES)} or all, or several "
                            f"joined by commas (search_spaces/)")
    return names


def load(name: str) -> SearchSpace:
    """search_spaces/<name>.py's SPACE, checked (study.tune.space.SearchSpace.check)."""
    if name not in NAMES:
        raise UserError(f"search space {name!r}: unknown; choose one of {', '.join(NAMES)} (search_spaces/)")
    space = getattr(importlib.import_module(f"search_spaces.{name}"), "SPACE", None)
    if not isinstance(space, SearchSpace) or space.name != name:
        raise UserError(f"search_spaces/{name}.py: expected SPACE = SearchSpace(name={name!r}, ...)")
    return space.check()
