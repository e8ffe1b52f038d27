"""Search spaces: one module per question of the study, each defining `SPACE = SearchSpace(...)`
(study/tune/space.py: the question, the fixed and searched TrainConfig fields, samples, epoch budget,
ASHA, searcher and the name of the analysis that answers it); its docstring gives the grid and why.
A question that varies a data field (budget: the resolution) is a family: its module defines
`SPACES`, one experiment per value, and its name runs them all.
"""
from __future__ import annotations

import importlib

from study.errors import UserError
from study.tune.space import SearchSpace

QUESTIONS = ("generalization", "baseline", "add_one_layer", "add_two_layers", "depth_kernels", "optimizers",
             "dropout", "early_stopping", "three_class", "tune_recipe", "capacity", "budget")
FAMILIES = {"budget": tuple(importlib.import_module("search_spaces.budget").SPACES)}  # name -> its experiments
NAMES = tuple(n for q in QUESTIONS for n in FAMILIES.get(q, (q,))) + ("quick",)


def expand(name: str) -> list[str]:
    """`all` -> every experiment in order; `a,b` -> [a, b] (run together); a family -> its experiments;
    a single name -> [name]."""
    if name == "all":
        return list(NAMES[:-1])
    names = list(dict.fromkeys(n.strip() for n in name.split(",")))
    for n in names:
        if n not in NAMES and n not in FAMILIES:
            raise UserError(f"--experiment {n!r}: unknown; choose one of {', '.join(NAMES)}, {', '.join(FAMILIES)} or "
                            f"all, or several joined by commas (search_spaces/)")
    return list(dict.fromkeys(e for n in names for e in FAMILIES.get(n, (n,))))


def load(name: str) -> SearchSpace:
    """search_spaces/<name>.py's SPACE (a family's member from its module's SPACES), checked
    (study.tune.space.SearchSpace.check)."""
    if name not in NAMES:
        raise UserError(f"search space {name!r}: unknown; choose one of {', '.join(NAMES)} (search_spaces/)")
    family = next((f for f, members in FAMILIES.items() if name in members), None)
    module = importlib.import_module(f"search_spaces.{family or name}")
    space = module.SPACES.get(name) if family else getattr(module, "SPACE", None)
    if not isinstance(space, SearchSpace) or space.name != name:
        raise UserError(f"search_spaces/{family or name}.py: expected SPACE = SearchSpace(name={name!r}, ...)")
    return space.check()
